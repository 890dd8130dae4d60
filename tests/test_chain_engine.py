"""The chain engine against the step-by-step definition (the reference in ``test_selection.py``):
no repeated sample in a batch, every batch a valid sequence of chains, and the same distribution
of samples and of chain structure per position, in each of the engine's regimes."""

import numpy as np
import pytest
import torch

import mlabs.selection.chain.engine as engine
import mlabs.selection.first_positions as first_positions
from mlabs.selection import ChainBatchSampler
from mlabs.selection.chain import label_walk_table
from test_selection import _chain_reference_batch, _labels, _seed_label, _two_sample_chi2


def _sampler(y, b, s_e=2.0, seed=4, **kw):
    s = ChainBatchSampler(y, b, selection_pressure=s_e, warmup_epochs=0, seed=seed, score="loss", **kw)
    n = len(y)
    s.update(torch.arange(n), torch.linspace(0.0, 1.0, n) ** 2)
    return s


def _seeds(s, batch):
    """Positions of the seeds of an argmax chain batch, parsed by the definition: position t
    continues the chain with the walk's next label unless the chain is complete, the walk has
    stopped or that label's positives are all in the batch already (then t is a new seed). Fails
    if a walk sample lacks its label. Also returns how many walks were cut by an exhausted label."""
    y = s.labels
    walk = label_walk_table(s.correlation, s.chain_length)
    seeds, label, step, exhausted = [], -1, 0, 0
    for t, x in enumerate(batch):
        nxt = int(walk[label, step]) if label >= 0 and step < s.chain_length - 1 else -1
        if nxt >= 0 and set(y[:, nxt].nonzero().view(-1).tolist()) <= set(batch[:t]):
            nxt, exhausted = -1, exhausted + 1
        if nxt >= 0:
            assert bool(y[x, nxt]), f"walk sample {x} at {t} lacks the walk's label {nxt}"
            step += 1
        else:
            seeds.append(t)
            label, step = _seed_label(y, x), 0
    return seeds, exhausted


def _rare_labels(n):
    """Two common labels and a rare pair on the samples with the largest p, which the walks of the
    rare labels exhaust in most batches."""
    rng = np.random.default_rng(0)
    y = np.zeros((n, 4), dtype=bool)
    y[:, 0], y[:, 1] = rng.random(n) < 0.5, rng.random(n) < 0.3
    y[0, 0] = y[1, 1] = True
    y[n - 6:, 2] = True
    y[n - 2:, 3] = True
    return y


REGIMES = {
    "enumerate": {},                                   # small segments enumerated exactly
    "proposals": {"ENUMERATE": 0, "FEW": 0},           # proposals, scratch-buffer draws, sorted keys
}


@pytest.mark.parametrize("regime", sorted(REGIMES))
@pytest.mark.parametrize("s_e,label_choice", [(2.0, "argmax"), (16.0, "argmax"), (2.0, "sample"), (16.0, "sample")])
def test_positions_and_chains_match_the_reference(monkeypatch, regime, s_e, label_choice):
    # per position: which sample (b x n cells) and, for argmax walks, whether it is a seed (b cells),
    # against the step-by-step definition; rare labels run out (exhausted walks) in many batches
    for name, value in REGIMES[regime].items():
        monkeypatch.setattr(engine, name, value)
    if regime == "proposals":
        monkeypatch.setattr(first_positions, "DENSE_ENTRIES", 0)
    n, b = 40, 12
    s = _sampler(_rare_labels(n), b, s_e, chain_length=3, label_choice=label_choice)
    p = s.probabilities()
    got, got_seed = torch.zeros(b, n, dtype=torch.float64), torch.zeros(b, dtype=torch.float64)
    exhausted, nb = 0, 0
    while nb < 2000:
        for batch in s:
            assert len(set(batch)) == b
            got[torch.arange(b), torch.tensor(batch)] += 1
            if label_choice == "argmax":
                seeds, ex = _seeds(s, batch)
                got_seed[seeds] += 1
                exhausted += ex
            nb += 1
    assert s._engine.rejection == (s_e == 2.0)
    g = torch.Generator().manual_seed(9)
    ref, ref_seed = torch.zeros(b, n, dtype=torch.float64), torch.zeros(b, dtype=torch.float64)
    for _ in range(nb):
        batch = _chain_reference_batch(s, p, g)
        ref[torch.arange(b), torch.tensor(batch)] += 1
        if label_choice == "argmax":
            ref_seed[_seeds(s, batch)[0]] += 1
    assert _two_sample_chi2(got.reshape(-1), ref.reshape(-1)) > 1e-4
    if label_choice == "argmax":
        assert exhausted > 150                      # the exhausted walks are exercised
        assert _two_sample_chi2(got_seed, ref_seed) > 1e-4
        # the statistic has power: chains of length 2 instead of 3 are told apart
        short = torch.zeros(b, dtype=torch.float64)
        s2 = _sampler(_rare_labels(n), b, s_e, chain_length=2)
        for _ in range(nb):
            short[_seeds(s2, _chain_reference_batch(s2, p, g))[0]] += 1
        assert _two_sample_chi2(short, ref_seed) < 1e-6


@pytest.mark.parametrize("regime", sorted(REGIMES))
@pytest.mark.parametrize("n,b,s_e,label_choice", [(64, 64, 2.0, "argmax"), (64, 64, 64.0, "sample"),
                                                  (70, 64, 2.0, "sample"), (3000, 256, 2.0, "argmax"),
                                                  (3000, 256, 16.0, "argmax"), (3000, 128, 2.0, "sample")])
def test_batches_are_distinct_chains(monkeypatch, regime, n, b, s_e, label_choice):
    # B = N (every sample exactly once), B close to N and many rare labels: every batch holds B
    # distinct samples, and an argmax batch parses as chains of the definition
    for name, value in REGIMES[regime].items():
        monkeypatch.setattr(engine, name, value)
    if regime == "proposals":
        monkeypatch.setattr(first_positions, "DENSE_ENTRIES", 0)
    rng = np.random.default_rng(n + b)
    y = rng.random((n, 24)) < 0.4 * np.arange(1, 25) ** -1.5
    y[:24] |= np.eye(24, dtype=bool)
    s = _sampler(y, b, s_e, seed=1, label_choice=label_choice)
    for _ in range(2):
        for batch in s:
            assert len(set(batch)) == b and all(0 <= x < n for x in batch)
            if label_choice == "argmax":
                _seeds(s, batch)


def test_chain_length_and_label_checks():
    y = torch.as_tensor(_labels(30))
    with pytest.raises(ValueError, match="chain_length"):
        ChainBatchSampler(y, 8, chain_length=0)
    with pytest.raises(ValueError, match="label_choice"):
        ChainBatchSampler(y, 8, label_choice="max")
