"""Tests of :mod:`mlabs.report.ablation`: imbalance weights per data set, selection strength, the
ingredient table against random and reweighting, and the machine-dependent timing table.

Cell trees are written with :func:`test_report.write_cell` (the layout training writes); the
selection-strength columns are added to their ``curves.tsv`` here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlabs import report
from mlabs.data.preprocess import PreparedData, fold_split
from mlabs.data.store import save_prepared
from mlabs.metrics import HIGHER_IS_BETTER
from mlabs.report.ablation import (TIMING_UNAVAILABLE, ablation_findings, imbalance_weight_table, ingredient_table,
                                   selection_strength_table, timing_markdown, timing_table)
from mlabs.results import write_timing
from mlabs.selection.imbalance import imbalance_weights
from test_report import EPOCHS, MACHINE, WARMUP, expected_files, fake_figures, write_cell


# --- imbalance weights in the data-set table ------------------------------------------------------

def _tiny_prepared(name: str = "tiny") -> PreparedData:
    # training part of fold 0 = rows 0-5 (fold 1): label 1 is the minority (IR 3 vs MeanIR 2); with
    # k = 2, rows 1 and 2 each have one neighbour of two without it: B = 0.5, so w = [1, 1.5, 1.5, 1, 1, 1]
    # (normalised: 0.5 / (0.5 + 0.5) = 0.5; raw: 0.5). Rows 6-9 (fold 0, held out) would change the
    # weights if they were used.
    X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2], [0.05], [0.15], [0.12], [5.05]])
    Y = np.array([[1, 0], [1, 1], [1, 1], [1, 0], [1, 0], [1, 0], [1, 1], [1, 1], [0, 1], [1, 1]], dtype=np.uint8)
    fold = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    part = np.array([0, 0, 0, 0, 0, 0, 0, 1, 0, 1])
    return PreparedData(X=X, Y=Y, fold=fold, part=part, feature_names=["x"], label_names=["a", "b"], name=name,
                        seed=0, feature_ratio=1.0, min_label_positives=1, n_folds=2,
                        feature_indices=np.arange(1), label_indices=np.arange(2), original_shape=(10, 1, 2))


def test_imbalance_weight_table_uses_fold_0_training_part(tmp_path):
    save_prepared(_tiny_prepared(), tmp_path / "tiny.npz")
    table = imbalance_weight_table(tmp_path, ["tiny", "absent"], k_neighbors=2)
    assert list(table.index) == ["tiny"]
    row = table.loc["tiny"]
    for prefix in ("imb_w", "imb_w_raw"):
        assert row[f"{prefix}_share_above_1"] == pytest.approx(2 / 6)
        assert row[f"{prefix}_mean"] == pytest.approx(7 / 6)
        assert row[f"{prefix}_p90"] == pytest.approx(1.5) and row[f"{prefix}_max"] == pytest.approx(1.5)


def test_imbalance_weight_table_raw_and_normalised_differ_where_the_normalisation_bites(tmp_path):
    rng = np.random.default_rng(0)
    prepared = _tiny_prepared("noisy")
    n = 60
    prepared = PreparedData(**{**prepared.__dict__, "X": rng.random((n, 3)),
                               "Y": np.column_stack([np.ones(n), rng.random(n) < 0.3, rng.random(n) < 0.15]).astype(np.uint8),
                               "fold": np.arange(n) % 3, "part": (np.arange(n) // 3) % 2, "n_folds": 3,
                               "feature_names": ["a", "b", "c"], "label_names": ["a", "b", "c"],
                               "feature_indices": np.arange(3), "label_indices": np.arange(3),
                               "original_shape": (n, 3, 3)})
    save_prepared(prepared, tmp_path / "noisy.npz")
    table = imbalance_weight_table(tmp_path, ["noisy"], k_neighbors=5).loc["noisy"]
    split = fold_split(prepared, 0)
    for prefix, normalise in (("imb_w", True), ("imb_w_raw", False)):
        w = imbalance_weights(split.X_train, split.Y_train, k=5, normalise=normalise).numpy()
        assert table[f"{prefix}_mean"] == pytest.approx(w.mean())
        assert table[f"{prefix}_p90"] == pytest.approx(np.quantile(w, 0.9))
        assert table[f"{prefix}_share_above_1"] == pytest.approx(np.mean(w > 1))
    # the raw weights are not divided by a per-label sum above 1: larger on average
    assert table["imb_w_raw_mean"] > table["imb_w_mean"] + 0.01


def test_write_report_puts_the_weights_into_the_dataset_table(tmp_path, monkeypatch):
    fake_figures(monkeypatch)
    prepared, dsdir = tmp_path / "prepared", tmp_path / "datasets"
    prepared.mkdir()
    dsdir.mkdir()
    save_prepared(_tiny_prepared("ds_a"), prepared / "ds_a.npz")
    for ds in ("ds_a", "ds_b"):   # ds_b has no prepared file: NaN columns
        (dsdir / f"{ds}.json").write_text(json.dumps({"instances": 10, "labels": 2}))
    for method in ("random", "adaptive"):
        write_cell(tmp_path / "runs", "ds_a", "m1", method, 0)
    report.write_report(tmp_path / "runs", tmp_path / "out", datasets_dir=dsdir, prepared_dir=prepared,
                        k_neighbors=2)
    table = pd.read_csv(tmp_path / "out/tables/datasets.csv").set_index("dataset")
    assert table.loc["ds_a", "imb_w_mean"] == pytest.approx(7 / 6) and np.isnan(table.loc["ds_b", "imb_w_max"])
    assert "imb_w_raw_p90" in (tmp_path / "out/tables/datasets.md").read_text()


# --- selection strength ---------------------------------------------------------------------------

def add_strength(folder: Path, p_ratio, kl, distinct, drawn_fraction) -> None:
    """Append the selection-strength columns to a cell's curves (one value per epoch)."""
    path = folder / "curves.tsv"
    curve = pd.read_csv(path, sep="\t")
    curve["p_ratio"], curve["kl_uniform"] = p_ratio, kl
    curve["distinct_drawn"], curve["drawn_fraction"] = distinct, drawn_fraction
    curve.to_csv(path, sep="\t", index=False)


