"""Schedules over the epochs of a run: tiny callables ``schedule(epoch) -> value``.

The other batch-selection methods anneal their selection pressure exponentially (Loshchilov &
Hutter, *Online Batch Selection for Faster Training of Neural Networks*, arXiv 1511.06343); D2ACE also moves its mixture weight linearly.
"""

from __future__ import annotations

import math
import numbers
from decimal import Decimal, localcontext

__all__ = ["ExponentialSchedule", "LinearSchedule", "check_pressure_at_least_one"]


def check_pressure_at_least_one(value, name: str) -> float:
    """A selection pressure of a schedule: a number >= 1 (1 means uniform)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 1:
        raise ValueError(f"{name} must be a finite number >= 1 (1 means uniform selection), got {value!r}")
    return float(value)


class ExponentialSchedule:
    """``start * (end / start) ** ((t - first) / (last - first))``, constant outside ``[first, last]``.

    Parameters
    ----------
    start, end : float
        Positive values at epochs ``first`` and ``last``.
    first, last : int
        The epochs between which the value moves (``last <= first``: ``start`` throughout).
    """

    def __init__(self, start: float, end: float, first: int, last: int):
        if not (float(start) > 0 and float(end) > 0):
            raise ValueError(f"an exponential schedule needs positive values, got {start!r} -> {end!r}")
        self.start, self.end = float(start), float(end)
        self.first, self.last = first, last

    def __call__(self, epoch: float) -> float:
        if self.last <= self.first or epoch <= self.first:
            return self.start
        if epoch >= self.last:
            return self.end
        # in decimal arithmetic: the C library's pow may differ in the last bit between its FMA
        # and plain builds, and the pressure sets the draws (docs/selection.md)
        with localcontext() as ctx:
            ctx.prec = 40
            t = Decimal(float(epoch) - self.first) / Decimal(self.last - self.first)
            return float(Decimal(self.start) * ((Decimal(self.end) / Decimal(self.start)).ln() * t).exp())

    def __repr__(self) -> str:
        return f"ExponentialSchedule({self.start:g} -> {self.end:g}, epochs {self.first}..{self.last})"


class LinearSchedule:
    """``start + (end - start) * (t - first) / (last - first)``, constant outside ``[first, last]``.

    ``last`` may be fractional (a share of the run). With ``last <= first`` it gives ``end``
    throughout (the ramp is over before it starts), where :class:`ExponentialSchedule` keeps
    ``start`` (no selection epoch to anneal over); both are D2ACE's and Loshchilov & Hutter's
    conventions for a run too short for their schedules.
    """

    def __init__(self, start: float, end: float, first: float, last: float):
        self.start, self.end = float(start), float(end)
        self.first, self.last = first, last

    def __call__(self, epoch: float) -> float:
        frac = 1.0 if self.last <= self.first else min(max((epoch - self.first) / (self.last - self.first), 0.0), 1.0)
        return self.start + (self.end - self.start) * frac

    def __repr__(self) -> str:
        return f"LinearSchedule({self.start:g} -> {self.end:g}, epochs {self.first:g}..{self.last:g})"
