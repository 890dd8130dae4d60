"""Batch samplers by name, for configuration files and the training protocol."""

from __future__ import annotations

from .active_bias import ActiveBiasSampler
from .adaptive import AdaptiveBatchSampler
from .balanced import BalancedBatchSampler
from .chain import ChainBatchSampler
import difflib
from collections.abc import Mapping

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


def closest(name: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the valid name closest to ``name``, or ``""``."""
    match = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.0)
    return f" (did you mean {match[0]!r}?)" if match else ""


def resolve_method(name: str, selection: Mapping | None = None) -> tuple[str, dict]:
    """The base method and resolved sampler options of a method or variant name.

    A *variant* is an entry of ``selection`` (``params.yaml``) with a ``method`` key: a name for a
    base method of :data:`SAMPLERS` plus options, e.g. ``hard_only: {method: adaptive, score: loss}``.
    Its options are the base method's entry of ``selection`` updated by its own; a variant of a
    method that takes the cell's s_e may fix its own (``selection_pressure``). A base method
    resolves to itself and its entry.

    Raises
    ------
    ValueError
        An unknown name, base method or option (one line naming the closest valid name).
    """
    selection = selection or {}
    entry = selection.get(name)
    if isinstance(entry, Mapping) and "method" in entry:
        if name in SAMPLERS:
            raise ValueError(f"selection.{name}: a base method's entry cannot name another method; "
                             f"give the variant its own name")
        base = entry["method"]
        if base not in SAMPLERS:
            raise ValueError(f"selection.{name}: unknown base method {base!r}{closest(base, SAMPLERS)}")
        own = {k: v for k, v in entry.items() if k != "method"}
        allowed = set(sampler_class(base).options)
        if sampler_class(base).uses_selection_pressure:
            allowed.add("selection_pressure")   # a variant may fix the s_e its cells use
        for key in own:
            if key not in allowed:
                raise ValueError(f"selection.{name}: {base} takes no option {key!r}{closest(key, allowed)}")
        return base, {**dict(selection.get(base) or {}), **own}
    if name not in SAMPLERS:
        variants = [k for k, v in selection.items() if isinstance(v, Mapping) and "method" in v]
        raise ValueError(f"unknown batch-selection method or variant {name!r}"
                         f"{closest(name, [*SAMPLERS, *variants])}; variants are entries of params.yaml's "
                         f"selection section with a 'method' key")
    return name, dict(entry or {})


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
