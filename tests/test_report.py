"""Tests of :mod:`mlabs.report` on small synthetic result trees with a planted effect.

Tree: 2 data sets x 2 models x 3 methods x 3 folds (seed 0), in the exact layout and file
formats written by :mod:`mlabs.training`. Planted effect on every test metric:

- adaptive is better than random on 3 of the 4 (dataset, model) blocks, worse on (ds_b, m2);
- chain is worse than random on every block;
- one extra failed cell (chain, fold 3).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlabs import report
from mlabs.metrics import ALL_METRICS, HIGHER_IS_BETTER, REPORTED_METRICS
from mlabs.results import write_timing

DATASETS = ("ds_a", "ds_b")
MODELS = ("m1", "m2")
METHODS = ("random", "adaptive", "chain")
FOLDS = (0, 1, 2)
EPOCHS, WARMUP = 5, 2
#: the machine record of the timing sidecars (mlabs.results.machine_record)
MACHINE = {"cpu": "Test CPU", "cpu_capability": "AVX2", "torch_threads": 1, "python": "3.12.0",
           "torch": "2.13.0", "numpy": "2.3.0", "device": "cpu"}
BLOCK_OFFSET = {("ds_a", "m1"): 0.00, ("ds_a", "m2"): 0.05, ("ds_b", "m1"): -0.04, ("ds_b", "m2"): 0.02}


def effect(dataset: str, model: str, method: str, fold: int) -> float:
    """Improvement over random (in the 'better' direction) planted for one run."""
    if method == "adaptive":
        return -0.008 if (dataset, model) == ("ds_b", "m2") else 0.02 + 0.003 * fold
    if method == "chain":
        return -0.01 - 0.002 * fold
    return 0.0


def value(metric: str, dataset: str, model: str, method: str, fold: int) -> float:
    """Test value of ``metric``: a base level plus the planted effect in the metric's direction."""
    base = (0.60 if HIGHER_IS_BETTER[metric] else 0.30) + BLOCK_OFFSET[(dataset, model)] + 0.01 * fold
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    return round(base + sign * effect(dataset, model, method, fold), 6)


def write_cell(root: Path, dataset, model, method, fold, *, seed=0, se=2.0, batch=16, status="ok",
               metric_value=value, timing: bool = True) -> Path:
    """A cell folder as training writes it; ``timing`` False leaves out the timing sidecar (a cell
    stored without one)."""
    name = method if method == "random" else f"{method}-se{se:g}"
    out = root / dataset / model / f"{name}-b{batch}" / f"fold{fold}-seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    cell = {"dataset": dataset, "model": model, "method": method, "fold": fold, "seed": seed,
            "selection_pressure": se, "batch_size": batch}
    if status != "ok":
        (out / "result.json").write_text(json.dumps(
            {"status": "failed", "cell": cell, "error": "NonFiniteLoss: the training loss became nan at epoch 3"}))
        return out
    test = {m: metric_value(m, dataset, model, method, fold) for m in ALL_METRICS}
    val = {m: v + 0.001 for m, v in test.items()}
    share_train = 0.25
    share = share_train * (1.0 if method == "random" else 1.4 if method == "adaptive" else 1.2)
    result = {"status": "ok", "cell": cell, "fingerprint": "0" * 16, "best_epoch": EPOCHS, "val": val,
              "test": test, "epochs": EPOCHS, "warmup_epochs": WARMUP,
              "minority_share": share, "minority_share_train": share_train}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    if timing:
        write_timing(out, fingerprint=result["fingerprint"], epoch_seconds=[0.1] * EPOCHS, train_seconds=1.5,
                     first_epoch=WARMUP + 1, machine=MACHINE)
    cols = ["epoch", "train_loss", "minority_share", "minority_share_train",
            "loss_minority", "loss_rest"] + [f"val_{m}" for m in ALL_METRICS] + [f"test_{m}" for m in ALL_METRICS]
    lines = ["\t".join(cols)]
    for epoch in range(1, EPOCHS + 1):
        selecting = epoch > WARMUP
        row = {"epoch": epoch, "train_loss": 1.0 / epoch + 0.01 * fold,
               "minority_share": share if selecting else share_train, "minority_share_train": share_train,
               "loss_minority": 1.5 / epoch, "loss_rest": 1.0 / epoch}
        row.update({f"val_{m}": v - 0.01 * (EPOCHS - epoch) for m, v in val.items()})
        row.update({f"test_{m}": v - 0.01 * (EPOCHS - epoch) for m, v in test.items()})
        lines.append("\t".join(f"{row[c]:.6g}" if isinstance(row[c], float) else str(row[c]) for c in cols))
    (out / "curves.tsv").write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for ds in DATASETS:
        for model in MODELS:
            for method in METHODS:
                for fold in FOLDS:
                    write_cell(root, ds, model, method, fold)
    write_cell(root, "ds_a", "m1", "chain", 3, status="failed")
    return root


@pytest.fixture(scope="module")
def results(runs_root) -> pd.DataFrame:
    return report.collect_results(runs_root)


