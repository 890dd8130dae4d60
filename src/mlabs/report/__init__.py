"""Tables, statistical tests, figures and findings of the study.

Reads the result tree written by :mod:`mlabs.training` (one folder per cell,
``<dataset>/<model>/<method>[-se<s_e>]-b<batch>/fold<k>-seed<s>/`` with
``result.json`` and ``curves.tsv``) and writes the report of the study
(:func:`write_report`):

- main tables (data set x model, one column per method, mean +- std over folds);
- each method against random across data sets (unit = data set, per model and pooled over
  models): Wilcoxon signed-rank and Bayesian signed-rank tests, Holm over the metrics;
- within each data set over its folds: Nadeau-Bengio corrected t-test and Bayesian correlated
  t-test (rope = tie margin), Holm over the metrics;
- the Friedman test over data sets with the Nemenyi post-hoc test and a critical-difference
  diagram;
- the per-data-set gains against imbalance, labels, cardinality and label correlation
  (Spearman, Holm);
- method − random differences per (data set, model) with their intervals
  (``tables/differences.csv``, the forest plot ``figures/forest.png``);
- convergence, "hard minority samples", minority-selection and sensitivity figures;
- how far from random each method's batches were (``tables/selection_strength.*``,
  ``figures/selection_strength.png``); where the profile runs ablation methods, each
  ingredient's contribution against random and against reweighting (``tables/ablation.*``,
  ``figures/ablation.png``); wall time per epoch relative to random and the training time
  against the grid's estimate, from the uncached timing sidecars (``tables/timing.*``,
  machine-dependent);
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
    Across data sets: Wilcoxon and Bayesian signed-rank tests, Friedman / Nemenyi, Holm, verdicts.
within_dataset
    Within one data set over its folds: the corrected and the Bayesian correlated t-tests.
characteristics
    Per-data-set gains against data-set characteristics (the paper's claim).
figures
    Every figure (matplotlib, seaborn, scikit-posthocs).
dvc_outputs
    The headline numbers of ``metrics.json`` and the DVC plot files.
findings_text
    The text of ``findings.md``.
ablation
    Which part of the method matters: imbalance weights per data set, selection strength,
    each ingredient against random and reweighting, wall time relative to random.
training_time
    The cells' training time summed from their timing sidecars, against the grid's estimate.

Every public name of these modules that the notebooks and tests use is importable from
``mlabs.report`` itself.

Conventions
-----------
- "Result" of a cell = its test metrics at the epoch of best validation macro-AUC.
- A (data set, model) pair is a *block*; its value for a method is the mean over
  the method's runs (folds x seeds) in the block. The unit of the tests across data
  sets is the data set: pooled over models, the mean of its blocks (docs/statistics.md).
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
from .collect import (CELL_COLUMNS, collect_curves, collect_results, finished_cells, prepared_file,
                      select_main_setting, unprepared)
from .conventions import BASELINE, PLACEHOLDER_PREFIX, TIE_MARGIN, method_order, tie_margin
from .dvc_outputs import PLOT_CURVES, headline_metrics, plot_data  # PLOT_CURVES: the plots dvc.yaml names
from .characteristics import (characteristic_correlations, dataset_characteristics, dataset_differences,
                              label_correlation_strength)
from .figures import (placeholder_figure, plot_ablation, plot_characteristics, plot_convergence,
                      plot_critical_difference, plot_forest, plot_minority_share, plot_motivation,
                      plot_selection_strength, plot_sensitivity_batch, plot_sensitivity_se)
from .findings_text import findings
from .ablation import (ablation_findings, imbalance_weight_table, ingredient_markdown, ingredient_table,
                       selection_strength_markdown, selection_strength_table, timing_markdown, timing_table)
from .machines import write_machines
from .training_time import training_time_markdown, training_time_table
from ..cost import training_shape
from .statistics import (MIN_DATASETS, MIN_DATASETS_BAYES, POOLED, FriedmanResult, add_holm, bayes_verdict, friedman_markdown,
                         friedman_nemenyi, holm, paired_differences, verdict, verdict_table, verdicts_by_seed, wilcoxon_table)
from .within_dataset import (corrected_ttest, correlated_bayes, prepared_test_train_ratio, protocol_test_train_ratio,
                             within_dataset_table)
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
    "to_markdown", "write_report", "tie_margin", "TIE_MARGIN", "verdicts_by_seed", "POOLED", "MIN_DATASETS", "MIN_DATASETS_BAYES",
    "holm", "add_holm", "bayes_verdict", "within_dataset_table", "corrected_ttest", "correlated_bayes",
    "protocol_test_train_ratio", "prepared_test_train_ratio", "dataset_characteristics", "dataset_differences",
    "characteristic_correlations", "label_correlation_strength", "plot_characteristics",
    "imbalance_weight_table", "selection_strength_table", "ingredient_table", "timing_table", "ablation_findings",
    "training_time_table",
    "plot_selection_strength", "plot_ablation",
]


#: Report files whose names depend on the data (data sets, methods, metrics); those left over
#: from an earlier run are removed. Fixed-name files are simply overwritten.
_OWNED_PATTERNS = ("tables/main_*.md", "tables/main_*.csv", "figures/convergence_*.png",
                   "figures/motivation_*.png", "figures/cd_*.png", "plots/*.csv",
                   # the ablation section exists only where the profile runs ablation methods
                   "tables/ablation.md", "tables/ablation.csv", "figures/ablation.png")


#: the header of tables/datasets.md: what its columns mean
DATASETS_LEGEND = (
    "The data sets as shipped and, primed (d', q', cardinality', MeanIR', label-less'), after the study's "
    "preprocessing (feature selection, labels with too few positives dropped: `labels dropped`). MeanIR: the "
    "mean over labels of IRLbl = (count of the most frequent label) / (count of the label); max IRLbl its "
    "largest; cardinality: labels per sample; label-less: samples without a label. `imb_w_*`: the "
    "imbalance weights of fold 0's training samples as adaptive selection uses them (share above 1, mean, "
    "90th percentile, max); `imb_w_raw_*`: the same without the per-label normalisation (docs/method.md).\n\n")


def _verdicts_shown(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdict table as the markdown shows it: the verdicts right after the unit, the long Holm
    family last (the CSV keeps the computed order)."""
    first = [c for c in ("metric", "method", "baseline", "level", "unit", "n", "verdict", "bayes_verdict")
             if c in verdicts]
    return verdicts[first + [c for c in verdicts.columns if c not in first and c != "family"]
                    + (["family"] if "family" in verdicts else [])]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name))


