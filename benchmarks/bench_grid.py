"""Scale-out benchmark: the same small grid with local n_jobs=1, local n_jobs=2 and Ray.

Prints the wall time of each executor, its speed-up over n_jobs=1 (measured in this run) and
whether the metrics of every cell are identical across executors. It then measures the ceiling
of that speed-up for this workload on this machine: one training cell alone in a process
against two copies of it at once in two processes (``--no-ceiling`` skips this), because two
training processes on two cores share caches and memory bandwidth and each runs slower than
alone.

Usage::

    python benchmarks/bench_grid.py                    # yeast, dela + c2ae, 2 methods, 2 folds
    python benchmarks/bench_grid.py --epochs 15
    python benchmarks/bench_grid.py --dataset emotions --epochs 4 --no-ray

Before the timings, one warm-up is trained untimed in this process, so that one-time costs of
this process (imports torch makes on first use) do not count against whichever executor runs
first.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

from mlabs.data import load_dataset, prepare, save_prepared
from mlabs.grid import GridSpec, _execute, run_grid
from mlabs.training import Cell, TrainConfig


def _timed_cell(cell: Cell, spec: GridSpec, barrier, queue) -> None:
    """In a fresh process: train the cell's warm-up untimed, wait for the others, time the cell."""
    _execute(cell, spec, True)
    barrier.wait()
    t0 = time.perf_counter()
    result = _execute(cell, spec, False)
    queue.put((time.perf_counter() - t0, result.get("status")))


def ceiling(cell: Cell, spec: GridSpec, copies: int) -> list[float]:
    """Seconds of ``copies`` simultaneous runs of ``cell``, each in its own spawned process."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(copies), ctx.Queue()
    procs = []
    for i in range(copies):
        own = GridSpec(spec.prepared_dir, f"{spec.warmup_root}-{copies}-{i}", f"{spec.out_root}-{copies}-{i}",
                       spec.config)
        procs.append(ctx.Process(target=_timed_cell, args=(cell, own, barrier, queue)))
    for p in procs:
        p.start()
    out = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    if any(status != "ok" for _, status in out):
        raise RuntimeError(f"the ceiling cell failed: {out}")
    return [s for s, _ in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="yeast")
    ap.add_argument("--models", nargs="+", default=["dela", "c2ae"])
    ap.add_argument("--methods", nargs="+", default=["random", "adaptive"])
    ap.add_argument("--folds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--no-ceiling", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        save_prepared(prepare(load_dataset(args.dataset), seed=0), root / "prepared" / f"{args.dataset}.npz")
        cells = [Cell(args.dataset, m, meth, f) for m in args.models for meth in args.methods for f in args.folds]
        config = TrainConfig(epochs=args.epochs, warmup_epochs=3)
        _execute(cells[0], GridSpec(str(root / "prepared"), str(root / "untimed"), str(root / "untimed-runs"),
                                    config), True)
        runs = [("local n_jobs=1", dict(executor="local", n_jobs=1)),
                ("local n_jobs=2", dict(executor="local", n_jobs=2))]
        if not args.no_ray:
            try:
                import ray
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                runs.append(("ray (local, 2 CPUs)", dict(executor="ray")))
            except ImportError:
                print("ray not installed (pip install -e '.[ray]'): skipping the ray executor")
        timings, metrics = {}, {}
        for name, kw in runs:
            spec = GridSpec(str(root / "prepared"), str(root / name / "warmup"), str(root / name / "runs"), config)
            t0 = time.perf_counter()
            results = run_grid(cells, spec, progress=False, **kw)
            timings[name] = time.perf_counter() - t0
            metrics[name] = {tuple(sorted(r["cell"].items())): r.get("test") for r in results}
        base = timings[runs[0][0]]
        print(f"grid: {len(cells)} cells ({args.dataset}; {', '.join(args.models)}; {', '.join(args.methods)}; "
              f"folds {args.folds}; {args.epochs} epochs incl. 3 warm-up) plus {len(args.models) * len(args.folds)} warm-ups")
        print(f"{'executor':24s} {'wall s':>8s} {'speed-up vs n_jobs=1':>22s} {'identical metrics':>18s}")
        ref = metrics[runs[0][0]]
        for name, _ in runs:
            print(f"{name:24s} {timings[name]:8.1f} {base / timings[name]:22.2f} {str(metrics[name] == ref):>18s}")
        if not args.no_ceiling:
            cell = cells[0]
            spec = GridSpec(str(root / "prepared"), str(root / "ceiling" / "warmup"), str(root / "ceiling" / "runs"),
                            config)
            alone = ceiling(cell, spec, 1)[0]
            pair = ceiling(cell, spec, 2)
            print(f"ceiling ({cell.model}/{cell.method} cell, {args.epochs - 3} epochs after warm-up): alone "
                  f"{alone:.1f} s, two at once {pair[0]:.1f} s and {pair[1]:.1f} s: two processes do "
                  f"{2 * alone / max(pair):.2f}x the work of one")


if __name__ == "__main__":
    main()
