"""The grid runner: local and Ray executors give the same results; failures are contained."""

from __future__ import annotations

import json
import re

import pytest

from mlabs import grid as grid_mod
from mlabs.data import load_dataset, prepare, save_prepared
from mlabs.grid import GridSpec, run_grid
from mlabs.training import Cell, TrainConfig, cell_dir


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared")
    save_prepared(prepare(load_dataset("emotions"), seed=0), root / "emotions.npz")
    return root


def tiny_cells():
    return [Cell("emotions", m, method, fold=0, seed=0)
            for m in ("c2ae", "dela") for method in ("random", "adaptive")]


def spec_for(tmp, prepared_dir):
    return GridSpec(str(prepared_dir), str(tmp / "warmup"), str(tmp / "runs"),
                    TrainConfig(epochs=2, warmup_epochs=1, lr=1e-3))


def metrics_of(results):
    return {(r["cell"]["model"], r["cell"]["method"]): r["test"] for r in results if r["status"] == "ok"}


def test_local_pool_matches_sequential(tmp_path, prepared_dir):
    seq = run_grid(tiny_cells(), spec_for(tmp_path / "seq", prepared_dir), n_jobs=1, progress=False)
    par = run_grid(tiny_cells(), spec_for(tmp_path / "par", prepared_dir), n_jobs=2, progress=False)
    assert len(metrics_of(seq)) == 4
    assert metrics_of(seq) == metrics_of(par)
    # results come back in the order of the cells, not in the order the two slots finish them
    for results in (seq, par):
        assert [Cell(**r["cell"]) for r in results] == tiny_cells()


def test_failing_cell_is_reported_and_the_rest_finish(tmp_path, prepared_dir, capsys):
    cells = tiny_cells()[:2] + [Cell("emotions", "c2ae", "random", fold=0, batch_size=100_000)]
    results = run_grid(cells, spec_for(tmp_path, prepared_dir), n_jobs=1, progress=True)
    status = {(r["cell"]["model"], r["cell"]["method"], r["cell"]["batch_size"]): r["status"] for r in results}
    assert status[("c2ae", "random", 100_000)] == "failed"
    assert [s for k, s in status.items() if k[2] == 128] == ["ok", "ok"]
    out = capsys.readouterr().out
    assert "1 of 3 cells failed" in out
    assert "grid: 3 cells and 2 warm-ups to train (0 cells already finished); roughly" in out
    # and after the run, what it took against that estimate
    assert re.search(r"grid: trained 3 cells and 2 warm-ups in \d+ (s|min); estimated roughly \d+ (s|min) "
                     r"\(took \d+\.\d\dx the estimate\)", out)


def test_printed_output_is_the_same_whether_cells_were_trained_or_cached(tmp_path, prepared_dir, monkeypatch,
                                                                        capsys):
    """What a pipeline notebook captures from a grid: under the runner (a progress file named) the
    estimate and the bar go to the file, and the summary line is the same when every cell is
    read back; so a rerun that computes nothing new writes the same executed notebook."""
    from mlabs.progress import PROGRESS_FILE_ENV

    log = tmp_path / "progress.log"
    monkeypatch.setenv(PROGRESS_FILE_ENV, str(log))
    monkeypatch.delenv("MLABS_QUIET", raising=False)
    spec, cells = spec_for(tmp_path, prepared_dir), tiny_cells()[:2]
    run_grid(cells, spec, n_jobs=1)
    trained = capsys.readouterr()
    assert "to train" in log.read_text() and "cells: 100%" in log.read_text()  # progress still shown
    log.write_text("")
    run_grid(cells, spec, n_jobs=1)
    cached = capsys.readouterr()
    assert trained.out == cached.out == "2 cells finished, 0 failed\n"
    assert trained.err == cached.err == ""


def test_rerun_executes_only_missing_cells(tmp_path, prepared_dir, monkeypatch):
    spec = spec_for(tmp_path, prepared_dir)
    cells = tiny_cells()
    run_grid(cells[:2], spec, n_jobs=1, progress=False)
    executed = []
    original = grid_mod._execute
    monkeypatch.setattr(grid_mod, "_execute", lambda c, s, wu: executed.append((c, wu)) or original(c, s, wu))
    results = run_grid(cells, spec, n_jobs=1, progress=False)
    assert [c for c, wu in executed if not wu] == cells[2:]
    assert len(metrics_of(results)) == 4
    # the two cells read back from the first run keep their places at the front
    assert [Cell(**r["cell"]) for r in results] == cells


