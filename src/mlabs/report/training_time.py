"""How long the reported cells took to train, against :mod:`mlabs.cost`'s estimate for them.

A grid prints a time estimate before it starts and, at its end, the time it took against that
estimate. A long profile is trained in parts, over several runs and machines, so no single run's
log holds its training time; the cells' timing sidecars do. This table sums them per data set and
model and sets beside the sum the estimate for the same cells on one slot: the per-cell figures
the grid adds up before it divides them over its slots and adds the shared warm-ups, which are in
neither column here.

Per cell, the measured time is the wall time of its selection epochs (training, the per-epoch
validation and checkpoints): the sidecar's ``train_seconds``, which covers the cell's last run.
A cell resumed after an interruption is scaled from that run to all its selection epochs by their
training-pass seconds (``epoch_seconds``, kept across resumes): the time of an uninterrupted run,
without the work an interruption lost. Like every timing, these numbers depend on the machine and
its load and are absent for cells stored without a timing sidecar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..cost import EPOCH_SECONDS, cell_training_seconds, epoch_seconds
from ..results import load_timing
from .collect import finished_cells

__all__ = ["training_time_table", "training_time_markdown"]

COLUMNS = ["dataset", "model", "cells", "timed", "resumed", "measured_h", "estimate_h", "ratio"]
COUNTS = ["cells", "timed", "resumed"]


def training_time_table(results: pd.DataFrame, results_root: str | Path,
                        shapes: Mapping[str, tuple[int, int]] | None = None) -> tuple[pd.DataFrame, int, int]:
    """Measured training hours of the finished cells against :mod:`mlabs.cost`'s estimate.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`~mlabs.report.collect_results` (finished cells are used).
    results_root : str or Path
        The root the results were collected from (the sidecars lie in the cell folders).
    shapes : mapping of str to (int, int), optional
        Data set -> (training samples, labels), for the estimate of (data set, model) pairs
        without a measured cost (:func:`mlabs.cost.epoch_seconds`); without it those estimates
        are NaN.

    Returns
    -------
    table : pandas.DataFrame
        Per data set and model: ``cells`` (finished), ``timed`` (with a usable sidecar),
        ``resumed`` (timed cells scaled from their last run), ``measured_h`` (summed over the
        timed cells), ``estimate_h`` (for the same cells) and ``ratio`` = measured / estimate.
        Empty when no finished cell has a sidecar.
    timed, total : int
        Finished cells with a usable sidecar, and finished cells.
    """
    shapes = shapes or {}
    ok = finished_cells(results)
    rows = []
    for r in ok.itertuples():
        timing = load_timing(Path(results_root) / r.path)
        measured = None
        if timing and not pd.isna(r.epochs):
            warmup = 0 if pd.isna(r.warmup_epochs) else int(r.warmup_epochs)
            measured = cell_training_seconds(timing, int(r.epochs), warmup)
        if measured is None:
            rows.append({"dataset": r.dataset, "model": r.model, "timed": 0, "resumed": 0, "seconds": np.nan,
                         "estimate": np.nan})
            continue
        # an unmeasured pair is scaled by the data set's shape; without it the estimate is missing
        shape = shapes.get(r.dataset)
        per_epoch = EPOCH_SECONDS.get((r.dataset, r.model)) or (epoch_seconds(r.dataset, r.model, *shape)
                                                                 if shape else np.nan)
        rows.append({"dataset": r.dataset, "model": r.model, "timed": 1, "resumed": int(measured[1]),
                     "seconds": measured[0], "estimate": (int(r.epochs) - warmup) * per_epoch})
    n_timed = sum(row["timed"] for row in rows)
    if not n_timed:
        return pd.DataFrame(columns=COLUMNS), 0, len(ok)
    cells = pd.DataFrame(rows)
    timed = cells[cells["timed"] == 1]
    table = cells.groupby(["dataset", "model"], sort=True).agg(
        cells=("timed", "size"), timed=("timed", "sum"), resumed=("resumed", "sum")).reset_index()
    sums = timed.groupby(["dataset", "model"]).agg(
        measured=("seconds", "sum"), estimate=("estimate", lambda s: s.sum(min_count=len(s))))
    index = pd.MultiIndex.from_frame(table[["dataset", "model"]])
    table["measured_h"] = sums["measured"].reindex(index).to_numpy() / 3600
    table["estimate_h"] = sums["estimate"].reindex(index).to_numpy() / 3600
    table["ratio"] = table["measured_h"] / table["estimate_h"]
    return table[COLUMNS], n_timed, len(ok)


def training_time_markdown(table: pd.DataFrame, timed: int, total: int) -> str:
    """The markdown of :func:`training_time_table`: totals per model and in all, then the blocks.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`training_time_table`'s table.
    timed, total : int
        Its finished cells with a usable sidecar, and its finished cells.

    Returns
    -------
    str
        A section headed "Training time against the estimate" (the end of ``tables/timing.md``).
    """
    from .tables import to_markdown

    head = ("## Training time against the estimate\n\n"
            "What the cells took, summed from their timing sidecars, against `mlabs.cost`'s estimate for the "
            "same cells on one slot of a quiet 2-core CPU (the figure a grid prints divides that over its slots "
            "and adds the shared warm-ups, which are in neither column here). Measured: the wall time of each "
            "cell's selection epochs (training, per-epoch validation, checkpoints); a cell resumed after an "
            "interruption (`resumed`) is scaled from its last run to all its selection epochs, so the time an "
            "interruption lost is not counted. `ratio` = measured / estimate: above 1 where other jobs shared "
            "the cores or the machine is slower than the one the estimate was measured on.\n\n")
    if table.empty:
        return head + f"No finished cell has a timing sidecar (0 of {total}).\n"
    totals = pd.DataFrame([{"model": model, **block[COUNTS].sum().to_dict(), **_timed_sums(block)}
                           for model, block in [*table.groupby("model", sort=True), ("all", table)]])
    totals[COUNTS] = totals[COUNTS].astype(int)
    totals["ratio"] = totals["measured_h"] / totals["estimate_h"]
    return (head + f"Timed cells: {timed} of {total} finished.\n\n### Per model\n\n"
            + to_markdown(totals, floatfmt=".3g") + "\n### Per data set and model\n\n"
            + to_markdown(table, floatfmt=".3g"))


def _timed_sums(blocks: pd.DataFrame) -> dict[str, float]:
    """Measured and estimated hours summed over the blocks with timed cells; an estimate missing
    for one of them leaves the estimate missing rather than too small."""
    timed = blocks[blocks["timed"] > 0]
    if timed.empty:
        return {"measured_h": np.nan, "estimate_h": np.nan}
    return {"measured_h": timed["measured_h"].sum(), "estimate_h": timed["estimate_h"].sum(skipna=False)}
