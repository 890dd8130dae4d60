"""Pins of the study layers above the samplers: the pins of ``tests/test_study_pinned.py``.

Run ``python tests/data/make_study_pins.py`` to (re)write ``study_pins.json``; only do so when a
change of the results is intended. Three kinds of pins:

- ``cells``: the result (metrics, best epoch, minority share; not the fingerprint, which covers
  the code) and the curves (without timings) of very short real cells: emotions, fold 0, DELA and C2AE x random / adaptive / chain,
  2 warm-up + 2 selection epochs, the settings of ``params.yaml``;
- ``report``: the hashes of the tables, metrics and findings that :func:`mlabs.report.write_report`
  writes for the fixed synthetic result tree of ``tests/test_report.py`` (figures and the plot
  CSVs are left out: images are not byte-stable and the CSVs have their own tests);
- ``fingerprints``: the settings part of :meth:`TrainConfig.fingerprint` (the hash of
  :meth:`TrainConfig.cell_settings`) of every method for two models under each committed params
  profile, so a change of the params layout cannot make finished cells stale unnoticed. The rest
  of a fingerprint (data, code, library versions) is not pinned: it changes with every intended
  change of the code (``tests/test_code_digest.py`` tests what it covers).

The cells depend on the machine's floating-point kernels, so they are kept per
:func:`kernel_probe.kernel_probe` (see ``kernel_probe.py``): ``cells`` maps each probe to the
``results`` recorded on such a machine and ``recorded_from``, the commit whose code they come from.
A full run keeps only this machine's entry (an intended change of the results makes the others
stale: re-record them on their machines). ``--add-cells`` records this machine's entry and leaves
everything else as it is: for a kind of machine without one, with the cells' code unchanged since
the other entries were recorded (``python scripts/retrain_impact.py --since <their commit>`` says
0 cells). ``--report`` re-records the report and fingerprint pins only, keeping every cell entry:
for an intended change of the report or of the params layout that computes no cell differently.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PINS = Path(__file__).with_name("study_pins.json")
ROOT = Path(__file__).resolve().parents[2]
# the default and every committed profile (its params.yaml is generated from its overlay: mlabs.profiles)
PROFILES = ("params.yaml", *(f"profiles/{name}/params.yaml" for name in
                             ("compare", "imbalanced", "seeds", "paper", "breadth", "ablation")))
CELL_MODELS = ("dela", "c2ae")
CELL_METHODS = ("random", "adaptive", "chain")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprints() -> dict:
    """The settings part of the cell fingerprints: the hash of :meth:`TrainConfig.cell_settings`.

    The whole fingerprint also covers the data and the code (``mlabs.code_digest``), which change
    with every intended code change; the settings part changes only when the params layout or a
    profile does.
    """
    from mlabs.config import load_params, methods, train_config
    from mlabs.settings import METHODS

    out = {}
    for profile in PROFILES:
        config = train_config(load_params(ROOT / profile))
        for model in CELL_MODELS:
            for method in METHODS:
                settings = json.dumps(config.cell_settings(model, method), sort_keys=True, default=str)
                out[f"{profile}/{model}/{method}"] = _sha(settings)
        out[f"{profile}/methods"] = ",".join(methods(load_params(ROOT / profile)))
    return out


def cells() -> dict:
    import torch

    from mlabs.config import load_params, train_config
    from mlabs.data import fold_split, load_dataset, prepare
    from mlabs.training import Cell, cell_dir, train_cell

    torch.set_num_threads(1)
    params = load_params(ROOT / "params.yaml")
    config = train_config(params, epochs=4, warmup_epochs=2, device="cpu")
    split = fold_split(prepare(load_dataset("emotions", ROOT / "data"), n_folds=5, seed=0), 0)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in CELL_MODELS:
            for method in CELL_METHODS:
                cell = Cell("emotions", model, method, 0, 0, 2.0, 64)
                res = train_cell(cell, split, config, Path(tmp) / "w", Path(tmp) / "r", progress=False)
                header, *rows = (cell_dir(Path(tmp) / "r", cell) / "curves.tsv").read_text().splitlines()
                cols = header.split("\t")
                keep = [i for i, c in enumerate(cols) if c != "epoch_seconds"]
                curves = "\n".join("\t".join(r.split("\t")[i] for i in keep) for r in [header, *rows])
                # the fingerprint covers the code, which an intended change of it changes (its
                # settings part is pinned by fingerprints())
                pinned = {k: v for k, v in res.items() if k not in ("train_seconds", "fingerprint")}
                pinned["curves"] = _sha(curves)
                out[f"{model}/{method}"] = json.loads(json.dumps(pinned, sort_keys=True))
    return out


def report() -> dict:
    from mlabs import report as rep

    spec = importlib.util.spec_from_file_location("_report_tree", ROOT / "tests" / "test_report.py")
    tree = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tree)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        root, dest = Path(tmp) / "runs", Path(tmp) / "reports"
        for ds in tree.DATASETS:
            for model in tree.MODELS:
                for method in tree.METHODS:
                    for fold in tree.FOLDS:
                        tree.write_cell(root, ds, model, method, fold)
        tree.write_cell(root, "ds_a", "m1", "chain", 3, status="failed")
        written = rep.write_report(root, dest)
        for kind in ("tables", "metrics", "findings"):
            for path in sorted(written[kind]):
                out[str(path.relative_to(dest))] = _sha(path.read_text())
    return out


def cells_here() -> dict:
    """``{probe: {"recorded_from": commit, "results": cells()}}`` for this machine."""
    from kernel_probe import kernel_probe  # tests/data is on sys.path (the script's folder; conftest)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {kernel_probe(): {"recorded_from": commit, "results": cells()}}


def build() -> dict:
    return {"fingerprints": fingerprints(), "report": report(), "cells": cells_here()}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    if sys.argv[1:] == ["--add-cells"]:
        pins = json.loads(PINS.read_text())
        pins["cells"].update(cells_here())
    elif sys.argv[1:] == ["--report"]:
        pins = {**json.loads(PINS.read_text()), "fingerprints": fingerprints(), "report": report()}
    elif not sys.argv[1:]:
        pins = build()
    else:
        sys.exit("usage: python tests/data/make_study_pins.py [--add-cells | --report]")
    PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINS}")