def test_ray_executor_matches_local(tmp_path, prepared_dir):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    local = run_grid(tiny_cells(), spec_for(tmp_path / "local", prepared_dir), n_jobs=1, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        spec = spec_for(tmp_path / "ray", prepared_dir)
        remote = run_grid(tiny_cells(), spec, executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert metrics_of(remote) == metrics_of(local)
    # the files came back to the driver's roots, where DVC tracks them
    for cell in tiny_cells():
        saved = json.loads((cell_dir(spec.out_root, cell) / "result.json").read_text())
        assert saved["status"] == "ok"


def test_warmup_only_reports_every_warmup(tmp_path, prepared_dir):
    spec = spec_for(tmp_path, prepared_dir)
    cells = tiny_cells()
    first = run_grid(cells[:2], spec, n_jobs=1, warmup_only=True, progress=False)
    assert len(first) == 1  # c2ae random and adaptive share one warm-up
    again = run_grid(cells, spec, n_jobs=1, warmup_only=True, progress=False)
    assert len(again) == 2 and all(r["status"] == "ok" for r in again)


def test_pool_runs_warmups_first_then_untimed_pairs_then_longest_cells(tmp_path, prepared_dir):
    backend = grid_mod._PoolBackend(spec_for(tmp_path, prepared_dir), 2)
    try:
        short, long_, new = (Cell("emotions", m, "random", fold=0) for m in ("c2ae", "dela", "mpvae"))
        backend.queue = [(short, False), (long_, False), (new, False), (short, True)]
        # seconds per epoch measured on finished tasks of each (data set, model) pair
        backend.epoch_seconds = {("emotions", "c2ae"): 1.0, ("emotions", "dela"): 3.0}
        order = [backend._next_task() for _ in range(4)]
        assert order == [(short, True), (new, False), (long_, False), (short, False)]
    finally:
        backend.close()


def test_a_resuming_grid_sets_the_pace_of_its_finished_cells_beside_the_estimate(tmp_path, prepared_dir, capsys):
    """The finished cells of the same data sets and models took 500x their estimate (their
    sidecars say 10 s for one selection epoch of 0.02 s): the line says so, and how long the rest
    takes at that pace; a pair without finished cells gives no pace."""
    spec = spec_for(tmp_path, prepared_dir)
    first = [Cell("emotions", "c2ae", m, fold=0, seed=0) for m in ("random", "adaptive")]
    run_grid(first, spec, n_jobs=1, progress=False)
    for cell in first:
        sidecar = cell_dir(spec.out_root, cell, spec.config.selection) / "timing.json"
        timing = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**timing, "train_seconds": 10.0, "first_epoch": 2}))
    capsys.readouterr()
    run_grid(first + [Cell("emotions", "c2ae", "random", fold=1, seed=0)], spec, n_jobs=1, progress=True)
    out = capsys.readouterr().out
    assert "(2 cells already finished)" in out
    assert "; the 2 finished cells of these data sets and models took 500.00x their estimate where they were trained, which " \
           "makes about" in out
    run_grid([Cell("emotions", "dela", "random", fold=0, seed=0)], spec, n_jobs=1, progress=True)
    assert "finished cells of these data sets" not in capsys.readouterr().out


