"""Run many cells of the experiment grid on whatever hardware is available.

Cells are independent, so the runner farms them out through a pluggable
executor:

``local`` (default)
    A process pool over the machine's cores, one torch thread per worker so
    that two runs do not fight over the same cores.
``ray``
    Ray tasks on a local Ray instance or an existing cluster (``address`` or
    the ``RAY_ADDRESS`` environment variable), each with its own CPU and
    (fractional) GPU request. Needs ``pip install -e .[ray]``.

A cell's outcome depends only on its parameters and seed, so every executor
gives the same metrics. Results travel as files under the output roots that
DVC tracks; finished cells are skipped, failed cells are reported with their
parameters and do not stop the others.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .training import Cell, TrainConfig, cell_dir, load_result, run_cell, run_warmup, warmup_path

__all__ = ["GridSpec", "run_grid", "EXECUTORS"]

EXECUTORS = ("local", "ray")


@dataclass
class GridSpec:
    """Where the grid's inputs and outputs live.

    Parameters
    ----------
    prepared_dir : path
        Folder with ``<dataset>.npz`` files written by the prepare stage.
    warmup_root, out_root : path
        Roots of the warm-up checkpoints and of the cell results.
    config : TrainConfig
    """

    prepared_dir: str
    warmup_root: str
    out_root: str
    config: TrainConfig = field(default_factory=TrainConfig)


@functools.lru_cache(maxsize=4)
def _prepared(path: str):
    from .data import load_prepared
    return load_prepared(path)


@functools.lru_cache(maxsize=8)
def _split(path: str, fold: int):
    from .data import fold_split
    return fold_split(_prepared(path), fold)


def _limit_threads() -> None:
    import torch
    torch.set_num_threads(1)


def _execute(cell: Cell, spec: GridSpec, warmup_only: bool) -> dict:
    """Run one cell (or only its warm-up) in the current process."""
    path = str(Path(spec.prepared_dir) / f"{cell.dataset}.npz")
    try:
        split = _split(path, cell.fold)
        if warmup_only:
            run_warmup(cell, split, spec.config, spec.warmup_root, progress=False)
            return {"status": "ok", "cell": cell.__dict__}
    except Exception as exc:  # reported, never fatal for the rest of the grid
        return {"status": "failed", "cell": cell.__dict__, "error": f"{type(exc).__name__}: {exc}"}
    return run_cell(cell, split, spec.config, spec.warmup_root, spec.out_root, progress=False)


def _worker_init() -> None:
    _limit_threads()


def _is_done(cell: Cell, spec: GridSpec, warmup_only: bool) -> bool:
    if warmup_only:
        return warmup_path(spec.warmup_root, cell).exists()
    res = load_result(cell_dir(spec.out_root, cell))
    return res is not None and res.get("status") == "ok"


def _unique_warmups(cells: Iterable[Cell]) -> list[Cell]:
    seen, out = set(), []
    for c in cells:
        if c.warmup_key not in seen:
            seen.add(c.warmup_key)
            out.append(c)
    return out


def run_grid(cells: Sequence[Cell], spec: GridSpec, *, executor: str = "local",
             n_jobs: int | None = None, address: str | None = None, cpus_per_cell: float = 1,
             gpus_per_cell: float = 0, warmup_only: bool = False, progress: bool = True) -> list[dict]:
    """Run ``cells`` and return their results (finished ones are read back).

    Warm-ups are trained first (once per warm-up key), then the cells, so that
    no two workers train the same warm-up.

    Parameters
    ----------
    cells : sequence of Cell
    spec : GridSpec
    executor : {"local", "ray"}
    n_jobs : int, optional
        Worker processes of the local executor (default: all cores).
    address : str, optional
        Ray cluster address (default: ``RAY_ADDRESS`` or a new local instance).
    cpus_per_cell, gpus_per_cell : float
        Ray resource requests per cell (``gpus_per_cell=0.25`` packs four cells on a GPU).
    warmup_only : bool
        Only train the warm-up checkpoints.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    cells = list(cells)
    results: list[dict] = []
    phases = [(_unique_warmups(cells), True)]
    if not warmup_only:
        phases.append((cells, False))
    for phase_cells, wu in phases:
        todo = [c for c in phase_cells if not _is_done(c, spec, wu)]
        desc = "warm-ups" if wu else "cells"
        if executor == "local":
            out = _run_local(todo, spec, wu, n_jobs, progress, desc, len(phase_cells))
        else:
            out = _run_ray(todo, spec, wu, address, cpus_per_cell, gpus_per_cell, progress, desc,
                           len(phase_cells))
        if wu and not warmup_only:
            failed = [r for r in out if r.get("status") != "ok"]
            results.extend(failed)
        else:
            results.extend(out)
    if not warmup_only:
        done_now = {tuple(sorted(r["cell"].items())) for r in results}
        for c in cells:
            if tuple(sorted(c.__dict__.items())) not in done_now:
                res = load_result(cell_dir(spec.out_root, c))
                if res is not None:
                    results.append(res)
    _summarise(results, progress)
    return results


def _bar(total: int, done: int, desc: str, progress: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=done, desc=desc, unit="cell", dynamic_ncols=True,
                disable=not progress or bool(os.environ.get("MLABS_QUIET")))


def _run_local(todo, spec, wu, n_jobs, progress, desc, total) -> list[dict]:
    n_jobs = n_jobs or os.cpu_count() or 1
    bar = _bar(total, total - len(todo), desc, progress)
    results = []
    if n_jobs == 1 or len(todo) <= 1:
        for cell in todo:
            results.append(_execute(cell, spec, wu))
            bar.update(1)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        # spawn, not fork: torch's thread pools do not survive a fork safely
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(_execute, cell, spec, wu) for cell in todo]
            for fut in as_completed(futures):
                results.append(fut.result())
                bar.update(1)
    bar.close()
    return results


def _run_ray(todo, spec, wu, address, cpus, gpus, progress, desc, total) -> list[dict]:
    try:
        import ray
    except ImportError as exc:  # optional extra
        raise ImportError("the ray executor needs Ray: pip install -e '.[ray]'") from exc
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True)

    @ray.remote(num_cpus=cpus, num_gpus=gpus)
    def remote_execute(cell, spec, wu):
        _limit_threads()
        return _execute(cell, spec, wu)

    bar = _bar(total, total - len(todo), desc, progress)
    pending = [remote_execute.remote(c, spec, wu) for c in todo]
    results = []
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        results.append(ray.get(ready[0]))
        bar.update(1)
    bar.close()
    return results


def _summarise(results: list[dict], progress: bool) -> None:
    failed = [r for r in results if r.get("status") != "ok"]
    if failed and progress is not None:
        lines = [f"{len(failed)} of {len(results)} cells failed:"]
        for r in failed:
            c = r.get("cell", {})
            lines.append(f"  {c.get('dataset')}/{c.get('model')}/{c.get('method')} fold {c.get('fold')}"
                         f" seed {c.get('seed')}: {r.get('error')}")
        print("\n".join(lines))
