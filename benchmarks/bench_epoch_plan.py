"""Minimum time of one post-warm-up epoch plan (refresh + all batches) at N = 1e6, one thread.

The minimum of 7 plans is steadier than a median on a shared machine; to compare two versions of
the code, run this with each on ``PYTHONPATH`` in turn, alternating, in one session:

    PYTHONPATH=src python benchmarks/bench_epoch_plan.py

Data as ``bench_selection.py``: q = 100 labels, label j positive with probability 0.3 j^-1.2,
losses ~ Gamma(2, 2), s_e = 2, B = 128, chain length 4, no imbalance weights.
"""

from __future__ import annotations

import time

import torch

from mlabs.selection import AdaptiveBatchSampler, ChainBatchSampler


def main(n: int = 10**6, q: int = 100, b: int = 128, repeats: int = 7) -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    y = torch.rand((n, q), generator=g, dtype=torch.float64) < 0.3 * torch.arange(1, q + 1, dtype=torch.float64) ** -1.2
    loss = torch.distributions.Gamma(2.0, 2.0).sample((n,)).double()
    out = []
    for cls in (AdaptiveBatchSampler, ChainBatchSampler):
        s = cls(y, b, selection_pressure=2.0, warmup_epochs=0, seed=0)
        s.update(torch.arange(n), loss)
        times = []
        for epoch in range(repeats):
            s.set_epoch(epoch)
            start = time.perf_counter()
            s._selection_plan(len(s))
            times.append(time.perf_counter() - start)
        out.append(f"{cls.__name__} {min(times) * 1e3:.1f} ms")
    print(f"N = {n:.0e}, min of {repeats} epoch plans: " + ", ".join(out))


if __name__ == "__main__":
    main()
