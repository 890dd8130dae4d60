"""The layout of the study's results: where a cell's warm-up and result live, what a finished or
failed result holds, and how a result folder's name is read back.

One module writes and reads the layout, so the trainer, the grid and the report cannot disagree.
It imports neither torch nor the models (the report reads results without them); only
:func:`machine_record`, called where cells are trained, imports torch.

A finished cell folder holds ``result.json`` and ``curves.tsv``, which depend only on what the
cell computed, and the sidecar ``timing.json``: how long the cell took and where it was computed
(:func:`machine_record`). The first two are what the cell's key and the report's inputs are made
of, so a rerun that computes the same numbers on another machine, or at another speed, changes
neither. In the cell store (:mod:`mlabs.store`) the sidecar is committed with the cell, added once
and never replaced; a cell stored without one has none (:func:`load_timing` returns None there).
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

from ._io import write_json_atomic

__all__ = ["warmup_path", "cell_dir", "parse_cell_dir", "load_result", "is_done", "failed_result",
           "write_failed", "TIMING_FILE", "machine_record", "timing_record", "write_timing", "load_timing"]

#: the sidecar of a cell folder, outside DVC's cache: timings and the machine record (see the module docstring)
TIMING_FILE = "timing.json"

_CELL_DIR = re.compile(r"^(?P<method>.+?)(?:-se(?P<se>[^-]+))?-b(?P<batch>\d+)$")
_RUN_DIR = re.compile(r"^fold(?P<fold>\d+)-seed(?P<seed>\d+)$")


def warmup_path(root: str | os.PathLike, cell) -> Path:
    """Where the shared warm-up checkpoint of ``cell`` lives under ``root``."""
    return (Path(root) / cell.dataset / cell.model
            / f"fold{cell.fold}-seed{cell.seed}-b{cell.batch_size}.pt")


def cell_dir(root: str | os.PathLike, cell, selection=None) -> Path:
    """The output folder of ``cell`` under ``root``: ``dataset/model/method[-se<s_e>]-b<B>/fold<f>-seed<s>``,
    the s_e part for methods that take the cell's selection pressure. A variant's folder carries its
    own name; ``selection`` (``params.yaml``'s section, ``TrainConfig.selection``) defines it."""
    from .selection.registry import uses_selection_pressure  # torch only where cells are trained

    method = (f"{cell.method}-se{cell.selection_pressure:g}" if uses_selection_pressure(cell.method, selection)
              else cell.method)
    return (Path(root) / cell.dataset / cell.model / f"{method}-b{cell.batch_size}"
            / f"fold{cell.fold}-seed{cell.seed}")


def parse_cell_dir(path: str | os.PathLike, root: str | os.PathLike) -> dict:
    """The cell identity written into the folder names of :func:`cell_dir` (``path`` a file in the
    folder); missing parts are None (NaN for numbers), e.g. for a folder of another layout."""
    nan = float("nan")
    parts = Path(path).parent.relative_to(root).parts
    cell = {"dataset": None, "model": None, "method": None, "selection_pressure": nan,
            "batch_size": nan, "fold": nan, "seed": nan}
    if len(parts) >= 4:
        cell["dataset"], cell["model"] = parts[-4], parts[-3]
        m = _CELL_DIR.match(parts[-2])
        if m:
            cell["method"] = m["method"]
            cell["batch_size"] = int(m["batch"])
            cell["selection_pressure"] = float(m["se"]) if m["se"] else nan
        r = _RUN_DIR.match(parts[-1])
        if r:
            cell["fold"], cell["seed"] = int(r["fold"]), int(r["seed"])
    return cell


def load_result(directory: str | os.PathLike) -> dict | None:
    """The result of a cell folder (finished or failed), or None if it has none."""
    path = Path(directory) / "result.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def is_done(result: dict | None, fingerprint: str) -> bool:
    """Whether ``result`` is a finished cell trained under the settings of ``fingerprint``
    (a failed cell, or one trained under other settings, is run again)."""
    return result is not None and result.get("status") == "ok" and result.get("fingerprint") == fingerprint


def failed_result(cell: dict, error: BaseException | str) -> dict:
    """The record of a failed cell: its identity and the error (``Type: message`` for an exception)."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {"status": "failed", "cell": dict(cell), "error": message}


def write_failed(directory: str | os.PathLike, cell: dict, error: BaseException | str) -> dict:
    """Write :func:`failed_result` as the folder's ``result.json`` and return it.

    A finished result is never replaced: when the folder already holds one (a retry under other
    settings failed), it stays, and the failure is only returned, with a note saying so.
    """
    result = failed_result(cell, error)
    out = Path(directory)
    finished = load_result(out)
    if finished is not None and finished.get("status") == "ok":
        result["error"] += f" (the finished {out / 'result.json'} was kept)"
        return result
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(result, out / "result.json")
    return result


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_record(device: str = "cpu") -> dict:
    """Where a cell is computed: what can change its floating-point results.

    CPU model, torch's CPU kernel capability (e.g. ``AVX2``, ``AVX512``), the number of torch
    threads, the Python, torch and numpy versions and the device (with the GPU's name on CUDA).
    No host name and no time: two machines of the same kind give the same record.
    """
    import numpy as np
    import torch

    dev = torch.device(device)
    record = {"cpu": _cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
              "torch": torch.__version__, "numpy": np.__version__, "device": dev.type}
    if dev.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(dev)
    return record


def timing_record(*, fingerprint: str, epoch_seconds: list[float], train_seconds: float, first_epoch: int,
                  machine: dict) -> dict:
    """The content of a timing sidecar (:func:`write_timing` explains the fields)."""
    return {"fingerprint": fingerprint, "train_seconds": float(train_seconds),
            "first_epoch": int(first_epoch), "epoch_seconds": [float(s) for s in epoch_seconds],
            "machine": dict(machine)}


def write_timing(directory: str | os.PathLike, *, fingerprint: str, epoch_seconds: list[float],
                 train_seconds: float, first_epoch: int, machine: dict) -> dict:
    """Write the sidecar :data:`TIMING_FILE` of a finished cell and return it.

    ``epoch_seconds[e - 1]`` is the training pass of epoch ``e`` (warm-up epochs included, timed
    when the warm-up was trained); ``train_seconds`` is the wall time of epochs ``first_epoch`` to
    the last (later than the first selecting epoch when the cell resumed from a checkpoint),
    evaluation and checkpoints included; ``fingerprint`` ties the sidecar to its ``result.json``.
    """
    timing = timing_record(fingerprint=fingerprint, epoch_seconds=epoch_seconds, train_seconds=train_seconds,
                           first_epoch=first_epoch, machine=machine)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(timing, out / TIMING_FILE)
    return timing


def load_timing(directory: str | os.PathLike) -> dict | None:
    """The timing sidecar of a cell folder (:func:`write_timing`), or None when there is none.

    None also when the sidecar is unreadable or belongs to another result than the folder's
    ``result.json`` (a different fingerprint): timings are then unavailable, never wrong.
    """
    path = Path(directory) / TIMING_FILE
    try:
        timing = json.loads(path.read_text())
        result = load_result(directory)
    except (OSError, ValueError):
        return None
    if not isinstance(timing, dict) or (result is not None and result.get("fingerprint") != timing.get("fingerprint")):
        return None
    return timing
