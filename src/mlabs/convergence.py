"""Convergence speed: the paper's headline claim, measured on the validation curves.

For every (data set, model, fold, seed) in which the baseline (random batches) ran, the target
is ``reach`` (95 %) of the baseline's best validation macro-AUC. Each method's run in that
block gets

- ``epochs_to_95``: the first epoch at which its validation macro-AUC reaches the target
  (lower is better). A run that never reaches it gets ``epochs + 1``, a censored value that
  still ranks behind every run that did (``reached_95`` says which);
- ``curve_area``: the mean validation macro-AUC over the selection epochs (after the shared
  warm-up), i.e. the area under the validation curve divided by its length (higher is better):
  a method that climbs faster has a larger area even when it ends at the same value.

The output has the shape of :func:`mlabs.report.collect_results` (one row per cell, status
``ok``), so the report's tables and paired tests apply to it unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CONVERGENCE_METRICS", "convergence_results"]

#: convergence measure -> whether higher is better
CONVERGENCE_METRICS = {"epochs_to_95": False, "curve_area": True}

_BLOCK = ["dataset", "model", "fold", "seed"]


def convergence_results(curves: pd.DataFrame, baseline: str = "random", reach: float = 0.95,
                        column: str = "val_macro_auc") -> pd.DataFrame:
    """Per cell: epochs to ``reach`` x the baseline's best validation value, and the curve area.

    Parameters
    ----------
    curves : pandas.DataFrame
        Long per-epoch curves (:func:`mlabs.report.collect_curves`) of the main setting.
    baseline : str
        The method whose best value sets each block's target.
    reach : float
        Fraction of the baseline's best value that counts as converged.
    column : str
        The validation curve to read.

    Returns
    -------
    pandas.DataFrame
        ``dataset, model, method, selection_pressure, batch_size, fold, seed, status,
        epochs_to_95, reached_95, curve_area, epochs``; empty when no block has a baseline run.
    """
    cols = ["dataset", "model", "method", "selection_pressure", "batch_size", "fold", "seed",
            "status", "epochs_to_95", "reached_95", "curve_area", "epochs"]
    if not 0 < reach <= 1:
        raise ValueError(f"reach must be in (0, 1], got {reach}")
    if curves.empty or column not in curves:
        return pd.DataFrame(columns=cols)
    frame = curves.dropna(subset=[column])
    best = (frame[frame["method"] == baseline].groupby(_BLOCK)[column].max()
            .rename("target").mul(reach).reset_index())
    frame = frame.merge(best, on=_BLOCK, how="inner")
    rows = []
    for key, run in frame.groupby(["dataset", "model", "method", "selection_pressure", "batch_size",
                                   "fold", "seed"], sort=True):
        run = run.sort_values("epoch")
        epochs = run["epoch"].to_numpy(dtype=float)
        values = run[column].to_numpy(dtype=float)
        hit = np.flatnonzero(values >= run["target"].iloc[0])
        warmup = run["warmup_epochs"].iloc[0]
        after = values[epochs > (0 if pd.isna(warmup) else float(warmup))]
        rows.append(dict(zip(cols[:7], key), status="ok",
                         epochs_to_95=float(epochs[hit[0]]) if hit.size else float(epochs.max() + 1),
                         reached_95=bool(hit.size), curve_area=float(after.mean()) if after.size else np.nan,
                         epochs=int(epochs.max())))
    return pd.DataFrame(rows, columns=cols)