def _save_figure(fig: Figure, path: Path) -> Path:
    # PNG metadata carries no timestamp; fixing "Software" keeps bytes independent of the version
    with atomic_path(path, fsync=False) as tmp:
        metadata = {"Software": "mlabs.report"}
        if getattr(fig, "mlabs_placeholder", None):
            metadata["Description"] = PLACEHOLDER_PREFIX + fig.mlabs_placeholder
        fig.savefig(tmp, format="png", metadata=metadata)
    return path


def write_report(results_root: str | Path, out_dir: str | Path, *, sensitivity_root: str | Path | None = None,
                 datasets_dir: str | Path | None = None, methods: Sequence[str] | None = None,
                 datasets: Sequence[str] | None = None, models: Sequence[str] | None = None,
                 folds: Sequence[int] | None = None, seeds: Sequence[int] | None = None,
                 alpha: float = 0.05, n_folds: int = 5,
                 prepared_dir: str | Path | None = None, k_neighbors: int = 5) -> dict[str, list[Path]]:
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
    n_folds : int
        The protocol's number of folds (``data.n_folds``): the n_test / n_train ratio of the
        corrected t-tests within a data set (:func:`protocol_test_train_ratio`).
    prepared_dir : str or Path, optional
        Folder of the prepared data (``artifacts/prepared``): the training labels give each data
        set's label correlation for the characteristics analysis (NaN without it), and with
        ``datasets_dir`` the data-set table's imbalance-weight columns (fold 0's training part).
        When given, it must hold ``<name>.npz`` of every data set in ``datasets``
        (``FileNotFoundError`` before anything is written).
    k_neighbors : int
        Neighbours of those imbalance weights (``selection.adaptive.k_neighbors``).

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
    if prepared_dir is not None:
        # without the prepared folds the data-set table and the characteristics lose columns but
        # the report would still look complete (a notebook run after `make lab`, which restores
        # only the raw data): stop before writing anything
        missing = ([str(prepared_dir)] if not Path(prepared_dir).is_dir() else
                   [str(prepared_file(prepared_dir, ds)) for ds in unprepared(prepared_dir, datasets or [])])
        if missing:
            raise FileNotFoundError(f"prepared data not found: {', '.join(missing)}; restore it with `make pull` (or run the "
                                    "pipeline), or pass prepared_dir=None for a report without label "
                                    "correlation and imbalance weights")
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

    # across data sets (unit = data set): Wilcoxon and Bayesian signed-rank, Holm over the metrics
    ratio = protocol_test_train_ratio(n_folds)
    convergence = convergence_results(curves, BASELINE)
    both = pd.concat([results, convergence], ignore_index=True) if len(convergence) else results
    metrics = [*REPORTED_METRICS, *(CONVERGENCE_METRICS if len(convergence) else ())]
    across = pd.concat([wilcoxon_table(both, m, BASELINE, order).assign(metric=m) for m in metrics],
                       ignore_index=True)
    across = add_holm(across, ["method", "model"],
                      scope=lambda r: f"{'pooled over models' if r['model'] == POOLED else 'model ' + r['model']}, "
                                      f"over {r['unit']}")
    across = across[["metric"] + [c for c in across.columns if c != "metric"]]
    text("tables", "tables/wilcoxon.csv", across.to_csv(index=False, float_format="%.6g"))
    text("tables", "tables/wilcoxon.md",
         "Each method against random across data sets (unit = data set, n = data sets): value = mean over folds, "
         f"pooled = mean over models. Two-sided Wilcoxon signed-rank test (scipy; zero differences split between "
         "the rank sums, Demšar 2006), effect size = matched-pairs rank-biserial r in the better direction; Bayesian signed-rank "
         "test (baycomp, rope = tie margin): P(better), P(equivalent), P(worse). `p_holm`: Holm over the metrics "
         f"tested for one method and model (`family`). With fewer than {MIN_DATASETS} data sets: not computed; "
         f"the Bayesian test needs {MIN_DATASETS_BAYES} (with fewer its prior decides).\n\n"
         + to_markdown(across, floatfmt=".4g"))

    # within each data set over its folds: corrected and Bayesian correlated t-tests
    within = {m: within_dataset_table(both, m, BASELINE, order, test_train_ratio=ratio) for m in metrics}
    within_all = pd.concat([t.assign(metric=m) for m, t in within.items()], ignore_index=True)
    within_all = add_holm(within_all, ["method", "dataset", "model"],
                          scope=lambda r: f"{r['dataset']}, {'pooled over models' if r['model'] == POOLED else 'model ' + r['model']}, over {r['unit']}")
    within_all = within_all[["metric"] + [c for c in within_all.columns if c != "metric"]]
    text("tables", "tables/within_dataset.csv", within_all.to_csv(index=False, float_format="%.6g"))
    text("tables", "tables/within_dataset.md",
         "Each method against random within each data set over its folds (unit = fold; pooled = per fold the mean "
         "over models). Nadeau-Bengio corrected resampled t-test: variance (1/n + n_test/n_train) s², n_test/n_train "
         f"= {ratio:.4g} for {n_folds} folds (test = half the held-out fold); d = mean / sd of the differences in the "
         "better direction. Bayesian correlated t-test (baycomp's posterior, same variance, rope = tie margin). "
         "`p_holm`: Holm over the metrics of one method, data set and model (`family`).\n\n"
         + to_markdown(within_all, floatfmt=".4g"))

    conv_text = ("Convergence speed per (dataset, model), mean ± std over folds: `epochs_to_95` = first epoch "
                 "whose validation macro-AUC reaches 95 % of the random run's best in the same fold (never: "
                 "epochs + 1); `curve_area` = mean validation macro-AUC over the selection epochs. Best in bold. "
                 "Their tests against random are in `wilcoxon.md` and `within_dataset.md`.\n\n")
    for metric in CONVERGENCE_METRICS:
        conv_text += f"### {metric}\n\n" + main_table_markdown(convergence, metric, order) + "\n"
    text("tables", "tables/convergence.md", conv_text)
    text("tables", "tables/convergence.csv", convergence.to_csv(index=False, float_format="%.6g"))
    # effect sizes per block with their intervals (the forest plot of the rendered page)
    differences = pd.concat([paired_differences(results, m, BASELINE, order, test_train_ratio=ratio)
                             for m in REPORTED_METRICS]
                            + [paired_differences(convergence, m, BASELINE, order, test_train_ratio=ratio)
                               for m in CONVERGENCE_METRICS], ignore_index=True)
    text("tables", "tables/differences.csv", differences.to_csv(index=False, float_format="%.6g"))
    figure("figures/forest.png", plot_forest(differences, note="95 % interval of the fold differences per data "
                                                               "set and model, Nadeau–Bengio corrected for the "
                                                               "folds' shared training data"))
    verdicts = verdict_table(both, order, BASELINE, alpha, ratio, metrics,
                             across=across[[c for c in across.columns if c not in ("p_holm", "family")]], within=within)
    text("tables", "tables/verdicts.csv", verdicts.to_csv(index=False, float_format="%.6g"))
    text("tables", "tables/verdicts.md",
         "Verdict of each method against random per metric, pooled over models. `level`: across data sets "
         f"(unit = data set; at least {MIN_DATASETS}) or, with one data set, within it over its folds; `unit`: the "
         "unit and n. better / worse need Holm-adjusted p < "
         f"{alpha:g} (`family`), more wins than losses (or the reverse) and a mean difference beyond the tie "
         "margin. `bayes_verdict`: the posterior probability above 0.95 (practically equivalent = within the tie "
         "margin), else undecided. `effect`: the effect size, of the kind `effect_measure` names; `family` (the "
         "Holm family) comes last.\n\n" + to_markdown(_verdicts_shown(verdicts), floatfmt=".4g"))
    by_seed = verdicts_by_seed(both, order, BASELINE, alpha, ratio)
    seed_text = ("The verdicts of `verdicts.md` computed on each seed's runs alone (model initialisation and "
                 "batch draws differ between seeds; folds are the same). `holds`: every seed gives the same "
                 "verdict; `same_sign`: the mean difference has the same sign under every seed (a verdict of no "
                 "significant difference can hold while the direction flips).\n\n")
    text("tables", "tables/verdicts_by_seed.md",
         seed_text + (to_markdown(by_seed) if len(by_seed) else "Only one seed in the results.\n"))

    # how far from random the batches were; which ingredient matters (docs/statistics.md, "Ablations")
    strength = selection_strength_table(curves, order)
    text("tables", "tables/selection_strength.md", selection_strength_markdown(strength))
    text("tables", "tables/selection_strength.csv", strength.to_csv(index=False, float_format="%.6g"))
    figure("figures/selection_strength.png", plot_selection_strength(curves, order))
    ingredients = ingredient_table(both, order, alpha, ratio, metrics, vs_random=verdicts)
    if len(ingredients):
        text("tables", "tables/ablation.md", ingredient_markdown(ingredients, alpha))
        text("tables", "tables/ablation.csv", ingredients.to_csv(index=False, float_format="%.6g"))
        figure("figures/ablation.png", plot_ablation(both, ingredients))
    # Friedman / Nemenyi over data sets: pooled over models, and per model
    friedman = {metric: friedman_nemenyi(results, metric, order, alpha) for metric in REPORTED_METRICS}
    per_model = {(metric, model): friedman_nemenyi(results, metric, order, alpha, model=model)
                 for metric in REPORTED_METRICS for model in sorted(finished_cells(results)["model"].unique())}
    text("tables", "tables/friedman.md", friedman_markdown({**friedman, **per_model}))
    for metric, fr in friedman.items():
        figure(f"figures/cd_{metric}.png", plot_critical_difference(fr))

    # the paper's claim: gains against data-set characteristics
    labels, shapes = {}, {}
    if prepared_dir is not None:
        from ..data.store import load_prepared

        for ds in sorted(finished_cells(results)["dataset"].unique()):
            path = prepared_file(prepared_dir, ds)
            if path.is_file():
                prepared = load_prepared(path)
                labels[ds] = (prepared.Y, prepared.fold)
                shapes[ds] = training_shape(len(prepared.Y), prepared.n_folds, prepared.Y.shape[1])
    # machine-dependent: from the uncached timing sidecars, so in a file of its own
    timing, timed, total = timing_table(results, results_root, curves)
    hours, hours_timed, hours_total = training_time_table(results, results_root, shapes)
    text("tables", "tables/timing.md", timing_markdown(timing, timed, total) + "\n"
         + training_time_markdown(hours, hours_timed, hours_total))
    text("tables", "tables/timing.csv", timing.to_csv(index=False, float_format="%.6g"))

    chars = dataset_characteristics(datasets_dir, sorted(finished_cells(results)["dataset"].unique()), labels)
    diffs = dataset_differences(both, order, BASELINE)
    correlations = characteristic_correlations(diffs, chars)
    text("tables", "tables/characteristics.csv", correlations.to_csv(index=False, float_format="%.6g"))
    text("tables", "tables/characteristics.md",
         "Per-data-set difference against random (mean over folds and models) vs data-set characteristics: "
         "Spearman rank correlation, Holm over every correlation computed (`family`). Label correlation (chain "
         "only): mean off-diagonal P(j|i) of the training labels, averaged over folds.\n\n"
         + (to_markdown(chars.reset_index(), floatfmt=".4g") + "\n" if len(chars) else "")
         + to_markdown(correlations, floatfmt=".4g"))
    figure("figures/characteristics.png", plot_characteristics(diffs, chars, correlations))

    # data sets and failures
    if datasets_dir is not None:
        ds = dataset_table(datasets_dir)
        if datasets is not None and len(ds):
            ds = ds[ds["dataset"].isin(list(datasets))].reset_index(drop=True)
        if prepared_dir is not None and len(ds):
            weights = imbalance_weight_table(prepared_dir, list(ds["dataset"]), k_neighbors)
            if len(weights):
                ds = ds.merge(weights, left_on="dataset", right_index=True, how="left")
        text("tables", "tables/datasets.md", DATASETS_LEGEND + to_markdown(ds) if len(ds)
             else f"No statistics in {datasets_dir}.\n")
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
    text("findings", "findings.md", findings(results, verdicts, order, BASELINE, alpha, excluded=len(excluded),
                                             within=within, friedman=friedman, convergence=convergence,
                                             correlations=correlations, by_seed=by_seed)
         + ablation_findings(ingredients, results, strength))
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
