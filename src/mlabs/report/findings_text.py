"""``findings.md``: a generated plain-language account of what the numbers show.

Per reported metric, each method against the baseline (win / tie / loss, mean difference,
Wilcoxon tests and the verdict of :func:`~mlabs.report.statistics.verdict`), then the Friedman
test; optionally the same for convergence speed, and which verdicts hold for every seed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..convergence import CONVERGENCE_METRICS
from ..metrics import REPORTED_METRICS
from .collect import finished_cells
from .conventions import higher_is_better, method_order, tie_margin
from .statistics import (POOLED_BLOCKS, POOLED_RUNS, FriedmanResult, format_p, friedman_nemenyi, pooled_row,
                         verdict, wilcoxon_table)

__all__ = ["findings"]


def _unit_name(row: pd.Series) -> str:
    return "(dataset, model) blocks" if row["model"] == POOLED_BLOCKS else "paired runs (dataset, model, fold, seed)"


def _metric_findings(results: pd.DataFrame, metric: str, order: list[str], baseline: str, alpha: float,
                     table: pd.DataFrame | None, fr: FriedmanResult | None) -> list[str]:
    """The findings section of one metric: each method against ``baseline``, then Friedman."""
    higher = higher_is_better(metric)
    lines = [f"## {metric} ({'higher' if higher else 'lower'} is better; tie margin {tie_margin(metric):g})", ""]
    if table is None:
        table = wilcoxon_table(results, metric, baseline, order)
    if baseline not in order:
        lines.append(f"- No finished `{baseline}` cells, so no method can be compared with it.")
    for method in [m for m in order if m != baseline]:
        rows = table[table["method"] == method]
        pooled = pooled_row(table, method)
        per_model = rows[~rows["model"].isin([POOLED_BLOCKS, POOLED_RUNS])]
        w, t, l = int(pooled["wins"]), int(pooled["ties"]), int(pooled["losses"])
        n = w + t + l
        unit = _unit_name(pooled)
        if n == 0:
            lines.append(f"- **{method}** has no paired run in common with {baseline}.")
            continue
        diff = pooled["mean_diff"]
        text = (f"- **{method} vs {baseline}** ({n} {unit}; per model "
                f"{', '.join(f'{r.model} {r.n_pairs} runs' for r in per_model.itertuples())}): "
                f"{method} wins {w}, ties {t}, loses {l}; mean difference ({method} − {baseline}) {diff:+.4f}. "
                f"Wilcoxon over the {unit}: p = {format_p(pooled['p_value'])}"
                + (f" ({pooled['note']})" if pooled["note"] else "")
                # per-model p pairs the model's runs, its W/T/L compares data-set means: say which
                + ". Per model (p over its paired runs; W/T/L over its data sets' means): "
                + ", ".join(f"{r.model} p = {format_p(r.p_value)} ({r.wins}/{r.ties}/{r.losses} W/T/L)"
                            for r in per_model.itertuples()) + ".")
        outcome = verdict(pooled, metric, alpha)
        if outcome == "better":
            why = f"{method} is **better** than {baseline} on {metric} at α = {alpha:g}."
        elif outcome == "worse":
            why = f"{method} is **worse** than {baseline} on {metric} (significant at α = {alpha:g})."
        else:
            why = f"**no significant difference** between {method} and {baseline} on {metric} at α = {alpha:g}"
            why += (f" ({method} wins more than it loses, which alone is not evidence)." if w > l else
                    f" ({method} loses more than it wins, which alone is not evidence)." if l > w else ".")
        sig_models = [f"{r.model} ({'better' if ((r.mean_diff > 0) == higher) else 'worse'})"
                      for r in per_model.itertuples() if np.isfinite(r.p_value) and r.p_value < alpha]
        why += (f" Significant per-model differences at α = {alpha:g}: {', '.join(sig_models)}."
                if sig_models else f" No single model shows a significant difference at α = {alpha:g}.")
        lines.append(text + " Verdict: " + why)
    if fr is not None:
        if np.isfinite(fr.p_value):
            outcome = "rejects" if fr.p_value < alpha else "does not reject"
            ranks = ", ".join(f"{m} {r:.2f}" for m, r in fr.ranks.sort_values(kind="mergesort").items())
            lines.append(f"- Friedman test over {len(fr.blocks)} complete blocks and {len(fr.methods)} methods: "
                         f"χ² = {fr.statistic:.3g}, p = {format_p(fr.p_value)}; it {outcome} equal performance at "
                         f"α = {alpha:g}. Average ranks (1 = best): {ranks}.")
        else:
            lines.append(f"- Friedman test not computed: {fr.note}.")
    lines.append("")
    return lines


def findings(results: pd.DataFrame, methods: Sequence[str] | None = None, baseline: str = "random",
             alpha: float = 0.05, metrics: Sequence[str] = REPORTED_METRICS, excluded: int = 0,
             wilcoxon: dict[str, pd.DataFrame] | None = None,
             friedman: dict[str, FriedmanResult] | None = None,
             convergence: pd.DataFrame | None = None,
             convergence_wilcoxon: dict[str, pd.DataFrame] | None = None,
             by_seed: pd.DataFrame | None = None) -> str:
    """Generated markdown saying, per reported metric, what the numbers show.

    For each method against ``baseline``: the number of paired blocks, win / tie / loss over
    (dataset, model) blocks (differences within the tie margin are ties), the mean difference,
    the per-model Wilcoxon p-values and the Wilcoxon test over block means, and a
    :func:`verdict` (better / no significant difference / worse); then the Friedman test and
    average ranks. With ``convergence`` (:func:`mlabs.convergence.convergence_results`) a second
    part does the same for epochs to 95 % of random's best validation macro-AUC and the area
    under the validation curve.

    ``wilcoxon`` / ``friedman`` / ``convergence_wilcoxon`` may pass tables already computed
    (keyed by metric, same ``methods``, ``baseline`` and ``alpha``); ``excluded`` is the number
    of cells :func:`select_main_setting` left out, for the record. ``by_seed``
    (:func:`verdicts_by_seed`) adds a last part: which verdicts hold for every seed.
    """
    ok = finished_cells(results)
    order = method_order(ok["method"], methods)
    n_ok, n_failed = int((results["status"] == "ok").sum()), int((results["status"] != "ok").sum())
    lines = ["# Findings", "",
             f"Generated from {n_ok} finished and {n_failed} failed cells"
             + (f" ({excluded} cells of other batch-size / s_e settings excluded)" if excluded else "")
             + f"; methods: {', '.join(order) or 'none'}. Values are test metrics at the epoch of best "
             "validation macro-AUC. A (dataset, model) block counts as a win, tie or loss by comparing "
             "means over folds; a difference within the tie margin is a tie, and the Wilcoxon tests "
             "count it as zero. A method is better (worse) than the baseline only when it wins more "
             "(fewer) blocks than it loses, its mean difference exceeds the tie margin and the Wilcoxon "
             "test over block means is significant. Per-model p-values are two-sided Wilcoxon "
             "signed-rank tests over paired folds and are not corrected for multiple comparisons.", ""]
    if ok.empty:
        lines.append("No finished cells: nothing to report.")
        return "\n".join(lines) + "\n"
    for metric in metrics:
        fr = (friedman or {}).get(metric) or friedman_nemenyi(results, metric, order, alpha)
        lines += _metric_findings(results, metric, order, baseline, alpha, (wilcoxon or {}).get(metric), fr)
    if convergence is not None and len(convergence):
        conv_order = [m for m in order if m in set(convergence["method"])]
        never = convergence[~convergence["reached_95"].astype(bool)]
        lines += ["# Convergence speed", "",
                  f"Per (dataset, model, fold, seed) the target is 95 % of the random run's best validation "
                  f"macro-AUC. `epochs_to_95` is the first epoch whose validation macro-AUC reaches it (runs that "
                  f"never do count as epochs + 1: {len(never)} of {len(convergence)} runs"
                  + (f", by method {never.groupby('method').size().to_dict()}" if len(never) else "")
                  + "); `curve_area` is the mean validation macro-AUC over the selection epochs.", ""]
        for metric in CONVERGENCE_METRICS:
            lines += _metric_findings(convergence, metric, conv_order, baseline, alpha,
                                      (convergence_wilcoxon or {}).get(metric), None)
    if by_seed is not None and len(by_seed):
        seed_cols = [c for c in by_seed.columns if c.startswith("seed ")]
        held = by_seed[by_seed["holds"] == "yes"]
        lines += ["# Robustness across seeds", "",
                  f"Each verdict recomputed on the runs of one seed at a time ({', '.join(seed_cols)}; same folds, "
                  f"other model initialisation and batch draws): {len(held)} of {len(by_seed)} (metric, method) "
                  "verdicts are the same for every seed.", ""]
        for row in by_seed.to_dict("records"):
            status = "holds" if row["holds"] == "yes" else "**does not hold**"
            lines.append(f"- {row['method']} on {row['metric']}: {status}: "
                         + "; ".join(f"{c}: {row[c]}" for c in seed_cols if c in row) + ".")
        lines.append("")
    return "\n".join(lines)
