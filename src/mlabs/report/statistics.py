"""Tests of each method against the baseline, the Friedman / Nemenyi test, Holm's correction, verdicts.

The unit of the across-data-set tests is the **data set** (Demšar 2006; docs/statistics.md): a
method's value on a data set is the mean over its folds (and seeds) and, pooled over models, the
mean over the models, so that n = the number of data sets and no data set counts twice. Within
one data set the folds are the unit and the tests are the correlated ones of
:mod:`~mlabs.report.within_dataset`.

The statistics come from scipy (``wilcoxon``, ``friedmanchisquare``), scikit-posthocs
(``posthoc_nemenyi_friedman``) and baycomp (``SignedRankTest``). Win / tie / loss compare means in
the metric's direction; a difference within the metric's tie margin
(:func:`~mlabs.report.conventions.tie_margin`: 0.005 for the metrics, 1 epoch for epochs to 95 %)
is a tie in those counts and the Bayesian tests' region of practical equivalence (rope). The
Wilcoxon test ranks the differences as they are (Demšar 2006: zero differences split between the
two rank sums), so a small difference that recurs on every data set counts as evidence.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..convergence import CONVERGENCE_METRICS
from ..metrics import REPORTED_METRICS
from .collect import finished_cells
from .conventions import higher_is_better, method_order, tie_margin
from .tables import block_means, to_markdown

__all__ = [
    "POOLED", "MIN_DATASETS", "FriedmanResult", "holm", "add_holm", "dataset_means", "wilcoxon_table",
    "wins_ties_losses", "friedman_nemenyi", "friedman_markdown", "verdict", "bayes_verdict",
    "verdict_table", "verdicts_by_seed", "format_p", "unit_text", "rank_biserial", "bayes_signed_rank",
    "critical_difference", "VERDICT_COLUMNS", "BAYES_THRESHOLD", "paired_differences", "MIN_DATASETS_BAYES",
]

#: The ``model`` of a pooled row: one value per data set, the mean over the models.
POOLED = "pooled"
#: Fewest data sets over which the across-data-set tests are computed; with one data set the
#: verdicts come from the correlated tests within it (:mod:`~mlabs.report.within_dataset`).
MIN_DATASETS = 2
#: Fewest data sets for a Bayesian signed-rank verdict. Its prior is one pseudo-observation at zero
#: with weight 0.5, so two data sets inside the rope already give P(equivalent) = 1 and two
#: concordant gains of 0.05 give P(better) = 0.96; six is also the fewest with which the
#: two-sided Wilcoxon test can reach p < 0.05, so both tests ask for the same evidence.
MIN_DATASETS_BAYES = 6
#: A Bayesian verdict needs one of the three posterior probabilities above this.
BAYES_THRESHOLD = 0.95
#: Posterior samples of the Bayesian signed-rank test, drawn with a fixed seed (reproducible report).
BAYES_SAMPLES = 50_000
_DIFF_DECIMALS = 12  # paired differences are rounded to this before the Wilcoxon test
#: Most arrangements of the ranks, (k!)^(N - 1), over which the Friedman p-value is exact.
EXACT_FRIEDMAN_MAX = 1_000_000


def wins_ties_losses(a: pd.Series, b: pd.Series, metric: str) -> tuple[int, int, int]:
    """Win / tie / loss of ``a`` against ``b``; differences within the tie margin are ties."""
    diff = (a - b) if higher_is_better(metric) else (b - a)
    margin = tie_margin(metric) + 1e-12  # a difference of exactly the margin is a tie
    return int((diff > margin).sum()), int((diff.abs() <= margin).sum()), int((diff < -margin).sum())


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values; NaN entries stay NaN and are not in the family.

    With the m finite p-values sorted ascending, p_(i) becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``
    (Holm 1979); rejecting where the adjusted value is below alpha controls the family-wise error
    rate at alpha for any dependence between the tests.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="mergesort")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def _family_text(metrics: Sequence[str], method: str, baseline: str, scope: str) -> str:
    n_conv = sum(m in CONVERGENCE_METRICS for m in metrics)
    n_metric = len(metrics) - n_conv
    parts = [f"{n_metric} metric{'s' * (n_metric != 1)}"] if n_metric else []
    if n_conv:
        parts.append(f"{n_conv} convergence measure{'s' * (n_conv != 1)}")
    if not parts:
        return f"no test computed for {method} vs {baseline}, {scope}"
    return f"Holm over {' + '.join(parts)} for {method} vs {baseline}, {scope}"


def add_holm(table: pd.DataFrame, by: Sequence[str], scope=None) -> pd.DataFrame:
    """Add ``p_holm`` and ``family``: Holm's correction over the metrics of each group of ``by``.

    ``table`` holds one row per test with columns ``metric``, ``method``, ``baseline``, ``p_value``
    and those of ``by`` (e.g. ``["method", "model"]``): each group is one family, the metrics tested
    for one method in one scope. ``scope(row) -> str`` names the scope in ``family`` (default: the
    values of ``by`` other than the method).
    """
    out = table.copy()
    out["p_holm"] = np.nan
    out["family"] = ""
    if out.empty:
        return out
    for _, part in out.groupby(list(by), sort=False, dropna=False):
        idx = part.index
        out.loc[idx, "p_holm"] = holm(part["p_value"].to_numpy(float))
        tested = list(part.loc[part["p_value"].notna(), "metric"])
        first = part.iloc[0]
        where = scope(first) if scope else ", ".join(f"{k} {first[k]}" for k in by if k != "method")
        out.loc[idx, "family"] = _family_text(tested, first["method"], first["baseline"], where)
    return out


def _pairs(results: pd.DataFrame, metric: str, method: str, baseline: str) -> pd.DataFrame:
    """Runs of ``method`` and ``baseline`` matched on (dataset, model, fold, seed): columns x, y."""
    ok = finished_cells(results)
    key = ["dataset", "model", "fold", "seed"]
    if metric not in ok:
        return pd.DataFrame(columns=key + ["x", "y"])
    x = ok[ok["method"] == method][key + [metric]].rename(columns={metric: "x"})
    y = ok[ok["method"] == baseline][key + [metric]].rename(columns={metric: "y"})
    merged = x.merge(y, on=key, how="inner").dropna(subset=["x", "y"])
    return merged.sort_values(key, kind="mergesort").reset_index(drop=True)


def _span(values) -> str:
    values = sorted({int(v) for v in values})
    return "0" if not values else str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def dataset_means(results: pd.DataFrame, metric: str, method: str, baseline: str,
                  model: str | None = None) -> pd.DataFrame:
    """One row per data set: the method's (``x``) and the baseline's (``y``) mean over paired runs.

    With ``model`` the runs of that model only; otherwise (pooled) the mean over models of the
    per-model means, so each data set counts once whatever its number of models. Columns ``x, y``,
    ``folds_min, folds_max, seeds_min, seeds_max`` (paired folds and seeds per model, the smallest
    and largest) and ``models``.
    """
    pairs = _pairs(results, metric, method, baseline)
    if model is not None and model != POOLED:
        pairs = pairs[pairs["model"] == model]
    if pairs.empty:
        return pd.DataFrame(columns=["x", "y", "folds_min", "folds_max", "seeds_min", "seeds_max", "models"],
                            index=pd.Index([], name="dataset"))
    blocks = pairs.groupby(["dataset", "model"]).agg(x=("x", "mean"), y=("y", "mean"), folds=("fold", "nunique"),
                                                     seeds=("seed", "nunique"))
    return blocks.groupby("dataset").agg(x=("x", "mean"), y=("y", "mean"), folds_min=("folds", "min"),
                                         folds_max=("folds", "max"), seeds_min=("seeds", "min"),
                                         seeds_max=("seeds", "max"), models=("x", "size"))


def unit_text(n: int, folds: Sequence[int], models: Sequence[int], seeds: Sequence[int] = ()) -> str:
    """The unit and n of an across-data-set test, e.g. "14 data sets (mean of 5 folds and 2 models)"
    or, with several seeds, "3 data sets (mean of 5 folds, 2 seeds and 2 models)"."""
    what = [f"{_span(folds)} folds" if len(folds) else None,
            f"{_span(seeds)} seeds" if len(seeds) and max(seeds) > 1 else None,
            f"{_span(models)} model{'s' * (max(models, default=1) != 1)}" if len(models) else None]
    what = [w for w in what if w]
    inner = " and ".join(what) if len(what) < 3 else f"{what[0]}, {what[1]} and {what[2]}"
    return f"{n} data set{'s' * (n != 1)}" + (f" (mean of {inner})" if inner else "")


def _wilcoxon(x: np.ndarray, y: np.ndarray, min_pairs: int = 2) -> tuple[float, float, str]:
    """scipy's two-sided Wilcoxon signed-rank test; NaN with a note where it cannot run.

    Zero differences are split evenly between the two rank sums (``zero_method="zsplit"``, as
    Demšar 2006 recommends); when every difference is zero there is no evidence either way: p = 1.
    """
    n = len(x)
    if n < min_pairs:
        return np.nan, np.nan, f"n = {n}: not computed"
    # Differences that are equal in exact arithmetic (metrics on a finite test set are often
    # multiples of 1/n) can differ in the last bits, which splits ties, changes the ranks and
    # switches scipy between its exact and approximate p-values; rounding far below any real
    # difference removes that noise. scipy then gets the differences (its one-sample form).
    d = _zeroed(x, y, 0.0)
    if np.all(d == 0):
        return np.nan, 1.0, "all differences are zero"
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = stats.wilcoxon(d, zero_method="zsplit")
        except ValueError as exc:  # scipy refuses some degenerate inputs
            return np.nan, np.nan, f"not computed: {exc}"
    notes += sorted({str(w.message).split(";")[0].split(".")[0] for w in caught})
    if wilcoxon_min_p(n) >= 0.05:
        notes.append(f"only {n} pairs: p >= {wilcoxon_min_p(n):.3g}")
    return float(res.statistic), float(res.pvalue), "; ".join(notes)


def wilcoxon_min_p(n: int) -> float:
    """The smallest two-sided exact p-value of the signed-rank test on ``n`` pairs: all of them the
    same way, 2 / 2^n (so below 6 pairs it cannot reach 0.05)."""
    return 2.0 ** (1 - n)


def _zeroed(x, y, margin: float) -> np.ndarray:
    d = np.round(np.asarray(x, float) - np.asarray(y, float), _DIFF_DECIMALS)
    d[np.abs(d) <= margin + 1e-12] = 0.0
    return d


def rank_biserial(x, y, metric: str) -> float:
    """Matched-pairs rank-biserial correlation in the better direction (Kerby 2014): (T+ - T-) / (T+ + T-).

    The Wilcoxon test's effect size, in [-1, 1], on the differences the test ranks: +1 when the
    method is better on every data set with a difference, -1 when worse on every one; zero
    differences are dropped.
    """
    d = _zeroed(x, y, 0.0)
    if not higher_is_better(metric):
        d = -d
    d = d[d != 0]
    if not len(d):
        return np.nan
    ranks = stats.rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def bayes_signed_rank(x, y, metric: str, nsamples: int = BAYES_SAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """P(method better), P(practically equivalent), P(baseline better): the Bayesian signed-rank test.

    ``x`` (method) and ``y`` (baseline) are data-set means; the rope is the metric's tie margin
    (Benavoli, Corani, Demšar & Zaffalon 2017). Values are oriented so that "better" follows the
    metric's direction. This is baycomp's ``SignedRankTest`` (prior 0.5 on a pseudo-observation at
    zero, ``nsamples`` Dirichlet draws from ``numpy.random.RandomState(seed)``) with its per-sample
    loop written as matrix products: the same draws give the same probabilities
    (tests/test_statistics.py compares them) without a Python loop over the 50 000 draws, which
    the report needs since it runs the test for every metric, method and model.
    """
    sign = 1.0 if higher_is_better(metric) else -1.0
    rope = tie_margin(metric)
    gain = sign * (np.asarray(x, float) - np.asarray(y, float))
    diff = np.concatenate(([0.0], gain))
    sums = diff[:, None] + diff[None, :]
    # Heaviside with H(0) = 1/2, as baycomp: pairs of data sets whose summed gain is beyond 2 rope
    above = (sums > 2 * rope) + 0.5 * (sums == 2 * rope)
    below = (-sums > 2 * rope) + 0.5 * (-sums == 2 * rope)
    weights = np.ones(len(diff))
    weights[0] = 0.5
    draws = np.random.RandomState(seed).dirichlet(weights, nsamples)
    p_above = np.einsum("si,ij,sj->s", draws, above, draws)
    p_below = np.einsum("si,ij,sj->s", draws, below, draws)
    samples = np.stack([p_below, 1.0 - p_below - p_above, p_above], axis=1)
    # baycomp counts, per draw, which of the three has the largest mass
    worse, equivalent, better = np.bincount(np.argmax(samples, axis=1), minlength=3) / nsamples
    return float(better), float(equivalent), float(worse)


_TABLE_COLUMNS = ["model", "method", "baseline", "n", "unit", "mean_diff", "rank_biserial", "statistic",
                  "p_value", "wins", "ties", "losses", "p_better", "p_equivalent", "p_worse", "note"]


def wilcoxon_table(results: pd.DataFrame, metric: str, baseline: str = "random",
                   methods: Sequence[str] | None = None, bayes: bool = True) -> pd.DataFrame:
    """Each method against ``baseline`` across data sets: Wilcoxon signed-rank and Bayesian signed-rank.

    Per model and pooled over models (model :data:`POOLED`), the unit is the data set
    (:func:`dataset_means`): n = number of data sets. Wilcoxon: :func:`scipy.stats.wilcoxon`
    (two-sided) on the differences of data-set means rounded to 12 decimals, zero differences split
    between the rank sums. Bayesian (``bayes``): :func:`bayes_signed_rank` with the tie margin as
    rope. With fewer than :data:`MIN_DATASETS` data sets neither test is computed, with fewer than
    :data:`MIN_DATASETS_BAYES` the Bayesian one is not (``note`` says so).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, method, baseline, n`` (data sets), ``unit`` (text with n, folds, models),
        ``mean_diff`` (method − baseline, mean over data sets), ``rank_biserial`` (effect size in
        the better direction), ``statistic, p_value``, ``wins, ties, losses`` (over data sets),
        ``p_better, p_equivalent, p_worse`` (Bayesian), ``note``. Never raises for lack of data.
    """
    higher_is_better(metric)
    ok = finished_cells(results)
    order = [m for m in method_order(ok["method"], methods) if m != baseline]
    models = sorted(ok["model"].unique())
    rows = []
    for method in order:
        for model in [*models, POOLED]:
            means = dataset_means(results, metric, method, baseline, model)
            n = len(means)
            row = {"model": model, "method": method, "baseline": baseline, "n": n,
                   "unit": unit_text(n, [*means["folds_min"], *means["folds_max"]], means["models"],
                                     [*means["seeds_min"], *means["seeds_max"]]),
                   "mean_diff": float((means["x"] - means["y"]).mean()) if n else np.nan,
                   "rank_biserial": np.nan, "statistic": np.nan, "p_value": np.nan,
                   "p_better": np.nan, "p_equivalent": np.nan, "p_worse": np.nan}
            row["wins"], row["ties"], row["losses"] = wins_ties_losses(means["x"], means["y"], metric)
            if baseline not in set(ok["method"]):
                row["note"] = f"baseline {baseline!r} has no finished cells"
            elif n < MIN_DATASETS:
                row["note"] = f"n = {n} data set{'s' * (n != 1)}: not computed"
            else:
                row["statistic"], row["p_value"], row["note"] = _wilcoxon(means["x"].to_numpy(), means["y"].to_numpy())
                row["rank_biserial"] = rank_biserial(means["x"].to_numpy(), means["y"].to_numpy(), metric)
                if bayes and n < MIN_DATASETS_BAYES:
                    row["note"] = "; ".join(filter(None, [row["note"], f"Bayesian signed-rank test not computed "
                                                                      f"with fewer than {MIN_DATASETS_BAYES} data sets"]))
                elif bayes:
                    row["p_better"], row["p_equivalent"], row["p_worse"] = bayes_signed_rank(
                        means["x"].to_numpy(), means["y"].to_numpy(), metric)
            rows.append(row)
    return pd.DataFrame(rows, columns=_TABLE_COLUMNS)


def paired_differences(results: pd.DataFrame, metric: str, baseline: str = "random",
                       methods: Sequence[str] | None = None, confidence: float = 0.95,
                       test_train_ratio: float = 0.125) -> pd.DataFrame:
    """Mean difference method − ``baseline`` per (dataset, model) with its corrected interval.

    The runs are paired as in :func:`wilcoxon_table` (on dataset, model, fold and seed); each
    fold's difference is the mean over its seeds (they share the fold's data). The interval is
    the Nadeau–Bengio one, mean ± t_(n-1) sqrt((1/n + ``test_train_ratio``) s²) over the n folds
    (NaN for one fold), so that it agrees with the corrected t-test of
    :mod:`~mlabs.report.within_dataset`: it excludes 0 exactly where that test's p < 1 − confidence.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric, dataset, model, method, baseline, n_pairs`` (folds), ``mean_diff,
        ci_low, ci_high``, one row per block and non-baseline method with at least one pair.
    """
    higher_is_better(metric)
    cols = ["metric", "dataset", "model", "method", "baseline", "n_pairs", "mean_diff", "ci_low", "ci_high"]
    ok = finished_cells(results)
    rows = []
    for method in [m for m in method_order(ok["method"], methods) if m != baseline]:
        pairs = _pairs(results, metric, method, baseline)
        for (dataset, model), p in pairs.groupby(["dataset", "model"], sort=True):
            d = (p["x"] - p["y"]).groupby(p["fold"]).mean().to_numpy(float)
            mean, n = float(d.mean()), len(d)
            half = (float(stats.t.ppf(0.5 + confidence / 2, n - 1)
                          * math.sqrt((1.0 / n + test_train_ratio) * d.var(ddof=1))) if n > 1 else np.nan)
            rows.append({"metric": metric, "dataset": dataset, "model": model, "method": method,
                         "baseline": baseline, "n_pairs": n, "mean_diff": mean,
                         "ci_low": mean - half, "ci_high": mean + half})
    return pd.DataFrame(rows, columns=cols)


@dataclass
class FriedmanResult:
    """Outcome of :func:`friedman_nemenyi` for one metric.

    Attributes
    ----------
    metric : str
    methods : list of str
        Treatments, in column order.
    blocks : pandas.DataFrame
        The complete blocks used, one per data set (index ``dataset``): the mean over folds and,
        pooled, over models; one column per method.
    statistic : float
        Friedman chi-square (scipy, corrected for tied ranks).
    f_statistic : float
        Iman & Davenport's F_F = (N - 1) chi2 / (N (k - 1) - chi2), the form Demšar (2006)
        recommends over chi2, which is conservative.
    p_value : float
        The test's p-value: exact (the share of the arrangements of each data set's ranks, the
        first held fixed, whose statistic reaches the observed one) where there are at most
        :data:`EXACT_FRIEDMAN_MAX` arrangements, as for few data sets where both approximations
        fail (two data sets ranking three methods alike: exact 1/6, chi2 0.14, F_F infinite);
        else F_F's p-value from F(k - 1, (k - 1)(N - 1)). NaN when the test cannot run (``note``).
    exact : bool
        Whether ``p_value`` is the exact one.
    p_chi2 : float
        The p-value of chi2 itself (chi-square with k - 1 degrees of freedom), for reference.
    ranks : pandas.Series
        Average rank per method over the data sets, 1 = best (ties get average ranks).
    nemenyi : pandas.DataFrame or None
        Nemenyi post-hoc p-values (methods x methods), computed only when the Friedman test rejects
        at ``alpha`` (Demšar 2006: the post-hoc test follows a rejection).
    cd : float
        Nemenyi critical difference of average ranks at ``alpha`` (NaN without a post-hoc test).
    model : str
        The model whose runs were used, or :data:`POOLED` (mean over models per data set).
    note : str
    """

    metric: str
    methods: list[str]
    blocks: pd.DataFrame
    statistic: float = np.nan
    p_value: float = np.nan
    f_statistic: float = np.nan
    p_chi2: float = np.nan
    exact: bool = False
    ranks: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    nemenyi: pd.DataFrame | None = None
    cd: float = np.nan
    alpha: float = 0.05
    note: str = ""
    dropped_blocks: int = 0
    model: str = POOLED


def friedman_nemenyi(results: pd.DataFrame, metric: str, methods: Sequence[str] | None = None,
                     alpha: float = 0.05, model: str = POOLED) -> FriedmanResult:
    """Friedman test over data sets, average ranks and the Nemenyi post-hoc test (Demšar 2006).

    Blocks are data sets: a method's value is its mean over the runs (fold, seed) that every
    method finished, for ``model``, or pooled (:data:`POOLED`) the mean over the models that ran
    every method on that data set. Data sets
    missing a method for every model are dropped, since the Friedman test needs complete blocks.
    Needs at least 3 methods and :data:`MIN_DATASETS` data sets; otherwise the result carries NaNs
    and the reason in ``note`` (no exception).
    """
    # blocks compare the methods on the same runs: only (data set, model, fold, seed) runs that
    # every method finished, so that a failed run of one method does not shift its mean alone
    ok = finished_cells(results)
    if metric in ok and len(ok):
        ok = ok[ok[metric].notna()]
        named = list(method_order(ok["method"], methods))
        key = ["dataset", "model", "fold", "seed"]
        runs = ok[ok["method"].isin(named)].groupby(key)["method"].nunique()
        full = runs[runs == len(named)].index
        ok = ok[pd.MultiIndex.from_frame(ok[key]).isin(full)]
    means = block_means(ok, metric, methods)
    order = list(means.columns)
    if model != POOLED:
        means = means[means.index.get_level_values("model") == model]
    datasets = means.index.get_level_values("dataset").unique() if len(means) else []
    complete = means.dropna()
    complete = (complete.groupby(level="dataset").mean() if len(complete)
                else pd.DataFrame(columns=order, index=pd.Index([], name="dataset")))
    res = FriedmanResult(metric=metric, methods=order, blocks=complete, alpha=alpha, model=model,
                         dropped_blocks=len(datasets) - len(complete))
    if len(complete):
        res.ranks = complete.rank(axis=1, ascending=not higher_is_better(metric)).mean().reindex(order)
    k, n = len(order), len(complete)
    if k < 3:
        res.note = f"the Friedman test needs at least 3 methods; {k} present ({', '.join(order) or 'none'})"
        return res
    if n < MIN_DATASETS:
        res.note = f"n = {n} data set{'s' * (n != 1)}: not computed (the Friedman test ranks methods over data sets)"
        return res
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-tied blocks divide by zero inside scipy
        fr = stats.friedmanchisquare(*[complete[m].to_numpy() for m in order])
    res.statistic, res.p_chi2 = float(fr.statistic), float(fr.pvalue)
    if not np.isfinite(res.p_chi2):
        res.note = "all methods tie on every data set; the Friedman statistic is undefined"
        return res
    # Iman & Davenport: F_F is infinite when the ranks agree on every data set (chi2 at its maximum)
    rest = n * (k - 1) - res.statistic
    res.f_statistic = float((n - 1) * res.statistic / rest) if rest > 1e-12 else np.inf
    exact = _friedman_exact_p(complete.rank(axis=1).to_numpy(float))
    res.exact = exact is not None
    res.p_value = (exact if exact is not None else
                   float(stats.f.sf(res.f_statistic, k - 1, (k - 1) * (n - 1))) if rest > 1e-12 else 0.0)
    if not res.p_value < alpha:
        res.note = (f"the Friedman test does not reject equal performance at alpha = {alpha:g} "
                    f"(p = {res.p_value:.3g}): no post-hoc test (Demšar 2006)")
        return res
    import scikit_posthocs as sp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nem = sp.posthoc_nemenyi_friedman(complete.to_numpy())
    nem.index, nem.columns = order, order
    res.nemenyi = nem
    res.cd = critical_difference(k, n, alpha)
    return res


def _friedman_exact_p(ranks: np.ndarray) -> float | None:
    """Exact Friedman p-value of an N x k rank matrix, or None beyond :data:`EXACT_FRIEDMAN_MAX` arrangements.

    Under the null every arrangement of a data set's ranks is equally likely. With each data set's
    own ranks (ties included) permuted, the tie correction stays the same, so chi2 orders the
    arrangements as the sum of squared rank sums does: p = the share reaching the observed one.
    """
    import itertools

    n, k = ranks.shape
    if math.factorial(k) ** (n - 1) > EXACT_FRIEDMAN_MAX:
        return None
    sums = ranks[:1]                                    # the first data set held fixed
    for row in ranks[1:]:
        # tied ranks: each distinct order occurs equally often among the k! permutations
        perms = np.unique(np.array(list(itertools.permutations(row))), axis=0)
        sums = (sums[:, None, :] + perms[None, :, :]).reshape(-1, k)
    stat = np.sum(sums ** 2, axis=1)
    observed = np.sum(ranks.sum(axis=0) ** 2)
    return float(np.mean(stat >= observed - 1e-9))


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks, CD = q_alpha sqrt(k (k + 1) / (6 N)) (Demšar 2006).

    q_alpha is the studentized range quantile (infinite degrees of freedom) over sqrt(2): 2.569
    for k = 4 at alpha = 0.05, Demšar's Table 5.
    """
    return float(_nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n)))


