"""Run many cells of the experiment grid on whatever hardware is available.

Cells are independent, so the runner farms them out through a pluggable
executor:

``local`` (default)
    ``n_jobs`` slots over the machine's cores, one torch thread each so that
    two runs do not fight over the same cores: the calling process (a thread,
    ready at once) plus ``n_jobs - 1`` spawned worker processes. Queued cells
    go longest first, estimated from the tasks already finished.
``ray``
    Ray tasks on a local Ray instance or an existing cluster (``address`` or
    the ``RAY_ADDRESS`` environment variable), each with its own CPU and
    (fractional) GPU request. Needs ``pip install -e .[ray]``.

A cell's outcome depends only on its parameters and seed, so every executor
gives the same metrics. Finished cells go to the cell store (:mod:`mlabs.store`) when the
grid has one, else under the output root; finished cells are skipped, failed cells are
reported with their parameters and do not stop the others.
"""

from __future__ import annotations

import functools
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .cost import (cell_training_seconds, describe_elapsed, describe_estimate, epoch_seconds, estimate_seconds,
                   training_shape)
from .progress import progress_bar, progress_note
from .results import cell_dir, failed_result, is_done, load_result, load_timing, warmup_path
from .store import CellStore
from .training import Cell, TrainConfig, check_method_supports_model, check_selection_options, run_cell, run_warmup

__all__ = ["GridSpec", "run_grid", "manifest_entries", "stored_results", "EXECUTORS"]

EXECUTORS = ("local", "ray")


@dataclass
class GridSpec:
    """Where the grid's inputs and outputs live.

    Parameters
    ----------
    prepared_dir : path
        Folder with ``<dataset>.npz`` files written by the prepare stage.
    warmup_root, out_root : path
        Roots of the warm-up checkpoints and of the cell results (with a ``store``: of the
        resume checkpoints and failure records only).
    config : TrainConfig
    store : path, optional
        The cell store's folder (:class:`mlabs.store.CellStore`): finished cells are looked up
        and written there, one by one as they finish.
    """

    prepared_dir: str
    warmup_root: str
    out_root: str
    config: TrainConfig = field(default_factory=TrainConfig)
    store: str | None = None

    @property
    def cell_store(self) -> CellStore | None:
        return None if self.store is None else CellStore(self.store)

    def prepared_path(self, dataset: str) -> str:
        """The prepared file of ``dataset``."""
        return str(Path(self.prepared_dir) / f"{dataset}.npz")


@functools.lru_cache(maxsize=4)
def _prepared(path: str):
    from .data import load_prepared
    return load_prepared(path)


@functools.lru_cache(maxsize=8)
def _split(path: str, fold: int):
    from .data import fold_split
    return fold_split(_prepared(path), fold)


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
    path = spec.prepared_path(cell.dataset)
    try:
        split = _split(path, cell.fold)
        if warmup_only:
            run_warmup(cell, split, spec.config, spec.warmup_root, progress=False)
            return {"status": "ok", "cell": cell.__dict__}
    except Exception as exc:  # reported, never fatal for the rest of the grid
        return failed_result(cell.__dict__, exc)
    return run_cell(cell, split, spec.config, spec.warmup_root, spec.out_root, progress=False,
                    store=spec.cell_store)


def _fingerprint(cell: Cell, spec: GridSpec) -> str:
    """The cell's fingerprint under the current settings and its fold's data."""
    return spec.config.fingerprint(cell.model, cell.method, _digest(spec.prepared_path(cell.dataset), cell.fold))


def _is_done(cell: Cell, spec: GridSpec, warmup_only: bool) -> bool:
    """Finished under the current settings (a changed setting makes a cell or warm-up stale)."""
    if warmup_only:
        path = warmup_path(spec.warmup_root, cell)
        if not path.exists():
            return False
        import torch
        meta = torch.load(path, map_location="cpu", weights_only=True).get("meta", {})
        digest = _digest(spec.prepared_path(cell.dataset), cell.fold)
        return meta.get("config") == spec.config.warmup_fingerprint(cell.model, digest)
    if spec.store is not None:
        return spec.cell_store.has(CellStore.key(cell, _fingerprint(cell, spec)))
    result = load_result(_work_dir(cell, spec))
    if result is None or result.get("status") != "ok":
        return False
    return is_done(result, _fingerprint(cell, spec))


