"""Which part of the method matters: selection strength, each ingredient's contribution, wall time.

Four parts, each computed from what the report already reads (docs/statistics.md, "Ablations"):

- **imbalance weights per data set** (:func:`imbalance_weight_table`): on fold 0's training part,
  the distribution of the published (normalised) and of the raw imbalance weights: the share of
  samples above 1, the mean, the 90th percentile and the largest weight. Computed here, from the
  prepared folds, so that the ``prepare`` stage keeps depending on the data code only;
- **how far from random the batches were** (:func:`selection_strength_table`): the per-epoch
  diagnostics that training writes into ``curves.tsv`` (p_max / p_min, KL from uniform, the share of
  distinct samples drawn, the samples drawn per epoch / N), averaged over the selection epochs and
  taken at the last epoch, then averaged over models, folds and seeds per (data set, method);
- **each ingredient's contribution** (:func:`ingredient_table`): hard only, imbalance only, both,
  without quantization, the raw weight, s_e = 16, reweighting and InfoBatch against random, and
  the adaptive family against ``reweight`` (drawing batches from p against weighting the loss by
  N p), with the report's own tests over data sets (:func:`~mlabs.report.statistics.verdict_table`
  with ``baseline=``);
- **wall time per epoch relative to random** (:func:`timing_table`): from the cells' timing
  sidecars, so machine-dependent and absent where a cell has none, beside the trained fraction
  from the curves; written to its own file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..results import load_timing
from .collect import CELL_COLUMNS, finished_cells, prepared_file
from .conventions import BASELINE, method_order, tie_margin
from .statistics import POOLED, dataset_means, format_p, verdict_table

__all__ = ["INGREDIENTS", "ABLATION_METHODS", "REWEIGHT", "STRENGTH_COLUMNS", "TIMING_UNAVAILABLE",
           "ablation_methods", "imbalance_weight_summary", "imbalance_weight_table", "selection_strength_table",
           "selection_strength_markdown", "ingredient_table", "ingredient_markdown", "timing_table",
           "timing_markdown", "ablation_findings"]

#: method -> what it keeps of the method (the row label of the ingredient table), in table order
INGREDIENTS = {
    "hard_only": "hard only (loss rank, no imbalance weight)",
    "imbalance_only": "imbalance only (imbalance weight, no loss)",
    "adaptive": "hard + imbalance (MLABS as published)",
    "exact_rank": "hard + imbalance, exact rank (no quantization)",
    "imbalance_raw": "hard + raw imbalance weight (not the published weight)",
    "adaptive_se16": "hard + imbalance, s_e = 16",
    "reweight": "reweighting by adaptive's N p (shuffled batches)",
    "infobatch": "InfoBatch (prune below-mean-loss samples, alongside)",
}
#: the methods whose presence makes the report write the ablation section (adaptive alone does not)
ABLATION_METHODS = tuple(m for m in INGREDIENTS if m != "adaptive")
#: the second baseline: random batches whose objective is weighted by adaptive's N p_i
REWEIGHT = "reweight"
#: the methods compared with :data:`REWEIGHT`: the adaptive rule and its variants (each draws from a
#: distribution of the adaptive family, whose reweighting control ``reweight`` is)
_VS_REWEIGHT = ("hard_only", "imbalance_only", "adaptive", "exact_rank", "imbalance_raw", "adaptive_se16")
#: the selection-strength columns of ``curves.tsv`` (mlabs.training.selection_strength), and the
#: share of distinct samples derived here from ``distinct_drawn``
STRENGTH_COLUMNS = ("p_ratio", "kl_uniform", "distinct_share", "drawn_fraction")
#: the text of the timing table when no reported cell has a timing sidecar
TIMING_UNAVAILABLE = "Timings not available (cells stored without their timing sidecars)"
#: what the data-set table's imbalance-weight columns hold: prefix -> ``normalise`` of imbalance_weights
_WEIGHT_KINDS = {"imb_w": True, "imb_w_raw": False}


def ablation_methods(methods: Iterable[str]) -> list[str]:
    """The methods of the ingredient table among ``methods``, in :data:`INGREDIENTS` order.

    Empty unless one of :data:`ABLATION_METHODS` is present (a profile with adaptive only has no
    ablation section).
    """
    present = set(methods)
    if not present & set(ABLATION_METHODS):
        return []
    return [m for m in INGREDIENTS if m in present]


# --- imbalance weights per data set ---------------------------------------------------------------

def imbalance_weight_summary(weights) -> dict[str, float]:
    """Share of weights above 1, mean, 90th percentile (linear interpolation) and max of ``weights``."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    if not len(w):
        return {"share_above_1": np.nan, "mean": np.nan, "p90": np.nan, "max": np.nan}
    return {"share_above_1": float(np.mean(w > 1.0)), "mean": float(w.mean()),
            "p90": float(np.quantile(w, 0.9)), "max": float(w.max())}