def test_the_estimate_counts_only_the_epochs_a_resuming_cell_has_left(tmp_path, prepared_dir, interrupt_training):
    """A cell stopped at epoch 5 of 6 (1 warm-up) keeps epochs 2-4 in its checkpoint: 2 of its 5
    selection epochs are left, and the estimate and its line say so; an unreadable checkpoint
    counts as none (training then reports it)."""
    config = TrainConfig(epochs=6, warmup_epochs=1, lr=1e-3, checkpoint_seconds=0)
    spec = GridSpec(str(prepared_dir), str(tmp_path / "warmup"), str(tmp_path / "runs"), config)
    cut, fresh = (Cell("emotions", "c2ae", "random", fold=f, seed=0) for f in (0, 1))
    interrupt_training(cut, grid_mod._split(spec.prepared_path("emotions"), 0), config, spec.warmup_root,
                       spec.out_root, epoch=5)
    broken = cell_dir(spec.out_root, fresh) / "resume.pt"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a checkpoint")
    assert grid_mod._checkpoint_epoch(cut, spec) == 4 and grid_mod._checkpoint_epoch(fresh, spec) == 0
    _, whole = grid_mod._estimate([fresh], [], [], spec, "local", 1)
    line, left = grid_mod._estimate([cut], [], [], spec, "local", 1)
    assert left == pytest.approx(whole * 2 / 5)
    assert "grid: 1 cells (1 resuming from a checkpoint) and 0 warm-ups to train" in line
    assert "resuming" not in grid_mod._estimate([fresh], [], [], spec, "local", 1)[0]


def test_grid_prints_what_it_trains_and_a_time_estimate_before_starting():
    from mlabs.cost import describe_elapsed, describe_estimate, epoch_seconds, estimate_seconds

    assert epoch_seconds("emotions", "dela", 473, 6) == 0.06
    # an unmeasured pair scales with n_train * q from the model's emotions cost
    assert epoch_seconds("scene", "paca", 1926, 6) > epoch_seconds("emotions", "paca", 473, 6)
    assert epoch_seconds("new", "dela", 473 * 4, 6) == pytest.approx(0.06 * 4 ** 0.8)
    seconds = estimate_seconds([("emotions", "dela", 97, 473, 6)] * 10, slots=2)
    assert seconds == pytest.approx(10 * 97 * 0.06 / 2)
    # fewer tasks than slots: the slots without a task do not help, nor can a run beat its longest task
    assert estimate_seconds([("emotions", "dela", 97, 473, 6)] * 3, slots=16) == pytest.approx(97 * 0.06)
    assert estimate_seconds([("emotions", "dela", 97, 473, 6), ("emotions", "dela", 3, 473, 6)],
                            slots=2) == pytest.approx(97 * 0.06)
    assert estimate_seconds([], slots=2) == 0.0
    line = describe_estimate(10, 2, 5, seconds, 2, "local")
    assert "10 cells and 2 warm-ups" in line and "5 cells already finished" in line and "2 local slots" in line
    assert "h on" in describe_estimate(1, 0, 0, 7200, 1, "local")
    # the line names the slots that get a task, not every core
    three = [Cell("emotions", "dela", "random", fold=f) for f in range(3)]
    config = type("Config", (), {"epochs": 10, "warmup_epochs": 3, "selection": None})()
    line, _ = grid_mod._estimate(three, [], [], GridSpec("no-such-dir", "w", "r", config), "local", 16)
    assert "on 3 local slots" in line
    assert describe_elapsed(10, 2, 300, 600) == \
        "grid: trained 10 cells and 2 warm-ups in 5 min; estimated roughly 10 min (took 0.50x the estimate)"
    assert describe_elapsed(0, 2, 30, 0.0) == "grid: trained 0 cells and 2 warm-ups in 30 s; estimated roughly 0 s"


def test_changed_data_retrains_finished_cells_and_warmups(tmp_path, prepared_dir, monkeypatch):
    # the same settings on other prepared data (here: other folds) must not count as finished
    spec = spec_for(tmp_path, prepared_dir)
    cells = tiny_cells()[:2]
    run_grid(cells, spec, n_jobs=1, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    save_prepared(prepare(load_dataset("emotions"), seed=1), other / "emotions.npz")
    grid_mod._prepared.cache_clear(), grid_mod._split.cache_clear(), grid_mod._digest.cache_clear()
    executed = []
    original = grid_mod._execute
    monkeypatch.setattr(grid_mod, "_execute", lambda c, s, wu: executed.append((c, wu)) or original(c, s, wu))
    run_grid(cells, GridSpec(str(other), spec.warmup_root, spec.out_root, spec.config), n_jobs=1, progress=False)
    assert [c for c, wu in executed if not wu] == cells
    assert [c for c, wu in executed if wu] == cells[:1]  # one shared warm-up, retrained
    executed.clear()
    run_grid(cells, GridSpec(str(other), spec.warmup_root, spec.out_root, spec.config), n_jobs=1, progress=False)
    assert executed == []