def _work_dir(cell: Cell, spec: GridSpec) -> Path:
    """The folder of ``cell`` under the output root: its resume checkpoint, and its result when
    there is no store."""
    return cell_dir(spec.out_root, cell, spec.config.selection)


def _result_dir(cell: Cell, spec: GridSpec) -> Path:
    """Where a finished cell's result lies: its folder in the store, or in the output root."""
    if spec.store is None:
        return _work_dir(cell, spec)
    return spec.cell_store.path(CellStore.key(cell, _fingerprint(cell, spec)))


def _stored(cell: Cell, spec: GridSpec) -> dict | None:
    """A finished cell's result read back (from the store, or from the output root)."""
    if spec.store is None:
        return load_result(_result_dir(cell, spec))
    return spec.cell_store.get(CellStore.key(cell, _fingerprint(cell, spec)))


def stored_results(cells: Sequence[Cell], spec: GridSpec) -> list[dict | None]:
    """The results of ``cells`` finished under the current settings, read back without training
    (None for a cell not finished), e.g. for a report of a profile still training."""
    return [_stored(c, spec) if _is_done(c, spec, False) else None for c in cells]


def manifest_entries(cells: Sequence[Cell], results: Sequence[dict], spec: GridSpec) -> list[dict]:
    """The manifest entries (:func:`mlabs.store.write_manifest`) of a grid run with a store:
    each cell's folder in the result tree, and its store key and digest, or its failure record."""
    if spec.store is None:
        raise ValueError("manifest_entries needs a grid with a cell store (GridSpec.store)")
    store, entries = spec.cell_store, []
    for cell, result in zip(cells, results):
        path = cell_dir(".", cell, spec.config.selection).as_posix()
        if result is not None and result.get("status") == "ok":
            key = CellStore.key(cell, result["fingerprint"])
            entries.append({"path": path, "key": key, "digest": store.digest(key)})
        else:
            entries.append({"path": path, "failed": result or failed_result(cell.__dict__, "no result")})
    return entries