def imbalance_weight_table(prepared_dir: str | Path, datasets: Sequence[str], k_neighbors: int = 5,
                           fold: int = 0) -> pd.DataFrame:
    """Per data set, the distribution of its imbalance weights on ``fold``'s training part.

    The weights are :func:`mlabs.selection.imbalance.imbalance_weights` of the training features and
    labels of :func:`mlabs.data.fold_split` (the features scaled as training scales them), with
    ``k_neighbors`` neighbours: the published per-label normalised weight (``imb_w_*``) and the raw
    one without the normalisation (``imb_w_raw_*``, the ``imbalance_raw`` ablation). Each gives
    :func:`imbalance_weight_summary`. Data sets without ``<prepared_dir>/<name>.npz`` are left out.

    Returns
    -------
    pandas.DataFrame
        Index ``dataset``; columns ``imb_w_share_above_1, imb_w_mean, imb_w_p90, imb_w_max`` and
        the same with ``imb_w_raw_``.
    """
    from ..data.preprocess import fold_split
    from ..data.store import load_prepared
    from ..selection.imbalance import imbalance_weights

    columns = [f"{prefix}_{stat}" for prefix in _WEIGHT_KINDS for stat in ("share_above_1", "mean", "p90", "max")]
    rows = {}
    for name in datasets:
        path = prepared_file(prepared_dir, name)
        if not path.is_file():  # left out, as the docstring says
            continue
        split = fold_split(load_prepared(path), fold)
        row = {}
        for prefix, normalise in _WEIGHT_KINDS.items():
            w = imbalance_weights(split.X_train, split.Y_train, k=k_neighbors, normalise=normalise)
            row.update({f"{prefix}_{k}": v for k, v in imbalance_weight_summary(w.cpu().numpy()).items()})
        rows[name] = row
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns).astype(float)
    frame.index.name = "dataset"
    return frame


# --- selection strength -----------------------------------------------------------------------

def _with_distinct_share(curves: pd.DataFrame) -> pd.DataFrame:
    """``distinct_share`` = distinct samples drawn / N, N of the (data set, fold) from its shuffled epochs.

    A warm-up epoch and every random epoch draw every training sample once, so their
    ``distinct_drawn`` is N; without such an epoch the share is NaN.
    """
    out = curves.copy()
    if "distinct_drawn" not in out:
        out["distinct_share"] = np.nan
        return out
    shuffled = out[(out["method"] == BASELINE) | (out["epoch"] <= out["warmup_epochs"].fillna(0))]
    n = shuffled.groupby(["dataset", "fold"])["distinct_drawn"].max().rename("_n")
    out = out.join(n, on=["dataset", "fold"])
    out["distinct_share"] = out["distinct_drawn"] / out["_n"]
    return out.drop(columns="_n")


