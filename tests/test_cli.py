"""The command line ``python -m mlabs.train``: arguments are checked before any work starts.

A bad argument ends the command with one line on stderr and exit code 2, and writes nothing
(no prepared file, no warm-up, no result folder). One real run on emotions with two epochs
checks the good path, the name normalisation and that a later failure keeps the finished result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlabs import train as cli
from mlabs.training import Cell, TrainConfig, cell_dir, run_cell

BASE = ["--dataset", "emotions", "--model", "dela", "--method", "adaptive"]


def _run(tmp_path: Path, capsys, *extra: str, base=BASE) -> tuple[int, str]:
    """Run the CLI in-process with artifacts under ``tmp_path``; return (exit code, stderr)."""
    argv = [*base, "--artifacts", str(tmp_path / "artifacts"), "--quiet", *extra]
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's exit
        code = exc.code
    return code, capsys.readouterr().err


def _nothing_written(tmp_path: Path) -> bool:
    return not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize("extra, message", [
    (["--params", "typo.yaml"], "--params typo.yaml: no such file"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--batch-size", "-3"], "--batch-size must be >= 1"),
    (["--selection-pressure", "0"], "--selection-pressure must be a finite number > 1"),
    (["--selection-pressure", "0.5"], "--selection-pressure must be a finite number > 1"),
    (["--selection-pressure", "1"], "--selection-pressure must be a finite number > 1"),
    (["--selection-pressure", "nan"], "--selection-pressure must be a finite number > 1"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--warmup-epochs", "-1"], "--warmup-epochs must be >= 0"),
    (["--epochs", "5", "--warmup-epochs", "6"], "warmup_epochs must be in [0, epochs=5]"),
    (["--epochs", "3", "--warmup-epochs", "3"], "leaves no selection epoch"),
    (["--fold", "7"], "--fold must be in 0..4"),
    (["--fold", "-1"], "--fold must be in 0..4"),
    (["--batch-size", "100000"], "--batch-size 100000 is larger than the"),
    (["--device", "nosuch"], "--device nosuch: not a torch device"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--epochs", "2"], "--epochs 2 is fewer than the 3 warm-up epochs of params.yaml; pass --warmup-epochs too"),
])
def test_bad_argument_is_one_line_exit_2_nothing_written(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # params.yaml of the project
    code, err = _run(tmp_path, capsys, *extra)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize("base, message", [
    (["--dataset", "nosuch", "--model", "dela", "--method", "random"], "--dataset nosuch: data set 'nosuch': not a shipped data set"),
    (["--dataset", "emotions", "--model", "nosuch", "--method", "random"], "--model nosuch: unknown model"),
    (["--dataset", "emotions", "--model", "dela", "--method", "nosuch"],
     "--method nosuch: unknown batch-selection method or variant 'nosuch'"),
    (["--dataset", "emotions", "--model", "dela", "--method", "hard_onyl"], "did you mean 'hard_only'"),
])
def test_unknown_names_exit_2(tmp_path, capsys, base, message):
    code, err = _run(tmp_path, capsys, base=base)
    assert code == 2 and message in err and "Traceback" not in err
    assert _nothing_written(tmp_path)


def test_cuda_refused_up_front_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = _run(tmp_path, capsys, "--device", "cuda")
    assert code == 2 and "no CUDA device" in err
    assert _nothing_written(tmp_path)


def test_random_may_train_warmup_only_epochs(tmp_path, capsys, monkeypatch):
    """Only a selecting method is refused when every epoch is a warm-up epoch."""
    monkeypatch.setattr(cli, "run_cell", lambda *a, **k: {"status": "ok", "best_epoch": 1, "test": {}})
    code, err = _run(tmp_path, capsys, "--epochs", "2", "--warmup-epochs", "2",
                     base=["--dataset", "emotions", "--model", "dela", "--method", "random"])
    assert code == 0, err


def test_explicit_flags_are_not_replaced_by_defaults(tmp_path, capsys, monkeypatch):
    seen = {}

    def fake_run_cell(cell, split, config, warmup_root, out_root, progress):
        seen.update(cell=cell, config=config, n_train=len(split.Y_train))
        return {"status": "ok", "best_epoch": 1, "test": {}}

    monkeypatch.setattr(cli, "run_cell", fake_run_cell)
    code, err = _run(tmp_path, capsys, "--batch-size", "7", "--selection-pressure", "1.5", "--epochs", "9",
                     "--warmup-epochs", "4", "--seed", "3", "--fold", "2", "--device", "cpu",
                     base=["--dataset", "EMOTIONS", "--model", "DELA", "--method", "chain"])
    assert code == 0, err
    cell, config = seen["cell"], seen["config"]
    assert (cell.dataset, cell.model, cell.method, cell.fold, cell.seed) == ("emotions", "dela", "chain", 2, 3)
    assert (cell.batch_size, cell.selection_pressure) == (7, 1.5)
    assert (config.epochs, config.warmup_epochs, config.device) == (9, 4, "cpu")
    # one spelling of the data set name on disk
    assert [p.name for p in (tmp_path / "artifacts" / "prepared").iterdir()] == ["emotions.npz"]


def test_params_file_is_read(tmp_path, capsys, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    import yaml

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update(epochs=11, warmup_epochs=2, batch_size=33, selection_pressure=3.0)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(params))
    seen = {}
    monkeypatch.setattr(cli, "run_cell", lambda cell, split, config, *a, **k: seen.update(cell=cell, config=config)
                        or {"status": "ok", "best_epoch": 1, "test": {}})
    monkeypatch.chdir(tmp_path)  # no params.yaml here: only --params can supply these values
    code, err = _run(tmp_path, capsys, "--params", str(path))
    assert code == 0, err
    assert (seen["config"].epochs, seen["config"].warmup_epochs) == (11, 2)
    assert (seen["cell"].batch_size, seen["cell"].selection_pressure) == (33, 3.0)


def test_real_run_then_failure_keeps_finished_result(tmp_path, monkeypatch):
    """Two epochs of DELA on emotions through a subprocess; then a failing retry keeps the result."""
    root = Path(__file__).resolve().parents[1]
    artifacts = tmp_path / "artifacts"
    cmd = [sys.executable, "-m", "mlabs.train", "--dataset", "Emotions", "--model", "dela", "--method", "adaptive",
           "--epochs", "2", "--warmup-epochs", "1", "--batch-size", "64", "--artifacts", str(artifacts), "--quiet"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "curves and result written to" in proc.stdout
    assert sorted(p.name for p in (artifacts / "runs").iterdir()) == ["emotions"]
    [result_path] = list((artifacts / "runs").rglob("result.json"))
    finished = result_path.read_text()
    assert json.loads(finished)["status"] == "ok"

    # a retry under other settings that fails must not replace the finished result
    import mlabs.training as training

    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(training, "train_cell", boom)
    cell = Cell("emotions", "dela", "adaptive", 0, seed=0, selection_pressure=2.0, batch_size=64)
    assert cell_dir(artifacts / "runs", cell) == result_path.parent
    result = run_cell(cell, None, TrainConfig(epochs=3, warmup_epochs=1), artifacts / "warmup", artifacts / "runs")
    assert result["status"] == "failed" and "simulated failure" in result["error"]
    assert result_path.read_text() == finished


def test_failure_without_finished_result_is_recorded(tmp_path, monkeypatch):
    import mlabs.training as training

    monkeypatch.setattr(training, "train_cell", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    cell = Cell("emotions", "dela", "random", 0)
    run_cell(cell, None, TrainConfig(epochs=2, warmup_epochs=1), tmp_path / "w", tmp_path / "r")
    recorded = json.loads((cell_dir(tmp_path / "r", cell) / "result.json").read_text())
    assert recorded["status"] == "failed" and "boom" in recorded["error"]


def test_a_prepared_file_of_other_data_settings_is_refused(tmp_path, capsys, monkeypatch):
    # an artifacts folder prepared under other settings must not be reused silently (other folds)
    from mlabs.data import load_dataset, prepare, save_prepared

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    path = tmp_path / "artifacts" / "prepared" / "emotions.npz"
    path.parent.mkdir(parents=True)
    save_prepared(prepare(load_dataset("emotions"), n_folds=3, seed=0, min_label_positives=21), path)
    code, err = _run(tmp_path, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "was prepared with other data settings (n_folds 3, the settings say 5)" in err
    assert "delete it or pass another --artifacts" in err


def test_an_unknown_data_set_points_to_data_custom(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    code, err = _run(tmp_path, capsys, base=["--dataset", "mine", "--model", "dela", "--method", "random"])
    assert code == 2 and "--dataset mine: " in err and "docs/data.md" in err and _nothing_written(tmp_path)
