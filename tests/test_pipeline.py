"""The DVC pipeline: its structure, and every notebook executed on a tiny profile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_prepare", "02_warmup", "03_train", "04_sensitivity", "05_report"]
CHAIN = ["prepare", "warmup", "train", "sensitivity", "report"]


def _dvc(*args: str) -> str:
    dvc = Path(sys.executable).with_name("dvc")
    out = subprocess.run([str(dvc), *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout


def test_stage_list_shows_the_chain():
    names = _dvc("stage", "list", "--name-only").split()
    bases = [n.split("@")[0] for n in names]
    for stage in CHAIN:
        assert stage in bases, f"stage {stage} missing from dvc stage list: {names}"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    n_pairs = len(params["data"]["datasets"]) * len(params["train"]["models"])
    assert bases.count("warmup") == n_pairs and bases.count("train") == n_pairs


def test_dag_edges_follow_the_chain():
    dot = _dvc("dag", "--dot")
    edges = {tuple(part.strip().strip('"').split("@")[0] for part in line.rstrip(";").split("->"))
             for line in dot.splitlines() if "->" in line}
    for a, b in [("data.dvc", "prepare"), ("prepare", "warmup"), ("warmup", "train"),
                 ("train", "report"), ("sensitivity", "report"), ("prepare", "sensitivity")]:
        assert (a, b) in edges, f"missing edge {a} -> {b} in dvc dag"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_notebook_has_a_parameters_cell_and_no_outputs(name):
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected one cell tagged 'parameters'"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert nb.metadata["kernelspec"]["name"] == "mlabs"


TINY = {
    "data": {"datasets": ["emotions"], "seed": 0, "n_folds": 5, "min_label_positives": 21,
             "feature_ratio": {}},
    "train": {"models": ["c2ae", "dela"], "methods": ["random", "adaptive", "chain"], "folds": [0],
              "seeds": [0], "epochs": 3, "warmup_epochs": 1, "lr": 1e-3, "weight_decay": 1e-4,
              "batch_size": 128, "selection_pressure": 2.0, "threshold": 0.5, "device": "cpu",
              "deterministic": True},
    "selection": {"adaptive": {"score": "weighted_loss", "quantize": True, "refresh_every": None, "k_neighbors": 5},
                  "chain": {"score": "weighted_loss", "quantize": True, "refresh_every": None, "k_neighbors": 5,
                            "chain_length": 4, "label_choice": "argmax"}},
    "models": {"c2ae": {}, "dela": {}},
    "sensitivity": {"datasets": ["emotions"], "models": ["dela"], "folds": [0], "epochs": 3,
                    "selection_pressures": [2, 16], "batch_sizes": [64, 128]},
    "grid": {"executor": "local", "n_jobs": 1, "address": None},
}


def _papermill(nb: str, out: Path, cwd: Path, data_dir: Path = ROOT / "data", **params) -> None:
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / f"{nb}.ipynb"), str(out),
           "-k", "mlabs", "--log-level", "WARNING", "--cwd", str(cwd)]
    for k, v in params.items():
        cmd += ["-p", k, str(v)]
    env = dict(os.environ, MLABS_QUIET="1", MLABS_DATA_DIR=str(data_dir))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, f"{nb} failed:\n{res.stderr[-3000:]}"


@pytest.mark.slow
def test_notebooks_run_the_tiny_profile_end_to_end(tmp_path):
    pytest.importorskip("papermill")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    nbdir = tmp_path / "executed"
    nbdir.mkdir()
    _papermill("01_prepare", nbdir / "prepare.ipynb", tmp_path, dataset="emotions")
    for model in TINY["train"]["models"]:
        _papermill("02_warmup", nbdir / f"warmup-{model}.ipynb", tmp_path, dataset="emotions", model=model)
        _papermill("03_train", nbdir / f"train-{model}.ipynb", tmp_path, dataset="emotions", model=model)
    _papermill("04_sensitivity", nbdir / "sensitivity.ipynb", tmp_path)
    _papermill("05_report", nbdir / "report.ipynb", tmp_path)

    assert (tmp_path / "artifacts/prepared/emotions.npz").exists()
    stats = json.loads((tmp_path / "reports/datasets/emotions.json").read_text())
    assert stats["instances"] == 593 and stats["q'"] == 6
    # each train stage's manifest names its cells, which are in the cell store (cells/)
    entries = [e for m in TINY["train"]["models"]
               for e in json.loads((tmp_path / f"reports/cells/emotions-{m}.json").read_text())["cells"]]
    assert len(entries) == 2 * 3  # two models x three methods x one fold
    results = [tmp_path / "cells" / e["key"][:2] / e["key"] / "result.json" for e in entries]
    assert all(json.loads(p.read_text())["status"] == "ok" for p in results)
    # the sensitivity cells that are train cells (DELA random and adaptive at s_e 2, batch 128) are
    # stored once: 6 train cells + 5 sensitivity cells - 2 shared
    sensitivity = json.loads((tmp_path / "reports/cells/sensitivity.json").read_text())["cells"]
    assert len(sensitivity) == 5 and len(list((tmp_path / "cells").glob("*/*/result.json"))) == 6 + 5 - 2

    # the report stage produces every file dvc.yaml declares for it
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]
    declared = [next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"] + stage["metrics"]]
    for out in declared:
        if out.startswith("reports/notebooks"):
            continue  # written by papermill itself, here under executed/
        assert (tmp_path / out).exists(), f"report did not write {out}"
    for name in ("val_macro_auc", "train_bce"):  # the files dvc.yaml's plots read, a column per method
        header = (tmp_path / f"reports/plots/{name}.csv").read_text().splitlines()[0]
        assert header.split(",") == ["epoch", *TINY["train"]["methods"]]
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert metrics, "empty metrics.json"
    for name in NOTEBOOKS:  # no error outputs in the executed notebooks
        for f in nbdir.glob("*.ipynb"):
            nb = nbformat.read(f, as_version=4)
            assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
