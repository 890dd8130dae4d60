"""Tests of :mod:`mlabs.report.training_time`: the cells' training time summed from their timing
sidecars (:func:`mlabs.cost.cell_training_seconds`), against the estimate of :mod:`mlabs.cost` for the
same cells.

Cell trees are written with :func:`test_report.write_cell`; their sidecars are rewritten here
with known seconds (EPOCHS = 5 epochs, of which WARMUP = 2 warm-up: 3 selection epochs).
"""

from __future__ import annotations

import numpy as np
import pytest

from mlabs import report
from mlabs.cost import EPOCH_SECONDS, cell_training_seconds, epoch_seconds
from mlabs.data import load_dataset, prepare, save_prepared
from mlabs.report.training_time import training_time_markdown, training_time_table
from mlabs.results import write_timing
from test_report import EPOCHS, MACHINE, WARMUP, fake_figures, write_cell as _write_cell


def write_cell(root, dataset, model, method, fold, **kwargs):
    return _write_cell(root, dataset, model, method, fold, metric_value=lambda *a: 0.5, **kwargs)


def _timing(folder, train_seconds: float, first_epoch: int = WARMUP + 1) -> None:
    write_timing(folder, fingerprint="0" * 16, epoch_seconds=[0.1] * EPOCHS, train_seconds=train_seconds,
                 first_epoch=first_epoch, machine=MACHINE)


def test_a_cell_run_in_one_go_counts_its_train_seconds():
    assert cell_training_seconds({"train_seconds": 30.0, "first_epoch": WARMUP + 1}, EPOCHS, WARMUP) == (30.0, False)


def test_a_resumed_cell_is_scaled_by_the_training_passes_of_its_selection_epochs():
    # resumed at epoch 5 of 5: its last run took 4 s for a pass of 2 s; the 3 selection passes take 1 + 1 + 2 s
    timing = {"train_seconds": 4.0, "first_epoch": 5, "epoch_seconds": [9.0, 9.0, 1.0, 1.0, 2.0]}
    seconds, resumed = cell_training_seconds(timing, EPOCHS, WARMUP)
    assert seconds == pytest.approx(8.0) and resumed
    # without every epoch's pass: by the count of epochs (1 of 3 selection epochs timed)
    seconds, resumed = cell_training_seconds({"train_seconds": 4.0, "first_epoch": 5}, EPOCHS, WARMUP)
    assert seconds == pytest.approx(12.0) and resumed


@pytest.mark.parametrize("timing", [{}, {"train_seconds": "x", "first_epoch": 3}, {"train_seconds": 1.0},
                                    {"train_seconds": 1.0, "first_epoch": EPOCHS + 1},
                                    {"train_seconds": 1.0, "first_epoch": WARMUP},     # inside the warm-up
                                    {"train_seconds": -1.0, "first_epoch": WARMUP + 1},
                                    {"train_seconds": float("nan"), "first_epoch": 3}])
def test_an_unusable_sidecar_gives_no_time(timing):
    assert cell_training_seconds(timing, EPOCHS, WARMUP) is None


def test_the_table_sums_measured_hours_against_the_estimate_of_the_same_cells(tmp_path):
    # emotions/dela has a measured cost; "mine"/"c2ae" is scaled from emotions by its shape
    per_epoch = EPOCH_SECONDS[("emotions", "dela")]
    for fold, seconds in ((0, 3600.0), (1, 1800.0)):
        _timing(write_cell(tmp_path, "emotions", "dela", "random", fold, timing=False), seconds)
    _timing(write_cell(tmp_path, "emotions", "dela", "adaptive", 0, timing=False), 900.0, first_epoch=EPOCHS)
    write_cell(tmp_path, "emotions", "dela", "adaptive", 1, timing=False)          # restored: no sidecar
    write_cell(tmp_path, "emotions", "c2ae", "random", 0, timing=False)            # a block with none
    _timing(write_cell(tmp_path, "mine", "c2ae", "random", 0, timing=False), 36.0)
    write_cell(tmp_path, "mine", "dela", "random", 0, status="failed")             # not finished: not counted
    results = report.collect_results(tmp_path)

    table, timed, total = training_time_table(results, tmp_path, {"mine": (473, 6)})
    assert (timed, total) == (4, 6)
    blocks = table.set_index(["dataset", "model"])
    row = blocks.loc[("emotions", "dela")]
    assert (row["cells"], row["timed"], row["resumed"]) == (4, 3, 1)
    # 1 h + 0.5 h + the resumed cell's 900 s for 1 of 3 equal selection passes = 0.75 h
    assert row["measured_h"] == pytest.approx(2.25)
    assert row["estimate_h"] == pytest.approx(3 * (EPOCHS - WARMUP) * per_epoch / 3600)
    assert row["ratio"] == pytest.approx(row["measured_h"] / row["estimate_h"])
    untimed = blocks.loc[("emotions", "c2ae")]
    assert (untimed["cells"], untimed["timed"]) == (1, 0) and np.isnan(untimed["measured_h"])
    mine = blocks.loc[("mine", "c2ae")]
    # the shape of an emotions fold: the emotions cost itself
    assert mine["estimate_h"] == pytest.approx((EPOCHS - WARMUP) * EPOCH_SECONDS[("emotions", "c2ae")] / 3600)
    text = training_time_markdown(table, timed, total)
    assert "Timed cells: 4 of 6 finished." in text
    # the totals count every finished cell and sum the timed ones (the untimed block adds nothing)
    assert f"| all | 6 | 4 | 1 | 2.26 | {row['estimate_h'] + mine['estimate_h']:.3g} |" in text

    # without the shape of a data set its unmeasured pairs have no estimate, and the totals say so
    table, _, _ = training_time_table(results, tmp_path)
    assert np.isnan(table.set_index(["dataset", "model"]).loc[("mine", "c2ae"), "estimate_h"])
    assert "| all | 6 | 4 | 1 | 2.26 | — | — |" in training_time_markdown(table, timed, total)


def test_without_sidecars_the_section_says_so(tmp_path):
    write_cell(tmp_path, "ds_a", "m1", "random", 0, timing=False)
    table, timed, total = training_time_table(report.collect_results(tmp_path), tmp_path)
    assert table.empty and (timed, total) == (0, 1)
    assert "No finished cell has a timing sidecar (0 of 1)" in training_time_markdown(table, timed, total)


def test_the_report_writes_it_into_the_timing_file_with_the_grids_shapes(tmp_path, monkeypatch):
    # "mine" has no measured cost: its estimate is scaled by the shape the grid uses, from the
    # prepared data (every fold but the test fold, all labels)
    fake_figures(monkeypatch)
    prepared = prepare(load_dataset("emotions"))
    save_prepared(prepared, tmp_path / "prepared/mine.npz")
    for method in ("random", "adaptive"):
        write_cell(tmp_path / "runs", "mine", "c2ae", method, 0)
    report.write_report(tmp_path / "runs", tmp_path / "out", prepared_dir=tmp_path / "prepared")
    text = (tmp_path / "out/tables/timing.md").read_text()
    assert "## Training time against the estimate" in text and "Timed cells: 2 of 2 finished." in text
    n_train = int(len(prepared.Y) * (prepared.n_folds - 1) / prepared.n_folds)   # written out: the oracle
    estimate = 2 * (EPOCHS - WARMUP) * epoch_seconds("mine", "c2ae", n_train, prepared.Y.shape[1]) / 3600
    assert f"| mine | c2ae | 2 | 2 | 0 | {2 * 1.5 / 3600:.3g} | {estimate:.3g} |" in text