def test_timings_come_from_the_sidecar_and_are_nan_without_it(tmp_path):
    write_cell(tmp_path, "ds_a", "m1", "random", 0)
    write_cell(tmp_path, "ds_a", "m1", "random", 1, timing=False)  # restored by `dvc pull`
    frame = report.collect_results(tmp_path)
    assert frame["train_seconds"].tolist()[0] == 1.5 and np.isnan(frame["train_seconds"].tolist()[1])
    assert "epoch_seconds" not in report.collect_curves(tmp_path)


def test_machines_json_names_where_each_cell_ran_and_survives_a_pull(tmp_path):
    from mlabs.report.machines import cell_machines, machine_summary, write_machines

    root = tmp_path / "runs"
    folders = [write_cell(root, "ds_a", "m1", method, fold) for method in METHODS for fold in (0, 1)]
    other = dict(MACHINE, cpu="Other CPU", cpu_capability="AVX512")
    write_timing(folders[0], fingerprint="0" * 16, epoch_seconds=[0.2] * EPOCHS, train_seconds=2.0,
                 first_epoch=WARMUP + 1, machine=other)
    cells = [(f"artifacts/runs/{f.relative_to(root).as_posix()}", f) for f in folders]
    path = tmp_path / "machines.json"
    write_machines(cells, path)
    first = path.read_bytes()
    summary = json.loads(first)
    assert sorted(summary["machines"].values(), key=str) == sorted([MACHINE, other], key=str)
    by_cell = cell_machines(summary)
    assert by_cell[cells[0][0]] == other and all(by_cell[k] == MACHINE for k, _ in cells[1:])
    assert "seconds" not in first.decode()

    # the same results without their sidecars (stored without them): the records stay
    for f in folders:
        (f / "timing.json").unlink()
    write_machines(cells, path)
    assert path.read_bytes() == first
    # a result computed anew without a sidecar is unknown, not credited to the old machine
    write_cell(root, "ds_a", "m1", "random", 0, timing=False, metric_value=lambda *a: 0.5)
    assert cell_machines(machine_summary(cells, summary))[cells[0][0]] is None


def block_mean(metric, ds, model, method) -> float:
    return float(np.mean([value(metric, ds, model, method, f) for f in FOLDS]))


# --- collecting --------------------------------------------------------------------------------

def test_collect_results_reads_every_cell_including_failed(results):
    assert len(results) == 2 * 2 * 3 * 3 + 1
    assert (results["status"] == "ok").sum() == 36
    failed = results[results["status"] == "failed"]
    assert len(failed) == 1
    row = failed.iloc[0]
    assert (row["dataset"], row["model"], row["method"], row["fold"]) == ("ds_a", "m1", "chain", 3)
    assert "NonFiniteLoss" in row["error"] and np.isnan(row["macro_auc"])
    ok = results[(results["status"] == "ok") & (results["dataset"] == "ds_b") & (results["model"] == "m2")
                 & (results["method"] == "adaptive") & (results["fold"] == 1)].iloc[0]
    for metric in ALL_METRICS:
        assert ok[metric] == pytest.approx(value(metric, "ds_b", "m2", "adaptive", 1))
        assert ok[f"val_{metric}"] == pytest.approx(value(metric, "ds_b", "m2", "adaptive", 1) + 0.001)
    assert ok["selection_pressure"] == 2.0 and ok["batch_size"] == 16 and ok["warmup_epochs"] == WARMUP


def test_collect_results_missing_root_and_unreadable_json(tmp_path):
    empty = report.collect_results(tmp_path / "nothing")
    assert empty.empty and {"dataset", "status", "macro_auc"} <= set(empty.columns)
    out = tmp_path / "r" / "ds" / "m" / "adaptive-se4-b32" / "fold1-seed7"
    out.mkdir(parents=True)
    (out / "result.json").write_text("{not json")
    res = report.collect_results(tmp_path / "r")
    row = res.iloc[0]
    assert row["status"] == "failed" and "unreadable" in row["error"]
    assert (row["method"], row["selection_pressure"], row["batch_size"], row["fold"], row["seed"]) == \
        ("adaptive", 4.0, 32, 1, 7)


def test_collect_curves_long_format(runs_root):
    curves = report.collect_curves(runs_root)
    assert len(curves) == 36 * EPOCHS  # the failed cell has no curves
    assert set(report.CELL_COLUMNS) <= set(curves.columns)
    assert {"loss_minority", "loss_rest", "val_macro_auc", "test_one_error", "warmup_epochs"} <= set(curves.columns)
    one = curves[(curves["dataset"] == "ds_a") & (curves["model"] == "m2") & (curves["method"] == "chain")
                 & (curves["fold"] == 2)]
    assert list(one["epoch"]) == list(range(1, EPOCHS + 1))
    assert one["train_loss"].iloc[0] == pytest.approx(1.02)


def test_select_main_setting_drops_other_settings(results):
    extra = results.iloc[[0]].copy()
    extra["method"], extra["selection_pressure"], extra["status"] = "adaptive", 8.0, "ok"
    kept, excluded = report.select_main_setting(pd.concat([results, extra], ignore_index=True))
    assert len(kept) == len(results) and len(excluded) == 1
    assert excluded.iloc[0]["selection_pressure"] == 8.0


