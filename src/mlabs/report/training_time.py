"""How long the reported cells took to train, against the estimate the grid printed before them.

A grid prints a time estimate before it starts (:mod:`mlabs.cost`) and, at its end, the time it
took against that estimate. A long profile is trained in parts, over several runs and machines,
so no single run's log holds its training time; the cells' timing sidecars do. This table sums
them per data set and model and sets the estimate for the same cells beside the sum.

Per cell, the measured time is the wall time of its selection epochs (training, the per-epoch
validation and checkpoints): the sidecar's ``train_seconds``, which covers the cell's last run,
so a cell resumed after an interruption is scaled from the epochs of that run to all its
selection epochs. The estimate is ``selection epochs x`` :func:`mlabs.cost.epoch_seconds`, as
the grid computes it. The shared warm-ups are in neither. Like every timing, these numbers depend
on the machine and its load and are absent for cells restored by ``dvc pull``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..cost import EPOCH_SECONDS, epoch_seconds
from ..results import load_timing
from .collect import finished_cells

__all__ = ["cell_training_seconds", "training_time_table", "training_time_markdown"]

COLUMNS = ["dataset", "model", "cells", "timed", "resumed", "measured_h", "estimate_h", "ratio"]


def cell_training_seconds(timing: Mapping, epochs: int, warmup_epochs: int) -> tuple[float, bool] | None:
    """Wall seconds of a cell's selection epochs from its timing sidecar, and whether it resumed.

    ``train_seconds`` covers epochs ``first_epoch`` to ``epochs``; a cell that resumed from a
    checkpoint (``first_epoch`` after the first selection epoch) is scaled to all its
    ``epochs - warmup_epochs`` selection epochs at the rate of that last run. None when the
    sidecar lacks what it takes.
    """
    try:
        seconds, first = float(timing["train_seconds"]), int(timing["first_epoch"])
    except (KeyError, TypeError, ValueError):
        return None
    ran, selecting = epochs - first + 1, epochs - warmup_epochs
    if ran < 1 or selecting < 1 or not np.isfinite(seconds):
        return None
    return seconds * selecting / ran, first > warmup_epochs + 1


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
        if pd.isna(r.epochs) or not timing:
            continue
        warmup = 0 if pd.isna(r.warmup_epochs) else int(r.warmup_epochs)
        measured = cell_training_seconds(timing, int(r.epochs), warmup)
        if measured is None:
            continue
        shape = shapes.get(r.dataset)
        known = shape is not None or (r.dataset, r.model) in EPOCH_SECONDS   # else it would scale from a guess
        per_epoch = epoch_seconds(r.dataset, r.model, *(shape or (0, 0))) if known else np.nan
        rows.append({"dataset": r.dataset, "model": r.model, "seconds": measured[0], "resumed": measured[1],
                     "estimate": (int(r.epochs) - warmup) * per_epoch})
    if not rows:
        return pd.DataFrame(columns=COLUMNS), 0, len(ok)
    timed = pd.DataFrame(rows)
    table = timed.groupby(["dataset", "model"], sort=True).agg(
        timed=("seconds", "size"), resumed=("resumed", "sum"), measured=("seconds", "sum"),
        estimate=("estimate", lambda s: s.sum(min_count=len(s)))).reset_index()
    finished = ok.groupby(["dataset", "model"]).size()
    table["cells"] = finished.reindex(pd.MultiIndex.from_frame(table[["dataset", "model"]])).to_numpy()
    table["measured_h"], table["estimate_h"] = table["measured"] / 3600, table["estimate"] / 3600
    table["ratio"] = table["measured"] / table["estimate"]
    table["resumed"] = table["resumed"].astype(int)
    return table[COLUMNS], len(timed), len(ok)


def training_time_markdown(table: pd.DataFrame, timed: int, total: int) -> str:
    """The markdown of :func:`training_time_table`: the totals per model and overall, then the blocks."""
    from .tables import to_markdown

    head = ("## Training time against the estimate\n\n"
            "What the cells took, summed from their timing sidecars, against the estimate the grid prints before "
            "it trains them (`mlabs.cost`: one slot of a quiet 2-core CPU). Measured: the wall time of each "
            "cell's selection epochs (training, per-epoch validation, checkpoints); a cell resumed after an "
            "interruption (`resumed`) is scaled from its last run to all its selection epochs. The shared "
            "warm-ups are in neither. `ratio` = measured / estimate: above 1 where other jobs shared the cores "
            "or the machine is slower than the one the estimate was measured on.\n\n")
    if table.empty:
        return head + f"No finished cell has a timing sidecar (0 of {total}).\n"
    counts = ["cells", "timed", "resumed", "measured_h"]
    # an estimate missing for some cells leaves its totals missing, rather than too small
    totals = [{"model": model, **block[counts].sum().to_dict(), "estimate_h": block["estimate_h"].sum(skipna=False)}
              for model, block in [*table.groupby("model", sort=True), ("all", table)]]
    totals = pd.DataFrame(totals)
    totals[["cells", "timed", "resumed"]] = totals[["cells", "timed", "resumed"]].astype(int)
    totals["ratio"] = totals["measured_h"] / totals["estimate_h"]
    return (head + f"Timed cells: {timed} of {total} finished.\n\n### Per model\n\n"
            + to_markdown(totals, floatfmt=".3g") + "\n### Per data set and model\n\n"
            + to_markdown(table, floatfmt=".3g"))
