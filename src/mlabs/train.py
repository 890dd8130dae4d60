"""Command line: train one cell of the grid.

Example::

    python -m mlabs.train --dataset yeast --model dela --method adaptive --fold 0

Settings come from ``params.yaml`` when it is present in the working directory
(else the protocol defaults of ``docs/method.md``), or from the file named with
``--params``, and can be overridden with flags. The prepared data set is read
from ``<artifacts>/prepared/<dataset>.npz`` and created from the raw data if
missing. Output: ``<artifacts>/runs/.../curves.tsv`` and ``result.json``; the
shared warm-up checkpoint goes to ``<artifacts>/warmup``.

Every argument is checked before any work starts: a bad one ends the command
with a one-line message and exit code 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .selection.registry import sampler_class, uses_selection_pressure
from .training import (METHODS, Cell, TrainConfig, cell_dir, check_method_supports_model,
                       check_selection_options, run_cell)

__all__ = ["main", "prepared_path"]

#: the params file read when ``--params`` is not given (optional)
DEFAULT_PARAMS = "params.yaml"


class UsageError(ValueError):
    """A command-line argument that cannot work; reported in one line with exit code 2."""


def _data_settings(dataset: str, params: dict | None) -> dict:
    """The prepare stage's settings for ``dataset`` (the protocol's defaults without a params file)."""
    d = (params or {}).get("data", {})
    return {"feature_ratio": (d.get("feature_ratio") or {}).get(dataset), "n_folds": d.get("n_folds", 5),
            "seed": d.get("seed", 0), "min_label_positives": d.get("min_label_positives", 21)}


def _prepare(dataset: str, params: dict | None):
    """The prepared data set, built in memory from the raw files with the settings of the prepare stage
    (a data set of your own from its ``data.custom`` entry)."""
    from .data import dataset_spec, load_dataset, prepare

    custom = ((params or {}).get("data") or {}).get("custom")
    return prepare(load_dataset(dataset, spec=dataset_spec(custom, dataset)), **_data_settings(dataset, params))


def prepared_path(dataset: str, artifacts: Path, params: dict | None = None) -> Path:
    """Path of the prepared data set, preparing it from the raw files if needed."""
    from .data import save_prepared

    path = Path(artifacts) / "prepared" / f"{dataset}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_prepared(_prepare(dataset, params), path)
    return path


def _parser() -> argparse.ArgumentParser:
    from .models import MODEL_NAMES

    p = argparse.ArgumentParser(prog="python -m mlabs.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="registry name, case-insensitive, e.g. yeast")
    p.add_argument("--model", required=True, help=", ".join(MODEL_NAMES))
    p.add_argument("--method", required=True,
                   help=f"{', '.join(METHODS)}, or a variant named in the selection section of --params")
    p.add_argument("--fold", type=int, default=0, help="held-out fold, 0 .. n_folds - 1 (default 0)")
    p.add_argument("--seed", type=int, default=None, help="default: the first of train.seeds, else 0")
    p.add_argument("--selection-pressure", type=float, default=None,
                   help="s_e > 1 of adaptive and chain (default: train.selection_pressure, else 2)")
    p.add_argument("--batch-size", type=int, default=None, help="default: train.batch_size, else 128")
    p.add_argument("--epochs", type=int, default=None, help="all epochs, warm-up included "
                   "(default: train.epochs, else 100)")
    p.add_argument("--warmup-epochs", type=int, default=None, help="epochs of shuffled random batches "
                   "before selection starts (default: train.warmup_epochs, else 3)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps, ... (default: train.device, else cpu)")
    p.add_argument("--params", default=None,
                   help=f"params file (default: {DEFAULT_PARAMS} if present, else the protocol defaults)")
    p.add_argument("--artifacts", default="artifacts", help="output root (default: artifacts)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _load_params(name: str | None) -> dict | None:
    from .config import load_params

    if name is None:
        return load_params(DEFAULT_PARAMS) if Path(DEFAULT_PARAMS).is_file() else None
    if not Path(name).is_file():
        raise UsageError(f"--params {name}: no such file")
    try:
        return load_params(name)
    except (ValueError, OSError) as exc:
        raise UsageError(f"--params {name}: {exc}") from None


def _check_device(device: str) -> None:
    from .grid import check_device

    try:
        check_device(device)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None


def _positive_int(flag: str, value: int, minimum: int = 1) -> int:
    if value < minimum:
        raise UsageError(f"{flag} must be >= {minimum}, got {value}")
    return value


def _resolve(args: argparse.Namespace) -> tuple[Cell, TrainConfig, dict | None, object]:
    """Check every argument and build the cell, its settings and its data split.

    Nothing is written; a bad argument raises :class:`UsageError` with the message to print.
    """
    from .config import train_config
    from .data import DataError, dataset_info, dataset_spec, fold_split, is_shipped, load_prepared, user_files
    from .models import MODEL_NAMES

    params = _load_params(args.params)
    t = (params or {}).get("train", {})

    custom = ((params or {}).get("data") or {}).get("custom")
    try:  # one spelling everywhere: the registry's (EMOTIONS -> emotions)
        if is_shipped(args.dataset):
            dataset = dataset_info(args.dataset).name
        else:   # a data set of your own: its files in data/, or its data.custom entry
            user_files(args.dataset, dataset_spec(custom, args.dataset))
            dataset = args.dataset
    except (DataError, ValueError) as exc:
        raise UsageError(f"--dataset {args.dataset}: {exc}") from None
    model = args.model.lower()
    if model not in MODEL_NAMES:
        raise UsageError(f"--model {args.model}: unknown model; choose one of {', '.join(MODEL_NAMES)}")

    batch_size = _positive_int("--batch-size", args.batch_size if args.batch_size is not None
                               else int(t.get("batch_size", 128)))
    s_e = args.selection_pressure if args.selection_pressure is not None else float(t.get("selection_pressure", 2.0))
    if not (math.isfinite(s_e) and s_e > 1):
        raise UsageError(f"--selection-pressure must be a finite number > 1 (the largest allowed ratio "
                         f"of the most to the least likely sample), got {s_e:g}")
    seed = args.seed if args.seed is not None else int((t.get("seeds") or [0])[0])
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, got {seed}")

    overrides = {}
    for flag, key in (("--epochs", "epochs"), ("--warmup-epochs", "warmup_epochs")):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = _positive_int(flag, value, 1 if key == "epochs" else 0)
    if args.device is not None:
        overrides["device"] = args.device
    warmup = t.get("warmup_epochs", TrainConfig.warmup_epochs)   # an integer: load_params checked it
    if "epochs" in overrides and "warmup_epochs" not in overrides and overrides["epochs"] < warmup:
        raise UsageError(f"--epochs {overrides['epochs']} is fewer than the {warmup} warm-up epochs of "
                         f"{args.params or DEFAULT_PARAMS if params else 'the protocol'}; pass --warmup-epochs too")
    try:
        config = train_config(params, **overrides) if params else TrainConfig(**overrides)
        check_selection_options(config)
    except (ValueError, TypeError, KeyError) as exc:
        where = f"{args.params or DEFAULT_PARAMS}" if params else "flags"
        raise UsageError(f"settings ({where}): {exc}") from None
    _check_device(config.device)
    try:
        base, _ = config.resolve_method(args.method)
    except ValueError as exc:
        raise UsageError(f"--method {args.method}: {exc}") from None
    fixed = config.variant_selection_pressure(args.method)
    if fixed is not None:
        if args.selection_pressure is not None and args.selection_pressure != fixed:
            raise UsageError(f"--selection-pressure {args.selection_pressure:g}: variant {args.method} fixes "
                             f"s_e = {fixed:g}; leave the flag out")
        s_e = fixed
    if sampler_class(base).has_warmup and config.epochs <= config.warmup_epochs:
        raise UsageError(
            f"--epochs {config.epochs} with {config.warmup_epochs} warm-up epochs leaves no selection epoch, "
            f"so {args.method} would train exactly like random; raise --epochs or lower --warmup-epochs")

    path = Path(args.artifacts) / "prepared" / f"{dataset}.npz"
    try:
        prepared = load_prepared(path) if path.is_file() else _prepare(dataset, params)
    except (DataError, ValueError) as exc:
        raise UsageError(f"--dataset {dataset}: {exc}") from None
    # a file prepared earlier under other data settings would silently train on other folds
    stale = [f"{key} {getattr(prepared, key)!r}, the settings say {value!r}"
             for key, value in _data_settings(dataset, params).items()
             if value is not None and getattr(prepared, key) != value]
    if stale:
        raise UsageError(f"{path} was prepared with other data settings ({'; '.join(stale)}): delete it or "
                         f"pass another --artifacts")
    if not 0 <= args.fold < prepared.n_folds:
        raise UsageError(f"--fold must be in 0..{prepared.n_folds - 1} ({dataset} has {prepared.n_folds} "
                         f"folds), got {args.fold}")
    try:
        split = fold_split(prepared, args.fold)
    except (DataError, ValueError) as exc:
        raise UsageError(f"--fold {args.fold}: {exc}") from None
    n_train = len(split.Y_train)
    if batch_size > n_train:
        raise UsageError(f"--batch-size {batch_size} is larger than the {n_train} training samples of "
                         f"{dataset} fold {args.fold}")
    cell = Cell(dataset, model, args.method, args.fold, seed=seed, selection_pressure=s_e, batch_size=batch_size)
    try:
        check_method_supports_model(cell, config)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return cell, config, params, (prepared, split)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        cell, config, params, (prepared, split) = _resolve(args)
    except UsageError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    if args.selection_pressure is not None and not uses_selection_pressure(cell.method, config.selection):
        takers = [m for m in METHODS if uses_selection_pressure(m)]
        print(f"note: --selection-pressure is not used by {cell.method} (only by {', '.join(takers)})",
              file=sys.stderr)

    artifacts = Path(args.artifacts)
    path = artifacts / "prepared" / f"{cell.dataset}.npz"
    if not path.exists():
        from .data import save_prepared
        path.parent.mkdir(parents=True, exist_ok=True)
        save_prepared(prepared, path)
    result = run_cell(cell, split, config, artifacts / "warmup", artifacts / "runs",
                      progress=not args.quiet)
    out = cell_dir(artifacts / "runs", cell, config.selection)
    if result["status"] != "ok":
        print(f"failed: {result['error']}", file=sys.stderr)
        return 1
    print(json.dumps({"cell": cell.label(), "best_epoch": result["best_epoch"], "test": result["test"]},
                     indent=2))
    print(f"curves and result written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