def test_selection_strength_averages_selection_epochs_then_cells(tmp_path):
    n = 100
    for fold in (0, 1):
        add_strength(write_cell(tmp_path, "ds_a", "m1", "random", fold), 1.0, 0.0, n, 1.0)
        # warm-up epochs (1, 2) are shuffled; epochs 3-5 select
        add_strength(write_cell(tmp_path, "ds_a", "m1", "adaptive", fold), [1, 1, 2, 4, 6 + fold],
                     [0, 0, 0.1, 0.2, 0.3], [n, n, 80, 70, 60], 1.0)
        add_strength(write_cell(tmp_path, "ds_a", "m1", "infobatch", fold), [1, 1, 2, 2, 1],
                     [0, 0, 0.05, 0.05, 0], [n, n, 75, 75, n], [1, 1, 0.75, 0.75, 1])
    table = selection_strength_table(report.collect_curves(tmp_path)).set_index("method")
    assert list(table.index) == ["random", "adaptive", "infobatch"]
    ad = table.loc["adaptive"]
    assert ad["cells"] == 2
    assert ad["p_ratio"] == pytest.approx(np.mean([(2 + 4 + 6) / 3, (2 + 4 + 7) / 3]))
    assert ad["p_ratio_last"] == pytest.approx(6.5)
    assert ad["kl_uniform"] == pytest.approx(0.2) and ad["kl_uniform_last"] == pytest.approx(0.3)
    assert ad["distinct_share"] == pytest.approx(0.7) and ad["distinct_share_last"] == pytest.approx(0.6)
    ib = table.loc["infobatch"]
    assert ib["drawn_fraction"] == pytest.approx((0.75 + 0.75 + 1) / 3) and ib["drawn_fraction_last"] == 1.0
    assert table.loc["random", "p_ratio"] == 1.0 and table.loc["random", "kl_uniform"] == 0.0


def test_selection_strength_without_columns_is_empty_and_says_so(tmp_path):
    write_cell(tmp_path, "ds_a", "m1", "adaptive", 0)
    table = selection_strength_table(report.collect_curves(tmp_path))
    assert table.empty
    from mlabs.report.ablation import selection_strength_markdown

    assert "No selection-strength columns" in selection_strength_markdown(table)


# --- ingredients --------------------------------------------------------------------------------

#: planted gain over random per method: hard_only and adaptive help, reweight helps less, infobatch nothing
GAIN = {"random": 0.0, "reweight": 0.01, "hard_only": 0.03, "adaptive": 0.02, "infobatch": 0.0}
ABLATION_DATASETS = tuple(f"ds_{i}" for i in range(8))


def ablation_tree(root: Path, methods=tuple(GAIN)) -> Path:
    for i, ds in enumerate(ABLATION_DATASETS):
        for method in methods:
            for fold in (0, 1):
                def metric_value(metric, *a, method=method, i=i, fold=fold):
                    gain = GAIN[method] * (1 + 0.1 * i)
                    base = 0.6 + 0.01 * i + 0.002 * fold
                    return round(base + gain if HIGHER_IS_BETTER[metric] else base - gain, 6)
                write_cell(root, ds, "m1", method, fold, metric_value=metric_value)
    return root


