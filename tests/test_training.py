"""The training protocol: warm-up sharing, best-epoch copy, determinism, resume, failures."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mlabs import training
from mlabs.data import fold_split, load_dataset, prepare
from mlabs.models import MODEL_NAMES, build
from mlabs.selection.registry import uses_selection_pressure
from mlabs.training import (Cell, CheckpointMismatch, TrainConfig, cell_dir, run_cell, train_cell,
                            warmup_path)

EPOCHS, WARMUP = 3, 1


@pytest.fixture(scope="module")
def split():
    return fold_split(prepare(load_dataset("emotions"), n_folds=5, seed=0), 0)


def small_config(**kw):
    # tiny models keep the suite fast; the protocol code paths are the same
    params = {"mpvae": {"n_train_sample": 10, "n_test_sample": 20}}
    base = dict(epochs=EPOCHS, warmup_epochs=WARMUP, lr=1e-3, model_params=params)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_model_and_method_trains_a_cell(tmp_path, split, model):
    config = small_config()
    results = {}
    for method in ("random", "adaptive", "chain"):
        cell = Cell("emotions", model, method, fold=0, seed=1)
        res = train_cell(cell, split, config, tmp_path / "warmup", tmp_path / "runs", progress=False)
        assert res["status"] == "ok"
        assert 1 <= res["best_epoch"] <= EPOCHS
        assert set(res["test"]) >= {"macro_f1", "micro_f1", "macro_auc", "ranking_loss",
                                    "hamming_loss", "one_error"}
        assert all(math.isfinite(v) for v in res["test"].values())
        curves = (cell_dir(tmp_path / "runs", cell) / "curves.tsv").read_text().splitlines()
        assert len(curves) == 1 + EPOCHS  # header + one row per epoch, warm-up epochs included
        results[method] = res
    # one shared warm-up checkpoint for the three methods
    assert len(list((tmp_path / "warmup").rglob("*.pt"))) == 1
    # the warm-up epoch is identical for every method (same checkpoint)
    rows = {m: (cell_dir(tmp_path / "runs", Cell("emotions", model, m, 0, 1)) / "curves.tsv")
            .read_text().splitlines()[1].split("\t")[:2] for m in results}
    assert rows["random"] == rows["adaptive"] == rows["chain"]


def test_same_cell_same_metrics(tmp_path, split):
    config = small_config()
    cell = Cell("emotions", "dela", "adaptive", fold=0, seed=3)
    a = train_cell(cell, split, config, tmp_path / "w1", tmp_path / "r1", progress=False)
    b = train_cell(cell, split, config, tmp_path / "w2", tmp_path / "r2", progress=False)
    assert a["test"] == b["test"] and a["best_epoch"] == b["best_epoch"]


def test_rerun_with_the_same_numbers_rewrites_no_cached_file(tmp_path, split, monkeypatch):
    """Timings and the machine record go to the uncached sidecar, so a second run of a cell that
    takes other times (here a fake clock) writes byte-identical result.json and curves.tsv."""
    from mlabs.results import TIMING_FILE, load_timing

    config = small_config()
    cell = Cell("emotions", "dela", "adaptive", fold=0, seed=3)
    train_cell(cell, split, config, tmp_path / "w1", tmp_path / "r1", progress=False)
    clock = iter(range(0, 10_000, 7))

    class SlowClock:  # every reading 7 s after the last: timings that real runs never give
        @staticmethod
        def perf_counter():
            return float(next(clock))

    monkeypatch.setattr(training, "time", SlowClock)
    train_cell(cell, split, config, tmp_path / "w2", tmp_path / "r2", progress=False)
    a, b = cell_dir(tmp_path / "r1", cell), cell_dir(tmp_path / "r2", cell)
    for name in ("result.json", "curves.tsv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert "seconds" not in (a / "result.json").read_text() + (a / "curves.tsv").read_text()
    first, second = load_timing(a), load_timing(b)
    assert (a / TIMING_FILE).read_bytes() != (b / TIMING_FILE).read_bytes()
    assert len(first["epoch_seconds"]) == len(second["epoch_seconds"]) == EPOCHS
    assert second["epoch_seconds"][WARMUP:] == [7.0] * (EPOCHS - WARMUP)  # one clock step per pass
    assert second["train_seconds"] > 0 and second["first_epoch"] == WARMUP + 1
    assert first["machine"] == second["machine"]  # same machine, whatever the times
    assert set(first["machine"]) >= {"cpu", "cpu_capability", "torch_threads", "torch", "numpy", "device"}
    assert first["fingerprint"] == json.loads((a / "result.json").read_text())["fingerprint"]


def test_timing_sidecar_is_none_when_absent_or_of_another_result(tmp_path):
    from mlabs.results import TIMING_FILE, load_timing, write_timing

    assert load_timing(tmp_path) is None  # e.g. a fresh clone restored by `dvc pull`
    (tmp_path / "result.json").write_text(json.dumps({"status": "ok", "fingerprint": "new"}))
    write_timing(tmp_path, fingerprint="old", epoch_seconds=[0.5], train_seconds=0.5, first_epoch=1,
                 machine={"cpu": "x"})
    assert load_timing(tmp_path) is None  # a sidecar left by an earlier result is not this one's
    write_timing(tmp_path, fingerprint="new", epoch_seconds=[0.5], train_seconds=0.5, first_epoch=1,
                 machine={"cpu": "x"})
    assert load_timing(tmp_path)["epoch_seconds"] == [0.5]
    (tmp_path / TIMING_FILE).write_text("{not json")
    assert load_timing(tmp_path) is None


def test_rerun_skips_finished_cell(tmp_path, split, monkeypatch):
    config = small_config()
    cell = Cell("emotions", "c2ae", "random", fold=0)
    first = train_cell(cell, split, config, tmp_path / "w", tmp_path / "r", progress=False)
    monkeypatch.setattr(training._Run, "train_epoch", lambda *a, **k: pytest.fail("retrained"))
    assert train_cell(cell, split, config, tmp_path / "w", tmp_path / "r", progress=False) == first


def test_resume_after_interruption_matches_uninterrupted(tmp_path, split, interrupt_training):
    config = small_config(epochs=4, checkpoint_seconds=0)
    cell = Cell("emotions", "clif", "chain", fold=0, seed=2)
    full = train_cell(cell, split, config, tmp_path / "w", tmp_path / "full", progress=False)

    interrupt_training(cell, split, config, tmp_path / "w", tmp_path / "cut", epoch=3)
    out = cell_dir(tmp_path / "cut", cell)
    assert (out / "resume.pt").exists() and not (out / "result.json").exists()
    resumed = train_cell(cell, split, config, tmp_path / "w", tmp_path / "cut", progress=False)
    assert resumed["test"] == full["test"] and resumed["best_epoch"] == full["best_epoch"]
    assert not (out / "resume.pt").exists()


def test_best_epoch_weights_are_a_real_copy(tmp_path, split, monkeypatch):
    # make validation AUC fall every epoch, so the best epoch is the first one
    calls = iter(range(100))
    monkeypatch.setattr(training, "_auc_key", lambda value: -next(calls))
    config = small_config(epochs=3, warmup_epochs=1)
    cell = Cell("emotions", "dela", "random", fold=0)
    res = train_cell(cell, split, config, tmp_path / "w", tmp_path / "r", progress=False)
    assert res["best_epoch"] == 1
    header, *rows = (cell_dir(tmp_path / "r", cell) / "curves.tsv").read_text().splitlines()
    cols = header.split("\t")
    first = dict(zip(cols, rows[0].split("\t")))
    last = dict(zip(cols, rows[-1].split("\t")))
    # re-evaluating the kept weights reproduces epoch 1, not the last epoch
    assert res["val"]["macro_auc"] == pytest.approx(float(first["val_macro_auc"]), abs=1e-5)
    assert float(first["val_macro_auc"]) != pytest.approx(float(last["val_macro_auc"]), abs=1e-5)
    assert not any(c.startswith("test_") for c in cols)  # the test half is evaluated once, at the end


def test_nan_loss_fails_the_cell_with_a_clear_message(tmp_path, split, monkeypatch):
    from mlabs.models.dela import DELA

    original = DELA.training_step

    def nan_step(self, x, y):
        out = original(self, x, y)
        out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(DELA, "training_step", nan_step)
    cell = Cell("emotions", "dela", "adaptive", fold=0)
    res = run_cell(cell, split, small_config(), tmp_path / "w", tmp_path / "r", progress=False)
    assert res["status"] == "failed"
    assert "emotions/dela/adaptive" in res["error"] and "epoch 1" in res["error"]
    saved = json.loads((cell_dir(tmp_path / "r", cell) / "result.json").read_text())
    assert saved["status"] == "failed"


def test_checkpoint_of_another_fold_is_refused(tmp_path, split):
    config = small_config()
    cell0 = Cell("emotions", "c2ae", "random", fold=0)
    training.run_warmup(cell0, split, config, tmp_path / "w", progress=False)
    cell1 = Cell("emotions", "c2ae", "random", fold=1)
    target = warmup_path(tmp_path / "w", cell1)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(warmup_path(tmp_path / "w", cell0).read_bytes())
    split1 = fold_split(prepare(load_dataset("emotions"), n_folds=5, seed=0), 1)
    with pytest.raises(CheckpointMismatch, match="fold"):
        training.run_warmup(cell1, split1, config, tmp_path / "w", progress=False)


def test_checkpoints_load_without_pickle(tmp_path, split):
    config = small_config()
    cell = Cell("emotions", "c2ae", "random", fold=0)
    path = training.run_warmup(cell, split, config, tmp_path / "w", progress=False)
    payload = torch.load(path, weights_only=True)
    assert payload["meta"]["dataset"] == "emotions" and payload["meta"]["fold"] == 0


def test_batch_larger_than_data_is_refused(tmp_path, split):
    cell = Cell("emotions", "c2ae", "random", fold=0, batch_size=10_000)
    with pytest.raises(ValueError, match="larger than"):
        train_cell(cell, split, small_config(), tmp_path / "w", tmp_path / "r", progress=False)


OTHER_METHODS = [m for m in training.METHODS if m not in ("random", "adaptive", "chain")]


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_other_selection_methods_train_a_cell(tmp_path, split, method):
    config = small_config(epochs=4)
    cell = Cell("emotions", "dela", method, fold=0, seed=1)
    res = train_cell(cell, split, config, tmp_path / "w", tmp_path / "r", progress=False)
    assert res["status"] == "ok", res
    # these methods take their s_e from selection.<method>, so the cell folder does not name one;
    # reweight takes the cell's (that of the adaptive distribution it weights by)
    se = f"-se{cell.selection_pressure:g}" if uses_selection_pressure(method) else ""
    assert cell_dir(tmp_path / "r", cell).parent.name == f"{method}{se}-b128"


def test_samplers_receive_the_predicted_probabilities(tmp_path, split, monkeypatch):
    from mlabs.selection import AdaptiveBatchSampler

    seen = []
    original = AdaptiveBatchSampler.update

    def spy(self, indices, per_sample_loss, probabilities=None):
        seen.append(None if probabilities is None else tuple(probabilities.shape))
        return original(self, indices, per_sample_loss, probabilities)

    monkeypatch.setattr(AdaptiveBatchSampler, "update", spy)
    cell = Cell("emotions", "c2ae", "adaptive", fold=0)
    train_cell(cell, split, small_config(), tmp_path / "w", tmp_path / "r", progress=False)
    q = split.Y_train.shape[1]
    # the seeding call with the warm-up tables, then one call per batch
    assert seen[0] == (split.Y_train.shape[0], q)
    assert len(seen) > 1 and all(s is not None and s[1] == q for s in seen)


def test_warmup_checkpoint_keeps_the_predictions(tmp_path, split):
    cell = Cell("emotions", "mpvae", "random", fold=0)
    path = training.run_warmup(cell, split, small_config(), tmp_path / "w", progress=False)
    table = torch.load(path, weights_only=True)["state"]["prob_table"]
    assert table.shape == split.Y_train.shape
    assert float(table.min()) >= 0.0 and float(table.max()) <= 1.0 and float(table.std()) > 0


def test_online_batch_recomputes_losses_when_asked(tmp_path, split, monkeypatch):
    calls = []
    original = training._Run.recompute_losses
    monkeypatch.setattr(training._Run, "recompute_losses",
                        lambda self, sampler: calls.append(1) or original(self, sampler))
    config = small_config(epochs=4, selection={"online_batch": {"recompute_every": 1}})
    cell = Cell("emotions", "c2ae", "online_batch", fold=0)
    assert train_cell(cell, split, config, tmp_path / "w", tmp_path / "r", progress=False)["status"] == "ok"
    assert len(calls) == config.epochs - config.warmup_epochs
    calls.clear()
    config = small_config(epochs=4, selection={"online_batch": {"recompute_every": None}})
    train_cell(cell, split, config, tmp_path / "w2", tmp_path / "r2", progress=False)
    assert calls == []


def test_fingerprint_counts_only_the_cells_own_method_options():
    def config(chain_length=4, recompute_every=None):
        return small_config(selection={"adaptive": {"quantize": True},
                                       "chain": {"quantize": True, "chain_length": chain_length},
                                       "online_batch": {"recompute_every": recompute_every}})

    base, other = config(), config(recompute_every=2)
    assert base.fingerprint("dela", "adaptive", "d") == other.fingerprint("dela", "adaptive", "d")
    assert base.fingerprint("dela", "random", "d") == other.fingerprint("dela", "random", "d")
    assert base.fingerprint("dela", "online_batch", "d") != other.fingerprint("dela", "online_batch", "d")
    longer = config(chain_length=6)
    assert base.fingerprint("dela", "adaptive", "d") == longer.fingerprint("dela", "adaptive", "d")
    assert base.fingerprint("dela", "chain", "d") != longer.fingerprint("dela", "chain", "d")


def test_where_a_cell_trains_is_not_in_its_fingerprint():
    # docs/scaling.md: moving a finished profile to a GPU or a cluster trains nothing again (the
    # draws and results are meant to be the same on every machine); the protocol still counts
    base = small_config()
    for same in (small_config(device="cuda"), small_config(checkpoint_seconds=0.0)):
        assert same.fingerprint("dela", "adaptive", "d") == base.fingerprint("dela", "adaptive", "d")
        assert same.warmup_fingerprint("dela", "d") == base.warmup_fingerprint("dela", "d")
    assert small_config(threshold=0.4).fingerprint("dela", "adaptive", "d") != base.fingerprint("dela", "adaptive", "d")


def test_selection_options_are_checked_per_method():
    with pytest.raises(ValueError, match="selection.quantize: not a batch-selection method"):
        small_config(selection={"quantize": True})
    # option names are checked where the samplers are built (the settings do not import them)
    config = small_config(selection={"adaptive": {"chain_length": 4}})
    with pytest.raises(ValueError, match=r"selection.adaptive: unknown option\(s\) \['chain_length'\]"):
        training.check_selection_options(config)
    with pytest.raises(ValueError, match=r"selection.adaptive: unknown option\(s\) \['chain_length'\]"):
        train_cell(Cell("emotions", "dela", "adaptive", 0), None, config, "unused", "unused", progress=False)
    from mlabs.grid import GridSpec, run_grid

    with pytest.raises(ValueError, match=r"selection.adaptive: unknown option\(s\) \['chain_length'\]"):
        run_grid([], GridSpec("unused", "unused", "unused", config), progress=False)
    with pytest.raises(ValueError, match="must be a mapping"):
        small_config(selection={"chain": 4})


def test_the_compare_profile_options_build_every_sampler(tmp_path, split):
    from mlabs.config import load_params, train_config

    config = train_config(load_params("profiles/compare/params.yaml"), epochs=4, warmup_epochs=1,
                          model_params={"c2ae": {}})
    for method in OTHER_METHODS:
        cell = Cell("emotions", "c2ae", method, fold=0)
        res = run_cell(cell, split, config, tmp_path / "w", tmp_path / "r", progress=False)
        assert res["status"] == "ok", res


def test_an_unexpected_error_is_recorded_as_a_failed_cell(tmp_path, split, monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("boom")

    monkeypatch.setattr(training, "make_sampler", broken)
    cell = Cell("emotions", "c2ae", "adaptive", fold=0)
    res = run_cell(cell, split, small_config(), tmp_path / "w", tmp_path / "r", progress=False)
    assert res["status"] == "failed" and "TypeError: boom" in res["error"]
    assert json.loads((cell_dir(tmp_path / "r", cell) / "result.json").read_text())["status"] == "failed"


def test_model_lr_overrides_the_shared_rate_for_that_model_only():
    config = small_config(lr=1e-4, model_lr={"mpvae": 1e-3})
    assert config.lr_for("mpvae") == 1e-3 and config.lr_for("dela") == 1e-4
    assert config.warmup_fingerprint("mpvae", "d") != small_config(lr=1e-4).warmup_fingerprint("mpvae", "d")
    assert config.warmup_fingerprint("dela", "d") == small_config(lr=1e-4).warmup_fingerprint("dela", "d")
    model = build("mpvae", 5, 3, n_train_sample=2, n_test_sample=2)
    assert {g["lr"] for g in training._make_optimizer(model, config).param_groups} == {1e-3}


@pytest.mark.parametrize("bad", [dict(lr="1e-3"), dict(weight_decay=-1.0), dict(model_lr={"mpvae": "1e-3"})])
def test_config_refuses_learning_rates_that_are_not_numbers(bad):
    with pytest.raises(ValueError, match="must be a number"):
        TrainConfig(**bad)