@functools.lru_cache(maxsize=64)
def _digest(path: str, fold: int) -> str | None:
    """The fold's data digest, or None when the prepared file cannot be read (the cell reports why)."""
    try:
        return _split(path, fold).digest()
    except Exception:  # noqa: BLE001 - a missing or bad file is the cell's own error to report
        return None


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

    Every warm-up is trained once (per warm-up key) before the cells that continue from it;
    a cell starts as soon as its own warm-up is ready, on one pool (or Ray session) shared by
    warm-ups and cells, so no worker waits for unrelated warm-ups.

    Parameters
    ----------
    cells : sequence of Cell
    spec : GridSpec
    executor : {"local", "ray"}
    n_jobs : int, optional
        Slots of the local executor (default: all cores): this process plus ``n_jobs - 1``
        worker processes; 1 runs everything in this process.
    address : str, optional
        Ray cluster address (default: ``RAY_ADDRESS`` or a new local instance).
    cpus_per_cell, gpus_per_cell : float
        Ray resource requests per cell (``gpus_per_cell=0.25`` packs four cells on a GPU).
    warmup_only : bool
        Only train the warm-up checkpoints; the result has one entry per warm-up key
        (``status`` ok for those already trained).
    progress : bool
        Show what is left to train, with a time estimate, a progress bar and, at the end, the time
        it took against the estimate (to the runner's log under DVC, :mod:`mlabs.progress`), and
        print a closing line, "N cells finished, M failed", that is the same whether the cells were
        trained now or read back (not for ``warmup_only``).

    Returns
    -------
    list of dict
        One result per cell, in the order of ``cells`` (``status`` "ok" or "failed" with
        ``error``), or per warm-up with ``warmup_only``.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    check_selection_options(spec.config)   # at once, not in every cell after its warm-up
    cells = list(cells)
    for cell in {(c.model, c.method): c for c in cells}.values():
        check_method_supports_model(cell, spec.config)   # a weighting method needs a per-sample objective
    warmups = _unique_warmups(cells)
    cell_todo = [] if warmup_only else [c for c in cells if not _is_done(c, spec, False)]
    needed = {c.warmup_key for c in (cells if warmup_only else cell_todo)}
    warm_todo = [c for c in warmups if c.warmup_key in needed and not _is_done(c, spec, True)]
    check_settings(cell_todo + warm_todo, spec.config)   # only what will train (settings are in the fingerprints)
    total = len(warmups) if warmup_only else len(cells)
    tasks = len(warm_todo) + len(cell_todo)
    estimate = None   # (line, seconds); what is left depends on what was cached: progress, not a result
    if progress and tasks:
        todo = set(cell_todo)
        done = [] if warmup_only else [c for c in cells if c not in todo]
        estimate = _estimate(cell_todo, warm_todo, done, spec, executor, n_jobs)
        progress_note(estimate[0])
    started = time.monotonic()
    if executor == "ray":
        backend = _RayBackend(spec, address, cpus_per_cell, gpus_per_cell) if tasks else None
    else:
        workers = min(n_jobs or os.cpu_count() or 1, tasks)
        backend = (_PoolBackend(spec, workers) if workers > 1 else _SerialBackend(spec)) if tasks else None

    results: dict[Cell, dict] = {}  # returned in the order of ``cells``, whatever order they finish in
    warm_results: list[dict] = [{"status": "ok", "cell": dict(c.__dict__)}
                                for c in warmups if c not in warm_todo]
    bar = progress_bar(total, total - (len(warm_todo) if warmup_only else len(cell_todo)), "cells", "cell", progress)
    try:
        # warm-ups go first; a cell is submitted once its warm-up is ready
        waiting: dict[tuple, list[Cell]] = {c.warmup_key: [] for c in warm_todo}
        for c in warm_todo:
            backend.submit(c, True)
        for c in cell_todo:
            if c.warmup_key in waiting:
                waiting[c.warmup_key].append(c)
            else:
                backend.submit(c, False)
        while backend is not None and backend.pending:
            cell, is_warmup, result = backend.next_result()
            if is_warmup:
                warm_results.append(result)
                dependants = waiting.pop(cell.warmup_key, [])
                if warmup_only:
                    bar.update(1)
                elif result["status"] == "ok":
                    for c in dependants:
                        backend.submit(c, False)
                else:  # its cells fail with it, once each, without running
                    for c in dependants:
                        results[c] = failed_result(c.__dict__, f"warm-up failed: {result.get('error')}")
                        bar.update(1)
            else:
                results[cell] = result
                bar.update(1)
    finally:
        bar.close()
        if backend is not None:
            backend.close()
    if estimate is not None:
        progress_note(describe_elapsed(len(cell_todo), len(warm_todo), time.monotonic() - started, estimate[1]))
    if warmup_only:
        _summarise(warm_results, progress)
        return warm_results
    for c in cells:  # cells finished in an earlier run
        if c not in results:
            results[c] = _stored(c, spec)
    ordered = [results[c] for c in cells]
    if progress:  # the same line whether the cells were trained now or read back
        ok = sum(r.get("status") == "ok" for r in ordered)
        print(f"{ok} cells finished, {len(ordered) - ok} failed")
    _summarise(ordered, progress)
    return ordered


def _estimate(cell_todo: list[Cell], warm_todo: list[Cell], done: Sequence[Cell], spec: GridSpec, executor: str,
              n_jobs: int | None) -> tuple[str, float]:
    """The line printed before a grid starts (what it trains, how many cells are ``done`` already,
    roughly how long it takes, and at the pace of those of the same data sets and models) and the
    estimated wall seconds."""
    cfg = spec.config
    shapes = {}
    for ds in {c.dataset for c in cell_todo + warm_todo}:
        try:
            prepared = _prepared(spec.prepared_path(ds))
            shapes[ds] = training_shape(len(prepared.Y), prepared.n_folds, prepared.Y.shape[1])
        except Exception:  # noqa: BLE001 - a missing file is reported by the cell itself
            shapes[ds] = (1000, 10)
    # a cell that resumes from its checkpoint trains only the epochs after it
    trained = {c: max(cfg.epochs - max(cfg.warmup_epochs, _checkpoint_epoch(c, spec)), 1) for c in cell_todo}
    tasks = [(c.dataset, c.model, trained[c], *shapes[c.dataset]) for c in cell_todo]
    tasks += [(c.dataset, c.model, cfg.warmup_epochs, *shapes[c.dataset]) for c in warm_todo]
    slots = (n_jobs or os.cpu_count() or 1) if executor == "local" else 1
    slots = max(min(slots, len(tasks)), 1)     # a slot without a task neither helps nor is used
    seconds = estimate_seconds(tasks, slots)
    pace = _pace(done, {(c.dataset, c.model) for c in cell_todo}, spec, shapes)
    resuming = sum(n < cfg.epochs - cfg.warmup_epochs for n in trained.values())
    return describe_estimate(len(cell_todo), len(warm_todo), len(done), seconds, slots, executor, pace,
                             resuming), seconds


def _checkpoint_epoch(cell: Cell, spec: GridSpec) -> int:
    """The last epoch in the resume checkpoint of ``cell`` (``resume.pt`` in its folder under the
    output root, where :func:`mlabs.training.train_cell` keeps it), 0 without one. For the
    estimate only: a checkpoint that cannot be read counts as none, and training then says what
    is wrong with it."""
    path = _work_dir(cell, spec) / "resume.pt"
    if not path.is_file():
        return 0
    import torch   # loaded already where cells train; mmap reads the epoch without the weights

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])
    except Exception:  # noqa: BLE001 - see above
        return 0


