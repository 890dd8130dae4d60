"""The paper's claim where it makes it: do the gains over random grow with imbalance or labels?

Per data set, the difference method − random (pooled over models: the mean over folds and models,
as in the across-data-set tests) of macro-AUC, macro-F1 and epochs to 95 % is set against the data
set's imbalance (MeanIR after preprocessing), its number of labels and its label cardinality, and
for chain against the strength of label correlation (the mean off-diagonal entry of the
conditional co-occurrence matrix the chain sampler uses, from the training labels). Spearman rank
correlations with Holm's correction over every correlation tested (docs/statistics.md); their
p-values are exact (every pairing of the ranks) up to :data:`EXACT_SPEARMAN_MAX` data sets, where
the usual t approximation is far too small (n = 4, rho = 1: 0 instead of 2/4! = 0.083).
"""

from __future__ import annotations

import functools
import itertools

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .statistics import POOLED, dataset_means, holm

__all__ = ["CHARACTERISTICS", "OUTCOMES", "MIN_DATASETS_CORRELATION", "label_correlation_strength",
           "dataset_characteristics", "dataset_differences", "characteristic_correlations", "spearman",
           "EXACT_SPEARMAN_MAX"]

#: column -> (key in reports/datasets/<name>.json or None when computed here, axis label)
CHARACTERISTICS = {
    "mean_ir": ("MeanIR'", "imbalance (MeanIR after preprocessing)"),
    "labels": ("q'", "labels after preprocessing"),
    "cardinality": ("cardinality'", "label cardinality"),
    "label_correlation": (None, "label correlation (mean P(j|i), training labels)"),
}
#: the differences tested (method − random)
OUTCOMES = ("macro_auc", "macro_f1", "epochs_to_95")
#: fewest data sets for a rank correlation (with 3 the smallest two-sided Spearman p is 0.33)
MIN_DATASETS_CORRELATION = 4
#: up to this many data sets the Spearman p-value enumerates all n! pairings (9! = 362,880)
EXACT_SPEARMAN_MAX = 9
#: characteristics tested per method; a method not named here gets the ``None`` entry
_TESTED = {"chain": ("mean_ir", "labels", "cardinality", "label_correlation"),
           None: ("mean_ir", "labels", "cardinality")}