# --- tables ------------------------------------------------------------------------------------

def test_main_table_mean_std_and_bold(results):
    table = report.main_table(results, "macro_auc")
    assert list(table.columns) == ["random", "adaptive", "chain"]
    vals = [value("macro_auc", "ds_a", "m2", "chain", f) for f in FOLDS]
    expected = f"{np.mean(vals):.4f} ± {np.std(vals, ddof=0):.4f}"
    assert table.loc[("ds_a", "m2"), "chain"] == expected
    # the failed fold-3 chain cell does not enter the mean
    vals = [value("macro_auc", "ds_a", "m1", "chain", f) for f in FOLDS]
    assert table.loc[("ds_a", "m1"), "chain"] == f"{np.mean(vals):.4f} ± {np.std(vals):.4f}"

    md = report.main_table_markdown(results, "hamming_loss")  # lower is better
    rows = {tuple(line.split(" | ")[0:2]): line for line in md.splitlines() if line.startswith("| ds_")}
    for (ds, model), line in rows.items():
        ds = ds.lstrip("| ")
        bold = [m for m, cell in zip(METHODS, line.strip(" |").split(" | ")[2:]) if cell.startswith("**")]
        winner = "random" if (ds, model) == ("ds_b", "m2") else "adaptive"
        assert bold == [winner], line


def test_main_table_ties_bold_both(tmp_path):
    for method in ("random", "adaptive"):
        for fold in FOLDS:
            write_cell(tmp_path, "ds", "m", method, fold, metric_value=lambda *a: 0.5)
    md = report.main_table_markdown(report.collect_results(tmp_path), "macro_auc")
    assert md.count("**0.5000 ± 0.0000**") == 2


def test_main_table_respects_methods_argument(results):
    table = report.main_table(results, "macro_auc", methods=["chain", "random", "not_run"])
    assert list(table.columns) == ["chain", "random"]


def dataset_mean(metric, ds, method, models=MODELS) -> float:
    """A data set's value pooled over models: the mean over models of the mean over folds."""
    return float(np.mean([block_mean(metric, ds, m, method) for m in models]))


def test_wilcoxon_across_data_sets_matches_scipy_and_counts(results):
    table = report.wilcoxon_table(results, "macro_auc")
    # per model: the unit is the data set (mean over folds), n = 2
    row = table[(table["model"] == "m2") & (table["method"] == "adaptive")].iloc[0]
    x = [block_mean("macro_auc", ds, "m2", "adaptive") for ds in DATASETS]
    y = [block_mean("macro_auc", ds, "m2", "random") for ds in DATASETS]
    ref = stats.wilcoxon(np.round(np.subtract(x, y), 12), zero_method="zsplit")
    assert row["n"] == 2 and row["unit"] == "2 data sets (mean of 3 folds and 1 model)"
    assert row["p_value"] == pytest.approx(ref.pvalue) and row["statistic"] == pytest.approx(ref.statistic)
    assert (row["wins"], row["ties"], row["losses"]) == (1, 0, 1)  # ds_a win, ds_b loss
    # pooled: one value per data set, the mean over models, so ds_b (m1 +0.023, m2 -0.008) is a win
    pooled = table[(table["model"] == report.POOLED) & (table["method"] == "adaptive")].iloc[0]
    assert pooled["unit"] == "2 data sets (mean of 3 folds and 2 models)"
    assert (pooled["wins"], pooled["ties"], pooled["losses"]) == (2, 0, 0)
    expected = np.mean([dataset_mean("macro_auc", ds, "adaptive") - dataset_mean("macro_auc", ds, "random")
                        for ds in DATASETS])
    assert pooled["mean_diff"] == pytest.approx(expected)
    assert pooled["rank_biserial"] == pytest.approx(1.0)  # better on every data set
    assert "only 2 pairs" in pooled["note"]
    # two data sets are too few for a Bayesian signed-rank verdict (its prior would decide it)
    assert pooled[["p_better", "p_equivalent", "p_worse"]].isna().all()
    assert f"fewer than {report.MIN_DATASETS_BAYES} data sets" in pooled["note"]
    chain = table[(table["model"] == report.POOLED) & (table["method"] == "chain")].iloc[0]
    assert (chain["wins"], chain["ties"], chain["losses"]) == (0, 0, 2) and chain["rank_biserial"] == -1.0
    # lower-is-better metric: same pattern because the effect was planted in that direction
    low = report.wilcoxon_table(results, "one_error")
    pooled = low[(low["model"] == report.POOLED) & (low["method"] == "adaptive")].iloc[0]
    assert (pooled["wins"], pooled["ties"], pooled["losses"]) == (2, 0, 0) and pooled["rank_biserial"] == 1.0