@functools.lru_cache(maxsize=None)
def _nemenyi_q(k: int, alpha: float) -> float:
    # the studentized range quantile is slow: cache it
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def friedman_markdown(results_by_metric: dict) -> str:
    """Markdown: one summary row per (metric, model), then the Nemenyi p-value matrix of each pooled metric.

    Keys are metric names (pooled results) or ``(metric, model)`` pairs.
    """
    parts = ["Friedman test over data sets (Demšar 2006): blocks = data sets, treatments = methods, "
             "value = mean over folds (pooled: and over models). Average ranks: 1 = best. n = data sets. "
             "`p`: exact where `p exact` (at most 10^6 arrangements of the ranks), else Iman–Davenport F_F "
             "(`F`) on F(k - 1, (k - 1)(n - 1)), as Demšar recommends; `p chi2`: the "
             "chi-square form. Each row is its own test, not corrected across metrics or models. Nemenyi "
             "post-hoc p-values below, only where the Friedman test rejects.\n"]
    rows = []
    for key, fr in results_by_metric.items():
        row = {"metric": fr.metric, "model": fr.model, "n data sets": len(fr.blocks),
               "dropped data sets": fr.dropped_blocks, "chi2": fr.statistic, "p chi2": fr.p_chi2,
               "F": fr.f_statistic, "p": fr.p_value, "p exact": fr.exact, "CD": fr.cd}
        for m in fr.methods:
            row[f"rank {m}"] = fr.ranks.get(m, np.nan)
        row["note"] = fr.note
        rows.append(row)
    parts.append(to_markdown(pd.DataFrame(rows)))
    for key, fr in results_by_metric.items():
        if fr.nemenyi is not None and fr.model == POOLED:
            parts.append(f"\nNemenyi p-values, `{fr.metric}`, pooled over models, {len(fr.blocks)} data sets:\n\n"
                         + to_markdown(fr.nemenyi.reset_index(names="method"), floatfmt=".3g"))
    return "\n".join(parts)


