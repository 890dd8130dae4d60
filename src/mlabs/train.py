"""Command line: train one cell of the grid.

Example::

    python -m mlabs.train --dataset yeast --model dela --method adaptive --fold 0

Settings come from ``params.yaml`` when it is present (else the protocol
defaults of ``method.md``) and can be overridden with flags. The prepared data
set is read from ``<artifacts>/prepared/<dataset>.npz`` and created from the
raw data if missing. Output: ``<artifacts>/runs/.../curves.tsv`` and
``result.json``; the shared warm-up checkpoint goes to ``<artifacts>/warmup``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .training import METHODS, Cell, TrainConfig, cell_dir, run_cell

__all__ = ["main", "prepared_path"]


def prepared_path(dataset: str, artifacts: Path, params: dict | None = None) -> Path:
    """Path of the prepared data set, preparing it from the raw files if needed."""
    from .data import load_dataset, prepare, save_prepared

    path = artifacts / "prepared" / f"{dataset}.npz"
    if not path.exists():
        d = (params or {}).get("data", {})
        prepared = prepare(load_dataset(dataset), n_folds=d.get("n_folds", 5), seed=d.get("seed", 0),
                           min_label_positives=d.get("min_label_positives", 21))
        path.parent.mkdir(parents=True, exist_ok=True)
        save_prepared(prepared, path)
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlabs.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="registry name, e.g. yeast")
    p.add_argument("--model", required=True, help="c2ae, mpvae, paca, clif or dela")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--selection-pressure", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ...")
    p.add_argument("--params", default="params.yaml", help="params file (optional)")
    p.add_argument("--artifacts", default="artifacts", help="output root")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .config import load_params, train_config
    from .data import fold_split, load_prepared

    params = load_params(args.params) if Path(args.params).exists() else None
    overrides = {k: v for k, v in {"epochs": args.epochs, "device": args.device}.items() if v is not None}
    config = train_config(params, **overrides) if params else TrainConfig(**overrides)
    t = (params or {}).get("train", {})
    cell = Cell(args.dataset, args.model, args.method, args.fold,
                seed=args.seed if args.seed is not None else int(t.get("seeds", [0])[0]),
                selection_pressure=args.selection_pressure or float(t.get("selection_pressure", 2.0)),
                batch_size=args.batch_size or int(t.get("batch_size", 128)))
    artifacts = Path(args.artifacts)
    split = fold_split(load_prepared(prepared_path(cell.dataset, artifacts, params)), cell.fold)
    result = run_cell(cell, split, config, artifacts / "warmup", artifacts / "runs",
                      progress=not args.quiet)
    out = cell_dir(artifacts / "runs", cell)
    if result["status"] != "ok":
        print(f"failed: {result['error']}", file=sys.stderr)
        return 1
    print(json.dumps({"cell": cell.label(), "best_epoch": result["best_epoch"], "test": result["test"]},
                     indent=2))
    print(f"curves and result written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
