"""A rough time estimate of a grid before it runs, so a user knows whether they need Ray.

The estimate multiplies each pending cell's epochs by a per-epoch cost on one thread of a
2-core CPU: measured for the (data set, model) pairs in :data:`EPOCH_SECONDS`
(``benchmarks/bench_learning.py`` and ``benchmarks/bench_models.py``, docs/models.md), and for
other pairs scaled from the model's emotions cost by ``(n_train * q)`` to the power 0.8 (fitted
to the measured pairs within about a factor of two). It is a planning figure, not a promise:
settings other than the default profile's (a wider model, many more labels) change it.
"""

from __future__ import annotations

import math
from typing import Iterable

__all__ = ["EPOCH_SECONDS", "epoch_seconds", "estimate_seconds", "describe_estimate"]

#: (data set, model) -> seconds per epoch on one thread, evaluation included
EPOCH_SECONDS = {
    ("emotions", "c2ae"): 0.032, ("emotions", "mpvae"): 0.30, ("emotions", "paca"): 0.373,
    ("emotions", "clif"): 0.353, ("emotions", "dela"): 0.144,
    ("yeast", "c2ae"): 0.27, ("yeast", "mpvae"): 0.96, ("yeast", "paca"): 2.75,
    ("yeast", "clif"): 1.25, ("yeast", "dela"): 0.94,
    ("enron", "c2ae"): 0.39, ("enron", "mpvae"): 1.42, ("enron", "paca"): 5.41,
    ("enron", "clif"): 1.79, ("enron", "dela"): 1.18,
    ("Corel5k", "c2ae"): 1.13, ("Corel5k", "mpvae"): 10.3, ("Corel5k", "paca"): 134.7,
    ("Corel5k", "clif"): 22.6, ("Corel5k", "dela"): 14.7,
}
_EMOTIONS_SIZE = 473 * 6  # n_train * q of an emotions fold
_EXPONENT = 0.8


def epoch_seconds(dataset: str, model: str, n_train: int, n_labels: int) -> float:
    """Seconds per epoch of ``model`` on ``dataset`` (measured, else scaled from emotions)."""
    if (dataset, model) in EPOCH_SECONDS:
        return EPOCH_SECONDS[(dataset, model)]
    base = EPOCH_SECONDS.get(("emotions", model), 0.3)
    return base * (max(n_train * n_labels, 1) / _EMOTIONS_SIZE) ** _EXPONENT


def estimate_seconds(tasks: Iterable[tuple[str, str, int, int, int]], slots: int) -> float:
    """Wall seconds of ``(dataset, model, epochs, n_train, n_labels)`` tasks on ``slots`` slots."""
    total = sum(epochs * epoch_seconds(ds, m, n, q) for ds, m, epochs, n, q in tasks)
    return total / max(slots, 1)


def describe_estimate(n_cells: int, n_warmups: int, n_done: int, seconds: float, slots: int,
                      executor: str) -> str:
    """One line: what will be trained and roughly how long it takes."""
    if seconds >= 3600:
        when = f"{seconds / 3600:.1f} h"
    else:
        when = f"{math.ceil(seconds / 60)} min"
    where = (f"{slots} local slot{'s' if slots != 1 else ''}" if executor == "local"
             else "one slot (divide by the number of cells the Ray cluster runs at once)")
    return (f"grid: {n_cells} cells and {n_warmups} warm-ups to train ({n_done} cells already finished); "
            f"roughly {when} on {where} (mlabs.cost; a CPU estimate, for planning)")