def format_p(value: float) -> str:
    """A p-value as the text shows it: 3 decimals, 2 significant digits below 0.001, "n/a" if not finite."""
    return "n/a" if not np.isfinite(value) else (f"{value:.2g}" if value < 0.001 else f"{value:.3f}")


def verdict(row: pd.Series, metric: str, alpha: float = 0.05, p_key: str = "p_value") -> str:
    """``"better"``, ``"worse"`` or ``"no significant difference"`` from one test's row.

    Better (worse) needs all three: more wins than losses (losses than wins), where a difference
    within the tie margin is a tie; a mean difference beyond the tie margin in that direction;
    and ``row[p_key]`` (the Holm-adjusted p-value in the report) below ``alpha``.
    """
    diff = row["mean_diff"]
    p = row[p_key]
    if not (np.isfinite(p) and p < alpha and np.isfinite(diff)):
        return "no significant difference"
    gain = diff if higher_is_better(metric) else -diff
    if row["wins"] > row["losses"] and gain > tie_margin(metric):
        return "better"
    if row["losses"] > row["wins"] and gain < -tie_margin(metric):
        return "worse"
    return "no significant difference"


def bayes_verdict(row: pd.Series, threshold: float = BAYES_THRESHOLD) -> str:
    """The Bayesian verdict: ``better``, ``practically equivalent``, ``worse`` or ``undecided``.

    One of P(better), P(equivalent), P(worse) must exceed ``threshold`` (0.95); "practically
    equivalent" is a finding in its own right: the difference lies within the tie margin.
    """
    probs = {"better": row["p_better"], "practically equivalent": row["p_equivalent"], "worse": row["p_worse"]}
    if not all(np.isfinite(v) for v in probs.values()):
        return "not computed"
    best = max(probs, key=probs.get)
    return best if probs[best] > threshold else "undecided"


