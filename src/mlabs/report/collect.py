"""Reading the result tree: one row per cell, the per-epoch curves, and the main setting.

The tree is written by :mod:`mlabs.training`: one folder per cell,
``<dataset>/<model>/<method>[-se<s_e>]-b<batch>/fold<k>-seed<s>/`` with ``result.json`` and
``curves.tsv`` (and, where the cell has one, the timing sidecar
``timing.json``). The "result" of a cell is its test metrics at the epoch of best validation
macro-AUC.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..metrics import ALL_METRICS
from ..results import load_timing, parse_cell_dir
from .conventions import BASELINE

__all__ = ["CELL_COLUMNS", "collect_results", "collect_curves", "select_main_setting", "finished_cells",
           "most_frequent", "prepared_file", "unprepared"]

#: Columns that identify a cell (one training run).
CELL_COLUMNS = ["dataset", "model", "method", "selection_pressure", "batch_size", "fold", "seed"]
_INT_COLUMNS = ("batch_size", "fold", "seed", "best_epoch", "epochs", "warmup_epochs")


def prepared_file(prepared_dir: str | Path, dataset: str) -> Path:
    """Where the prepare stage writes the folds of ``dataset`` under ``prepared_dir``."""
    return Path(prepared_dir) / f"{dataset}.npz"


def unprepared(prepared_dir: str | Path, datasets: Sequence[str]) -> list[str]:
    """The data sets of ``datasets``, in their order, whose prepared folds are not in ``prepared_dir``."""
    return [ds for ds in datasets if not prepared_file(prepared_dir, ds).is_file()]


def _result_files(root: str | Path) -> list[Path]:
    root = Path(root)
    return sorted(root.rglob("result.json")) if root.is_dir() else []


def _empty_results() -> pd.DataFrame:
    cols = CELL_COLUMNS + ["status", "error", "best_epoch", "epochs", "warmup_epochs", "train_seconds",
                           "minority_share", "minority_share_train", "path"]
    cols += list(ALL_METRICS) + [f"val_{m}" for m in ALL_METRICS]
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("dataset", "model", "method", "status",
                                                             "error", "path") else float)
                         for c in cols})


def _sort_cells(frame: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    return frame.sort_values(CELL_COLUMNS + list(extra), kind="mergesort",
                             na_position="last").reset_index(drop=True)


def collect_results(root: str | Path) -> pd.DataFrame:
    """One row per cell found under ``root`` (finished and failed).

    Parameters
    ----------
    root : str or Path
        A results root such as ``artifacts/runs``. A missing folder gives an empty frame.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CELL_COLUMNS`, ``status`` (``"ok"`` / ``"failed"``), ``error``,
        ``best_epoch``, ``epochs``, ``warmup_epochs``, ``train_seconds`` (from the timing sidecar;
        NaN where there is none, e.g. after ``dvc pull``), ``minority_share``,
        ``minority_share_train``, ``path`` (cell folder relative to ``root``), one column per
        *test* metric (bare name, e.g. ``macro_auc``) and ``val_<metric>`` for validation.
        A ``result.json`` that cannot be parsed becomes a failed row (identity taken from the
        folder names) rather than an exception. Rows are sorted by the cell columns.
    """
    root = Path(root)
    rows = []
    for path in _result_files(root):
        rel = path.parent.relative_to(root).as_posix()
        try:
            payload = json.loads(path.read_text())
            cell = dict(payload["cell"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            rows.append({**parse_cell_dir(path, root), "status": "failed",
                         "error": f"unreadable result.json: {type(exc).__name__}: {exc}", "path": rel})
            continue
        row = {c: cell.get(c) for c in CELL_COLUMNS}
        row["status"] = payload.get("status", "failed")
        row["error"] = payload.get("error")
        row["path"] = rel
        for key in ("best_epoch", "epochs", "warmup_epochs", "minority_share", "minority_share_train"):
            row[key] = payload.get(key)
        timing = load_timing(path.parent)
        row["train_seconds"] = timing["train_seconds"] if timing else None
        for name, value in (payload.get("test") or {}).items():
            row[name] = value
        for name, value in (payload.get("val") or {}).items():
            row[f"val_{name}"] = value
        rows.append(row)
    if not rows:
        return _empty_results()
    frame = pd.DataFrame(rows)
    base = _empty_results()
    for col in base.columns:  # every expected column exists even if no cell reported it
        if col not in frame:
            frame[col] = pd.Series(np.nan, index=frame.index, dtype=base[col].dtype)
    numeric = [c for c in frame.columns if c not in ("dataset", "model", "method", "status", "error", "path")]
    for col in numeric:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in _INT_COLUMNS:  # counts stay integers (nullable: an unreadable cell may lack them)
        frame[col] = frame[col].round().astype("Int64")
    ordered = list(base.columns) + sorted(c for c in frame.columns if c not in base.columns)
    return _sort_cells(frame[ordered])


def collect_curves(root: str | Path) -> pd.DataFrame:
    """Per-epoch curves of every finished cell under ``root``, in long format.

    Returns
    -------
    pandas.DataFrame
        :data:`CELL_COLUMNS`, ``warmup_epochs`` (from ``result.json``) and every column of
        ``curves.tsv`` (``epoch``, ``train_loss``, ``minority_share``, ``loss_minority``,
        ``loss_rest``, ``val_<metric>``, ``test_<metric>``, ...); one row per cell and epoch.
        Cells without ``curves.tsv`` (failed ones) are skipped.
    """
    root = Path(root)
    frames = []
    for path in _result_files(root):
        tsv = path.parent / "curves.tsv"
        if not tsv.is_file():
            continue
        try:
            payload = json.loads(path.read_text())
            cell = payload["cell"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if payload.get("status") != "ok":
            continue
        curve = pd.read_csv(tsv, sep="\t")
        for col in CELL_COLUMNS:
            curve[col] = cell.get(col)
        curve["warmup_epochs"] = payload.get("warmup_epochs", np.nan)
        frames.append(curve)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("dataset", "model", "method") else float)
                             for c in CELL_COLUMNS + ["warmup_epochs", "epoch", "train_loss"]})
    frame = pd.concat(frames, ignore_index=True)
    for col in ("selection_pressure", "batch_size", "fold", "seed", "warmup_epochs", "epoch"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("batch_size", "fold", "seed", "warmup_epochs", "epoch"):
        frame[col] = frame[col].round().astype("Int64")
    front = CELL_COLUMNS + ["warmup_epochs", "epoch"]
    frame = frame[front + [c for c in frame.columns if c not in front]]
    return _sort_cells(frame, extra=["epoch"])


def most_frequent(values: pd.Series) -> float:
    """Most frequent value; ties go to the smallest, so the choice is deterministic."""
    counts = values.value_counts()
    best = counts.max()
    return float(min(counts[counts == best].index))


def select_main_setting(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep one (batch size, s_e) setting per method, so each block compares like with like.

    The main grid runs every method at one batch size and one s_e; cells of other settings
    (left in a persistent results folder after a parameter change) would otherwise be averaged
    in as extra folds. The kept batch size is the one with most cells (finished ones if any);
    per selecting method the kept s_e is its most frequent one. ``random`` ignores s_e.

    Returns
    -------
    kept, excluded : pandas.DataFrame
    """
    if results.empty:
        return results, results.iloc[0:0]
    ok = results[results["status"] == "ok"]
    source = ok if len(ok) else results
    known = source.dropna(subset=["batch_size"])
    keep = pd.Series(True, index=results.index)
    if len(known):
        batch = most_frequent(known["batch_size"])
        keep &= results["batch_size"] == batch
        for method in sorted(set(results["method"].dropna()) - {BASELINE}):
            rows = known[(known["method"] == method) & (known["batch_size"] == batch)]
            rows = rows.dropna(subset=["selection_pressure"])
            if len(rows):
                se = most_frequent(rows["selection_pressure"])
                keep &= ~((results["method"] == method) & (results["selection_pressure"] != se))
    return results[keep].reset_index(drop=True), results[~keep].reset_index(drop=True)


def finished_cells(results: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of :func:`collect_results` with status ``"ok"``, restricted to ``methods`` when given."""
    ok = results[results["status"] == "ok"]
    if methods is not None:
        ok = ok[ok["method"].isin(list(methods))]
    return ok