def label_correlation_strength(Y, fold: np.ndarray | None = None) -> float:
    """Mean off-diagonal conditional probability P(j | i) = C_ij / n_i over ordered label pairs.

    The mean of the off-diagonal entries of the chain sampler's symmetric matrix ``(P(j|i) + P(i|j)) / 2``
    (:func:`mlabs.selection.imbalance.label_correlation`) is the same number. With ``fold`` it is
    computed on each fold's training labels (every other fold) and averaged over the folds, so no
    held-out label enters it; labels without a positive in a training part are left out.
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] < 2:
        return np.nan
    parts = [np.ones(len(Y), bool)] if fold is None else [np.asarray(fold) != f for f in np.unique(fold)]
    values = []
    for train in parts:
        y = Y[train]
        c = y.T @ y
        n = np.diag(c).copy()
        keep = n > 0
        cond = c[keep][:, keep] / n[keep][:, None]     # row i: P(j | i)
        q = int(keep.sum())
        if q >= 2:
            values.append((cond.sum() - np.trace(cond)) / (q * (q - 1)))
    return float(np.mean(values)) if values else np.nan


def dataset_characteristics(datasets_dir: str | Path | None, datasets: Sequence[str] | None = None,
                            labels: Mapping[str, tuple] | None = None) -> pd.DataFrame:
    """One row per data set: the columns of :data:`CHARACTERISTICS`.

    ``datasets_dir`` holds ``<name>.json`` (the prepare stage's statistics); ``labels`` maps a data
    set to ``(Y, fold)`` of its prepared data for the label correlation (NaN where absent).
    ``datasets`` restricts the rows.
    """
    rows = {}
    for path in sorted(Path(datasets_dir).glob("*.json")) if datasets_dir is not None else []:
        payload = json.loads(path.read_text())
        name = payload.get("name", path.stem)
        rows[name] = {col: payload.get(key, np.nan) for col, (key, _) in CHARACTERISTICS.items() if key}
    for name in labels or {}:
        rows.setdefault(name, {})
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(CHARACTERISTICS)).astype(float)
    frame.index.name = "dataset"
    for name, (Y, fold) in (labels or {}).items():
        frame.loc[name, "label_correlation"] = label_correlation_strength(Y, fold)
    if datasets is not None:
        frame = frame.reindex([d for d in datasets if d in frame.index])
    return frame.sort_index()


def dataset_differences(results: pd.DataFrame, methods: Sequence[str], baseline: str = "random",
                        outcomes: Sequence[str] = OUTCOMES) -> pd.DataFrame:
    """Per data set, method and outcome: method − baseline, pooled over models (:func:`dataset_means`).

    Differences are rounded to 12 decimals, so that equal gains tie in the rank correlation.

    ``results`` carries the test metrics and the convergence rows (their concatenation). Long
    frame: ``dataset, method, outcome, diff``.
    """
    rows = []
    for method in [m for m in methods if m != baseline]:
        for outcome in outcomes:
            if outcome not in results:
                continue
            means = dataset_means(results, outcome, method, baseline, POOLED)
            # rounded like the Wilcoxon test's differences: equal gains must not be ranked by float noise
            rows += [{"dataset": ds, "method": method, "outcome": outcome, "diff": round(float(r.x - r.y), 12)}
                     for ds, r in means.iterrows()]
    return pd.DataFrame(rows, columns=["dataset", "method", "outcome", "diff"])


@functools.lru_cache(maxsize=None)
def _pairings(n: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(n))), dtype=np.int8)


def spearman(x, y) -> tuple[float, float]:
    """Spearman's rho of ``x`` and ``y`` and its two-sided p-value.

    Up to :data:`EXACT_SPEARMAN_MAX` pairs the p-value is exact: the share of the n! pairings of
    the ranks (average ranks for ties) whose |rho| reaches the observed one. Beyond, scipy's t
    approximation, which is close there.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    res = stats.spearmanr(x, y)
    rho, n = float(res.statistic), len(x)
    if n > EXACT_SPEARMAN_MAX:
        return rho, float(res.pvalue)
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    perm = ry[_pairings(n)] @ rx / np.sqrt((rx @ rx) * (ry @ ry))
    return rho, float(np.mean(np.abs(perm) >= abs(rho) - 1e-12))


def characteristic_correlations(diffs: pd.DataFrame, chars: pd.DataFrame,
                                min_datasets: int = MIN_DATASETS_CORRELATION) -> pd.DataFrame:
    """Spearman rank correlation of each difference with each characteristic, Holm-corrected.

    Methods get :data:`_TESTED`'s characteristics (label correlation for chain only). The Holm
    family is every correlation computed here (``family`` states its size). With fewer than
    ``min_datasets`` data sets carrying both values a correlation is not computed (``note``).

    Returns
    -------
    pandas.DataFrame
        ``method, outcome, characteristic, n, rho, p_value, p_holm, family, note``.
    """
    rows = []
    for (method, outcome), part in diffs.groupby(["method", "outcome"], sort=False):
        for char in _TESTED.get(method, _TESTED[None]):
            joined = part.set_index("dataset")["diff"].to_frame().join(
                chars[char] if char in chars else pd.Series(dtype=float, name=char), how="inner").dropna()
            n = len(joined)
            row = {"method": method, "outcome": outcome, "characteristic": char, "n": n,
                   "rho": np.nan, "p_value": np.nan, "note": ""}
            if n < min_datasets:
                row["note"] = f"n = {n} data set{'s' * (n != 1)} (< {min_datasets}): not computed"
            elif joined["diff"].nunique() < 2 or joined[char].nunique() < 2:
                row["note"] = "constant values: not computed"
            else:
                row["rho"], row["p_value"] = spearman(joined["diff"], joined[char])
            rows.append(row)
    out = pd.DataFrame(rows, columns=["method", "outcome", "characteristic", "n", "rho", "p_value", "note"])
    out["p_holm"] = holm(out["p_value"].to_numpy(float)) if len(out) else []
    m = int(out["p_value"].notna().sum())
    out["family"] = f"Holm over the {m} Spearman correlation{'s' * (m != 1)} computed"
    return out[["method", "outcome", "characteristic", "n", "rho", "p_value", "p_holm", "family", "note"]]
