"""The other batch-selection methods: interface, determinism, resume and each method's defining property."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from mlabs.selection import (
    SAMPLERS,
    ActiveBiasSampler,
    BalancedBatchSampler,
    D2ACEBatchSampler,
    OnlineBatchSampler,
    RecencyBiasSampler,
    UncertaintyBatchSampler,
    make_sampler,
    needs_predictions,
)
from mlabs.selection.probabilities import _average_descending_rank
from mlabs.selection.scheduled import ScheduledSampler, ScoreRule

OTHERS = ["online_batch", "active_bias", "recency_bias", "balanced", "uncertainty", "d2ace"]
N, Q, B = 300, 6, 32


def data(n=N, q=Q, seed=0):
    g = torch.Generator().manual_seed(seed)
    freq = torch.tensor([0.6, 0.4, 0.2, 0.1, 0.05, 0.04])[:q]
    y = (torch.rand(n, q, generator=g) < freq).long()
    y[y.sum(1) == 0, 0] = 1
    return y, torch.rand(n, 4, generator=g)


def build(method, y=None, x=None, **kw):
    if y is None:
        y, x = data()
    kw = {"warmup_epochs": 1, "epochs": 8, "seed": 0, **kw}
    return make_sampler(method, y, B, features=x, **kw)


def feed(s, idx, seed):
    g = torch.Generator().manual_seed(seed)
    idx = torch.as_tensor(idx)
    s.update(idx, torch.rand(len(idx), generator=g), probabilities=torch.rand(len(idx), s.labels.shape[1], generator=g))


def run_epochs(s, epochs, first=0):
    out = []
    for e in range(first, first + epochs):
        s.set_epoch(e)
        for i, b in enumerate(s):
            out.append(list(b))
            feed(s, b, 1000 * e + i)
    return out


@pytest.mark.parametrize("method", OTHERS)
def test_batches_are_valid_and_deterministic(method):
    a, b = build(method), build(method)
    feed(a, range(N), 1)
    feed(b, range(N), 1)
    batches = run_epochs(a, 4)
    assert batches == run_epochs(b, 4)
    assert len(batches) == 4 * len(a) == 4 * math.ceil(N / B)
    last_warmup = N - (len(a) - 1) * B
    for k, batch in enumerate(batches):
        assert all(0 <= i < N for i in batch) and len(set(batch)) == len(batch)
        # warm-up: a shuffled epoch (last batch smaller); afterwards every batch is full
        assert len(batch) == (last_warmup if k == len(a) - 1 else B)
    warm = sorted(i for batch in batches[:len(a)] for i in batch)
    assert warm == list(range(N))                                   # warm-up covers every sample once
    p = a.probabilities()
    assert p.shape == (N,) and abs(float(p.sum()) - 1) < 1e-9 and float(p.min()) >= 0


@pytest.mark.parametrize("method", OTHERS)
def test_state_dict_round_trip_mid_epoch(method):
    s = build(method)
    feed(s, range(N), 1)
    run_epochs(s, 2)
    s.set_epoch(2)
    it = iter(s)
    for i in range(3):
        feed(s, next(it), 77 + i)
    state = s.state_dict()
    rest = []
    for i, batch in enumerate(it):
        rest.append(batch)
        feed(s, batch, 500 + i)
    after = run_epochs(s, 1, first=3)
    t = build(method)
    t.load_state_dict(state)
    resumed = []
    for i, batch in enumerate(t):
        resumed.append(batch)
        feed(t, batch, 500 + i)
    assert resumed == rest
    assert run_epochs(t, 1, first=3) == after


@pytest.mark.parametrize("method", OTHERS)
def test_works_with_a_dataloader(method):
    y, x = data()
    s = build(method, y, x)
    feed(s, range(N), 1)
    s.set_epoch(2)
    loader = DataLoader(TensorDataset(x, y), batch_sampler=s)
    sizes = [len(xb) for xb, yb in loader]
    assert sizes == [B] * len(s)


@pytest.mark.parametrize("method", OTHERS)
def test_bad_input_is_refused_clearly(method):
    y, x = data()
    with pytest.raises(ValueError, match="batch_size"):
        make_sampler(method, y, N + 1, features=x)
    s = build(method)
    with pytest.raises(ValueError, match="finite|NaN"):
        s.update([0, 1], [0.1, float("nan")], probabilities=torch.full((2, Q), 0.5))
    with pytest.raises(ValueError, match="out of range"):
        s.update([0, N], [0.1, 0.2], probabilities=torch.full((2, Q), 0.5))
    if needs_predictions(method):
        with pytest.raises(ValueError, match="probabilities"):
            s.update([0, 1], [0.1, 0.2])
        with pytest.raises(ValueError, match="shape"):
            s.update([0, 1], [0.1, 0.2], probabilities=torch.full((2, Q + 1), 0.5))
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            s.update([0, 1], [0.1, 0.2], probabilities=torch.full((2, Q), 3.0))
    if method != "balanced":
        with pytest.raises(ValueError, match=">= 1"):
            build(method, selection_pressure=0.5)


def test_registry_names_every_method_and_rejects_unknown_ones():
    assert list(SAMPLERS)[:3] == ["random", "adaptive", "chain"] and set(OTHERS) <= set(SAMPLERS)
    y, x = data()
    with pytest.raises(ValueError, match="unknown batch-selection method"):
        make_sampler("nope", y, B)
    with pytest.raises(ValueError, match="does not take"):
        make_sampler("online_batch", y, B, chain_length=3)
    with pytest.raises(ValueError, match="needs features"):
        make_sampler("d2ace", y, B)
    assert needs_predictions("d2ace") and not needs_predictions("online_batch")


# -- defining properties ----------------------------------------------------------------------------
def test_online_batch_is_the_exact_rank_rule_with_an_annealed_pressure():
    y, _ = data()
    s = OnlineBatchSampler(y, B, selection_pressure=100, selection_pressure_end=1, warmup_epochs=2, epochs=12)
    assert s.pressure(2) == 100 and s.pressure(11) == 1
    assert s.pressure(6.5) == pytest.approx(10.0)          # geometric midpoint
    loss = torch.rand(N, generator=torch.Generator().manual_seed(3)).double()
    s.update(torch.arange(N), loss)
    for epoch in (2, 5):
        s.set_epoch(epoch)
        se = s.pressure()
        expected = torch.exp(-math.log(se) * _average_descending_rank(loss) / N)
        torch.testing.assert_close(s.probabilities(), expected / expected.sum())
    s.set_epoch(11)
    torch.testing.assert_close(s.probabilities(), torch.full((N,), 1.0 / N, dtype=torch.float64))
    assert not s.recompute_due(3)
    r = OnlineBatchSampler(y, B, recompute_every=2, warmup_epochs=2, epochs=12)
    assert [r.recompute_due(e) for e in range(7)] == [False, False, True, False, True, False, True]


def _feed_histories(s, steady, moving, rounds=5):
    """Give `steady` samples constant predictions and `moving` ones alternating predictions."""
    for t in range(rounds):
        p = torch.full((N, Q), 0.2)
        p[moving] = 0.45 if t % 2 else 0.55          # flips across the 0.5 threshold, small variance
        s.update(torch.arange(N), torch.full((N,), 0.5), probabilities=p)


def test_active_bias_prefers_samples_whose_predictions_vary():
    y, _ = data()
    s = ActiveBiasSampler(y, B, warmup_epochs=0, epochs=10)
    for t in range(5):
        p = torch.full((N, Q), 0.3)
        p[:50] = 0.1 if t % 2 else 0.9
        s.update(torch.arange(N), torch.full((N,), 0.5), probabilities=p)
    s.set_epoch(0)
    p = s.probabilities()
    assert float(p[:50].min()) > float(p[50:].max())


def test_recency_bias_prefers_samples_whose_recent_predictions_flip():
    y, _ = data()
    s = RecencyBiasSampler(y, B, warmup_epochs=0, epochs=10)
    moving = torch.arange(40)
    _feed_histories(s, None, moving)
    s.set_epoch(0)
    p = s.probabilities()
    assert float(p[moving].min()) > float(p[40:].max())
    # the preference shows in the batches drawn
    counts = torch.zeros(N)
    for batch in s:
        counts[batch] += 1
    assert counts[:40].mean() > 1.5 * counts[40:].mean()


def test_uncertainty_prefers_uncertain_and_fluctuating_samples():
    y, _ = data()
    s = UncertaintyBatchSampler(y, B, warmup_epochs=0, epochs=10)
    _feed_histories(s, None, torch.arange(40))
    s.set_epoch(0)
    p = s.probabilities()
    assert float(p[:40].min()) > float(p[40:].max())
    e = s.label_uncertainty()
    assert float(e.min()) >= 0 and float(e.max()) <= 1


def test_balanced_sampler_equalises_label_frequencies():
    y, _ = data(n=2000)
    s = BalancedBatchSampler(y, 64, warmup_epochs=0, seed=1)
    drawn = torch.zeros(Q)
    rand = torch.zeros(Q)
    g = torch.Generator().manual_seed(0)
    for epoch in range(3):
        s.set_epoch(epoch)
        for batch in s:
            drawn += y[batch].sum(0)
            rand += y[torch.randperm(2000, generator=g)[:64]].sum(0)
    share, share_random = drawn / drawn.sum(), rand / rand.sum()
    rarest = int(y.sum(0).argmin())
    assert share[rarest] > 3 * share_random[rarest]
    assert float(share.max() / share.min()) < float(share_random.max() / share_random.min()) / 3
    # per-draw probabilities: each label's samples carry 1/q' of the mass (labels overlap, so >=)
    p = s.probabilities()
    assert float((y.bool()[:, rarest].double() * p).sum()) >= 1.0 / Q - 1e-9


def test_d2ace_mixes_uncertainty_and_hardness_as_scheduled():
    y, x = data()
    s = D2ACEBatchSampler(y, B, features=x, warmup_epochs=2, epochs=11)
    assert s.beta(2) == pytest.approx(0.7) and s.beta(8) == pytest.approx(0.3) and s.beta(10) == pytest.approx(0.3)
    assert s.beta((2 + 2 + 2 / 3 * 8) / 2) == pytest.approx(0.5)  # linear up to 2/3 of the way
    assert s.pressure(2) == 8 and s.pressure(10) == 1

    def prefs(beta):
        t = D2ACEBatchSampler(y, B, features=x, warmup_epochs=0, epochs=50, beta_start=beta, beta_end=beta)
        for r in range(5):
            p = torch.full((N, Q), 0.05)
            p[:40] = 0.45 if r % 2 else 0.55                     # uncertain, flipping
            p[40:80] = torch.where(y[40:80].bool(), 0.02, 0.98)  # steadily wrong: hard, not noisy
            t.update(torch.arange(N), torch.full((N,), 0.5), probabilities=p)
        t.set_epoch(0)
        return t.probabilities()

    unc, hard = prefs(1.0), prefs(0.0)
    assert unc[:40].mean() > unc[40:80].mean() and hard[40:80].mean() > hard[:40].mean()
    # the mixture is the beta-weighted average of the two distributions
    torch.testing.assert_close(prefs(0.25), 0.25 * unc + 0.75 * hard)


def test_d2ace_label_weights_follow_the_current_metric():
    y, x = data()
    s = D2ACEBatchSampler(y, B, features=x, warmup_epochs=0).score_rule
    g = torch.Generator().manual_seed(5)
    m = torch.rand(N, Q, generator=g) * 0.2
    before = s.label_weights(m)
    m[:, 2] += 0.6   # label 2 became uncertain everywhere: its weight rises, the others stay
    after = s.label_weights(m)
    assert after[2] > before[2] and torch.allclose(after[[0, 1, 3, 4, 5]], before[[0, 1, 3, 4, 5]])
    torch.testing.assert_close(after, torch.exp(0.5 * m.mean(0) + 0.5 * m.std(0, unbiased=False)))
    # the weights scale each label's contribution to the sample scores
    doubled = D2ACEBatchSampler(y, B, features=x, warmup_epochs=0).score_rule
    doubled.label_weights = lambda metric: 2 * s.label_weights(metric)
    torch.testing.assert_close(doubled.sample_scores(m), 2 * s.sample_scores(m))


def test_balanced_batches_complete_rows_that_need_more_draws():
    # 40 labelled samples and B = 40: almost every row needs draws beyond the first 2B
    y = torch.zeros(60, 3, dtype=torch.long)
    y[:30, 0] = 1
    y[30:38, 1] = 1
    y[38:40, 2] = 1
    s = BalancedBatchSampler(y, 40, warmup_epochs=0, seed=3)
    s.set_epoch(0)
    for batch in s:
        assert sorted(batch) == list(range(40))


@pytest.mark.parametrize("method", sorted(SAMPLERS))
def test_every_sampler_declares_what_it_takes(method):
    # make_sampler builds a sampler from what its class declares; a declaration that drifts from
    # the constructor would pass an argument it does not take, or never pass one it needs
    import inspect

    cls = SAMPLERS[method]
    family = [k for k in cls.__mro__ if k.__module__.startswith("mlabs.selection")]
    declared_in = next(k for k in family if "options" in vars(k))
    assert declared_in is cls, f"{method}: declare its own options"
    params = inspect.signature(cls.__init__).parameters
    taken = {p for p in params if p not in ("self", "labels", "batch_size", "n_samples")}
    protocol = {"seed", "device"}
    for flag, arg in (("has_warmup", "warmup_epochs"), ("needs_epochs", "epochs"), ("needs_features", "features"),
                      ("uses_selection_pressure", "selection_pressure")):
        if getattr(cls, flag):
            protocol.add(arg)
    assert taken == protocol | set(cls.options)
    assert ("labels" in params) == cls.takes_labels


class _FirstHalf(ScoreRule):
    """A custom rule: samples whose index is in the first half, at full pressure."""

    def log_weights(self, loss, window, epoch, log_se):
        logw = torch.zeros(loss.numel(), dtype=torch.float64)
        logw[loss.numel() // 2:] = -log_se
        return logw


class _Recent(_FirstHalf):
    needs_window = True


def test_scheduled_sampler_takes_any_score_rule():
    y, _ = data()
    s = ScheduledSampler(y, B, score_rule=_FirstHalf(), selection_pressure=1e6, selection_pressure_end=None,
                         warmup_epochs=0, epochs=5, seed=1)
    assert not s.needs_predictions
    drawn = torch.tensor([i for batch in s for i in batch])
    assert (drawn < N // 2).float().mean() > 0.9     # s_e = 1e6: almost only the preferred half
    t = ScheduledSampler(y, B, score_rule=_Recent(), window=3, selection_pressure=2, selection_pressure_end=None)
    assert t.needs_predictions                       # the rule's need decides for a directly built sampler
    with pytest.raises(ValueError, match="needs window="):
        ScheduledSampler(y, B, score_rule=_Recent(), selection_pressure=2, selection_pressure_end=None)
    with pytest.raises(ValueError, match="leave window=None"):
        ScheduledSampler(y, B, score_rule=_FirstHalf(), window=3, selection_pressure=2, selection_pressure_end=None)
    with pytest.raises(TypeError, match="ScoreRule"):
        ScheduledSampler(y, B, score_rule="loss", selection_pressure=2, selection_pressure_end=None)


def test_d2ace_resumes_states_written_before_rules_were_objects():
    y, x = data()
    s = D2ACEBatchSampler(y, B, features=x, warmup_epochs=0, epochs=5)
    s.update(torch.arange(N), torch.full((N,), 0.5), probabilities=torch.full((N, Q), 0.3))
    state = s.state_dict()
    state["extra"] = state.pop("score_rule")          # the key of states written by earlier versions
    t = D2ACEBatchSampler(y, B, features=x, warmup_epochs=0, epochs=5)
    t.load_state_dict(state)
    torch.testing.assert_close(t.score_rule.hardness(), s.score_rule.hardness())
    del state["extra"]["flip"]
    with pytest.raises(ValueError, match="lacks 'flip'"):
        t.load_state_dict(state)
