"""How much two processes gain over one on this machine: the ceiling for a 2-worker grid.

Runs the same single-threaded torch loop (4000 matmuls of 256 x 256 with tanh) alone, then
twice at once in separate processes, and prints the wall times and the implied speed-up.

Usage::

    python benchmarks/bench_cores.py
"""

from __future__ import annotations

import multiprocessing as mp
import time


def loop(_=None) -> float:
    import torch

    torch.set_num_threads(1)
    a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    for _ in range(4000):
        a = torch.tanh(a @ a * 0.01)
    return time.perf_counter() - t0


def main() -> None:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        alone = pool.map(loop, [0])[0]
    with ctx.Pool(2) as pool:
        pair = pool.map(loop, [0, 1])
    print(f"alone {alone:.2f} s; two at once {pair[0]:.2f} s and {pair[1]:.2f} s; "
          f"throughput of two processes = {2 * alone / max(pair):.2f}x one")


if __name__ == "__main__":
    main()