def test_ingredient_table_has_only_present_methods_and_reweight_as_second_baseline(tmp_path):
    results = report.collect_results(ablation_tree(tmp_path))
    order = ["random", "adaptive", "reweight", "hard_only", "infobatch"]
    table = ingredient_table(results, order, metrics=["macro_auc", "macro_f1"])
    pairs = list(dict.fromkeys(zip(table["method"], table["baseline"])))
    # ingredient order, random first; against reweight only the adaptive family (not infobatch, not itself)
    assert pairs == [("hard_only", "random"), ("adaptive", "random"), ("reweight", "random"),
                     ("infobatch", "random"), ("hard_only", "reweight"), ("adaptive", "reweight")]
    row = table[(table["method"] == "adaptive") & (table["baseline"] == "reweight")
                & (table["metric"] == "macro_auc")].iloc[0]
    pooled = report.wilcoxon_table(results, "macro_auc", "reweight", ["reweight", "adaptive"])
    pooled = pooled[(pooled["model"] == report.POOLED) & (pooled["method"] == "adaptive")].iloc[0]
    assert row["mean_diff"] == pytest.approx(pooled["mean_diff"]) and row["p_value"] == pytest.approx(pooled["p_value"])
    assert row["mean_diff"] == pytest.approx(0.01 * np.mean([1 + 0.1 * i for i in range(8)]))
    assert row["verdict"] == "better" and row["n"] == len(ABLATION_DATASETS)
    assert "imbalance only" not in " ".join(table["ingredient"])
    inf = table[(table["method"] == "infobatch") & (table["metric"] == "macro_auc")].iloc[0]
    assert inf["verdict"] == "no significant difference"
    text = ablation_findings(table, results)
    assert "hard_only (+0.0" in text and "reweighting" in text and "did better than weighting" in text
    assert "hard_only on ds_0 (+0.0300), ds_1" in text


def test_no_ablation_method_no_ingredient_table(tmp_path):
    results = report.collect_results(ablation_tree(tmp_path, ("random", "adaptive")))
    assert ingredient_table(results, ["random", "adaptive"]).empty
    assert ablation_findings(ingredient_table(results, ["random", "adaptive"]), results) == ""
    # reweight without random: only the comparison with reweight
    results = report.collect_results(ablation_tree(tmp_path / "b", ("reweight", "adaptive")))
    table = ingredient_table(results, ["reweight", "adaptive"], metrics=["macro_auc"])
    assert set(table["baseline"]) == {"reweight"} and set(table["method"]) == {"adaptive"}


def test_write_report_writes_the_ablation_section_only_with_ablation_methods(tmp_path, monkeypatch):
    fake_figures(monkeypatch)
    root = ablation_tree(tmp_path / "runs")
    out = tmp_path / "out"
    written = report.write_report(root, out)
    declared = {p for paths in written.values() for p in paths}
    assert {out / "tables/ablation.md", out / "tables/ablation.csv", out / "figures/ablation.png"} <= declared
    assert declared == {p for p in out.rglob("*") if p.is_file()}
    assert "## Which ingredient matters" in (out / "findings.md").read_text()
    # the same results folder reported for a profile without ablation methods: the section goes
    written = report.write_report(root, out, methods=["random", "adaptive"])
    assert not (out / "tables/ablation.md").exists() and not (out / "figures/ablation.png").exists()
    assert "Which ingredient" not in (out / "findings.md").read_text()


def test_expected_files_of_an_ablation_profile(tmp_path, monkeypatch):
    fake_figures(monkeypatch)
    root = tmp_path / "runs"
    for ds in ("ds_a", "ds_b"):
        for method in ("random", "adaptive", "chain", "imbalance_only"):
            for fold in (0, 1):
                write_cell(root, ds, "m1", method, fold)
    out = tmp_path / "out"
    written = report.write_report(root, out, sensitivity_root=tmp_path / "none")
    declared = {p for paths in written.values() for p in paths}
    assert declared == expected_files(out, datasets=False, sensitivity=True, ablation=True)


# --- timing -------------------------------------------------------------------------------------

