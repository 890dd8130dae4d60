"""Paired tests against the baseline, the Friedman / Nemenyi test, and the verdicts they give.

The statistics come from scipy (``wilcoxon``, ``friedmanchisquare``) and scikit-posthocs
(``posthoc_nemenyi_friedman``). Win / tie / loss compare means in the metric's direction; a
difference within the metric's tie margin (:func:`~mlabs.report.conventions.tie_margin`: 0.005 for
the metrics, 1 epoch for epochs to 95 %) is a tie, and the paired tests count such differences as
zero, so that no verdict hinges on noise in the fourth decimal (a rerun on another machine moved
mean macro-AUCs by up to 0.0024).
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
    "POOLED_BLOCKS", "POOLED_RUNS", "MIN_BLOCKS", "FriedmanResult",
    "wilcoxon_table", "pooled_row", "wins_ties_losses", "friedman_nemenyi", "friedman_markdown",
    "verdict", "verdict_table", "verdicts_by_seed", "format_p", "paired_differences",
]

#: Pooled rows of :func:`wilcoxon_table`: over (dataset, model) block means, and over paired runs.
POOLED_BLOCKS = "all (block means)"
POOLED_RUNS = "all (paired runs)"
#: Fewest pooled units with which a two-sided exact Wilcoxon test can reach p < 0.05 (p >= 0.0625
#: below). A profile with fewer (dataset, model) blocks (one data set, five models) is tested over its
#: paired runs instead, so that its verdicts are not "no significant difference" by construction.
MIN_BLOCKS = 6
_DIFF_DECIMALS = 12  # paired differences are rounded to this before the Wilcoxon test


def wins_ties_losses(a: pd.Series, b: pd.Series, metric: str) -> tuple[int, int, int]:
    """Win / tie / loss of ``a`` against ``b``; differences within the tie margin are ties."""
    diff = (a - b) if higher_is_better(metric) else (b - a)
    margin = tie_margin(metric) + 1e-12  # a difference of exactly the margin is a tie
    return int((diff > margin).sum()), int((diff.abs() <= margin).sum()), int((diff < -margin).sum())


def _pairs(results: pd.DataFrame, metric: str, method: str, baseline: str) -> pd.DataFrame:
    """Runs of ``method`` and ``baseline`` matched on (dataset, model, fold, seed): columns x, y."""
    ok = finished_cells(results)
    key = ["dataset", "model", "fold", "seed"]
    x = ok[ok["method"] == method][key + [metric]].rename(columns={metric: "x"})
    y = ok[ok["method"] == baseline][key + [metric]].rename(columns={metric: "y"})
    merged = x.merge(y, on=key, how="inner").dropna(subset=["x", "y"])
    return merged.sort_values(key, kind="mergesort").reset_index(drop=True)


def _wilcoxon(x: np.ndarray, y: np.ndarray, min_pairs: int = 2, margin: float = 0.0) -> tuple[float, float, str]:
    """scipy's two-sided Wilcoxon signed-rank test; NaN with a note where it cannot run.

    Differences within ``margin`` count as zero (and are dropped, scipy's default
    ``zero_method="wilcox"``).
    """
    n = len(x)
    if n < min_pairs:
        return np.nan, np.nan, f"fewer than {min_pairs} pairs"
    # Differences that are equal in exact arithmetic (metrics on a finite test set are often
    # multiples of 1/n) can differ in the last bits, which splits ties, changes the ranks and
    # switches scipy between its exact and approximate p-values; rounding far below any real
    # difference removes that noise. scipy then gets the differences (its one-sample form).
    d = np.round(np.asarray(x, float) - np.asarray(y, float), _DIFF_DECIMALS)
    d[np.abs(d) <= margin + 1e-12] = 0.0
    if np.all(d == 0):
        return np.nan, np.nan, "all differences are within the tie margin" if margin else "all differences are zero"
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = stats.wilcoxon(d)
        except ValueError as exc:  # scipy refuses some degenerate inputs
            return np.nan, np.nan, f"not computed: {exc}"
    notes += sorted({str(w.message).split(";")[0].split(".")[0] for w in caught})
    if n < 6:
        # with fewer than 6 pairs the two-sided exact p-value cannot go below 0.05
        notes.append(f"only {n} pairs")
    return float(res.statistic), float(res.pvalue), "; ".join(notes)


def wilcoxon_table(results: pd.DataFrame, metric: str, baseline: str = "random",
                   methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Paired Wilcoxon signed-rank tests of each method against ``baseline``, per model.

    For every model and non-baseline method, the runs are paired with the baseline's on
    (dataset, fold, seed) and tested with :func:`scipy.stats.wilcoxon` (two-sided, scipy's
    defaults) on the differences rounded to 12 decimals (removes floating-point noise that
    would split ties), differences within :func:`tie_margin` counting as zero. Win / tie / loss
    count data sets, comparing means over the paired runs (a difference within the tie margin is
    a tie). Two final rows per method pool all models: model :data:`POOLED_BLOCKS` tests the
    (dataset, model) block means (Demšar's recommended unit) and counts win / tie / loss over
    blocks; model :data:`POOLED_RUNS` tests and counts the paired runs themselves.
    :func:`pooled_row` says which of the two a verdict uses.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, method, baseline, n_pairs, mean_diff`` (method − baseline),
        ``statistic, p_value, wins, ties, losses, note``. ``p_value`` is NaN (with the reason in
        ``note``) for fewer than 2 pairs or all-zero differences; never raises for lack of data.
    """
    higher_is_better(metric)
    cols = ["model", "method", "baseline", "n_pairs", "mean_diff", "statistic", "p_value",
            "wins", "ties", "losses", "note"]
    ok = finished_cells(results)
    order = [m for m in method_order(ok["method"], methods) if m != baseline]
    rows = []
    if baseline not in set(ok["method"]):
        return pd.DataFrame([{**{c: np.nan for c in cols}, "model": pooled, "method": m,
                              "baseline": baseline, "n_pairs": 0, "wins": 0, "ties": 0, "losses": 0,
                              "note": f"baseline {baseline!r} has no finished cells"}
                             for m in order for pooled in (POOLED_BLOCKS, POOLED_RUNS)], columns=cols)
    for method in order:
        pairs = _pairs(results, metric, method, baseline)
        for model in sorted(ok["model"].unique()):
            p = pairs[pairs["model"] == model]
            stat, pval, note = _wilcoxon(p["x"].to_numpy(), p["y"].to_numpy(), margin=tie_margin(metric))
            by_ds = p.groupby("dataset")[["x", "y"]].mean()
            w, t, l = wins_ties_losses(by_ds["x"], by_ds["y"], metric)
            rows.append({"model": model, "method": method, "baseline": baseline, "n_pairs": len(p),
                         "mean_diff": float((p["x"] - p["y"]).mean()) if len(p) else np.nan,
                         "statistic": stat, "p_value": pval, "wins": w, "ties": t, "losses": l,
                         "note": note})
        blocks = pairs.groupby(["dataset", "model"])[["x", "y"]].mean()
        for name, units in ((POOLED_BLOCKS, blocks), (POOLED_RUNS, pairs)):
            stat, pval, note = _wilcoxon(units["x"].to_numpy(), units["y"].to_numpy(), margin=tie_margin(metric))
            w, t, l = wins_ties_losses(units["x"], units["y"], metric)
            rows.append({"model": name, "method": method, "baseline": baseline, "n_pairs": len(units),
                         "mean_diff": float((units["x"] - units["y"]).mean()) if len(units) else np.nan,
                         "statistic": stat, "p_value": pval, "wins": w, "ties": t, "losses": l, "note": note})
    return pd.DataFrame(rows, columns=cols)


