"""Tables, statistical tests, figures and findings of the study.

Reads the result tree written by :mod:`mlabs.training` (one folder per cell,
``<dataset>/<model>/<method>[-se<s_e>]-b<batch>/fold<k>-seed<s>/`` with
``result.json`` and ``curves.tsv``) and writes the report of the study
(:func:`write_report`):

- main tables (data set x model, one column per method, mean +- std over folds);
- paired Wilcoxon signed-rank tests of each method against random, per model;
- method − random differences per block with their intervals (``tables/differences.csv``, the
  forest plot ``figures/forest.png``);
- the Friedman test over all (data set, model) blocks with the Nemenyi post-hoc
  test and a critical-difference diagram;
- convergence, "hard minority samples", minority-selection and sensitivity figures;
- ``metrics.json`` (DVC metrics), ``plots/val_macro_auc.csv`` and ``plots/train_bce.csv`` (DVC plots, one column per method) and
  ``findings.md``, a generated plain-language summary of what the numbers show.

Modules
-------
collect
    Reading the result tree: :func:`collect_results`, :func:`collect_curves`, :func:`select_main_setting`.
conventions
    Method order, each metric's direction, the tie margin (:func:`tie_margin`).
tables
    Main tables and their markdown, block means, the data-set and failed-cells tables.
statistics
    Paired Wilcoxon tests, the Friedman / Nemenyi test, verdicts (also per seed).
figures
    Every figure (matplotlib, seaborn, scikit-posthocs).
dvc_outputs
    The headline numbers of ``metrics.json`` and the DVC plot files.
findings_text
    The text of ``findings.md``.

Every public name of these modules that the notebooks and tests use is importable from
``mlabs.report`` itself.

Conventions
-----------
- "Result" of a cell = its test metrics at the epoch of best validation macro-AUC.
- A (data set, model) pair is a *block*; its value for a method is the mean over
  the method's runs (folds x seeds) in the block.
- Win / tie / loss compare such means in the metric's direction
  (:data:`mlabs.metrics.HIGHER_IS_BETTER`): a difference within the metric's tie
  margin (:func:`tie_margin`: 0.005 for the metrics, 1 epoch for epochs to 95 %)
  is a tie, and the paired tests count such differences as zero.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import pandas as pd
from matplotlib.figure import Figure

from .._io import atomic_path, write_json_atomic, write_text_atomic
from ..convergence import CONVERGENCE_METRICS, convergence_results
from ..metrics import REPORTED_METRICS
from .collect import CELL_COLUMNS, collect_curves, collect_results, finished_cells, select_main_setting
from .conventions import BASELINE, TIE_MARGIN, method_order, tie_margin
from .dvc_outputs import PLOT_CURVES, headline_metrics, plot_data  # PLOT_CURVES: the plots dvc.yaml names
from .figures import (placeholder_figure, plot_convergence, plot_critical_difference, plot_forest,
                      plot_minority_share, plot_motivation, plot_sensitivity_batch, plot_sensitivity_se)
from .findings_text import findings
from .machines import write_machines
from .statistics import (MIN_BLOCKS, POOLED_BLOCKS, POOLED_RUNS, FriedmanResult, friedman_markdown,
                         friedman_nemenyi, paired_differences, pooled_row, verdict, verdict_table, verdicts_by_seed,
                         wilcoxon_table)
from .tables import (block_means, dataset_table, failed_markdown, main_table, main_table_markdown, summary,
                     to_markdown)

__all__ = [
    "CELL_COLUMNS", "FriedmanResult",
    "collect_results", "collect_curves", "select_main_setting",
    "block_means", "summary", "main_table", "main_table_markdown",
    "wilcoxon_table", "friedman_nemenyi", "friedman_markdown",
    "plot_critical_difference", "plot_convergence", "plot_motivation", "plot_minority_share",
    "plot_sensitivity_se", "plot_sensitivity_batch", "placeholder_figure", "plot_forest", "paired_differences",
    "headline_metrics", "plot_data", "findings", "verdict", "verdict_table", "dataset_table", "failed_markdown",
    "to_markdown", "write_report", "tie_margin", "TIE_MARGIN", "pooled_row", "verdicts_by_seed",
    "POOLED_BLOCKS", "POOLED_RUNS", "MIN_BLOCKS",
]


#: Report files whose names depend on the data (data sets, methods, metrics); those left over
#: from an earlier run are removed. Fixed-name files are simply overwritten.
_OWNED_PATTERNS = ("tables/main_*.md", "tables/main_*.csv", "figures/convergence_*.png",
                   "figures/motivation_*.png", "figures/cd_*.png", "plots/*.csv")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name))


def _save_figure(fig: Figure, path: Path) -> Path:
    # PNG metadata carries no timestamp; fixing "Software" keeps bytes independent of the version
    with atomic_path(path, fsync=False) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": "mlabs.report"})
    return path


def write_report(results_root: str | Path, out_dir: str | Path, *, sensitivity_root: str | Path | None = None,
                 datasets_dir: str | Path | None = None, methods: Sequence[str] | None = None,
                 datasets: Sequence[str] | None = None, models: Sequence[str] | None = None,
                 folds: Sequence[int] | None = None, seeds: Sequence[int] | None = None,
                 alpha: float = 0.05) -> dict[str, list[Path]]:
    """Write all tables, figures, DVC metrics / plots and findings of the study.

    Parameters
    ----------
    results_root : str or Path
        Root of the main grid (e.g. ``artifacts/runs``).
    out_dir : str or Path
        Report folder (e.g. ``reports``); ``tables/``, ``figures/``, ``plots/`` are created in it.
    sensitivity_root : str or Path, optional
        Root of the sensitivity grid; when given, ``figures/sensitivity_se.png`` and
        ``figures/sensitivity_batch.png`` are written (placeholders if it holds no results).
    datasets_dir : str or Path, optional
        Folder of per-data-set statistics JSON files, for ``tables/datasets.md`` / ``.csv``.
    methods : sequence of str, optional
        Methods to report, in column order (default: all present).
    datasets, models : sequence of str, optional
        Data sets and models to report (default: all present). The results root keeps the cells
        of every profile run before (outputs persist), so a profile that drops a data set passes
        its own lists; the data-set statistics table is restricted to ``datasets`` as well.
    folds, seeds : sequence of int, optional
        Folds and seeds to report (default: all present), for the same reason: the default
        profile's report must not take in the second seed of the seeds profile.
    alpha : float
        Significance level of the tests and the critical-difference diagram.

    Returns
    -------
    dict of str to list of Path
        Written files by kind: ``tables``, ``figures``, ``plots``, ``metrics``, ``findings``,
        ``machines`` (``machines.json``: where the reported cells were computed,
        :mod:`mlabs.report.machines`).
        Data-dependent files left over from earlier runs (e.g. the figure of a data set no
        longer in the results, or the curves of a dropped method) are removed, so the notebook
        that globs ``figures/convergence_*.png`` shows only current ones.
    """
    out = Path(out_dir)
    for sub in ("tables", "figures", "plots"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {k: [] for k in ("tables", "figures", "plots", "metrics", "findings",
                                                      "machines")}

    def text(kind: str, rel: str, content: str) -> None:
        written[kind].append(write_text_atomic(content, out / rel))

    def figure(rel: str, fig: Figure) -> None:
        written["figures"].append(_save_figure(fig, out / rel))

    raw = collect_results(results_root)
    for column, keep in (("method", methods), ("dataset", datasets), ("model", models), ("fold", folds),
                         ("seed", seeds)):
        if keep is not None:
            raw = raw[raw[column].isin(list(keep))].reset_index(drop=True)
    results, excluded = select_main_setting(raw)
    order = method_order(finished_cells(results)["method"], methods)
    curves = collect_curves(results_root)
    if len(curves):  # only the curves of the kept cells
        keys = finished_cells(results)[CELL_COLUMNS].drop_duplicates()
        curves = curves.merge(keys, on=CELL_COLUMNS, how="inner")

    # main tables
    for metric in REPORTED_METRICS:
        text("tables", f"tables/main_{metric}.md", main_table_markdown(results, metric, order))
        mean, std, n = summary(results, metric, order)
        wide = pd.concat({"mean": mean, "std": std, "n": n}, axis=1)
        wide.columns = [f"{m}_{stat}" for stat, m in wide.columns]
        wide = wide[[f"{m}_{s}" for m in order for s in ("mean", "std", "n")]].reset_index()
        text("tables", f"tables/main_{metric}.csv", wide.to_csv(index=False, float_format="%.6g"))

    # Wilcoxon
    wilcoxon = {metric: wilcoxon_table(results, metric, BASELINE, order) for metric in REPORTED_METRICS}
    wil = pd.concat([t.assign(metric=m) for m, t in wilcoxon.items()], ignore_index=True)
    wil = wil[["metric"] + [c for c in wil.columns if c != "metric"]]
    text("tables", "tables/wilcoxon.csv", wil.to_csv(index=False, float_format="%.6g"))
    text("tables", "tables/wilcoxon.md",
         "Two-sided Wilcoxon signed-rank test (scipy) of each method against random: per model over "
         "(dataset, fold) pairs matched on dataset, fold and seed; `all (block means)` over the "
         "(dataset, model) means; `all (paired runs)` over every paired run of all models. mean_diff = "
         "method − random. W/T/L: per model over data sets, for the pooled rows over their units "
         f"(differences within the tie margin are ties). Verdicts use the block means with at least "
         f"{MIN_BLOCKS} blocks, else the paired runs.\n\n"
         + to_markdown(wil, floatfmt=".4g"))

    # convergence speed on the validation curves, against random
    convergence = convergence_results(curves, BASELINE)
    conv_wilcoxon = {metric: wilcoxon_table(convergence, metric, BASELINE, order) for metric in CONVERGENCE_METRICS}
    conv_text = ("Convergence speed per (dataset, model), mean ± std over folds: `epochs_to_95` = first epoch "
                 "whose validation macro-AUC reaches 95 % of the random run's best in the same fold (never: "
                 "epochs + 1); `curve_area` = mean validation macro-AUC over the selection epochs. Best in bold. "
                 "Paired tests against random follow.\n\n")
    for metric in CONVERGENCE_METRICS:
        conv_text += f"### {metric}\n\n" + main_table_markdown(convergence, metric, order) + "\n"
    conv_wil = pd.concat([t.assign(metric=m) for m, t in conv_wilcoxon.items()], ignore_index=True)
    conv_text += "### Wilcoxon against random\n\n" + to_markdown(conv_wil[["metric"] + [c for c in conv_wil.columns if c != "metric"]], floatfmt=".4g")
    text("tables", "tables/convergence.md", conv_text)
    text("tables", "tables/convergence.csv", convergence.to_csv(index=False, float_format="%.6g"))
    # effect sizes per block with their intervals (the forest plot of the rendered page)
    differences = pd.concat([paired_differences(results, m, BASELINE, order) for m in REPORTED_METRICS]
                            + [paired_differences(convergence, m, BASELINE, order) for m in CONVERGENCE_METRICS],
                            ignore_index=True)
    text("tables", "tables/differences.csv", differences.to_csv(index=False, float_format="%.6g"))
    figure("figures/forest.png", plot_forest(differences, note="95 % t-interval of the paired differences "
                                                               "(matched on fold and seed) per data set and model"))
    verdicts = verdict_table({**wilcoxon, **conv_wilcoxon}, alpha)
    text("tables", "tables/verdicts.csv", verdicts.to_csv(index=False, float_format="%.6g"))
    text("tables", "tables/verdicts.md",
         "Verdict of each method against random per metric. `unit`: what the Wilcoxon test pairs, "
         f"(dataset, model) block means when there are at least {MIN_BLOCKS} blocks, else the paired "
         "runs (dataset, model, fold, seed); `n`: how many. A difference within the tie margin is a tie "
         f"and counts as zero in the test; better / worse need p < {alpha:g}, more wins than losses (or "
         "the reverse) and a mean difference beyond the margin.\n\n" + to_markdown(verdicts, floatfmt=".4g"))
    by_seed = verdicts_by_seed(pd.concat([results, convergence], ignore_index=True), order, BASELINE, alpha)
    seed_text = ("The verdicts of `verdicts.md` computed on each seed's runs alone (model initialisation and "
                 "batch draws differ between seeds; folds are the same). `holds`: every seed gives the same "
                 "verdict.\n\n")
    text("tables", "tables/verdicts_by_seed.md",
         seed_text + (to_markdown(by_seed) if len(by_seed) else "Only one seed in the results.\n"))

    # Friedman / Nemenyi
    friedman = {metric: friedman_nemenyi(results, metric, order, alpha) for metric in REPORTED_METRICS}
    text("tables", "tables/friedman.md", friedman_markdown(friedman))
    for metric, fr in friedman.items():
        figure(f"figures/cd_{metric}.png", plot_critical_difference(fr))

    # data sets and failures
    if datasets_dir is not None:
        ds = dataset_table(datasets_dir)
        if datasets is not None and len(ds):
            ds = ds[ds["dataset"].isin(list(datasets))].reset_index(drop=True)
        text("tables", "tables/datasets.md", to_markdown(ds) if len(ds) else f"No statistics in {datasets_dir}.\n")
        text("tables", "tables/datasets.csv", ds.to_csv(index=False))
    text("tables", "tables/failed.md", failed_markdown(results, excluded))

    # figures
    for dataset in sorted(finished_cells(results)["dataset"].unique()):
        figure(f"figures/convergence_{_safe_name(dataset)}.png", plot_convergence(curves, dataset, order))
        figure(f"figures/motivation_{_safe_name(dataset)}.png", plot_motivation(curves, dataset, order))
    figure("figures/minority_share.png", plot_minority_share(results, order))
    reported = [(Path(results_root).as_posix(), raw)]
    if sensitivity_root is not None:
        sens = collect_results(sensitivity_root)
        reported.append((Path(sensitivity_root).as_posix(), sens))
        figure("figures/sensitivity_se.png", plot_sensitivity_se(sens))
        figure("figures/sensitivity_batch.png", plot_sensitivity_batch(sens))

    # DVC metrics and plots, findings
    headline = headline_metrics(results, order, friedman=friedman["macro_auc"], convergence=convergence)
    written["metrics"].append(write_json_atomic(headline, out / "metrics.json"))
    for name, frame in plot_data(curves, methods if methods is not None else order).items():
        path = out / f"plots/{name}.csv"
        written["plots"].append(write_text_atomic(frame.to_csv(index=False, float_format="%.6g"), path))
    text("findings", "findings.md", findings(results, order, BASELINE, alpha, excluded=len(excluded),
                                             wilcoxon=wilcoxon, friedman=friedman, convergence=convergence,
                                             convergence_wilcoxon=conv_wilcoxon, by_seed=by_seed))
    # where the reported cells were computed (from their uncached timing sidecars)
    cells = [(f"{root}/{rel}", Path(root) / rel) for root, frame in reported
             for rel in frame.loc[frame["status"] == "ok", "path"]]
    written["machines"].append(write_machines(cells, out / "machines.json"))

    # remove files of our own patterns that this run did not write (e.g. a dropped data set)
    keep = {p.resolve() for paths in written.values() for p in paths}
    for pattern in _OWNED_PATTERNS:
        for path in out.glob(pattern):
            if path.resolve() not in keep:
                path.unlink()
    return written
