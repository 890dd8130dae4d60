"""The layout of the study's results: where a cell's warm-up and result live, what a finished or
failed result holds, and how a result folder's name is read back.

One module writes and reads the layout, so the trainer, the grid and the report cannot disagree.
It imports neither torch nor the models (the report reads results without them).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ._io import write_json_atomic

__all__ = ["warmup_path", "cell_dir", "parse_cell_dir", "load_result", "is_done", "failed_result",
           "write_failed"]

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
