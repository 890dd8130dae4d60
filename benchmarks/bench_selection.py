"""Benchmark of mlabs.selection: per-epoch selection cost against torch.randperm, and the kNN weights.

Usage::

    python benchmarks/bench_selection.py                 # N = 1e4, 1e5, 1e6, 1e7 + tmc2007-500
    python benchmarks/bench_selection.py --quick         # N = 1e4, 1e5, one repeat, no kNN
    python benchmarks/bench_selection.py --sizes 1e5 1e6 --repeats 5 --no-knn

What is timed (median of ``--repeats`` runs, all in the same process, after one warm-up run):

* ``randperm``: ``torch.randperm(N)``, the cost of one shuffled (random) epoch's index work.
* ``draw``: the selection work of one post-warm-up epoch: recompute the probabilities from the
  whole loss table (refresh) and draw all ceil(N/B) batches as one index tensor. Within each
  repeat randperm, the adaptive draw and the chain draw run in turn; the ratio printed is the
  median of the per-repeat ratios (times: medians).
* ``iter``: the same epoch through the public iterator, including the conversion of the
  batches to Python lists that the DataLoader receives.
* ``update``: one ``sampler.update(idx, loss)`` call for a batch of B = 128 (validation included;
  per-batch cost, not included in ``draw``/``iter``).

``--others``: the same ``draw`` timing (refresh, i.e. scoring from the histories, + drawing one
post-warm-up epoch) and the per-batch ``update`` (with the batch's predicted probabilities) for
the other methods of ``docs/selection.md``, after the histories have been filled with 5 epochs of
synthetic predictions; default sizes 1e4, 1e5, 1e6 (d2ace only up to 1e5: its exact kNN
construction is O(N^2)).

Synthetic labels: q = 100 labels with a power-law skew (label j positive with probability
0.3 * j^-1.2, about 1.2 labels per sample), losses ~ Gamma(2, 2), s_e = 2, B = 128, chain length 4.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mlabs.selection import (
    AdaptiveBatchSampler,
    ChainBatchSampler,
    imbalance_weights,
    knn_chunk_size,
    make_sampler,
)

OTHERS = ("online_batch", "active_bias", "recency_bias", "balanced", "uncertainty", "d2ace")
#: exact kNN is O(N^2): beyond this the d2ace sampler is not built
_D2ACE_MAX_N = 10**5


def synthetic_labels(n: int, q: int = 100, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y = torch.zeros((n, q), dtype=torch.bool)
    for j in range(q):
        y[:, j] = torch.rand(n, generator=g) < 0.3 * (j + 1) ** -1.2
    return y


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, kernels)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_size(n: int, repeats: int, batch_size: int = 128) -> dict:
    y = synthetic_labels(n)
    losses = torch.distributions.Gamma(2.0, 2.0).sample((n,)).double()
    row = {"N": n}
    samplers = {}
    for name, cls in (("adaptive", AdaptiveBatchSampler), ("chain", ChainBatchSampler)):
        s = cls(y, batch_size, warmup_epochs=0, selection_pressure=2.0, seed=0)
        s.update(torch.arange(n), losses)
        s.set_epoch(0)
        samplers[name] = s
    nb = len(samplers["adaptive"])
    # draw: refresh + all batches of one epoch (private entry point of the iterator). randperm and
    # the draws are timed in turn within each repeat and the ratio is the median of the per-repeat
    # ratios: the speed of this machine drifts between runs and within one (randperm alone varied
    # from 6 to 11 ms at N = 1e6), so a ratio of medians taken minutes apart would mix two states.
    fns = {"randperm": lambda: torch.randperm(n)}
    fns.update({f"{name}_draw": (lambda s=s: s._draw_plan(nb)) for name, s in samplers.items()})
    for fn in fns.values():
        fn()  # warm-up (allocations, kernels)
    times = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    for key, values in times.items():
        row[key] = statistics.median(values)
    for name in samplers:
        row[f"{name}_ratio"] = statistics.median(d / r for d, r in zip(times[f"{name}_draw"], times["randperm"]))
    for name, s in samplers.items():
        row[f"{name}_iter"] = timed(lambda: sum(1 for _ in s), max(1, repeats // 2))
        idx = torch.randperm(n)[:batch_size]
        loss = torch.rand(batch_size)
        calls = 200
        row[f"{name}_update_us"] = timed(lambda: [s.update(idx, loss) for _ in range(calls)], 1) / calls * 1e6
    return row


def bench_others(n: int, repeats: int, batch_size: int = 128) -> dict:
    """Per-epoch selection cost of the other methods at N = n (ratio to randperm in the same run)."""
    y = synthetic_labels(n)
    q = y.shape[1]
    g = torch.Generator().manual_seed(1)
    row = {"N": n, "randperm": timed(lambda: torch.randperm(n), repeats)}
    x = torch.rand(n, 8, generator=g) if n <= _D2ACE_MAX_N else None
    for name in OTHERS:
        if name == "d2ace" and x is None:
            row[name] = None
            continue
        s = make_sampler(name, y, batch_size, features=x, warmup_epochs=0, epochs=100, seed=0)
        idx = torch.arange(n)
        for _ in range(5):  # fill the prediction histories
            s.update(idx, torch.rand(n, generator=g), probabilities=torch.rand(n, q, generator=g))
        s.set_epoch(1)
        nb = len(s)
        draw = timed(lambda: s._draw_plan(nb), repeats)
        b_idx = torch.randperm(n, generator=g)[:batch_size]
        b_loss, b_probs = torch.rand(batch_size, generator=g), torch.rand(batch_size, q, generator=g)
        calls = 100
        upd = timed(lambda: [s.update(b_idx, b_loss, probabilities=b_probs) for _ in range(calls)], 1) / calls
        row[name] = (draw, upd)
        del s
    return row


def print_others(sizes, repeats) -> None:
    print(f"\nOther methods: one post-warm-up epoch's scoring + drawing, ms (ratio to randperm); "
          f"update per batch of 128 in us. q = 100, B = 128, histories of 5 predictions")
    header = "| N | randperm ms | " + " | ".join(OTHERS) + " |"
    print(header)
    print("|" + "---|" * (len(OTHERS) + 2))
    for n in sizes:
        r = bench_others(n, repeats)
        rp = r["randperm"]
        cells = []
        for name in OTHERS:
            if r[name] is None:
                cells.append("not built (kNN O(N^2))")
            else:
                draw, upd = r[name]
                cells.append(f"{draw * 1e3:.1f} ({draw / rp:.1f}x), upd {upd * 1e6:.0f}")
        print(f"| {n:.0e} | {rp * 1e3:.2f} | " + " | ".join(cells) + " |", flush=True)


def bench_knn() -> None:
    from mlabs.data import load_dataset

    data = load_dataset("tmc2007-500")
    x, y = data.X, data.Y
    n = x.shape[0]
    print(f"\nimbalance_weights on tmc2007-500: N = {n}, d = {x.shape[1]} (sparse, nnz = {x.nnz}), "
          f"q = {y.shape[1]}, k = 5, chunk = {knn_chunk_size(n)} rows "
          f"(~{knn_chunk_size(n) * n * 40 / 2**20:.0f} MiB of distance temporaries), "
          f"{torch.get_num_threads()} threads")
    t0 = time.perf_counter()
    w = imbalance_weights(x, y, k=5)
    dt = time.perf_counter() - t0
    print(f"  time {dt:.1f} s; weights: mean {float(w.mean()):.4f}, max {float(w.max()):.4f}, "
          f"share > 1: {float((w > 1).double().mean()):.3f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", type=float, help="default 1e4 1e5 1e6 1e7 (--others: 1e4 1e5 1e6)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="N = 1e4, 1e5, one repeat, no kNN")
    ap.add_argument("--no-knn", action="store_true", help="skip the tmc2007-500 imbalance-weight timing")
    ap.add_argument("--others", action="store_true", help="only the other methods' table (sizes default 1e4-1e6)")
    args = ap.parse_args(argv)
    default = [1e4, 1e5, 1e6] if args.others else [1e4, 1e5, 1e6, 1e7]
    sizes = [10**4, 10**5] if args.quick else [int(s) for s in (args.sizes or default)]
    repeats = 1 if args.quick else args.repeats
    if args.others:
        print_others(sizes, max(1, min(repeats, 3)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B = 128, q = 100, s_e = 2, "
          f"median of {repeats} repeats (1e7: {max(1, min(repeats, 2))})")
    header = (f"| {'N':>9} | {'randperm ms':>11} | {'adaptive draw ms (x)':>21} | {'adaptive iter ms':>16} | "
              f"{'chain draw ms (x)':>18} | {'chain iter ms':>13} | {'update us':>9} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for n in sizes:
        r = bench_size(n, repeats if n < 10**7 else max(1, min(repeats, 2)))
        rp = r["randperm"]
        print(f"| {n:>9.0e} | {rp * 1e3:>11.2f} | {r['adaptive_draw'] * 1e3:>10.1f} ({r['adaptive_ratio']:>6.1f}x) | "
              f"{r['adaptive_iter'] * 1e3:>16.1f} | {r['chain_draw'] * 1e3:>9.1f} ({r['chain_ratio']:>5.1f}x) | "
              f"{r['chain_iter'] * 1e3:>13.1f} | {r['adaptive_update_us']:>9.0f} |", flush=True)
    if not (args.quick or args.no_knn):
        bench_knn()


if __name__ == "__main__":
    main()
