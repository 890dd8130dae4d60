"""How the report compares methods: their order, each metric's direction and its tie margin.

Every table, test and figure shows the methods in the order of :func:`method_order` and compares
values in the metric's direction (:func:`higher_is_better`); a difference within
:func:`tie_margin` is a tie.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from ..convergence import CONVERGENCE_METRICS
from ..metrics import HIGHER_IS_BETTER
from ..selection.registry import SAMPLERS

__all__ = ["BASELINE", "METHOD_ORDER", "PLACEHOLDER_PREFIX", "TIE_MARGIN", "higher_is_better", "method_order", "tie_margin"]

#: The order of the methods in tables and the colours of figures: the registry's. Known methods
#: come first, in this order; any other method follows alphabetically.
METHOD_ORDER = tuple(SAMPLERS)
#: the method every other is compared with (the paper's baseline: shuffled batches)
BASELINE = "random"
#: every value the report compares -> whether higher is better
_DIRECTION = {**HIGHER_IS_BETTER, **CONVERGENCE_METRICS}
#: how a placeholder figure (one that says why it could not be drawn) marks its PNG's description
PLACEHOLDER_PREFIX = "mlabs placeholder: "
#: a difference up to this is a tie (metrics in [0, 1]); epochs to 95 % use 1 epoch
TIE_MARGIN = 0.005


def tie_margin(metric: str) -> float:
    """The largest difference of ``metric`` that still counts as a tie."""
    return 1.0 if metric == "epochs_to_95" else TIE_MARGIN


def higher_is_better(metric: str) -> bool:
    """Whether a higher value of ``metric`` is better.

    Raises
    ------
    KeyError
        For a value the report does not compare (neither a metric of
        :data:`mlabs.metrics.HIGHER_IS_BETTER` nor a convergence metric).
    """
    if metric not in _DIRECTION:
        raise KeyError(f"unknown metric {metric!r}; known: {sorted(_DIRECTION)}")
    return _DIRECTION[metric]


def method_order(present: Iterable[str], methods: Sequence[str] | None = None) -> list[str]:
    """Methods to show: ``methods`` (in its order) restricted to those present, else all present."""
    present = set(present)
    if methods is not None:
        return [m for m in dict.fromkeys(methods) if m in present]
    known = [m for m in METHOD_ORDER if m in present]
    return known + sorted(present - set(known))