def paired_differences(results: pd.DataFrame, metric: str, baseline: str = "random",
                       methods: Sequence[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Mean difference method − ``baseline`` per (dataset, model) with its t-interval.

    The runs are paired as in :func:`wilcoxon_table` (on dataset, model, fold and seed); the
    interval is the Student-t interval of the mean of the paired differences (NaN for one pair).
    It shows the size and spread of each block's difference; the verdicts rest on the Wilcoxon
    tests, not on these intervals.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric, dataset, model, method, baseline, n_pairs, mean_diff, ci_low, ci_high``,
        one row per block and non-baseline method with at least one pair.
    """
    higher_is_better(metric)
    cols = ["metric", "dataset", "model", "method", "baseline", "n_pairs", "mean_diff", "ci_low", "ci_high"]
    ok = finished_cells(results)
    rows = []
    for method in [m for m in method_order(ok["method"], methods) if m != baseline]:
        pairs = _pairs(results, metric, method, baseline)
        for (dataset, model), p in pairs.groupby(["dataset", "model"], sort=True):
            d = (p["x"] - p["y"]).to_numpy(float)
            mean, n = float(d.mean()), len(d)
            half = (float(stats.t.ppf(0.5 + confidence / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
                    if n > 1 else np.nan)
            rows.append({"metric": metric, "dataset": dataset, "model": model, "method": method,
                         "baseline": baseline, "n_pairs": n, "mean_diff": mean,
                         "ci_low": mean - half, "ci_high": mean + half})
    return pd.DataFrame(rows, columns=cols)


def pooled_row(table: pd.DataFrame, method: str) -> pd.Series:
    """The pooled row of ``method`` in a :func:`wilcoxon_table` that its verdict rests on.

    The (dataset, model) block means (Demšar's unit) when there are at least :data:`MIN_BLOCKS`
    blocks, else the paired runs (dataset, model, fold, seed): with fewer blocks the exact test
    cannot reach p < 0.05. The rule depends on the design only, never on the outcome.
    """
    rows = table[table["method"] == method]
    blocks = rows[rows["model"] == POOLED_BLOCKS].iloc[0]
    return blocks if blocks["n_pairs"] >= MIN_BLOCKS else rows[rows["model"] == POOLED_RUNS].iloc[0]


@dataclass
class FriedmanResult:
    """Outcome of :func:`friedman_nemenyi` for one metric.

    Attributes
    ----------
    metric : str
    methods : list of str
        Treatments, in column order.
    blocks : pandas.DataFrame
        The complete (dataset, model) blocks used: block means, one column per method.
    statistic, p_value : float
        Friedman chi-square and its p-value (NaN when the test cannot run; see ``note``).
    ranks : pandas.Series
        Average rank per method over the blocks, 1 = best (ties get average ranks).
    nemenyi : pandas.DataFrame or None
        Nemenyi post-hoc p-values (methods x methods).
    cd : float
        Nemenyi critical difference of average ranks at ``alpha``.
    note : str
    """

    metric: str
    methods: list[str]
    blocks: pd.DataFrame
    statistic: float = np.nan
    p_value: float = np.nan
    ranks: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    nemenyi: pd.DataFrame | None = None
    cd: float = np.nan
    alpha: float = 0.05
    note: str = ""
    dropped_blocks: int = 0


def friedman_nemenyi(results: pd.DataFrame, metric: str, methods: Sequence[str] | None = None,
                     alpha: float = 0.05) -> FriedmanResult:
    """Friedman test over (dataset, model) blocks, average ranks and the Nemenyi post-hoc test.

    Blocks missing a method (e.g. a failed cell in every fold) are dropped, since the
    Friedman test needs complete blocks. Needs at least 3 methods and 2 blocks; otherwise
    the result carries NaNs and the reason in ``note`` (no exception).
    """
    means = block_means(results, metric, methods)
    order = list(means.columns)
    complete = means.dropna()
    res = FriedmanResult(metric=metric, methods=order, blocks=complete, alpha=alpha,
                         dropped_blocks=len(means) - len(complete))
    if len(complete):
        res.ranks = complete.rank(axis=1, ascending=not higher_is_better(metric)).mean().reindex(order)
    k, n = len(order), len(complete)
    if k < 3:
        res.note = f"the Friedman test needs at least 3 methods; {k} present ({', '.join(order) or 'none'})"
        return res
    if n < 2:
        res.note = f"the Friedman test needs at least 2 complete (dataset, model) blocks; {n} available"
        return res
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-tied blocks divide by zero inside scipy
        fr = stats.friedmanchisquare(*[complete[m].to_numpy() for m in order])
    res.statistic, res.p_value = float(fr.statistic), float(fr.pvalue)
    if not np.isfinite(res.p_value):
        res.note = "all methods tie in every block; the Friedman statistic is undefined"
        return res
    import scikit_posthocs as sp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nem = sp.posthoc_nemenyi_friedman(complete.to_numpy())
    nem.index, nem.columns = order, order
    res.nemenyi = nem
    res.cd = float(_nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n)))
    return res


@functools.lru_cache(maxsize=None)
def _nemenyi_q(k: int, alpha: float) -> float:
    # critical difference of Demšar (2006): CD = q_alpha * sqrt(k (k + 1) / (6 N)), where q_alpha is
    # the studentized range quantile (infinite df) over sqrt(2); the quantile is slow, so cache it
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def friedman_markdown(results_by_metric: dict[str, FriedmanResult]) -> str:
    """Markdown: one summary row per metric, then the Nemenyi p-value matrix of each metric."""
    parts = ["Friedman test over complete (dataset, model) blocks; treatments = methods, value = mean "
             "over folds. Average ranks: 1 = best. Nemenyi post-hoc p-values below.\n"]
    rows = []
    for metric, fr in results_by_metric.items():
        row = {"metric": metric, "blocks": len(fr.blocks), "dropped blocks": fr.dropped_blocks,
               "chi2": fr.statistic, "p": fr.p_value, "CD": fr.cd}
        for m in fr.methods:
            row[f"rank {m}"] = fr.ranks.get(m, np.nan)
        row["note"] = fr.note
        rows.append(row)
    parts.append(to_markdown(pd.DataFrame(rows)))
    for metric, fr in results_by_metric.items():
        if fr.nemenyi is not None:
            parts.append(f"\nNemenyi p-values, `{metric}`:\n\n"
                         + to_markdown(fr.nemenyi.reset_index(names="method"), floatfmt=".3g"))
    return "\n".join(parts)


def format_p(value: float) -> str:
    """A p-value as the text shows it: 3 decimals, 2 significant digits below 0.001, "n/a" if not finite."""
    return "n/a" if not np.isfinite(value) else (f"{value:.2g}" if value < 0.001 else f"{value:.3f}")


def verdict(pooled: pd.Series, metric: str, alpha: float = 0.05) -> str:
    """``"better"``, ``"worse"`` or ``"no significant difference"`` from a pooled Wilcoxon row.

    Better (worse) needs all three: more wins than losses (losses than wins) over the blocks,
    where a difference within the tie margin is a tie; a mean difference beyond the tie margin
    in that direction; and a Wilcoxon p-value over block means below ``alpha``.
    """
    higher = higher_is_better(metric)
    diff = pooled["mean_diff"]
    if not (np.isfinite(pooled["p_value"]) and pooled["p_value"] < alpha and np.isfinite(diff)):
        return "no significant difference"
    gain = diff if higher else -diff
    if pooled["wins"] > pooled["losses"] and gain > tie_margin(metric):
        return "better"
    if pooled["losses"] > pooled["wins"] and gain < -tie_margin(metric):
        return "worse"
    return "no significant difference"


def verdict_table(wilcoxon: dict[str, pd.DataFrame], alpha: float = 0.05) -> pd.DataFrame:
    """One row per (metric, method): blocks, W/T/L, mean difference, p and :func:`verdict`."""
    rows = []
    for metric, table in wilcoxon.items():
        for method in dict.fromkeys(table["method"]):
            r = pooled_row(table, method)
            rows.append({"metric": metric, "method": method, "baseline": r["baseline"], "unit": r["model"],
                         "n": r["n_pairs"], "wins": r["wins"], "ties": r["ties"], "losses": r["losses"],
                         "mean_diff": r["mean_diff"], "p_value": r["p_value"], "verdict": verdict(r, metric, alpha)})
    return pd.DataFrame(rows, columns=["metric", "method", "baseline", "unit", "n", "wins", "ties", "losses",
                                       "mean_diff", "p_value", "verdict"])


def verdicts_by_seed(results: pd.DataFrame, order: Sequence[str], baseline: str = "random",
                     alpha: float = 0.05) -> pd.DataFrame:
    """:func:`verdict_table` computed on each seed's runs alone, side by side.

    One row per (metric, method) with a column ``seed <s>`` per seed (the verdict and, in
    brackets, its W/T/L and p) and ``holds``: whether every seed gives the same verdict. Metrics
    are the reported test metrics and the convergence metrics of the validation curves
    (``results`` must then carry the curves' convergence rows: pass the concatenation, see
    :func:`write_report`). Empty when the results hold fewer than two seeds.
    """
    ok = finished_cells(results)
    seeds = sorted(ok["seed"].dropna().unique())
    if len(seeds) < 2:
        return pd.DataFrame(columns=["metric", "method", "holds"])
    metrics = [m for m in (*REPORTED_METRICS, *CONVERGENCE_METRICS) if m in ok and ok[m].notna().any()]
    per_seed = {}
    for seed in seeds:
        part = results[results["seed"] == seed]
        per_seed[seed] = verdict_table({m: wilcoxon_table(part, m, baseline, order) for m in metrics}, alpha)
    frame = None
    for seed, table in per_seed.items():
        col = table.assign(**{f"seed {int(seed)}": [
            f"{r.verdict} ({r.wins}/{r.ties}/{r.losses}, p = {format_p(r.p_value)}, n = {r.n})" for r in table.itertuples()]})
        col = col[["metric", "method", f"seed {int(seed)}", "verdict"]].rename(columns={"verdict": f"_v{seed}"})
        frame = col if frame is None else frame.merge(col, on=["metric", "method"], how="outer")
    verdict_cols = [f"_v{seed}" for seed in seeds]
    frame["holds"] = frame[verdict_cols].nunique(axis=1, dropna=False).eq(1).map({True: "yes", False: "no"})
    return frame.drop(columns=verdict_cols)