def selection_strength_table(curves: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """How far each method's batches were from random ones, per (data set, method).

    Per cell, each of :data:`STRENGTH_COLUMNS` is averaged over the selection epochs (after the
    warm-up) and taken at the last epoch (``<column>_last``); both are then averaged over the
    cell's models, folds and seeds. ``p_ratio`` = p_max / p_min of the selection distribution (1
    for shuffled batches; inf where some sample cannot be drawn), ``kl_uniform`` = KL(p || uniform)
    in nats, ``distinct_share`` = distinct samples drawn in the epoch / N, ``drawn_fraction`` =
    samples drawn in the epoch / N (below 1 when InfoBatch prunes). For ``reweight`` p is the
    weighting distribution: its batches are shuffled.

    Returns
    -------
    pandas.DataFrame
        ``dataset, method, cells, <column>, <column>_last`` for each column; empty (with these
        columns) when the curves carry no selection-strength column (cells trained before the
        diagnostics existed).
    """
    stats_cols = [c for col in STRENGTH_COLUMNS for c in (col, f"{col}_last")]
    columns = ["dataset", "method", "cells", *stats_cols]
    if curves.empty or not {"p_ratio", "kl_uniform", "distinct_drawn", "drawn_fraction"} & set(curves.columns):
        return pd.DataFrame(columns=columns)
    frame = _with_distinct_share(curves)
    for col in STRENGTH_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    order = method_order(frame["method"].dropna(), methods)
    frame = frame[frame["method"].isin(order) & (frame["epoch"] > frame["warmup_epochs"].fillna(0))]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.sort_values(CELL_COLUMNS + ["epoch"], kind="mergesort")
    per_cell = frame.groupby(CELL_COLUMNS, dropna=False)[list(STRENGTH_COLUMNS)]
    cells = per_cell.mean().join(per_cell.last().add_suffix("_last")).reset_index()
    out = cells.groupby(["dataset", "method"])[stats_cols].mean()
    out.insert(0, "cells", cells.groupby(["dataset", "method"]).size())
    out = out.reset_index()
    out["_order"] = out["method"].map({m: i for i, m in enumerate(order)})
    out = out.sort_values(["dataset", "_order"], kind="mergesort").drop(columns="_order")
    return out[columns].reset_index(drop=True)


def selection_strength_markdown(table: pd.DataFrame) -> str:
    """The markdown of :func:`selection_strength_table` with its legend."""
    from .tables import to_markdown

    head = ("How far each method's batches were from random ones: per cell the mean over the selection epochs "
            "(after the warm-up) and the last epoch's value (`_last`), then the mean over models, folds and seeds. "
            "`p_ratio` = p_max / p_min of the selection distribution (1 = uniform; — where some sample cannot be "
            "drawn); `kl_uniform` = KL(p ‖ uniform) in nats (0 = uniform); `distinct_share` = distinct samples "
            "drawn in the epoch / N; `drawn_fraction` = samples drawn in the epoch / N (below 1 when an epoch "
            "prunes, InfoBatch; above 1 for the adaptive family, whose epoch is ceil(N / B) full batches where "
            "random's last batch holds the remainder: the same number of optimiser steps, up to B − 1 more "
            "samples). For `reweight`, p is the distribution its loss weights N p come from: its batches are "
            "shuffled. For `chain`, p is the distribution its chain seeds are drawn from; the walk's picks, "
            "restricted to one label's positives, are not in it (where the batches went: "
            "`figures/minority_share.png`).\n\n")
    if table.empty:
        return head + "No selection-strength columns in the curves of the reported cells.\n"
    return head + to_markdown(table, floatfmt=".4g")


# --- each ingredient's contribution -----------------------------------------------------------

def ingredient_table(results: pd.DataFrame, methods: Sequence[str], alpha: float = 0.05,
                     test_train_ratio: float | None = None, metrics: Sequence[str] | None = None,
                     vs_random: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each ingredient against random, and the adaptive family against reweighting.

    Parameters
    ----------
    results : pandas.DataFrame
        Test results and convergence rows (their concatenation, as :func:`write_report` builds it).
    methods : sequence of str
        The reported methods; the table keeps those of :data:`INGREDIENTS` (:func:`ablation_methods`).
    alpha, test_train_ratio, metrics
        As in :func:`~mlabs.report.statistics.verdict_table`, which gives every row: across data
        sets (unit = data set, Wilcoxon and Bayesian signed-rank) or, with one data set, within it.
    vs_random : pandas.DataFrame, optional
        The report's :func:`~mlabs.report.statistics.verdict_table` against random, whose rows are
        reused (same tests, same Holm families); computed here when not given.

    Returns
    -------
    pandas.DataFrame
        ``ingredient`` followed by the verdict table's columns, one row per (method, baseline,
        metric): every ingredient against ``random``, then, when ``reweight`` has results, each
        of adaptive and its variants against ``reweight`` (Holm over the metrics of each method and
        baseline). Empty when no ablation method is present.
    """
    from .statistics import VERDICT_COLUMNS

    order = ablation_methods(methods)
    present = set(finished_cells(results)["method"])
    order = [m for m in order if m in present]
    if not [m for m in order if m in ABLATION_METHODS]:
        return pd.DataFrame(columns=["ingredient", *VERDICT_COLUMNS])
    parts = []
    if BASELINE in present:
        table = (vs_random if vs_random is not None
                 else verdict_table(results, [BASELINE, *order], BASELINE, alpha, test_train_ratio, metrics))
        parts.append(table[table["method"].isin(order)])
    family = [m for m in order if m in _VS_REWEIGHT]
    if REWEIGHT in present and family:
        parts.append(verdict_table(results, [REWEIGHT, *family], REWEIGHT, alpha, test_train_ratio, metrics))
    if not parts:
        return pd.DataFrame(columns=["ingredient", *VERDICT_COLUMNS])
    out = pd.concat(parts, ignore_index=True)
    rank = {m: i for i, m in enumerate(INGREDIENTS)}
    out = out.assign(_b=(out["baseline"] != BASELINE).astype(int), _m=out["method"].map(rank))
    out = out.sort_values(["_b", "_m"], kind="mergesort").drop(columns=["_b", "_m"])
    out.insert(0, "ingredient", out["method"].map(INGREDIENTS))
    return out.reset_index(drop=True)


def ingredient_markdown(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """The markdown of :func:`ingredient_table` with its legend."""
    from .tables import to_markdown

    head = ("Which ingredient matters. Each method against `random`, and adaptive and its variants against "
            "`reweight` (shuffled batches whose per-sample objective is weighted by N p_i of the adaptive "
            "distribution: the same expected gradient as drawing from p, so the difference is what selecting "
            "batches adds to reweighting). Tests as in `verdicts.md`: across data sets (unit = data set, "
            "Wilcoxon and Bayesian signed-rank) or, with one data set, within it over its folds; `p_holm`: Holm "
            f"over the metrics of one method and baseline; better / worse need Holm p < {alpha:g}, more wins than "
            "losses and a mean difference beyond the tie margin.\n\n")
    if table.empty:
        return head + "No ablation method in the results.\n"
    return head + to_markdown(table, floatfmt=".4g")


# --- wall time ----------------------------------------------------------------------------------

def timing_table(results: pd.DataFrame, results_root: str | Path,
                 curves: pd.DataFrame | None = None) -> tuple[pd.DataFrame, int, int]:
    """Wall time per selection epoch of each method relative to random, from the timing sidecars.

    Per cell, the mean of ``epoch_seconds`` (:func:`mlabs.results.load_timing`) over the selection
    epochs (after the warm-up); per (data set, model, method) the median over its cells that have a
    sidecar (``timed_cells`` counts them; NaN where none has); ``ratio`` = that median / random's of the
    same data set and model. ``trained_fraction`` is the mean over the block's selection epochs of
    ``drawn_fraction`` from the curves (samples trained on per epoch / N; InfoBatch's saving), which
    does not depend on the machine and is there whether or not the cells were timed.

    Returns
    -------
    table : pandas.DataFrame
        ``dataset, model, method, timed_cells, epoch_seconds, ratio, trained_fraction``, one row per block
        with finished cells; empty when there is none.
    timed, total : int
        Finished cells with a usable sidecar, and finished cells.
    """
    columns = ["dataset", "model", "method", "timed_cells", "epoch_seconds", "ratio", "trained_fraction"]
    ok = finished_cells(results)
    if ok.empty:
        return pd.DataFrame(columns=columns), 0, 0
    rows = []
    for r in ok.itertuples():
        timing = load_timing(Path(results_root) / r.path) or {}
        warmup = 0 if pd.isna(r.warmup_epochs) else int(r.warmup_epochs)
        seconds = [s for s in timing.get("epoch_seconds", [])[warmup:] if np.isfinite(s)]
        rows.append({"dataset": r.dataset, "model": r.model, "method": r.method,
                     "seconds": float(np.mean(seconds)) if seconds else np.nan})
    cells = pd.DataFrame(rows)
    # "count" and "median" skip the cells without a sidecar
    table = cells.groupby(["dataset", "model", "method"]).agg(timed_cells=("seconds", "count"),
                                                              epoch_seconds=("seconds", "median")).reset_index()
    base = table[table["method"] == BASELINE].set_index(["dataset", "model"])["epoch_seconds"]
    table["ratio"] = table["epoch_seconds"].to_numpy() / base.reindex(
        pd.MultiIndex.from_frame(table[["dataset", "model"]])).to_numpy()
    table["trained_fraction"] = np.nan
    if curves is not None and len(curves) and "drawn_fraction" in curves:
        sel = curves[curves["epoch"] > curves["warmup_epochs"].fillna(0)]
        frac = sel.groupby(["dataset", "model", "method"])["drawn_fraction"].mean()
        table["trained_fraction"] = frac.reindex(pd.MultiIndex.from_frame(table[["dataset", "model", "method"]])).to_numpy()
    order = {m: i for i, m in enumerate(method_order(table["method"]))}
    table = table.assign(_o=table["method"].map(order)).sort_values(["dataset", "model", "_o"], kind="mergesort")
    return table.drop(columns="_o")[columns].reset_index(drop=True), int(cells["seconds"].notna().sum()), len(ok)


def timing_markdown(table: pd.DataFrame, timed: int, total: int) -> str:
    """The markdown of :func:`timing_table`: a per-method summary, then the blocks, labelled as machine-dependent."""
    from .tables import to_markdown

    head = ("# Wall time per epoch relative to random (machine-dependent)\n\n"
            "From the timing sidecars that training writes next to each cell's result, outside DVC's cache: "
            "these numbers depend on the machine and its load, differ between machines, and are absent for "
            "cells without a sidecar (docs/statistics.md). Per cell the mean wall time of a selection "
            "epoch (training pass only: after the warm-up, without evaluation); per data set and model the "
            "median over its timed cells (`timed_cells`); `ratio` = that / random's. `trained_fraction` = samples "
            "trained on per selection epoch / N (from the curves, not machine-dependent: below 1 where "
            "InfoBatch prunes).\n\n")
    fractions = not table.empty and table["trained_fraction"].notna().any()
    timed_line = (f"Timed cells: {timed} of {total} finished." if timed else
                  f"{TIMING_UNAVAILABLE}: 0 of {total} finished cells have one"
                  + ("; the trained fractions below come from the curves." if fractions else "."))
    if table.empty:
        return head + timed_line + "\n"
    summary = (table.groupby("method", sort=False)
               .agg(blocks=("method", "size"), timed_blocks=("epoch_seconds", "count"), median_ratio=("ratio", "median"),
                    min_ratio=("ratio", "min"), max_ratio=("ratio", "max"),
                    trained_fraction=("trained_fraction", "mean")).reset_index())
    return (head + timed_line + "\n\n## Per method (over data sets and models)\n\n"
            + to_markdown(summary, floatfmt=".3g") + "\n## Per data set and model\n\n"
            + to_markdown(table, floatfmt=".3g"))


# --- findings -----------------------------------------------------------------------------------

def _names(rows: pd.DataFrame) -> str:
    return ", ".join(f"{r.method} ({r.mean_diff:+.4f})" for r in rows.itertuples())


def ablation_findings(table: pd.DataFrame, results: pd.DataFrame, strength: pd.DataFrame | None = None,
                      metric: str = "macro_auc") -> str:
    """Two or three plain sentences on which ingredient matters where, generated from the numbers.

    ``table`` is :func:`ingredient_table`, ``results`` the test results (for the per-data-set
    gains), ``strength`` :func:`selection_strength_table`. Empty text when ``table`` is empty.
    """
    if table.empty:
        return ""
    if metric not in set(table["metric"]):
        metric = str(table["metric"].iloc[0])
    lines = ["", "## Which ingredient matters", ""]
    rows = table[(table["metric"] == metric) & (table["baseline"] == BASELINE)]
    sentences = []
    if len(rows):
        by = {v: rows[rows["verdict"] == v] for v in ("better", "no significant difference", "worse")}
        parts = [f"{label}: {_names(by[v])}" for v, label in
                 (("better", "better"), ("no significant difference", "no significant difference"),
                  ("worse", "worse")) if len(by[v])]
        sentences.append(f"Against random on `{metric}` ({rows['level'].iloc[0]}, n = {rows['unit'].iloc[0]}; "
                         f"mean difference in brackets), {'; '.join(parts)}.")
    rw = table[(table["metric"] == metric) & (table["baseline"] == REWEIGHT) & (table["method"] == "adaptive")]
    if len(rw):
        r = rw.iloc[0]
        same = r["verdict"] == "no significant difference"
        sentences.append(f"Adaptive selection against reweighting by the same probabilities: {r['verdict']} "
                         f"(mean difference {r['mean_diff']:+.4f}, Holm p = {format_p(r['p_holm'])}, Bayesian: "
                         f"{r['bayes_verdict']}), so drawing batches from p "
                         + ("did not measurably differ from weighting the loss by N p." if same else
                            f"did {'better' if r['verdict'] == 'better' else 'worse'} than weighting the loss by N p."))
    where = []
    methods = [m for m in dict.fromkeys(rows["method"])] if len(rows) else []
    gains = {}
    for method in methods:
        means = dataset_means(results, metric, method, BASELINE, POOLED)
        for ds, m in means.iterrows():
            gains.setdefault(ds, []).append((float(m.x - m.y), method))
    from .conventions import higher_is_better

    sign = 1.0 if higher_is_better(metric) else -1.0
    winners: dict[str, list[tuple[str, float]]] = {}
    for ds in sorted(gains):
        gain, method = max(gains[ds], key=lambda t: (sign * t[0], t[1]))
        if sign * gain > tie_margin(metric):
            winners.setdefault(method, []).append(f"{ds} ({gain:+.4f})")
        else:
            winners.setdefault("no method beyond the tie margin", []).append(f"{ds} (best {method} {gain:+.4f})")
    for key, items in winners.items():
        where.append(f"{key} on {', '.join(items)}")
    if where:
        sentences.append(f"Per data set, the largest `{metric}` gain over random (pooled over models): "
                         + "; ".join(where) + ".")
    if strength is not None and len(strength) and strength["p_ratio"].notna().any():
        med = strength[strength["method"] != BASELINE].groupby("method", sort=False)["p_ratio"].median()
        if len(med):
            sentences.append("Median over data sets of p_max / p_min over the selection epochs: "
                             + ", ".join(f"{m} {v:.3g}" for m, v in med.items()) + " (1 = random batches).")
    lines.append(" ".join(sentences))
    return "\n".join(lines) + "\n"