VERDICT_COLUMNS = ["metric", "method", "baseline", "level", "unit", "n", "wins", "ties", "losses", "mean_diff",
                   "effect", "effect_measure", "p_value", "p_holm", "family", "p_better", "p_equivalent", "p_worse",
                   "verdict", "bayes_verdict"]


def verdict_table(results: pd.DataFrame, order: Sequence[str], baseline: str = "random", alpha: float = 0.05,
                  test_train_ratio: float | None = None, metrics: Sequence[str] | None = None,
                  across: pd.DataFrame | None = None, within: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One verdict per (metric, method): across data sets when there are several, else within the one.

    With at least :data:`MIN_DATASETS` data sets: the pooled rows of :func:`wilcoxon_table` (unit =
    data set, value = mean over folds and models); effect = rank-biserial correlation. With one
    data set: the pooled row of :func:`~mlabs.report.within_dataset.within_dataset_table` (unit =
    fold, value = mean over models; Nadeau-Bengio corrected t-test, ``test_train_ratio`` from the
    protocol); effect = standardized mean difference. Holm's correction runs over the metrics of
    each method (``family`` names it); the frequentist :func:`verdict` uses ``p_holm``, the
    Bayesian :func:`bayes_verdict` the posterior probabilities.

    ``results`` may be the concatenation of the test results and the convergence rows; ``metrics``
    (default: the reported metrics and the convergence measures present) are the family.
    ``across`` (the :func:`wilcoxon_table` of every metric with a ``metric`` column) and ``within``
    (metric -> :func:`~mlabs.report.within_dataset.within_dataset_table`) may pass tables already
    computed with the same methods and baseline.
    """
    from .within_dataset import POOLED as W_POOLED, within_dataset_table

    ok = finished_cells(results)
    if metrics is None:
        metrics = [m for m in (*REPORTED_METRICS, *CONVERGENCE_METRICS) if m in ok and ok[m].notna().any()]
    n_datasets = ok["dataset"].nunique()
    rows = []
    for metric in metrics:
        if n_datasets >= MIN_DATASETS:
            table = (across[across["metric"] == metric].drop(columns=["metric"]) if across is not None
                     else wilcoxon_table(results, metric, baseline, order))
            table = table[table["model"] == POOLED].assign(level="across data sets", effect_measure="rank-biserial r",
                                                           effect=lambda t: t["rank_biserial"])
        else:
            table = (within[metric] if within is not None and metric in within
                     else within_dataset_table(results, metric, baseline, order, test_train_ratio=test_train_ratio))
            table = table[table["model"] == W_POOLED].assign(level="within data set", effect_measure="d (mean / sd)",
                                                             effect=lambda t: t["d"])
        rows.append(table.assign(metric=metric))
    if not rows:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    table = add_holm(pd.concat(rows, ignore_index=True), ["method"],
                     scope=lambda r: f"{r['level']}, pooled over models, over {r['unit']}")
    table["verdict"] = [verdict(r, r["metric"], alpha, "p_holm") for _, r in table.iterrows()]
    table["bayes_verdict"] = [bayes_verdict(r) for _, r in table.iterrows()]
    return table[VERDICT_COLUMNS].reset_index(drop=True)


def verdicts_by_seed(results: pd.DataFrame, order: Sequence[str], baseline: str = "random",
                     alpha: float = 0.05, test_train_ratio: float | None = None) -> pd.DataFrame:
    """:func:`verdict_table` computed on each seed's runs alone, side by side.

    One row per (metric, method) with a column ``seed <s>`` per seed (the verdict and, in
    brackets, its W/T/L, Holm-adjusted p and n), ``holds``: whether every seed gives the same
    verdict, and ``same_sign``: whether the mean difference has the same sign under every seed.
    ``results`` must carry the convergence rows to include them (pass the concatenation, see
    :func:`write_report`). Empty when the results hold fewer than two seeds.
    """
    ok = finished_cells(results)
    seeds = sorted(ok["seed"].dropna().unique())
    if len(seeds) < 2:
        return pd.DataFrame(columns=["metric", "method", "holds"])
    frame = None
    for seed in seeds:
        table = verdict_table(results[results["seed"] == seed], order, baseline, alpha, test_train_ratio)
        col = table.assign(**{f"seed {int(seed)}": [
            f"{r.verdict} ({r.wins}/{r.ties}/{r.losses}, Holm p = {format_p(r.p_holm)}, n = {r.unit})"
            for r in table.itertuples()]})
        col = col[["metric", "method", f"seed {int(seed)}", "verdict", "mean_diff"]].rename(
            columns={"verdict": f"_v{seed}", "mean_diff": f"_d{seed}"})
        frame = col if frame is None else frame.merge(col, on=["metric", "method"], how="outer")
    verdict_cols, diff_cols = [f"_v{seed}" for seed in seeds], [f"_d{seed}" for seed in seeds]
    frame["holds"] = frame[verdict_cols].nunique(axis=1, dropna=False).eq(1).map({True: "yes", False: "no"})
    # a verdict that holds with the mean difference changing sign is no sign of a reproducible effect
    signs = np.sign(frame[diff_cols].astype(float))
    frame["same_sign"] = (signs.nunique(axis=1, dropna=False).eq(1) & signs.notna().all(axis=1)).map(
        {True: "yes", False: "no"})
    return frame.drop(columns=verdict_cols + diff_cols)
