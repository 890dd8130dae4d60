"""``findings.md``: the verdicts of the study, each with its unit, n and effect size.

One line per (method, metric) against the baseline from :func:`~mlabs.report.statistics.verdict_table`
(across data sets when there are several, else within the one data set over its folds), then the
within-data-set verdicts counted over data sets, the Friedman tests, the test of the paper's claim
against data-set characteristics, and which verdicts hold for every seed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .collect import finished_cells
from .conventions import method_order, tie_margin
from .statistics import MIN_DATASETS_BAYES, POOLED, FriedmanResult, bayes_verdict, format_p, verdict

__all__ = ["findings"]


def _verdict_line(r) -> str:
    """One verdict: the frequentist and the Bayesian outcome, then unit, n, effect and the probabilities."""
    test = "Wilcoxon signed-rank" if r.level == "across data sets" else "corrected resampled t-test"
    bayes = "Bayesian signed-rank" if r.level == "across data sets" else "Bayesian correlated t-test"
    effect = f"{r.effect_measure} = {r.effect:+.2f}" if np.isfinite(r.effect) else f"{r.effect_measure} n/a"
    probs = (f"P(better) {r.p_better:.2f}, P(equivalent) {r.p_equivalent:.2f}, P(worse) {r.p_worse:.2f}"
             if np.isfinite(r.p_better) else
             f"not computed (fewer than {MIN_DATASETS_BAYES} data sets)" if r.level == "across data sets" else
             "not computed")
    return (f"- `{r.metric}`: **{r.verdict}**; Bayesian: **{r.bayes_verdict}**. {r.level.capitalize()}, "
            f"n = {r.unit}: mean difference {r.mean_diff:+.4f}, {effect}, W/T/L {r.wins}/{r.ties}/{r.losses}; "
            f"{test} p = {format_p(r.p_value)}, Holm p = {format_p(r.p_holm)}; {bayes} (rope ± "
            f"{tie_margin(r.metric):g}): {probs}.")


def _within_counts(within: dict[str, pd.DataFrame], method: str, alpha: float) -> list[str]:
    """Per metric: on how many data sets the correlated tests (pooled over models) give each verdict."""
    from .statistics import add_holm

    frames = [t[(t["method"] == method) & (t["model"] == POOLED)].assign(metric=m) for m, t in within.items()]
    frames = [f for f in frames if len(f)]
    if not frames:
        return []
    table = add_holm(pd.concat(frames, ignore_index=True), ["method", "dataset"])
    lines = []
    for metric, part in table.groupby("metric", sort=False):
        freq = pd.Series([verdict(r, metric, alpha, "p_holm") for _, r in part.iterrows()]).value_counts()
        bay = pd.Series([bayes_verdict(r) for _, r in part.iterrows()]).value_counts()
        lines.append(f"  - `{metric}` over {len(part)} data sets: corrected t-test (Holm over the metrics of each "
                     f"data set) {', '.join(f'{k} {v}' for k, v in freq.items())}; Bayesian "
                     f"{', '.join(f'{k} {v}' for k, v in bay.items())}.")
    return lines


def findings(results: pd.DataFrame, verdicts: pd.DataFrame, methods: Sequence[str] | None = None,
             baseline: str = "random", alpha: float = 0.05, excluded: int = 0,
             within: dict[str, pd.DataFrame] | None = None,
             friedman: dict[str, FriedmanResult] | None = None,
             convergence: pd.DataFrame | None = None,
             correlations: pd.DataFrame | None = None,
             by_seed: pd.DataFrame | None = None) -> str:
    """Generated markdown: each verdict with its unit, n, effect size and probabilities.

    Parameters
    ----------
    results : pandas.DataFrame
        Cells (:func:`collect_results`), for the counts.
    verdicts : pandas.DataFrame
        :func:`~mlabs.report.statistics.verdict_table`.
    within : dict of str to pandas.DataFrame, optional
        Per metric, :func:`~mlabs.report.within_dataset.within_dataset_table`; with more than one
        data set its pooled verdicts are counted per method and metric.
    friedman : dict of str to FriedmanResult, optional
        Pooled Friedman tests per metric.
    convergence : pandas.DataFrame, optional
        :func:`mlabs.convergence.convergence_results`, for the runs that never reach 95 %.
    correlations : pandas.DataFrame, optional
        :func:`~mlabs.report.characteristics.characteristic_correlations`.
    by_seed : pandas.DataFrame, optional
        :func:`~mlabs.report.statistics.verdicts_by_seed`.
    """
    ok = finished_cells(results)
    order = method_order(ok["method"], methods)
    n_ok, n_failed = int((results["status"] == "ok").sum()), int((results["status"] != "ok").sum())
    n_ds = ok["dataset"].nunique()
    lines = ["# Findings", "",
             f"Generated from {n_ok} finished and {n_failed} failed cells"
             + (f" ({excluded} cells of other batch-size / s_e settings excluded)" if excluded else "")
             + f" on {n_ds} data set{'s' * (n_ds != 1)}; methods: {', '.join(order) or 'none'}. Test metrics at "
             "the epoch of best validation macro-AUC. With several data sets the unit is the data set (mean over "
             "folds and models); with one, the fold, tested with the correlated tests that allow for the folds "
             "sharing training data. Better / worse: Holm-adjusted p < "
             f"{alpha:g} over the metrics of the method, more wins than losses and a mean difference beyond the tie "
             "margin. Bayesian: a verdict when one of P(better), P(practically equivalent), P(worse) exceeds 0.95; "
             "\"practically equivalent\" means the difference lies within the tie margin (docs/statistics.md).", ""]
    if ok.empty:
        lines.append("No finished cells: nothing to report.")
        return "\n".join(lines) + "\n"
    if baseline not in order:
        lines.append(f"No finished `{baseline}` cells, so no method can be compared with it.")
    for method in [m for m in order if m != baseline]:
        rows = verdicts[verdicts["method"] == method]
        if rows.empty:
            continue
        lines += [f"## {method} vs {baseline}", "", f"{rows['family'].iloc[0]}.", ""]
        lines += [_verdict_line(r) for r in rows.itertuples()]
        if within and n_ds > 1:
            counts = _within_counts(within, method, alpha)
            if counts:
                lines += ["- Within each data set (correlated tests over its folds, pooled over models):", *counts]
        lines.append("")
    if friedman:
        lines += ["## Friedman tests over data sets", "",
                  "One test per metric, each at its own level (not corrected across the metrics); the Nemenyi "
                  "post-hoc test only where the Friedman test rejects (Demšar 2006).", ""]
        for metric, fr in friedman.items():
            if np.isfinite(fr.p_value):
                ranks = ", ".join(f"{m} {r:.2f}" for m, r in fr.ranks.sort_values(kind="mergesort").items())
                outcome = "rejects" if fr.p_value < alpha else "does not reject"
                post = f"Nemenyi CD = {fr.cd:.2f}" if fr.nemenyi is not None else "no post-hoc test"
                how = "exact" if fr.exact else "Iman–Davenport F"
                lines.append(f"- `{metric}`, n = {len(fr.blocks)} data sets: χ² = {fr.statistic:.3g}, Iman–Davenport "
                             f"F = {fr.f_statistic:.3g}, p = {format_p(fr.p_value)} ({how}), {outcome} equal "
                             f"performance; {post}; average ranks {ranks}.")
            else:
                lines.append(f"- `{metric}`: {fr.note}.")
        lines.append("")
    if convergence is not None and len(convergence):
        never = convergence[~convergence["reached_95"].astype(bool)]
        lines += ["## Convergence", "",
                  f"`epochs_to_95`: first epoch whose validation macro-AUC reaches 95 % of the random run's best in "
                  f"the same fold; {len(never)} of {len(convergence)} runs never do and count as epochs + 1"
                  + (" (by method: " + ", ".join(f"{m} {k}" for m, k in never.groupby("method").size().items()) + ")"
                     if len(never) else "")
                  + ". `curve_area`: mean validation macro-AUC over the selection epochs.", ""]
    if correlations is not None and len(correlations):
        done = correlations[correlations["rho"].notna()]
        lines += ["## Gains against imbalance, labels and label correlation", ""]
        if done.empty:
            lines.append(f"Rank correlations: {correlations['note'].iloc[0]}.")
        else:
            sig = done[done["p_holm"] < alpha]
            lines.append(f"{done['family'].iloc[0]}; n = {int(done['n'].max())} data sets. "
                         + (f"{len(sig)} significant after Holm:" if len(sig) else
                            f"None is significant after Holm at α = {alpha:g}; the largest |rho|: "
                            + ", ".join(f"{r.method} {r.outcome} vs {r.characteristic} rho = {r.rho:+.2f} "
                                        f"(p = {format_p(r.p_value)}, Holm {format_p(r.p_holm)})"
                                        for r in done.reindex(done["rho"].abs().sort_values(ascending=False)
                                                              .index).head(3).itertuples()) + "."))
            lines += [f"- {r.method} − {baseline} `{r.outcome}` vs {r.characteristic}: rho = {r.rho:+.2f}, "
                      f"p = {format_p(r.p_value)}, Holm p = {format_p(r.p_holm)}, n = {r.n}." for r in sig.itertuples()]
        lines.append("")
    if by_seed is not None and len(by_seed):
        seed_cols = [c for c in by_seed.columns if c.startswith("seed ")]
        held = by_seed[by_seed["holds"] == "yes"]
        lines += ["## Robustness across seeds", "",
                  f"Each verdict recomputed on the runs of one seed at a time ({', '.join(seed_cols)}; same folds, "
                  f"other model initialisation and batch draws): {len(held)} of {len(by_seed)} (metric, method) "
                  "verdicts are the same for every seed.", ""]
        for row in by_seed.to_dict("records"):
            status = "holds" if row["holds"] == "yes" else "**does not hold**"
            lines.append(f"- {row['method']} on {row['metric']}: {status}: "
                         + "; ".join(f"{c}: {row[c]}" for c in seed_cols if c in row) + ".")
        lines.append("")
    return "\n".join(lines)
