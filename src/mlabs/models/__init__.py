"""The five deep multi-label models behind one interface.

>>> from mlabs.models import build
>>> model = build("dela", n_features=72, n_labels=6)            # doctest: +SKIP
>>> out = model.training_step(x, y)                               # doctest: +SKIP
>>> out.loss.backward(); sampler.update(idx, out.per_sample_loss)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from .base import MultiLabelModel, StepOutput, as_dense_tensor, per_sample_bce

__all__ = ["MODEL_NAMES", "MultiLabelModel", "StepOutput", "as_dense_tensor", "build",
           "default_params", "model_class", "per_sample_bce", "register"]

#: registry name -> module that defines (and registers) the model
_MODULES = {"c2ae": "c2ae", "mpvae": "mpvae", "paca": "paca", "clif": "clif", "dela": "dela"}
MODEL_NAMES = tuple(_MODULES)
_REGISTRY: dict[str, type[MultiLabelModel]] = {}


def register(name: str) -> Callable[[type[MultiLabelModel]], type[MultiLabelModel]]:
    """Class decorator that makes a model buildable by ``name``."""
    def deco(cls: type[MultiLabelModel]) -> type[MultiLabelModel]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return deco


def _model_class(name: str) -> type[MultiLabelModel]:
    key = str(name).lower()
    if key not in _MODULES:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    if key not in _REGISTRY:
        importlib.import_module(f"{__name__}.{_MODULES[key]}")
    return _REGISTRY[key]


def model_class(name: str) -> type[MultiLabelModel]:
    """The class of model ``name`` (its capabilities, e.g. ``per_sample_objective_supported``)."""
    return _model_class(name)


def default_params(name: str) -> dict[str, Any]:
    """The model's own hyper-parameters and their published defaults."""
    sig = inspect.signature(_model_class(name).__init__)
    return {k: p.default for k, p in sig.parameters.items()
            if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
            and k != "train_labels"}


def build(name: str, n_features: int, n_labels: int, *, train_labels: Any = None,
          **params: Any) -> MultiLabelModel:
    """Build model ``name`` for ``n_features`` inputs and ``n_labels`` labels.

    Parameters
    ----------
    name : {"c2ae", "mpvae", "paca", "clif", "dela"}
    n_features, n_labels : int
    **params
        The model's hyper-parameters (see :func:`default_params`). Models that
        need the label co-occurrence graph (CLIF) require ``train_labels``.
    train_labels : array-like of shape (n_train, n_labels), optional
        The 0/1 label matrix of the training part of the fold. Passed only to
        models whose constructor takes it, so callers can always supply it.
    """
    cls = _model_class(name)
    known = set(inspect.signature(cls.__init__).parameters) - {"self", "n_features", "n_labels"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise TypeError(f"model {name!r} has no parameter(s) {unknown}; it accepts {sorted(known)}")
    if "train_labels" in known:
        params["train_labels"] = train_labels
    return cls(n_features, n_labels, **params)
