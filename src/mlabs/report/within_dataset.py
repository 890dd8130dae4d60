"""Tests within one data set over its cross-validation folds: the correlated t-tests.

The folds of one data set share most of their training data, so their differences are
correlated and an ordinary paired test over them (or a Wilcoxon test that treats them as
independent) gives p-values that are too small. Nadeau & Bengio (2003) correct the variance of
the mean difference from ``s² / n`` to ``(1/n + n_test/n_train) s²``; the Bayesian correlated
t-test (Corani & Benavoli 2015; Benavoli et al. 2017, baycomp's ``CorrelatedTTest``) uses the same
corrected variance as the scale of a Student posterior, with the metric's tie margin as region
of practical equivalence. docs/statistics.md derives the ratio for the study's protocol.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .collect import finished_cells
from .conventions import higher_is_better, method_order, tie_margin
from .statistics import POOLED, _pairs, wins_ties_losses

__all__ = ["POOLED", "protocol_test_train_ratio", "prepared_test_train_ratio", "corrected_ttest", "correlated_bayes",
           "within_dataset_table", "DEFAULT_FOLDS"]

#: the protocol's number of folds (params.yaml data.n_folds), the default of the correction
DEFAULT_FOLDS = 5


def protocol_test_train_ratio(n_folds: int = DEFAULT_FOLDS) -> float:
    """n_test / n_train of the study's protocol: 1 / (2 (k - 1)) for k folds.

    Each run trains on k - 1 folds ((k - 1) n / k samples) and tests on half of the held-out fold
    (n / (2k); the other half is the validation part), so n_test / n_train = 1 / (2 (k - 1)):
    0.125 for 5 folds. (With plain k-fold CV, testing on the whole held-out fold, the ratio is
    1 / (k - 1), the value baycomp's ``CorrelatedTTest`` assumes.)
    """
    if int(n_folds) != n_folds or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    return 1.0 / (2.0 * (n_folds - 1))


def prepared_test_train_ratio(fold: np.ndarray, part: np.ndarray) -> float:
    """Mean n_test / n_train over the folds of a prepared data set (its ``fold`` and ``part`` arrays).

    ``part == 1`` marks the test half of a held-out fold; training is every other fold.
    """
    fold, part = np.asarray(fold), np.asarray(part)
    ratios = [np.sum((fold == f) & (part == 1)) / np.sum(fold != f) for f in np.unique(fold)]
    return float(np.mean(ratios))


def corrected_ttest(gain, ratio: float) -> tuple[float, float, float]:
    """Nadeau & Bengio's corrected resampled t-test of paired differences ``gain`` (two-sided).

    t = mean / sqrt((1/n + ratio) s²) with s² the sample variance (ddof 1) and n - 1 degrees of
    freedom; ``ratio`` = n_test / n_train. Returns ``(t, p, corrected variance)``; NaN for fewer
    than 2 differences. Equal differences have no variance (float noise would fake one): t = 0 and
    p = 1 when they are all zero, else t = ±inf and p = 0, the limit of the test and what the
    Bayesian correlated t-test concludes from the same differences.
    """
    d = np.asarray(gain, dtype=float)
    n = len(d)
    if n < 2:
        return np.nan, np.nan, np.nan
    if np.ptp(d) == 0:
        return (0.0, 1.0, 0.0) if d[0] == 0 else (float(np.copysign(np.inf, d[0])), 0.0, 0.0)
    var = (1.0 / n + ratio) * np.var(d, ddof=1)
    t = float(np.mean(d) / np.sqrt(var))
    return t, float(2 * stats.t.sf(abs(t), n - 1)), float(var)


def correlated_bayes(gain, ratio: float, rope: float) -> tuple[float, float, float]:
    """P(better), P(practically equivalent), P(worse) of the Bayesian correlated t-test.

    baycomp's posterior (``baycomp.single.Posterior``): Student t with n - 1 degrees of freedom,
    location the mean of ``gain`` (differences in the better direction), scale the corrected
    variance of :func:`corrected_ttest`, rope ``rope``. baycomp's ``CorrelatedTTest`` computes the
    same with ratio = 1 / (folds - 1), plain k-fold CV; this takes the protocol's ratio instead.
    """
    from baycomp.single import Posterior

    d = np.asarray(gain, dtype=float)
    n = len(d)
    if n < 2:
        return np.nan, np.nan, np.nan
    var = 0.0 if np.ptp(d) == 0 else (1.0 / n + ratio) * np.var(d, ddof=1)  # baycomp's var == 0 branch
    worse, equivalent, better = Posterior(float(np.mean(d)), float(var), n - 1, rope).probs()
    return float(better), float(equivalent), float(worse)


def _unit(n: int, dataset: str, seeds: int, models: int) -> str:
    mean = [f"{seeds} seeds" if seeds > 1 else "", f"{models} models" if models > 1 else ""]
    mean = " and ".join(m for m in mean if m)
    return f"{n} fold{'s' * (n != 1)} of {dataset}" + (f" (mean of {mean})" if mean else "")


_COLUMNS = ["dataset", "model", "method", "baseline", "n", "unit", "mean_diff", "d", "t", "p_value", "wins",
            "ties", "losses", "p_better", "p_equivalent", "p_worse", "ratio", "note"]


def within_dataset_table(results: pd.DataFrame, metric: str, baseline: str = "random",
                         methods: Sequence[str] | None = None, test_train_ratio: float | None = None) -> pd.DataFrame:
    """Each method against ``baseline`` within each data set, over its folds.

    Per data set, per model and pooled (model :data:`POOLED`: per fold the mean over the models
    that ran both methods), the paired differences in the better direction go into
    :func:`corrected_ttest` and :func:`correlated_bayes` (rope = :func:`tie_margin`).
    ``test_train_ratio`` defaults to :func:`protocol_test_train_ratio` of :data:`DEFAULT_FOLDS`.
    Runs of one fold under several seeds share their training and test data, so they are one
    resample, not several: each fold's value is the mean over its seeds, and n = the folds.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, model, method, baseline, n`` (paired folds), ``unit``, ``mean_diff``
        (method − baseline), ``d`` (standardized mean difference in the better direction, mean /
        sd), ``t, p_value``, ``wins, ties, losses`` (over folds), ``p_better, p_equivalent,
        p_worse``, ``ratio``, ``note``.
    """
    ratio = protocol_test_train_ratio(DEFAULT_FOLDS) if test_train_ratio is None else float(test_train_ratio)
    sign = 1.0 if higher_is_better(metric) else -1.0
    ok = finished_cells(results)
    order = [m for m in method_order(ok["method"], methods) if m != baseline]
    rows = []
    for method in order:
        pairs = _pairs(results, metric, method, baseline)
        for dataset in sorted(pairs["dataset"].unique()):
            part = pairs[pairs["dataset"] == dataset]
            models = sorted(part["model"].unique())
            for model in [*models, POOLED]:
                chosen = part if model == POOLED else part[part["model"] == model]
                n_models = len(models) if model == POOLED else 1
                # the mean over models per (fold, seed), then over seeds per fold
                runs = (chosen.groupby(["fold", "seed"]).agg(x=("x", "mean"), y=("y", "mean"))
                        .groupby(level="fold").mean())
                x, y = runs["x"].to_numpy(float), runs["y"].to_numpy(float)
                gain = sign * (x - y)
                n = len(gain)
                n_seeds = part["seed"].nunique()
                t, p, _ = corrected_ttest(gain, ratio)
                better, equivalent, worse = correlated_bayes(gain, ratio, tie_margin(metric))
                sd = np.std(gain, ddof=1) if n > 1 else np.nan
                w, ti, lo = wins_ties_losses(pd.Series(x), pd.Series(y), metric)
                note = ("fewer than 2 paired folds: not computed" if n < 2 else
                        "all differences are equal: no variance" if np.ptp(gain) == 0 else "")
                rows.append({"dataset": dataset, "model": model, "method": method, "baseline": baseline, "n": n,
                             "unit": _unit(n, dataset, n_seeds, n_models), "mean_diff": float(np.mean(x - y)),
                             "d": float(np.mean(gain) / sd) if n > 1 and sd > 0 else np.nan, "t": t, "p_value": p,
                             "wins": w, "ties": ti, "losses": lo, "p_better": better, "p_equivalent": equivalent,
                             "p_worse": worse, "ratio": ratio, "note": note})
    return pd.DataFrame(rows, columns=_COLUMNS)