def test_across_data_set_tests_with_one_data_set_are_not_computed(tmp_path):
    for method in ("random", "adaptive"):
        for fold in FOLDS:
            write_cell(tmp_path, "ds", "m", method, fold, metric_value=lambda *a, f=fold: 0.5 + 0.01 * f)
    table = report.wilcoxon_table(report.collect_results(tmp_path), "macro_auc")
    assert table["p_value"].isna().all() and table["p_better"].isna().all()
    assert (table["note"] == "n = 1 data set: not computed").all()
    assert [table.iloc[0]["wins"], table.iloc[0]["ties"], table.iloc[0]["losses"]] == [0, 1, 0]
    # no baseline at all
    results = report.collect_results(tmp_path)
    row = report.wilcoxon_table(results[results["method"] == "adaptive"], "macro_auc").iloc[0]
    assert np.isnan(row["p_value"]) and "baseline" in row["note"]


def test_friedman_over_data_sets_matches_scipy(results):
    fr = report.friedman_nemenyi(results, "macro_auc")
    cols = [[dataset_mean("macro_auc", ds, method) for ds in DATASETS] for method in METHODS]
    ref = stats.friedmanchisquare(*cols)
    assert fr.p_chi2 == pytest.approx(ref.pvalue) and fr.statistic == pytest.approx(ref.statistic)
    assert len(fr.blocks) == 2 and fr.methods == list(METHODS) and fr.model == report.POOLED
    # pooled over models adaptive is first and chain last on both data sets
    assert fr.ranks.to_dict() == pytest.approx({"random": 2.0, "adaptive": 1.0, "chain": 3.0})
    # two data sets ranking three methods alike: 1 of the 3! arrangements of the second, exactly
    assert fr.exact and fr.p_value == pytest.approx(1 / 6)
    # no rejection: no post-hoc test
    assert fr.nemenyi is None and np.isnan(fr.cd) and "does not reject" in fr.note
    # per model: m2 loses ds_b with adaptive, so random ranks first there
    m2 = report.friedman_nemenyi(results, "macro_auc", model="m2")
    assert m2.ranks.to_dict() == pytest.approx({"random": 1.5, "adaptive": 1.5, "chain": 3.0})
    fig = report.plot_critical_difference(fr)
    assert "does not reject" in " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_critical_difference_diagram_is_the_same_in_every_process(tmp_path):
    """scikit-posthocs orders a crossbar's points by string hashes, which differ between Python
    processes: the saved diagram must not (a rerun that computes the same ranks changes no file)."""
    import subprocess
    import sys

    script = tmp_path / "cd.py"
    script.write_text(
        "import sys, hashlib, io, numpy as np, pandas as pd\n"
        "from mlabs.report import plot_critical_difference\n"
        "from mlabs.report.statistics import FriedmanResult\n"
        "methods = ['random', 'adaptive', 'chain', 'hard_only', 'reweight']\n"
        "ranks = pd.Series([1.7, 1.7, 2.6, 3.1, 3.4], index=methods)\n"
        "sig = pd.DataFrame(1.0, index=methods, columns=methods)\n"
        "fr = FriedmanResult('macro_f1', methods, pd.DataFrame(index=range(14)), 6.9, 0.03, ranks, sig, 0.9)\n"
        "buffer = io.BytesIO()\n"
        "plot_critical_difference(fr).savefig(buffer, format='png')\n"
        "print(hashlib.sha256(buffer.getvalue()).hexdigest())\n")
    digests = set()
    for seed in ("0", "1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_friedman_too_few_methods(results):
    fr = report.friedman_nemenyi(results, "macro_auc", methods=["random", "adaptive"])
    assert np.isnan(fr.p_value) and "at least 3 methods" in fr.note and fr.nemenyi is None
    fig = report.plot_critical_difference(fr)
    assert "at least 3 methods" in " ".join(t.get_text() for t in fig.axes[0].texts)


def test_headline_metrics(results):
    h = report.headline_metrics(results)
    assert h["cells"] == {"ok": 36, "failed": 1}
    expected = np.mean([value("ranking_loss", ds, m, "adaptive", f) for ds in DATASETS for m in MODELS for f in FOLDS])
    assert h["test_mean"]["adaptive"]["ranking_loss"] == pytest.approx(expected, abs=1e-6)
    assert set(h["test_mean"]["chain"]) == set(REPORTED_METRICS)
    assert h["friedman_macro_auc"]["avg_rank"]["chain"] == pytest.approx(3.0)
    assert h["vs_random_macro_auc"] == {"adaptive": {"win": 2, "tie": 0, "loss": 0},
                                        "chain": {"win": 0, "tie": 0, "loss": 2}}
    assert h["friedman_macro_auc"]["n_datasets"] == 2
    json.dumps(h, allow_nan=False)  # valid JSON for DVC


def test_plot_data(runs_root):
    curves = report.collect_curves(runs_root)
    data = report.plot_data(curves)
    assert set(data) == {"val_macro_auc", "train_bce"}
    for frame in data.values():
        assert list(frame.columns) == ["epoch", *METHODS]
        assert list(frame["epoch"]) == list(range(1, EPOCHS + 1))
    # train_bce is the mean of the loss table: minority and rest means weighted by their share
    share = curves["minority_share_train"]
    table_mean = share * curves["loss_minority"] + (1 - share) * curves["loss_rest"]
    expected = table_mean[(curves["method"] == "random") & (curves["epoch"] == 1)].mean()
    assert data["train_bce"]["random"].iloc[0] == pytest.approx(expected, rel=1e-6)
    assert data["val_macro_auc"]["chain"].iloc[-1] == pytest.approx(
        curves.loc[(curves["method"] == "chain") & (curves["epoch"] == EPOCHS), "val_macro_auc"].mean())
    # every method the profile names gets a column, empty if it has no run; in the profile's order
    named = report.plot_data(curves, ["chain", "random", "no_runs"])["val_macro_auc"]
    assert list(named.columns) == ["epoch", "chain", "random", "no_runs"] and named["no_runs"].isna().all()


def test_findings_give_each_verdict_its_unit_n_and_effect(results):
    order = list(METHODS)
    verdicts = report.verdict_table(results, order, metrics=["macro_auc", "one_error"])
    text = report.findings(results, verdicts, order)
    section = text.split("## chain vs random")[1]
    assert "Holm over 2 metrics for chain vs random, across data sets, pooled over models, over 2 data sets" in section
    # two data sets cannot give a significant Wilcoxon test: the verdict says so, and the effect shows
    line = next(ln for ln in section.splitlines() if ln.startswith("- `macro_auc`"))
    assert "**no significant difference**" in line
    assert "Across data sets, n = 2 data sets (mean of 3 folds and 2 models)" in line
    assert "rank-biserial r = -1.00" in line and "W/T/L 0/0/2" in line
    assert f"Bayesian signed-rank (rope ± 0.005): not computed (fewer than {report.MIN_DATASETS_BAYES} data sets)" in line


# --- figures and the whole report ----------------------------------------------------------------

def make_sensitivity(root: Path) -> None:
    for ds in ("ds_a",):
        for fold in (0, 1):
            for se in (1.0, 2.0, 4.0):
                write_cell(root, ds, "m1", "adaptive", fold, se=se, batch=16)
            for batch in (8, 16, 32):
                for method in ("random", "adaptive"):
                    write_cell(root, ds, "m1", method, fold, se=2.0, batch=batch)


def expected_files(out: Path, *, datasets: bool, sensitivity: bool, ablation: bool = False) -> set[Path]:
    files = {out / f"tables/main_{m}.{ext}" for m in REPORTED_METRICS for ext in ("md", "csv")}
    # selection strength and (machine-dependent) timing always; the ingredients only with ablation methods
    files |= {out / f"tables/{name}.{ext}" for name in ("selection_strength", "timing") for ext in ("md", "csv")}
    files.add(out / "figures/selection_strength.png")
    if ablation:
        files |= {out / "tables/ablation.md", out / "tables/ablation.csv", out / "figures/ablation.png"}
    files |= {out / "tables/wilcoxon.md", out / "tables/wilcoxon.csv", out / "tables/friedman.md",
              out / "tables/failed.md", out / "figures/minority_share.png", out / "metrics.json",
              out / "tables/convergence.md", out / "tables/convergence.csv", out / "tables/verdicts.md",
              out / "tables/verdicts.csv", out / "tables/verdicts_by_seed.md",
              out / "tables/within_dataset.md", out / "tables/within_dataset.csv",
              out / "tables/characteristics.md", out / "tables/characteristics.csv",
              out / "figures/characteristics.png", out / "tables/differences.csv", out / "figures/forest.png", out / "findings.md",
              out / "machines.json"}
    files |= {out / f"figures/cd_{m}.png" for m in REPORTED_METRICS}
    files |= {out / f"figures/{kind}_{ds}.png" for kind in ("convergence", "motivation") for ds in DATASETS}
    files |= {out / f"plots/{name}.csv" for name in report.PLOT_CURVES}
    if datasets:
        files |= {out / "tables/datasets.md", out / "tables/datasets.csv"}
    if sensitivity:
        files |= {out / "figures/sensitivity_se.png", out / "figures/sensitivity_batch.png"}
    return files


def test_write_report_writes_exactly_what_it_declares(runs_root, tmp_path, monkeypatch):
    sens = tmp_path / "sens"
    make_sensitivity(sens)
    dsdir = tmp_path / "datasets"
    dsdir.mkdir()
    (dsdir / "ds_b.json").write_text(json.dumps({"instances": 100, "labels": 5, "MeanIR": 3.2}))
    (dsdir / "ds_a.json").write_text(json.dumps({"instances": 50, "labels": 4, "MeanIR": 1.5, "cardinality": 1.1}))
    out = tmp_path / "reports"
    written = report.write_report(runs_root, out, sensitivity_root=sens, datasets_dir=dsdir)
    declared = {p for paths in written.values() for p in paths}
    on_disk = {p for p in out.rglob("*") if p.is_file()}
    assert declared == on_disk == expected_files(out, datasets=True, sensitivity=True)
    assert "none" not in (out / "tables/failed.md").read_text()
    assert "NonFiniteLoss" in (out / "tables/failed.md").read_text()
    # the markdown verdicts: the verdicts right after the unit, the long Holm family last
    header = next(line for line in (out / "tables/verdicts.md").read_text().splitlines() if line.startswith("| metric"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[6:8] == ["verdict", "bayes_verdict"] and columns[-1] == "family"
    assert sorted(columns) == sorted(pd.read_csv(out / "tables/verdicts.csv").columns)
    ds_table = pd.read_csv(out / "tables/datasets.csv")
    assert list(ds_table["dataset"]) == ["ds_a", "ds_b"] and "cardinality" in ds_table
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["cells"] == {"ok": 36, "failed": 1}
    main = pd.read_csv(out / "tables/main_macro_auc.csv")
    assert list(main.columns[:5]) == ["dataset", "model", "random_mean", "random_std", "random_n"]

    # same inputs, same bytes (figures are rendered only once here, to keep the test fast: their
    # determinism is checked on one figure below); a stale data-dependent file is removed
    before = {p: p.read_bytes() for p in on_disk if p.suffix != ".png"}
    (out / "figures/convergence_old_dataset.png").write_bytes(b"stale")
    recorded = fake_figures(monkeypatch)
    again = report.write_report(runs_root, out, sensitivity_root=sens, datasets_dir=dsdir)
    assert {p for paths in again.values() for p in paths} == declared
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".png"} == before
    assert not (out / "figures/convergence_old_dataset.png").exists()
    assert len(recorded) == len([p for p in declared if p.suffix == ".png"])


def test_figures_are_deterministic(runs_root, tmp_path):
    curves = report.collect_curves(runs_root)
    a = report._save_figure(report.plot_motivation(curves, "ds_a"), tmp_path / "a.png")
    b = report._save_figure(report.plot_motivation(curves, "ds_a"), tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()


def test_every_method_keeps_one_colour_of_its_own_in_every_figure():
    from matplotlib.colors import to_hex

    from mlabs.report.conventions import METHOD_ORDER
    from mlabs.report.figures import METHOD_COLOURS, _palette

    # a sampler added to the registry without a colour would share one through the fallback
    assert set(METHOD_ORDER) <= set(METHOD_COLOURS)
    few, many = _palette(["random", "adaptive"]), _palette([*METHOD_ORDER, "my_sampler", "other"])
    assert few["adaptive"] == many["adaptive"]
    colours = [to_hex(c) for c in many.values()]
    assert len(set(colours)) == len(colours)


def fake_figures(monkeypatch) -> dict[str, str]:
    """Replace PNG rendering (the slow part) by a record of each figure's texts."""
    recorded = {}

    def save(fig, path):
        texts = [t.get_text() for ax in fig.axes for t in ax.texts + [ax.title]]
        texts += [fig._suptitle.get_text()] if fig._suptitle else []
        recorded[path.name] = " ".join(texts)
        path.write_bytes(b"png")
        return path

    monkeypatch.setattr(report, "_save_figure", save)
    return recorded


def test_write_report_placeholders_for_missing_sensitivity_and_few_methods(runs_root, tmp_path, monkeypatch):
    recorded = fake_figures(monkeypatch)
    out = tmp_path / "reports"
    written = report.write_report(runs_root, out, sensitivity_root=tmp_path / "no_such_dir",
                                  methods=["random", "adaptive"])
    files = {p.name for paths in written.values() for p in paths}
    assert {"sensitivity_se.png", "sensitivity_batch.png", "cd_macro_auc.png"} <= files
    assert "no finished adaptive cells" in recorded["sensitivity_se.png"]
    assert "no finished cells" in recorded["sensitivity_batch.png"]
    assert "at least 3 methods" in recorded["cd_macro_auc.png"]
    assert "datasets.md" not in files
    assert "chain" not in (out / "plots/val_macro_auc.csv").read_text().splitlines()[0]
    assert "at least 3 methods" in (out / "tables/friedman.md").read_text()
    assert "none" in (out / "tables/failed.md").read_text()  # the failed cell was a chain cell
    assert "chain" not in (out / "tables/main_macro_auc.md").read_text()
    # an existing but empty sensitivity root also gives placeholders
    (tmp_path / "empty_sens").mkdir()
    report.write_report(runs_root, out, sensitivity_root=tmp_path / "empty_sens", methods=["random", "adaptive"])
    assert "no finished" in recorded["sensitivity_se.png"]


def test_unprepared_names_the_data_sets_without_their_folds_in_order(tmp_path):
    from mlabs.report.collect import prepared_file, unprepared

    prepared_file(tmp_path, "b").write_bytes(b"")
    (tmp_path / "c.npz").mkdir()   # a folder of that name is not the prepared file
    assert prepared_file(tmp_path, "b") == tmp_path / "b.npz"
    assert unprepared(tmp_path, ["c", "b", "a"]) == ["c", "a"]
    assert unprepared(tmp_path / "absent", ["b"]) == ["b"]


def test_write_report_refuses_missing_prepared_data_before_writing(runs_root, tmp_path):
    # a report without the prepared folds would silently lose the label correlation and the
    # imbalance-weight columns; a folder lacking one of the reported data sets is as bad
    (tmp_path / "prepared").mkdir()
    for prepared, named in ((tmp_path / "absent", "absent"), (tmp_path / "prepared", "ds_a")):
        with pytest.raises(FileNotFoundError, match=rf"prepared data not found: .*{named}.*make pull"):
            report.write_report(runs_root, tmp_path / "out", prepared_dir=prepared, datasets=["ds_a"])
    assert not (tmp_path / "out").exists()


def test_write_report_on_empty_root(tmp_path, monkeypatch):
    fake_figures(monkeypatch)
    out = tmp_path / "reports"
    written = report.write_report(tmp_path / "empty", out)
    assert (out / "findings.md").read_text().count("No finished cells") == 1
    assert json.loads((out / "metrics.json").read_text())["cells"] == {"ok": 0, "failed": 0}
    assert {p for paths in written.values() for p in paths} == {p for p in out.rglob("*") if p.is_file()}


def test_write_report_keeps_only_the_profiles_datasets_and_models(runs_root, tmp_path, monkeypatch):
    # outputs persist across profiles: cells of a data set the profile no longer runs stay on disk
    fake_figures(monkeypatch)
    dsdir = tmp_path / "datasets"
    dsdir.mkdir()
    for ds in DATASETS:
        (dsdir / f"{ds}.json").write_text(json.dumps({"instances": 10, "labels": 3}))
    out = tmp_path / "reports"
    kept_ds, kept_model = list(DATASETS[:1]), list(MODELS[:1])
    report.write_report(runs_root, out, datasets_dir=dsdir, datasets=kept_ds, models=kept_model)
    cells = json.loads((out / "metrics.json").read_text())["cells"]
    assert cells["ok"] == len(METHODS) * len(FOLDS)            # one data set, one model
    assert pd.read_csv(out / "tables/datasets.csv")["dataset"].tolist() == kept_ds
    table = pd.read_csv(out / "tables/main_macro_auc.csv")
    assert set(table["dataset"]) == set(kept_ds) and set(table["model"]) == set(kept_model)
    assert not any(ds in p.name for ds in DATASETS[1:] for p in (out / "figures").glob("convergence_*.png"))


def test_differences_within_the_tie_margin_are_ties_but_ranked_by_the_test(tmp_path):
    # adaptive is 0.003 better on each of 7 data sets: below the 0.005 tie margin, so a tie in the
    # counts and the rope, but the Wilcoxon test ranks the differences as they are (Demšar 2006)
    datasets = [f"ds_{i}" for i in range(7)]
    for method, shift in (("random", 0.0), ("adaptive", 0.003)):
        for i, ds in enumerate(datasets):
            for fold in range(3):
                write_cell(tmp_path, ds, "m", method, fold,
                           metric_value=lambda *a, s=shift, f=fold, i=i: 0.6 + 0.01 * f + 0.001 * i + s)
    results = report.collect_results(tmp_path)
    table = report.wilcoxon_table(results, "macro_auc")
    pooled = table[table["model"] == report.POOLED].iloc[0]
    assert (pooled["wins"], pooled["ties"], pooled["losses"]) == (0, 7, 0)
    assert pooled["p_value"] == pytest.approx(stats.wilcoxon(np.full(7, 0.003)).pvalue) and pooled["p_value"] < 0.05
    assert pooled["rank_biserial"] == 1.0
    # significant, yet within the tie margin: the verdict needs a difference beyond it
    assert report.verdict(pooled, "macro_auc") == "no significant difference"
    # every data-set difference (0.003) lies inside the rope: practically equivalent
    assert pooled["p_equivalent"] > 0.95
    # all differences zero: no evidence either way, p = 1 (it stays in the Holm family)
    from mlabs.report.statistics import _wilcoxon
    assert _wilcoxon(np.full(7, 0.5), np.full(7, 0.5))[1] == 1.0


def test_verdict_needs_significance_direction_and_margin():
    row = pd.Series({"mean_diff": 0.02, "p_value": 0.01, "wins": 9, "ties": 0, "losses": 1})
    assert report.verdict(row, "macro_auc") == "better"
    # lower is better there: a positive difference with more losses than wins is worse
    assert report.verdict(pd.Series({**row, "wins": 1, "losses": 9}), "ranking_loss") == "worse"
    assert report.verdict(pd.Series({**row, "p_value": 0.2}), "macro_auc") == "no significant difference"
    assert report.verdict(pd.Series({**row, "mean_diff": 0.004}), "macro_auc") == "no significant difference"
    assert report.verdict(pd.Series({**row, "wins": 1, "losses": 9}), "macro_auc") == "no significant difference"


def _curve(method, fold, values, warmup=2):
    return pd.DataFrame({"dataset": "ds", "model": "m", "method": method, "selection_pressure": 2.0,
                         "batch_size": 16, "fold": fold, "seed": 0, "warmup_epochs": warmup,
                         "epoch": np.arange(1, len(values) + 1), "val_macro_auc": values})


def test_convergence_epochs_to_95_and_area_against_random():
    from mlabs.convergence import convergence_results

    curves = pd.concat([
        _curve("random", 0, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),     # target 0.95: epoch 6
        _curve("adaptive", 0, [0.5, 0.6, 0.8, 0.96, 0.97, 0.9]),  # reaches it at epoch 4
        _curve("chain", 0, [0.5, 0.6, 0.6, 0.6, 0.6, 0.6]),       # never: epochs + 1
        _curve("adaptive", 1, [0.5, 0.9]),                         # no random run in fold 1: dropped
    ])
    conv = convergence_results(curves).set_index("method")
    assert conv.loc["random", "epochs_to_95"] == 6 and conv.loc["adaptive", "epochs_to_95"] == 4
    assert conv.loc["chain", "epochs_to_95"] == 7 and not conv.loc["chain", "reached_95"]
    assert conv.loc["adaptive", "curve_area"] == pytest.approx(np.mean([0.8, 0.96, 0.97, 0.9]))
    assert len(conv) == 3
    with pytest.raises(ValueError, match="reach"):
        convergence_results(curves, reach=1.5)


def test_report_writes_convergence_and_verdict_tables(tmp_path, results_root=None):
    root = tmp_path / "runs"
    for method in ("random", "adaptive"):
        for fold in FOLDS:
            write_cell(root, "ds_a", "m1", method, fold)
    written = report.write_report(root, tmp_path / "out")
    names = {p.name for p in written["tables"]}
    assert {"convergence.md", "convergence.csv", "verdicts.md", "verdicts.csv"} <= names
    verdicts = pd.read_csv(tmp_path / "out" / "tables" / "verdicts.csv")
    assert {"epochs_to_95", "curve_area", "macro_auc"} <= set(verdicts["metric"])
    assert "## Convergence" in (tmp_path / "out" / "findings.md").read_text()
    # one data set: the verdicts come from the correlated tests within it, over its folds
    assert set(verdicts["level"]) == {"within data set"}
    assert (verdicts["unit"] == "3 folds of ds_a").all() and (verdicts["n"] == 3).all()
    assert "n = 1 data set: not computed" in (tmp_path / "out" / "tables" / "wilcoxon.md").read_text()


def test_verdicts_by_seed_say_which_verdicts_hold(tmp_path):
    # seed 0: adaptive better on every run; seed 1: the same on macro-AUC, no effect on ranking loss
    for seed in (0, 1):
        for model in ("m1", "m2"):
            for method in ("random", "adaptive"):
                for fold in range(4):
                    def metric_value(metric, *a, method=method, fold=fold, seed=seed):
                        gain = (0.02 + 0.002 * fold if method == "adaptive" and (seed == 0 or metric == "macro_auc")
                                else 0.0)
                        base = 0.6 + 0.01 * fold
                        return base + gain if HIGHER_IS_BETTER[metric] else base - gain
                    write_cell(tmp_path, "ds", model, method, fold, seed=seed, metric_value=metric_value)
    results = report.collect_results(tmp_path)
    table = report.verdicts_by_seed(results, ["random", "adaptive"])
    assert {"seed 0", "seed 1", "holds"} <= set(table.columns)
    row = table[(table["metric"] == "macro_auc") & (table["method"] == "adaptive")].iloc[0]
    assert row["holds"] == "yes" and row["seed 0"].startswith("better (4/0/0")  # 4 folds, pooled over models
    assert row["same_sign"] == "yes"
    row = table[(table["metric"] == "ranking_loss") & (table["method"] == "adaptive")].iloc[0]
    assert row["holds"] == "no" and row["same_sign"] == "no"     # a gain under seed 0, none under seed 1
    assert row["seed 0"].startswith("better") and row["seed 1"].startswith("no significant difference")
    text = report.findings(results, report.verdict_table(results, ["random", "adaptive"]), ["random", "adaptive"],
                           by_seed=table)
    assert "## Robustness across seeds" in text
    assert "adaptive on ranking_loss: **does not hold**" in text
    # one seed: nothing to compare
    assert report.verdicts_by_seed(results[results["seed"] == 0], ["random", "adaptive"]).empty


def test_write_report_keeps_only_the_profiles_folds_and_seeds(tmp_path):
    # outputs persist across profiles: a seed-1 or fold-3 cell of another profile stays out
    for method in ("random", "adaptive"):
        for fold in FOLDS:
            write_cell(tmp_path / "runs", "ds_a", "m1", method, fold)
        write_cell(tmp_path / "runs", "ds_a", "m1", method, 0, seed=1)
        write_cell(tmp_path / "runs", "ds_a", "m1", method, 3)
    report.write_report(tmp_path / "runs", tmp_path / "out", folds=list(FOLDS), seeds=[0])
    findings = (tmp_path / "out" / "findings.md").read_text()
    assert f"Generated from {2 * len(FOLDS)} finished" in findings
    assert "Only one seed" in (tmp_path / "out" / "tables" / "verdicts_by_seed.md").read_text()
    report.write_report(tmp_path / "runs", tmp_path / "out2")
    assert f"Generated from {2 * len(FOLDS) + 4} finished" in (tmp_path / "out2" / "findings.md").read_text()
