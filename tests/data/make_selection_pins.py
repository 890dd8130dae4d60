"""Seeded draw plans of every batch sampler, hashed: the pins of ``tests/test_selection_pinned.py``.

Run ``python tests/data/make_selection_pins.py`` to (re)write ``selection_pins.json``; only do so
when a change of the samplers' draws is intended. Each configuration builds a sampler on seeded
synthetic data, runs a few epochs (warm-up and selection) feeding seeded losses (rounded, so the
loss table has ties) and predicted probabilities, takes a ``state_dict`` in the middle of one epoch
and finishes that epoch on a restored copy, and records the sha256 of every batch (exact) and a
few summary values of ``probabilities()`` at every epoch start and at the end (compared with a
tolerance: a reported distribution may move in its last bits, e.g. the balanced sampler's matrix
product goes through the BLAS of the machine).

The draws themselves are the same on every machine (docs/selection.md, "The same draws on every
machine"): the data below come from uniform variates only (``torch.randn`` differs between CPU
capabilities) and ``python tests/data/make_selection_pins.py --print`` writes the plans as JSON
to stdout, which the pin tests run under several CPU settings. ``recorded_from`` is the commit
whose code the pins come from.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import torch

from mlabs.selection import (
    ActiveBiasSampler,
    AdaptiveBatchSampler,
    BalancedBatchSampler,
    ChainBatchSampler,
    D2ACEBatchSampler,
    OnlineBatchSampler,
    RandomBatchSampler,
    RecencyBiasSampler,
    UncertaintyBatchSampler,
)

PINS = Path(__file__).with_name("selection_pins.json")
EPOCHS = 3
WARMUP = 1


def data(n: int, q: int, d: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    rates = 0.4 * torch.arange(1, q + 1, dtype=torch.float64) ** -1.0
    y = torch.rand((n, q), generator=g, dtype=torch.float64) < rates
    x = torch.rand((n, d), generator=g) * 2.0 - 1.0        # uniform: randn depends on the CPU capability
    return y, x


def configs():
    y3k, x3k = data(3000, 8)
    y6k, _ = data(6000, 10, seed=1)
    y50k, _ = data(50000, 12, seed=2)
    y200k, _ = data(200000, 6, seed=3)
    c = {"random_3000": lambda: RandomBatchSampler(3000, 256, seed=3)}
    for name, y, b, feats in (("3000", y3k, 256, x3k), ("50000", y50k, 512, None), ("200000", y200k, 1024, None)):
        for se in (2.0, 16.0):
            for quantize in (True, False):
                c[f"adaptive_{name}_se{se:g}_q{int(quantize)}"] = (
                    lambda y=y, b=b, se=se, quantize=quantize, feats=feats: AdaptiveBatchSampler(
                        y, b, selection_pressure=se, quantize=quantize, warmup_epochs=WARMUP, features=feats,
                        seed=5))
    c["adaptive_6000_refresh"] = lambda: AdaptiveBatchSampler(y6k, 64, selection_pressure=3.0,
                                                               refresh_every=50, warmup_epochs=WARMUP, seed=6)
    # the imbalance weights (a kNN pass at every construction) on the small chain configuration
    # only: the pins also run in subprocesses (tests/test_selection_pinned.py), and time counts
    for se in (2.0, 16.0):
        for choice in ("argmax", "sample"):
            c[f"chain_6000_se{se:g}_{choice}"] = (
                lambda se=se, choice=choice: ChainBatchSampler(
                    y6k, 64, selection_pressure=se, label_choice=choice, chain_length=4,
                    warmup_epochs=WARMUP, seed=7))
    c["chain_3000_exactranks"] = lambda: ChainBatchSampler(y3k, 128, selection_pressure=2.0, quantize=False,
                                                           features=x3k, warmup_epochs=WARMUP, seed=8)
    c["online_batch"] = lambda: OnlineBatchSampler(y6k, 64, recompute_every=1, warmup_epochs=WARMUP,
                                                   epochs=EPOCHS, seed=9)
    c["active_bias"] = lambda: ActiveBiasSampler(y3k, 64, warmup_epochs=WARMUP, epochs=EPOCHS, seed=10)
    c["recency_bias"] = lambda: RecencyBiasSampler(y3k, 64, warmup_epochs=WARMUP, epochs=EPOCHS, seed=11)
    c["balanced"] = lambda: BalancedBatchSampler(y6k, 64, warmup_epochs=WARMUP, seed=12)
    c["uncertainty"] = lambda: UncertaintyBatchSampler(y3k, 64, bin_from_epoch=2, warmup_epochs=WARMUP,
                                                       epochs=EPOCHS, seed=13)
    c["d2ace"] = lambda: D2ACEBatchSampler(y3k, 64, features=x3k, warmup_epochs=WARMUP, epochs=EPOCHS, seed=14)
    return c


def summary(p: torch.Tensor) -> list[float]:
    """A few values of a probability vector that a change of the distribution moves: its largest
    and smallest entries, its mean index (a shift of mass) and the entries at 8 fixed positions."""
    p = p.detach().to(torch.float64).cpu()
    n = p.numel()
    at = torch.linspace(0, n - 1, 8).round().to(torch.int64)
    mean_index = float((p * torch.arange(n, dtype=torch.float64)).sum()) / n
    return [float(p.max()), float(p.min()), mean_index] + p[at].tolist()


def run(make) -> dict:
    """A seeded run of the sampler ``make()``: sha256 of its batches, summaries of its probabilities."""
    sampler = make()
    h = hashlib.sha256()
    probs = []
    g = torch.Generator().manual_seed(123)
    n = sampler.n_samples
    q = getattr(sampler, "n_labels", 1)
    probs_needed = getattr(sampler, "needs_predictions", False)

    def feed(s, idx):
        t = torch.as_tensor(idx)
        loss = torch.round(torch.rand(t.numel(), generator=g, dtype=torch.float64) * 20) / 10   # ties
        probs = torch.rand((t.numel(), q), generator=g) if probs_needed else None
        s.update(t, loss, probabilities=probs)

    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        if getattr(sampler, "recompute_due", lambda e: False)(epoch):
            feed(sampler, torch.arange(n))
        probs.append(summary(sampler.probabilities()))
        it = iter(sampler)
        nb = len(sampler)
        for i, batch in enumerate(it):
            h.update(torch.tensor(batch, dtype=torch.int64).numpy().tobytes())
            feed(sampler, batch)
            if epoch == EPOCHS - 2 and i == nb // 2:
                # resume mid-epoch on a copy: the copy finishes this epoch, the original continues
                copy = make()
                copy.load_state_dict(sampler.state_dict())
                h.update(b"resume")
                for rest in copy:
                    h.update(torch.tensor(rest, dtype=torch.int64).numpy().tobytes())
                h.update(b"original")
    probs.append(summary(sampler.probabilities()))
    return {"batches": h.hexdigest(), "probabilities": probs}


def pins() -> dict[str, dict]:
    torch.set_num_threads(1)
    return {name: run(make) for name, make in configs().items()}


if __name__ == "__main__":
    if sys.argv[1:] == ["--print"]:
        json.dump(pins(), sys.stdout)
    else:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        PINS.write_text(json.dumps({"recorded_from": commit, "plans": pins()}, indent=1, sort_keys=True) + "\n")
        print(f"wrote {PINS}")
