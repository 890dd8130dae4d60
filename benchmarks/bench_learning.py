"""Do the five models learn under the study's protocol? Random batches on emotions and yeast.

Trains every model with random batches under the settings of a params file (default
``params.yaml``: the protocol, the models' settings and the per-model learning rates) and
prints, per data set and model:

- test macro-AUC at the best validation epoch (mean +- std over the folds run),
- the epoch at which validation macro-AUC first reaches 95 % of its best (mean over folds),
- seconds per epoch: the training pass (``epoch_seconds`` of the cell's timing sidecar) and the
  whole epoch including evaluation and checkpointing (the sidecar's ``train_seconds`` / epochs
  trained in that run); NaN for cells without a sidecar,

next to reference numbers measured with other code or published (``REFERENCES`` below, with
their sources). Finished cells are kept under ``--out`` and reused when the settings have not
changed, so an interrupted run continues.

Usage::

    python benchmarks/bench_learning.py                       # emotions folds 0-4, yeast fold 0
    python benchmarks/bench_learning.py --datasets emotions --models dela clif --folds 0 1
    python benchmarks/bench_learning.py --set models.dela.off_noise=0.0   # try one setting
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np
import yaml

from mlabs.config import load_params, train_config
from mlabs.grid import GridSpec, run_grid
from mlabs.results import load_timing
from mlabs.training import Cell, cell_dir

#: test macro-AUC of other code or papers, (data set, model) -> (text, source)
REFERENCES = {
    ("emotions", "dela"): ("0.855 +- 0.021 adaptive, 0.854 +- 0.022 unshuffled baseline; 0.839 on our seed-0 folds",
                           "authors' code CquptZA/MLAdaBatch run here, 101 epochs, 5 folds (issue #14)"),
    ("emotions", "clif"): ("0.867 +- 0.011", "authors' code CquptZA/MLAdaBatch run here, 101 epochs, 5 folds (issue #14)"),
}

DEFAULT_FOLDS = {"emotions": [0, 1, 2, 3, 4], "yeast": [0]}


def _set(params: dict, assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to the nested params."""
    key, _, value = assignment.partition("=")
    if not _:
        raise SystemExit(f"--set takes key=value, got {assignment!r}")
    node = params
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(value)


def _curves(directory: Path) -> list[dict]:
    with open(directory / "curves.tsv") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh, delimiter="\t")]


def _summary(cells: list[Cell], results: list[dict], out_root: Path, warmup_epochs: int) -> dict:
    aucs, reach, train_s, epoch_s, best = [], [], [], [], []
    for cell, res in zip(cells, results):
        if res.get("status") != "ok":
            print(f"  FAILED {cell.label()}: {res.get('error')}")
            continue
        rows = _curves(cell_dir(out_root, cell))
        val = np.array([r["val_macro_auc"] for r in rows])
        top = np.nanmax(val)
        reach.append(int(rows[int(np.argmax(val >= 0.95 * top))]["epoch"]))
        aucs.append(res["test"]["macro_auc"])
        best.append(res["best_epoch"])
        timing = load_timing(cell_dir(out_root, cell))
        if timing is None:  # timings are not part of the cached result
            train_s.append(math.nan)
            epoch_s.append(math.nan)
            continue
        train_s.append(np.mean(timing["epoch_seconds"][warmup_epochs:]))
        epoch_s.append(timing["train_seconds"] / max(len(rows) - timing["first_epoch"] + 1, 1))
    if not aucs:
        return {}
    return {"auc": (float(np.mean(aucs)), float(np.std(aucs))), "n": len(aucs), "reach95": float(np.mean(reach)),
            "best_epoch": float(np.mean(best)), "train_s": float(np.mean(train_s)), "epoch_s": float(np.mean(epoch_s))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--datasets", nargs="+", default=["emotions", "yeast"])
    ap.add_argument("--models", nargs="+", default=None, help="default: train.models of the params")
    ap.add_argument("--folds", nargs="+", type=int, default=None,
                    help="default: 0-4 for emotions, 0 for yeast, 0 otherwise")
    ap.add_argument("--epochs", type=int, default=None, help="default: train.epochs of the params")
    ap.add_argument("--method", default="random")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a params entry, e.g. models.dela.beta=1.0 (repeatable)")
    ap.add_argument("--n-jobs", type=int, default=None, help="default: all cores")
    ap.add_argument("--out", default="artifacts/bench-learning", help="cells are kept here")
    args = ap.parse_args()

    params = load_params(args.params)
    for assignment in args.set:
        _set(params, assignment)
    overrides = {"epochs": args.epochs} if args.epochs else {}
    config = train_config(params, **overrides)
    models = args.models or params["train"]["models"]
    t = params["train"]
    out = Path(args.out)
    from mlabs.train import prepared_path  # prepares a data set the first time it is needed

    grid = []
    for ds in args.datasets:
        prepared_path(ds, out, params)
        folds = args.folds if args.folds is not None else DEFAULT_FOLDS.get(ds, [0])
        grid += [Cell(ds, m, args.method, f, int(t["seeds"][0]), float(t["selection_pressure"]),
                      int(t["batch_size"])) for m in models for f in folds]
    spec = GridSpec(str(out / "prepared"), str(out / "warmup"), str(out / "runs"), config)
    t0 = time.perf_counter()
    results = run_grid(grid, spec, n_jobs=args.n_jobs, progress=True)
    wall = time.perf_counter() - t0

    print(f"\n{args.method} batches, {config.epochs} epochs ({config.warmup_epochs} warm-up), lr {config.lr:g} "
          f"(per model: {config.model_lr or 'none'}), weight decay {config.weight_decay:g}, batch {t['batch_size']}; "
          f"{len(grid)} cells in {wall:.0f} s")
    print("| data set | model | folds | test macro-AUC (best val epoch) | best epoch | epoch reaching 95 % of best val "
          "| s / epoch: train pass | s / epoch: all | reference |")
    print("|---|---|---|---|---|---|---|---|---|")
    for ds in args.datasets:
        for m in models:
            pairs = [(c, r) for c, r in zip(grid, results) if c.dataset == ds and c.model == m]
            s = _summary([c for c, _ in pairs], [r for _, r in pairs], out / "runs", config.warmup_epochs)
            if not s:
                continue
            ref, source = REFERENCES.get((ds, m), ("", ""))
            auc = f"{s['auc'][0]:.4f} +- {s['auc'][1]:.4f}" if s["n"] > 1 else f"{s['auc'][0]:.4f}"
            print(f"| {ds} | {m} | {s['n']} | {auc} | {s['best_epoch']:.0f} | {s['reach95']:.0f} | "
                  f"{s['train_s']:.3f} | {s['epoch_s']:.3f} | {ref}{' (' + source + ')' if source else ''} |")
    if any(not math.isfinite(r.get("test", {}).get("macro_auc", float("nan"))) for r in results if r.get("status") == "ok"):
        print("note: some cells have an undefined macro-AUC")


if __name__ == "__main__":
    main()
