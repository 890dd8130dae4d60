"""Seeded draw plans of every batch sampler, hashed: the pins of ``tests/test_selection_pinned.py``.

Run ``python tests/data/make_selection_pins.py`` to (re)write ``selection_pins.json``; only do so
when a change of the samplers' draws is intended. Each configuration builds a sampler on seeded
synthetic data, runs a few epochs (warm-up and selection) feeding seeded losses (rounded, so the
loss table has ties) and predicted probabilities, takes a ``state_dict`` in the middle of one epoch
and finishes that epoch on a restored copy, and hashes every batch and the probabilities.

The draws depend on the machine's floating-point kernels: the key ``kernels`` records
:func:`kernel_probe.kernel_probe` of the machine that wrote the pins (see ``kernel_probe.py``),
``recorded_from`` the commit whose code they come from.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import torch
from kernel_probe import kernel_probe  # tests/data is on sys.path (the script's folder; conftest)

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
    x = torch.randn((n, d), generator=g)
    return y, x


def configs():
    y3k, x3k = data(3000, 8)
    y6k, x6k = data(6000, 10, seed=1)
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
    c["adaptive_6000_refresh"] = lambda: AdaptiveBatchSampler(y6k, 64, selection_pressure=3.0, features=x6k,
                                                               refresh_every=50, warmup_epochs=WARMUP, seed=6)
    for se in (2.0, 16.0):
        for choice in ("argmax", "sample"):
            c[f"chain_6000_se{se:g}_{choice}"] = (
                lambda se=se, choice=choice: ChainBatchSampler(
                    y6k, 64, selection_pressure=se, label_choice=choice, chain_length=4, features=x6k,
                    warmup_epochs=WARMUP, seed=7))
    c["chain_3000_exactranks"] = lambda: ChainBatchSampler(y3k, 128, selection_pressure=2.0, quantize=False,
                                                           warmup_epochs=WARMUP, seed=8)
    c["online_batch"] = lambda: OnlineBatchSampler(y6k, 64, recompute_every=1, warmup_epochs=WARMUP,
                                                   epochs=EPOCHS, seed=9)
    c["active_bias"] = lambda: ActiveBiasSampler(y3k, 64, warmup_epochs=WARMUP, epochs=EPOCHS, seed=10)
    c["recency_bias"] = lambda: RecencyBiasSampler(y3k, 64, warmup_epochs=WARMUP, epochs=EPOCHS, seed=11)
    c["balanced"] = lambda: BalancedBatchSampler(y6k, 64, warmup_epochs=WARMUP, seed=12)
    c["uncertainty"] = lambda: UncertaintyBatchSampler(y3k, 64, bin_from_epoch=2, warmup_epochs=WARMUP,
                                                       epochs=EPOCHS, seed=13)
    c["d2ace"] = lambda: D2ACEBatchSampler(y3k, 64, features=x3k, warmup_epochs=WARMUP, epochs=EPOCHS, seed=14)
    return c


def run(make) -> str:
    """sha256 of every batch and probability vector of a seeded run of the sampler ``make()``."""
    sampler = make()
    h = hashlib.sha256()
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
        h.update(sampler.probabilities().numpy().tobytes())
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
    h.update(sampler.probabilities().numpy().tobytes())
    return h.hexdigest()


def pins() -> dict[str, str]:
    torch.set_num_threads(1)
    return {name: run(make) for name, make in configs().items()}


if __name__ == "__main__":
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {"kernels": kernel_probe(), "recorded_from": commit, "plans": pins()}
    PINS.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINS}")