def _pace(done: Sequence[Cell], pairs: set[tuple[str, str]], spec: GridSpec,
          shapes: dict[str, tuple[int, int]]) -> tuple[int, float] | None:
    """How the finished cells of the (data set, model) ``pairs`` compare with their estimate, from
    their timing sidecars: (timed cells, measured / estimated seconds), None without any. A grid
    that resumes thus says how long the rest takes at the pace of its finished cells, which is
    this machine's when they were trained here (the sidecars travel with the cells)."""
    cfg = spec.config
    measured = estimated = 0.0
    timed = 0
    for cell in done:
        if (cell.dataset, cell.model) not in pairs:
            continue
        timing = load_timing(_result_dir(cell, spec))
        seconds = cell_training_seconds(timing, cfg.epochs, cfg.warmup_epochs) if timing else None
        if seconds is None:
            continue
        measured += seconds[0]
        estimated += (cfg.epochs - cfg.warmup_epochs) * epoch_seconds(cell.dataset, cell.model, *shapes[cell.dataset])
        timed += 1
    return (timed, measured / estimated) if timed and estimated > 0 else None


def check_device(device: str) -> None:
    """Raise ``ValueError`` (one line) unless ``device`` names a torch device this machine has."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"device {device}: not a torch device (cpu, cuda, cuda:1, mps, ...)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device}: this torch build or machine has no CUDA device; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device}: MPS is not available on this machine; use cpu")
    elif dev.type != "cpu":
        raise ValueError(f"device {device}: unsupported device type {dev.type!r}; use cpu, cuda or mps")


#: the stand-in training part on which :func:`check_settings` builds each sampler and model
_PROBE_SAMPLES, _PROBE_FEATURES, _PROBE_LABELS = 512, 8, 4


def check_settings(cells: Sequence[Cell], config: TrainConfig) -> None:
    """Build each sampler and model the cells need once, on a small stand-in data set, so that a
    bad option value (``selection.adaptive.score: weighted``, ``models.dela.taux: -1``, a device
    this machine lacks) stops the grid with one line naming the setting, before any warm-up trains
    (each cell would otherwise fail on its own, after its warm-up). Options that depend on the
    real data (a batch larger than a fold) are checked by the cells themselves.
    """
    import numpy as np

    from .models import build
    from .selection.registry import make_sampler, sampler_class

    check_device(config.device)
    rng = np.random.default_rng(0)
    labels = rng.random((_PROBE_SAMPLES, _PROBE_LABELS)) < 0.3
    labels[np.arange(_PROBE_LABELS), np.arange(_PROBE_LABELS)] = True     # every label has a positive
    features = rng.standard_normal((_PROBE_SAMPLES, _PROBE_FEATURES)).astype(np.float32)
    for method, se in {(c.method, c.selection_pressure) for c in cells}:
        base, opts = config.resolve_method(method)
        if sampler_class(base).uses_selection_pressure:   # as training builds it: the cell's s_e, else
            opts["selection_pressure"] = se              # the method's own option (checked too)
        try:
            make_sampler(base, labels, 8, features=features, warmup_epochs=config.warmup_epochs,
                         epochs=config.epochs, **opts)
        except (ValueError, TypeError) as exc:
            where = f"selection.{method}" if method in config.selection else f"method {method}"
            raise ValueError(f"{where} (s_e = {se:g}): {exc}") from None
    for model in sorted({c.model for c in cells}):
        try:
            build(model, _PROBE_FEATURES, _PROBE_LABELS, train_labels=labels,
                  **dict(config.model_params.get(model) or {}))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"models.{model}: {exc}") from None


class _SerialBackend:
    """Tasks run one after the other in this process, in submission order."""

    def __init__(self, spec: GridSpec):
        self.spec = spec
        self.queue: deque = deque()

    @property
    def pending(self) -> int:
        return len(self.queue)

    def submit(self, cell: Cell, is_warmup: bool) -> None:
        self.queue.append((cell, is_warmup))

    def next_result(self):
        cell, is_warmup = self.queue.popleft()
        return cell, is_warmup, _execute(cell, self.spec, is_warmup)

    def close(self) -> None:
        pass


class _PoolBackend:
    """``workers`` slots: this process (one thread) plus ``workers - 1`` spawned processes.

    The calling process already has torch loaded, so its slot starts at once while the spawned
    workers import torch (~2 s each); every slot runs one task at a time on one torch thread.
    Tasks wait here and go to the first free slot: warm-ups first (cells wait for them), then
    cells of a (data set, model) pair not timed yet, then the longest cells first, estimated
    from the measured time per epoch of the pair's finished tasks, so that no long cell is
    left to run alone at the end of the grid.
    """

    def __init__(self, spec: GridSpec, workers: int):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

        self.spec = spec
        self.local = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlabs-grid")
        self.local_future = None
        self.n_procs = workers - 1
        # spawn, not fork: torch's thread pools do not survive a fork safely
        self.pool = ProcessPoolExecutor(max_workers=self.n_procs, mp_context=mp.get_context("spawn"))
        self.queue: list[tuple[Cell, bool]] = []
        self.futures: dict = {}                   # future -> (cell, warm-up?, start time)
        self.epoch_seconds: dict[tuple[str, str], float] = {}   # latest per (data set, model)

    @property
    def pending(self) -> int:
        return len(self.futures) + len(self.queue)

    def submit(self, cell: Cell, is_warmup: bool) -> None:
        self.queue.append((cell, is_warmup))
        self._dispatch()

    def _epochs(self, is_warmup: bool) -> int:
        cfg = self.spec.config
        return max(cfg.warmup_epochs if is_warmup else cfg.epochs - cfg.warmup_epochs, 1)

    def _next_task(self) -> tuple[Cell, bool]:
        def priority(item):
            cell, is_warmup = item
            per_epoch = self.epoch_seconds.get((cell.dataset, cell.model))
            if is_warmup:
                return (0, 0.0)
            if per_epoch is None:
                return (1, 0.0)
            return (2, -per_epoch)   # every cell trains the same number of epochs
        best = min(range(len(self.queue)), key=lambda i: priority(self.queue[i]))  # first on ties
        return self.queue.pop(best)

    def _dispatch(self) -> None:
        # the local slot first: it needs no start-up; the pool never holds more tasks than it has
        # processes, so a task never waits in the pool while the local slot is free (and the
        # time from dispatch to result is the task's run time, start-up of a worker aside)
        in_pool = len(self.futures) - (self.local_future is not None)
        while self.queue and (self.local_future is None or in_pool < self.n_procs):
            cell, is_warmup = self._next_task()
            if self.local_future is None:
                fut = self.local_future = self.local.submit(_execute, cell, self.spec, is_warmup)
            else:
                fut = self.pool.submit(_execute, cell, self.spec, is_warmup)
                in_pool += 1
            self.futures[fut] = (cell, is_warmup, time.perf_counter())

    def next_result(self):
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(self.futures, return_when=FIRST_COMPLETED)
        fut = next(iter(done))
        cell, is_warmup, t0 = self.futures.pop(fut)
        seconds = time.perf_counter() - t0
        self.epoch_seconds[(cell.dataset, cell.model)] = seconds / self._epochs(is_warmup)
        if fut is self.local_future:
            self.local_future = None
        try:
            result = fut.result()
        except Exception as exc:  # a crashed worker is reported like a failed cell
            result = failed_result(cell.__dict__, exc)
        self._dispatch()
        return cell, is_warmup, result

    def close(self) -> None:
        self.queue.clear()
        for fut in self.futures:
            fut.cancel()
        self.local.shutdown(wait=True)
        # wait for the worker processes to exit: a Jupyter kernel (papermill) that ends right after
        # its grid while workers are still exiting reports a KeyboardInterrupt at shutdown
        self.pool.shutdown(wait=True, cancel_futures=True)


def _files_under(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in root.rglob("*") if f.is_file()}


def _execute_portable(cell: Cell, spec: GridSpec, is_warmup: bool, prepared: bytes,
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
                                    warmup_root=str(root / "warmup"), out_root=str(root / "runs"),
                                    store=None if spec.store is None else str(root / "store"))
        if warmup is not None:
            target = warmup_path(local.warmup_root, cell)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(warmup)
        result = _execute(cell, local, is_warmup)
        warm_files = _files_under(root / "warmup") if is_warmup else {}
        run_files = {} if is_warmup else _files_under(root / ("runs" if spec.store is None else "store"))
        _prepared.cache_clear()
        _split.cache_clear()
    return result, warm_files, run_files


def _write_back(files: dict[str, bytes], root: str) -> None:
    from ._io import atomic_path
    for rel, data in files.items():
        with atomic_path(Path(root) / rel) as tmp:
            tmp.write_bytes(data)


def _store_back(files: dict[str, bytes], store: CellStore) -> None:
    """Put the cells a remote worker stored in its private store into ``store``."""
    import json

    from .results import TIMING_FILE
    folders = {Path(rel).parent for rel in files if Path(rel).name == "result.json"}
    for folder in folders:
        def text(name):
            data = files.get((folder / name).as_posix())
            return None if data is None else data.decode()
        timing = text(TIMING_FILE)
        store.put(folder.name, json.loads(text("result.json")), text("curves.tsv"),
                  None if timing is None else json.loads(timing))


class _RayBackend:
    """Ray tasks; inputs and outputs travel as bytes through the object store."""

    def __init__(self, spec: GridSpec, address, cpus: float, gpus: float):
        try:
            import ray
        except ImportError as exc:  # optional extra
            raise ImportError("the ray executor needs Ray: pip install -e '.[ray]'") from exc
        if not ray.is_initialized():
            ray.init(address=address or os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                     log_to_driver=False, ignore_reinit_error=True)
        self.ray, self.spec = ray, spec
        self.remote = ray.remote(num_cpus=cpus, num_gpus=gpus)(_execute_portable)
        # inputs go to the object store once per data set / warm-up, not once per cell
        self.prepared: dict[str, object] = {}
        self.warm: dict[tuple, object] = {}
        self.refs: dict = {}

    @property
    def pending(self) -> int:
        return len(self.refs)

    def submit(self, cell: Cell, is_warmup: bool) -> None:
        ray, spec = self.ray, self.spec
        if cell.dataset not in self.prepared:
            self.prepared[cell.dataset] = ray.put(Path(spec.prepared_path(cell.dataset)).read_bytes())
        warm = None
        if not is_warmup:
            path = warmup_path(spec.warmup_root, cell)
            if cell.warmup_key not in self.warm and path.exists():
                self.warm[cell.warmup_key] = ray.put(path.read_bytes())
            warm = self.warm.get(cell.warmup_key)
        ref = self.remote.remote(cell, spec, is_warmup, self.prepared[cell.dataset], warm)
        self.refs[ref] = (cell, is_warmup)

    def next_result(self):
        ready, _ = self.ray.wait(list(self.refs), num_returns=1)
        cell, is_warmup = self.refs.pop(ready[0])
        try:
            result, warm_files, run_files = self.ray.get(ready[0])
            _write_back(warm_files, self.spec.warmup_root)
            if self.spec.store is None:
                _write_back(run_files, self.spec.out_root)
            else:
                _store_back(run_files, self.spec.cell_store)
        except Exception as exc:  # a lost worker or task is reported like a failed cell
            result = failed_result(cell.__dict__, exc)
        return cell, is_warmup, result

    def close(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref)


def _summarise(results: list[dict], progress: bool) -> None:
    failed = [r for r in results if r.get("status") != "ok"]
    if failed and progress is not None:
        lines = [f"{len(failed)} of {len(results)} cells failed:"]
        for r in failed:
            c = r.get("cell", {})
            lines.append(f"  {c.get('dataset')}/{c.get('model')}/{c.get('method')} fold {c.get('fold')}"
                         f" seed {c.get('seed')}: {r.get('error')}")
        print("\n".join(lines))
