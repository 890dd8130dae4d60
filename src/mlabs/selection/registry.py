"""Batch samplers by name, for configuration files and the training protocol."""

from __future__ import annotations

from .active_bias import ActiveBiasSampler
from .adaptive import AdaptiveBatchSampler
from .balanced import BalancedBatchSampler
from .chain import ChainBatchSampler
from collections.abc import Mapping

from ..settings import closest, resolve_method
from .d2ace import D2ACEBatchSampler
from .infobatch import InfoBatchSampler
from .online_batch import OnlineBatchSampler
from .random import RandomBatchSampler
from .recency_bias import RecencyBiasSampler
from .reweight import ReweightSampler
from .uncertainty import UncertaintyBatchSampler

__all__ = ["SAMPLERS", "sampler_class", "make_sampler", "needs_predictions", "uses_selection_pressure",
           "method_options", "resolve_method", "closest"]

#: every batch-selection method by its ``params.yaml`` name; a new method adds its class here. What
#: the training protocol gives a sampler is declared by its class (see :class:`EpochBatchSampler`):
#: ``options`` (the keys of ``selection.<method>``), ``uses_selection_pressure`` (the cell's s_e),
#: ``needs_features``, ``needs_predictions``, ``needs_epochs`` (a schedule over the run),
#: ``has_warmup`` and ``takes_labels`` (else the number of samples).
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
    "reweight": ReweightSampler,
    "infobatch": InfoBatchSampler,
}


def sampler_class(method: str) -> type:
    """The sampler class of ``method`` (a clear error for an unknown name)."""
    if method not in SAMPLERS:
        raise ValueError(f"unknown batch-selection method {method!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[method]


def needs_predictions(method: str) -> bool:
    """Whether ``method``'s sampler scores predicted probabilities (``update(..., probabilities=)``)."""
    return sampler_class(method).needs_predictions


def uses_selection_pressure(method: str, selection: Mapping | None = None) -> bool:
    """Whether ``method``'s sampler takes the cell's selection pressure s_e (the paper's s_e grid);
    the other selecting methods take theirs, and its schedule, from their options. A variant
    (``selection``: ``params.yaml``'s section, see :func:`resolve_method`) answers as its base."""
    return sampler_class(resolve_method(method, selection)[0]).uses_selection_pressure


def method_options(method: str) -> tuple[str, ...]:
    """The options ``selection.<method>`` of ``params.yaml`` may set for ``method``."""
    return sampler_class(method).options


def make_sampler(method: str, labels, batch_size: int, *, features=None, selection_pressure=None,
                 warmup_epochs: int = 3, epochs: int = 100, seed: int = 0, device="cpu", **options):
    """Build the sampler of ``method`` with what its class declares it takes.

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
        s_e, for every method that takes one (over its option; None: the option, else the
        method's default).
    warmup_epochs, epochs, seed, device
        Passed to every sampler that takes them.
    **options
        Method-specific options (:func:`method_options`); another option raises ``ValueError``.
    """
    cls = sampler_class(method)
    unknown = sorted(set(options) - set(cls.options))
    if unknown:
        raise ValueError(f"method {method!r} does not take the option(s) {unknown}; it takes {sorted(cls.options)}")
    kw = dict(options, seed=seed, device=device)
    if cls.has_warmup:
        kw["warmup_epochs"] = warmup_epochs
    if cls.needs_epochs:
        kw["epochs"] = epochs
    if cls.needs_features:
        kw["features"] = features
    if selection_pressure is not None and (cls.uses_selection_pressure or "selection_pressure" in cls.options):
        kw["selection_pressure"] = selection_pressure
    if cls.takes_labels:
        return cls(labels, batch_size, **kw)
    n = labels.shape[0] if hasattr(labels, "shape") else len(labels)
    return cls(n, batch_size, **kw)
