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
    """Run one cell (or only its warm-up) in the current process, on one torch thread.

    The thread count changes the order of floating-point reductions, so every executor runs
    cells single-threaded: that is what makes their metrics identical.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _execute_cell(cell, spec, warmup_only)
    finally:
        torch.set_num_threads(threads)


def _execute_cell(cell: Cell, spec: GridSpec, warmup_only: bool) -> dict:
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
    """Finished under the current settings (a changed setting makes a cell or warm-up stale)."""
    if warmup_only:
        path = warmup_path(spec.warmup_root, cell)
        if not path.exists():
            return False
        import torch
        meta = torch.load(path, map_location="cpu", weights_only=True).get("meta", {})
        return meta.get("config") == spec.config.warmup_fingerprint(cell.model)
    res = load_result(cell_dir(spec.out_root, cell))
    return (res is not None and res.get("status") == "ok"
            and res.get("fingerprint") == spec.config.fingerprint(cell.model))


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

    def execute(todo, wu, total):
        desc = "warm-ups" if wu else "cells"
        if executor == "local":
            return _run_local(todo, spec, wu, n_jobs, progress, desc, total)
        return _run_ray(todo, spec, wu, address, cpus_per_cell, gpus_per_cell, progress, desc, total)

    warmups = _unique_warmups(cells)
    warm_results = execute([c for c in warmups if not _is_done(c, spec, True)], True, len(warmups))
    warm_failed = {Cell(**r["cell"]).warmup_key: r["error"] for r in warm_results if r["status"] != "ok"}
    if warmup_only:
        _summarise(warm_results, progress)
        return warm_results

    # a cell whose warm-up failed fails with it, once, without running
    results = [{"status": "failed", "cell": dict(c.__dict__), "error": f"warm-up failed: {warm_failed[c.warmup_key]}"}
               for c in cells if c.warmup_key in warm_failed]
    runnable = [c for c in cells if c.warmup_key not in warm_failed]
    todo = [c for c in runnable if not _is_done(c, spec, False)]
    results += execute(todo, False, len(runnable))
    for c in runnable:  # cells finished in an earlier run
        if c not in todo:
            results.append(load_result(cell_dir(spec.out_root, c)))
    _summarise(results, progress)
    return results


def _bar(total: int, done: int, desc: str, progress: bool):
    from tqdm import tqdm  # plain text bars: also readable in executed notebooks
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


def _files_under(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in root.rglob("*") if f.is_file()}


def _execute_portable(cell: Cell, spec: GridSpec, wu: bool, prepared: bytes,
                      warmup: bytes | None) -> tuple[dict, dict[str, bytes], dict[str, bytes]]:
    """Run a cell in a private folder and return its result and the files it wrote.

    Used by the Ray executor: a worker on another machine shares no file system with the
    driver, so inputs arrive as bytes and outputs go back as bytes, and the driver writes
    them under the roots that DVC tracks.
    """
    import dataclasses
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlabs-") as tmp:
        root = Path(tmp)
        (root / "prepared").mkdir()
        (root / "prepared" / f"{cell.dataset}.npz").write_bytes(prepared)
        local = dataclasses.replace(spec, prepared_dir=str(root / "prepared"),
                                    warmup_root=str(root / "warmup"), out_root=str(root / "runs"))
        if warmup is not None:
            target = warmup_path(local.warmup_root, cell)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(warmup)
        result = _execute(cell, local, wu)
        warm_files = _files_under(root / "warmup") if wu else {}
        run_files = {} if wu else _files_under(root / "runs")
        _prepared.cache_clear()
        _split.cache_clear()
    return result, warm_files, run_files


def _write_back(files: dict[str, bytes], root: str) -> None:
    from ._io import atomic_path
    for rel, data in files.items():
        with atomic_path(Path(root) / rel) as tmp:
            tmp.write_bytes(data)


def _run_ray(todo, spec, wu, address, cpus, gpus, progress, desc, total) -> list[dict]:
    try:
        import ray
    except ImportError as exc:  # optional extra
        raise ImportError("the ray executor needs Ray: pip install -e '.[ray]'") from exc
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True)

    @ray.remote(num_cpus=cpus, num_gpus=gpus)
    def remote_execute(cell, spec, wu, prepared, warmup):
        _limit_threads()
        return _execute_portable(cell, spec, wu, prepared, warmup)

    # inputs go to the object store once per data set / warm-up, not once per cell
    prepared = {ds: ray.put((Path(spec.prepared_dir) / f"{ds}.npz").read_bytes())
                for ds in sorted({c.dataset for c in todo})}
    warm_refs: dict[tuple, object] = {}
    if not wu:
        for c in todo:
            path = warmup_path(spec.warmup_root, c)
            if c.warmup_key not in warm_refs and path.exists():
                warm_refs[c.warmup_key] = ray.put(path.read_bytes())
    bar = _bar(total, total - len(todo), desc, progress)
    pending = {remote_execute.remote(c, spec, wu, prepared[c.dataset], warm_refs.get(c.warmup_key)): c
               for c in todo}
    results = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        cell = pending.pop(ready[0])
        try:
            result, warm_files, run_files = ray.get(ready[0])
            _write_back(warm_files, spec.warmup_root)
            _write_back(run_files, spec.out_root)
        except Exception as exc:  # a lost worker or task is reported like a failed cell
            result = {"status": "failed", "cell": cell.__dict__, "error": f"{type(exc).__name__}: {exc}"}
        results.append(result)
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
