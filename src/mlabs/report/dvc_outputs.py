"""What DVC tracks of the report: the headline numbers (``metrics.json``) and mean curves (``plots/``).

``dvc.yaml`` declares ``reports/metrics.json`` as its metrics and one ``reports/plots/<name>.csv``
per curve of :data:`PLOT_CURVES` as its plots, one column per method.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ..convergence import CONVERGENCE_METRICS
from ..metrics import REPORTED_METRICS
from .collect import finished_cells
from .conventions import method_order
from .statistics import POOLED, FriedmanResult, dataset_means, friedman_nemenyi, wins_ties_losses

__all__ = ["headline_metrics", "PLOT_CURVES", "plot_data"]


def _num(value) -> float | None:
    """JSON-safe number: NaN / inf become null."""
    if value is None:
        return None
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def headline_metrics(results: pd.DataFrame, methods: Sequence[str] | None = None,
                     baseline: str = "random", friedman: FriedmanResult | None = None,
                     convergence: pd.DataFrame | None = None) -> dict:
    """Headline numbers for ``reports/metrics.json`` (DVC metrics).

    Returns
    -------
    dict
        ``cells``: ok / failed counts; ``test_mean``: per method, the mean of each reported
        metric over all its finished (dataset, model, fold, seed) runs;
        ``friedman_macro_auc``: p-value, number of data sets and average rank per method;
        ``vs_random_macro_auc``: win / tie / loss over data sets (mean over folds and models). NaN → null.
        ``friedman`` may pass the already computed macro-AUC :class:`FriedmanResult`.
        ``convergence_mean`` (with ``convergence``): per method, the mean epochs to 95 % and
        curve area over its runs.
    """
    ok = finished_cells(results)
    order = method_order(ok["method"], methods)
    out: dict = {"cells": {"ok": int((results["status"] == "ok").sum()),
                           "failed": int((results["status"] != "ok").sum())}}
    out["test_mean"] = {m: {metric: _num(ok.loc[ok["method"] == m, metric].mean())
                            for metric in REPORTED_METRICS} for m in order}
    fr = friedman if friedman is not None else friedman_nemenyi(results, "macro_auc", order)
    out["friedman_macro_auc"] = {"p_value": _num(fr.p_value), "n_datasets": len(fr.blocks),
                                 "avg_rank": {m: _num(fr.ranks.get(m)) for m in order}}
    vs = {}
    if baseline in order:
        for m in order:
            if m == baseline:
                continue
            means = dataset_means(results, "macro_auc", m, baseline, POOLED)
            w, t, l = wins_ties_losses(means["x"], means["y"], "macro_auc") if len(means) else (0, 0, 0)
            vs[m] = {"win": w, "tie": t, "loss": l}
    out[f"vs_{baseline}_macro_auc"] = vs
    if convergence is not None and len(convergence):
        out["convergence_mean"] = {m: {c: _num(convergence.loc[convergence["method"] == m, c].mean())
                                       for c in CONVERGENCE_METRICS}
                                   for m in order if m in set(convergence["method"])}
    return out


#: the DVC plots of ``dvc.yaml``: file stem in ``plots/`` -> its curve (one column per method)
PLOT_CURVES = ("val_macro_auc", "train_bce")


def _train_bce(curves: pd.DataFrame) -> pd.Series:
    """Mean per-sample training BCE of each row: the mean of the loss table the selection uses.

    ``loss_minority`` and ``loss_rest`` are that table's means over the samples with and without a
    minority label, and ``minority_share_train`` is the share of the former, so their weighted
    mean is the table's mean. Unlike ``train_loss`` (each model's own objective, whose scale
    differs by 100x between models) it is the same quantity for every model.
    """
    if not {"loss_minority", "loss_rest", "minority_share_train"} <= set(curves):
        return pd.Series(np.nan, index=curves.index)
    share = curves["minority_share_train"].astype(float)
    lm, lr = curves["loss_minority"].astype(float), curves["loss_rest"].astype(float)
    mixed = share * lm + (1 - share) * lr
    return pd.Series(np.where(share >= 1, lm, np.where(share <= 0, lr, mixed)), index=curves.index)


def plot_data(curves: pd.DataFrame, methods: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """The DVC plot files: per curve of :data:`PLOT_CURVES`, ``epoch`` and one column per method.

    Each value averages the method's runs (data sets x models x folds) that reach the epoch (data
    sets may train for different numbers of epochs). ``val_macro_auc`` is the validation
    macro-AUC; ``train_bce`` is the mean per-sample training BCE the selection uses (see
    :func:`_train_bce`), comparable across models. Every method of ``methods`` gets a column,
    empty when it has no finished run, so that ``dvc.yaml`` can name the profile's methods;
    without ``methods`` the columns are the methods present. Returns ``{name: frame}`` for
    ``plots/<name>.csv``.
    """
    order = list(dict.fromkeys(methods)) if methods is not None else method_order(curves["method"])
    if curves.empty or not order:
        return {}
    frame = curves.assign(train_bce=_train_bce(curves))
    epochs = pd.Index(sorted(frame["epoch"].dropna().astype(int).unique()), name="epoch")
    out = {}
    for name in PLOT_CURVES:
        if name not in frame:
            continue
        wide = frame.groupby(["epoch", "method"])[name].mean().unstack("method")
        wide.index = wide.index.astype(int)
        out[name] = wide.reindex(index=epochs, columns=order).reset_index()
        out[name].columns.name = None
    return out
