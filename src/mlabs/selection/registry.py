"""Batch samplers by name, for configuration files and the training protocol."""

from __future__ import annotations

import inspect

from .active_bias import ActiveBiasSampler
from .adaptive import AdaptiveBatchSampler
from .balanced import BalancedBatchSampler
from .chain import ChainBatchSampler
from .d2ace import D2ACEBatchSampler
from .online_batch import OnlineBatchSampler
from .random import RandomBatchSampler
from .recency_bias import RecencyBiasSampler
from .uncertainty import UncertaintyBatchSampler

__all__ = ["SAMPLERS", "make_sampler", "needs_predictions"]

SAMPLERS: dict[str, type] = {
    "random": RandomBatchSampler,
    "adaptive": AdaptiveBatchSampler,
    "chain": ChainBatchSampler,
    "online_batch": OnlineBatchSampler,
    "active_bias": ActiveBiasSampler,
    "recency_bias": RecencyBiasSampler,
    "balanced": BalancedBatchSampler,
    "uncertainty": UncertaintyBatchSampler,
    "d2ace": D2ACEBatchSampler,
}


def needs_predictions(method: str) -> bool:
    """Whether ``method``'s sampler scores predicted probabilities (``update(..., probabilities=)``)."""
    _check_method(method)
    return bool(getattr(SAMPLERS[method], "needs_predictions", False))


def _check_method(method: str) -> None:
    if method not in SAMPLERS:
        raise ValueError(f"unknown batch-selection method {method!r}; choose one of {sorted(SAMPLERS)}")


def _accepted(cls: type) -> set[str]:
    """Keyword arguments of ``cls``: its ``__init__``'s, and its parents' where it forwards ``**options``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names - {"self"}


def make_sampler(method: str, labels, batch_size: int, *, features=None, selection_pressure=None,
                 warmup_epochs: int = 3, epochs: int = 100, seed: int = 0, device="cpu", **options):
    """Build the sampler of ``method`` with the options it accepts.

    Parameters
    ----------
    method : str
        A key of :data:`SAMPLERS`.
    labels : array-like, shape (N, q)
        0/1 training labels.
    batch_size : int
    features : array-like, optional
        Scaled training features (imbalance weights, neighbourhoods); ignored by methods that do
        not use them.
    selection_pressure : float, optional
        None: the method's own default.
    warmup_epochs, epochs, seed, device
        Passed to every sampler that takes them.
    **options
        Method-specific options; an option the method does not take raises ``ValueError``.
    """
    _check_method(method)
    cls = SAMPLERS[method]
    if cls is RandomBatchSampler:
        if options:
            raise ValueError(f"method 'random' takes no options, got {sorted(options)}")
        n = labels.shape[0] if hasattr(labels, "shape") else len(labels)
        return RandomBatchSampler(n, batch_size, seed=seed, device=device)
    accepted = _accepted(cls)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"method {method!r} does not take the option(s) {unknown}; it takes "
                         f"{sorted(accepted - {'labels', 'batch_size'})}")
    kw = dict(options, warmup_epochs=warmup_epochs, epochs=epochs, seed=seed, device=device,
              features=features)
    if selection_pressure is not None:
        kw["selection_pressure"] = selection_pressure
    return cls(labels, batch_size, **{k: v for k, v in kw.items() if k in accepted})