def test_timing_table_from_sidecars_relative_to_random(tmp_path):
    # warm-up epochs take 5 s (excluded); selection epochs 0.1 s for random, 0.25 s for adaptive,
    # 0.05 s for infobatch, which trains on 3/4 of the samples in its selection epochs
    seconds = {"random": 0.1, "adaptive": 0.25, "infobatch": 0.05}
    for method, s in seconds.items():
        for fold, jitter in ((0, 1.0), (1, 1.0), (2, 3.0)):   # median over cells, not the mean
            folder = write_cell(tmp_path, "ds_a", "m1", method, fold, timing=False)
            write_timing(folder, fingerprint="0" * 16, epoch_seconds=[5.0] * WARMUP + [s * jitter] * (EPOCHS - WARMUP),
                         train_seconds=1.0, first_epoch=WARMUP + 1, machine=MACHINE)
            frac = 0.75 if method == "infobatch" else 1.0
            add_strength(folder, 1.0, 0.0, 10, [1.0] * WARMUP + [frac] * (EPOCHS - WARMUP))
    results = report.collect_results(tmp_path)
    table, timed, total = timing_table(results, tmp_path, report.collect_curves(tmp_path))
    assert (timed, total) == (9, 9)
    table = table.set_index("method")
    assert table.loc["random", "epoch_seconds"] == pytest.approx(0.1)
    assert table.loc["adaptive", "ratio"] == pytest.approx(2.5) and table.loc["infobatch", "ratio"] == pytest.approx(0.5)
    assert table.loc["infobatch", "trained_fraction"] == pytest.approx(0.75)
    assert table.loc["adaptive", "trained_fraction"] == pytest.approx(1.0)
    text = timing_markdown(table.reset_index(), timed, total)
    assert "machine-dependent" in text and "Timed cells: 9 of 9" in text and TIMING_UNAVAILABLE not in text


def test_timing_table_without_sidecars_says_so_and_keeps_the_trained_fraction(tmp_path, monkeypatch):
    # the trained fraction comes from the curves: a report rebuilt where no cell has its sidecar
    # still shows how much of the data InfoBatch trained on
    for method, frac in (("random", 1.0), ("infobatch", 0.75)):
        folder = write_cell(tmp_path / "runs", "ds_a", "m1", method, 0, timing=False)   # no sidecar
        add_strength(folder, 1.0, 0.0, 10, [1.0] * WARMUP + [frac] * (EPOCHS - WARMUP))
    results = report.collect_results(tmp_path / "runs")
    table, timed, total = timing_table(results, tmp_path / "runs", report.collect_curves(tmp_path / "runs"))
    assert (timed, total) == (0, 2)
    table = table.set_index("method")
    assert list(table["timed_cells"]) == [0, 0] and table[["epoch_seconds", "ratio"]].isna().all().all()
    assert table.loc["infobatch", "trained_fraction"] == pytest.approx(0.75)
    fake_figures(monkeypatch)
    report.write_report(tmp_path / "runs", tmp_path / "out")
    text = (tmp_path / "out/tables/timing.md").read_text()
    assert "Timings not available (cells stored without their timing sidecars): 0 of 2" in text
    assert "| infobatch | 1 | 0 | — | — | — | 0.75 |" in text   # blocks, timed blocks, ratios, trained fraction


def test_timing_table_takes_the_median_over_the_timed_cells_only(tmp_path):
    for method, s in (("random", 0.1), ("adaptive", 0.2)):
        for fold in range(3):
            folder = write_cell(tmp_path, "ds_a", "m1", method, fold, timing=False)
            if fold < 2:   # fold 2 has no sidecar: neither a time nor a count
                write_timing(folder, fingerprint="0" * 16, epoch_seconds=[5.0] * WARMUP + [s * (fold + 1)] * (EPOCHS - WARMUP),
                             train_seconds=1.0, first_epoch=WARMUP + 1, machine=MACHINE)
    table, timed, total = timing_table(report.collect_results(tmp_path), tmp_path)
    assert (timed, total) == (4, 6)
    table = table.set_index("method")
    assert list(table.loc[["random", "adaptive"], "timed_cells"]) == [2, 2]
    assert table.loc["random", "epoch_seconds"] == pytest.approx(0.15) and table.loc["adaptive", "ratio"] == pytest.approx(2.0)
    assert "Timed cells: 4 of 6" in timing_markdown(table.reset_index(), timed, total)


def test_only_the_timing_file_changes_when_the_sidecars_are_gone(tmp_path, monkeypatch):
    fake_figures(monkeypatch)
    root = ablation_tree(tmp_path / "runs", ("random", "adaptive", "infobatch"))
    out = tmp_path / "out"
    report.write_report(root, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for sidecar in root.rglob("timing.json"):   # cells stored without their sidecars
        sidecar.unlink()
    report.write_report(root, out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    changed = {str(p) for p in before if before[p] != after.get(p)}
    assert changed == {"tables/timing.md", "tables/timing.csv"}
    assert TIMING_UNAVAILABLE in (out / "tables/timing.md").read_text()
