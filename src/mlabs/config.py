"""Read ``params.yaml`` into training settings and grid cells.

``params.yaml`` is grouped by pipeline stage (``data``, ``train``,
``selection``, ``models``, ``sensitivity``, ``grid``); this
module is the one place that knows its layout, so notebooks and the CLI stay
thin.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml

from .params_schema import check_params, check_values
# torch-free: the prepare stage reads params without importing torch, the models or the samplers
from .settings import Cell, TrainConfig

__all__ = ["load_params", "train_config", "train_cells", "sensitivity_cells", "methods", "methods_for",
           "grid_options"]


def load_params(path: str | Path = "params.yaml") -> dict:
    """Load ``params.yaml`` (a clear error if it is missing or malformed)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run from the project root or pass its path")
    with open(path) as fh:
        params = yaml.safe_load(fh)
    check_params(params or {}, source=str(path))  # an unknown section or key stops the run before any work
    if not isinstance(params, dict) or "train" not in params:
        raise ValueError(f"{path} has no 'train' section; see docs/pipeline.md for its layout")
    check_values(params, source=str(path))   # types and ranges, naming the key, before any work
    return params


def train_config(params: dict, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` described by ``params`` (keyword overrides win)."""
    t = params["train"]
    kw = dict(epochs=t["epochs"], warmup_epochs=t["warmup_epochs"], lr=t["lr"],
              weight_decay=t["weight_decay"], threshold=t.get("threshold", 0.5),
              device=t.get("device", "cpu"), deterministic=t.get("deterministic", True),
              model_params={k: dict(v or {}) for k, v in (params.get("models") or {}).items()},
              model_lr=dict(t.get("model_lr") or {}),
              selection=dict(params.get("selection") or {}))
    kw.update(overrides)
    return TrainConfig(**kw)


def methods(params: dict) -> list[str]:
    """The batch-selection methods the profile runs: ``train.methods``, then those that only
    ``train.methods_by_model`` names."""
    t = params["train"]
    names = list(t.get("methods", ["random", "adaptive", "chain"]))
    for own in _methods_by_model(t).values():
        names += [m for m in own if m not in names]
    return names


def _methods_by_model(t: dict) -> dict:
    """``train.methods_by_model``, checked: a mapping of models of ``train.models`` to lists."""
    by_model = t.get("methods_by_model") or {}
    if not isinstance(by_model, dict) or any(not isinstance(v, list) for v in by_model.values()):
        raise ValueError("train.methods_by_model must map a model name to a list of methods, "
                         f"e.g. {{dela: [random, adaptive]}}; got {by_model!r}")
    unknown = sorted(set(by_model) - set(t["models"]))
    if unknown:
        raise ValueError(f"train.methods_by_model names {unknown}, not in train.models {t['models']}")
    return by_model


def methods_for(params: dict, model: str) -> list[str]:
    """The methods the profile runs with ``model``: its entry of ``train.methods_by_model``
    (e.g. chain with C2AE only), else ``train.methods``."""
    t = params["train"]
    return list(_methods_by_model(t).get(model, t.get("methods", ["random", "adaptive", "chain"])))


def train_cells(params: dict, dataset: str | None = None, model: str | None = None) -> list[Cell]:
    """The main grid: data sets x models x methods x folds x seeds (optionally one slice).

    A method may be a named variant of ``selection``; a variant that fixes its own s_e gets it in
    place of ``train.selection_pressure``. Unknown methods are refused here, before any training
    (a loss-weighting method paired with a model whose objective does not decompose per sample is
    refused by :func:`mlabs.grid.run_grid` and :func:`mlabs.training.train_cell`, which know the
    models).
    """
    t = params["train"]
    config = train_config(params)
    datasets = [dataset] if dataset else params["data"]["datasets"]
    models = [model] if model else t["models"]
    s_e = {m: config.variant_selection_pressure(m) for m in methods(params)}  # also checks the names
    cells = []
    for ds, m in itertools.product(datasets, models):
        for method, fold, seed in itertools.product(methods_for(params, m), t["folds"], t["seeds"]):
            se = s_e[method] if s_e[method] is not None else float(t["selection_pressure"])
            cells.append(Cell(ds, m, method, int(fold), int(seed), se, int(t["batch_size"])))
    return cells


def sensitivity_cells(params: dict) -> list[Cell]:
    """The sensitivity grid: s_e values and batch sizes on the profile's data sets.

    Varying s_e uses the adaptive method at the default batch size; varying
    the batch size runs random and adaptive at the default s_e (the warm-up is
    re-trained for each batch size, since it depends on it).
    """
    t, s = params["train"], params["sensitivity"]
    cells = []
    for ds, m, fold, seed in itertools.product(s["datasets"], s["models"], s["folds"], t["seeds"]):
        for se in s["selection_pressures"]:
            cells.append(Cell(ds, m, "adaptive", int(fold), int(seed), float(se), int(t["batch_size"])))
        for bs in s["batch_sizes"]:
            for method in ("random", "adaptive"):
                cells.append(Cell(ds, m, method, int(fold), int(seed),
                                  float(t["selection_pressure"]), int(bs)))
    return list(dict.fromkeys(cells))  # drop duplicates, keep order


def grid_options(params: dict) -> dict:
    """Keyword arguments of :func:`mlabs.grid.run_grid` from the ``grid`` section."""
    g = params.get("grid") or {}
    return {"executor": g.get("executor", "local"), "n_jobs": g.get("n_jobs"), "address": g.get("address"),
            "cpus_per_cell": g.get("cpus_per_cell", 1), "gpus_per_cell": g.get("gpus_per_cell", 0)}
