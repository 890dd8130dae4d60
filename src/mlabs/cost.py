"""A rough time estimate of a grid before it runs, so a user knows whether they need Ray.

The estimate multiplies each pending cell's epochs by a per-epoch cost on one thread of a
2-core CPU: measured for the (data set, model) pairs in :data:`EPOCH_SECONDS`, and for other
pairs scaled from the model's emotions cost by ``(n_train * q)`` to the power 0.8. It is a
planning figure for a quiet machine, not a promise: other jobs on the same cores, or settings
other than the default profile's (a wider model, many more labels), change it. So it is checked
against what cells take (:func:`cell_training_seconds`, from a finished cell's timing sidecar): a
grid that resumes sets beside its estimate the pace of its finished cells of the same data sets
and models, and the report sums the cells' times against their estimate
(:mod:`mlabs.report.training_time`).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np

__all__ = ["EPOCH_SECONDS", "epoch_seconds", "training_shape", "estimate_seconds", "cell_training_seconds",
           "describe_estimate", "describe_elapsed"]

#: (data set, model) -> seconds per epoch on one thread (training and predicting the validation
#: half). C2AE and DELA on the 14 data sets, with the default profile's model settings:
#: ``python benchmarks/bench_models.py --params profiles/breadth/params.yaml --datasets <the 14>
#: --models c2ae dela --epochs 2 --threads 1 --predict`` (wall_s/epoch + wall_s/predict_val).
#: MPVAE, PACA and CLIF: earlier measurements (``benchmarks/bench_learning.py``,
#: ``benchmarks/bench_models.py``; docs/models.md).
EPOCH_SECONDS = {
    ("emotions", "c2ae"): 0.02, ("emotions", "dela"): 0.06,
    ("scene", "c2ae"): 0.09, ("scene", "dela"): 0.27,
    ("yeast", "c2ae"): 0.07, ("yeast", "dela"): 0.46,
    ("LLOG-F", "c2ae"): 0.09, ("LLOG-F", "dela"): 0.76,
    ("enron", "c2ae"): 0.1, ("enron", "dela"): 1.3,
    ("cal500", "c2ae"): 0.03, ("cal500", "dela"): 0.83,
    ("yahoo-Arts1", "c2ae"): 0.48, ("yahoo-Arts1", "dela"): 4.46,
    ("yahoo-Business1", "c2ae"): 0.64, ("yahoo-Business1", "dela"): 6.79,
    ("rcv1subset1", "c2ae"): 0.42, ("rcv1subset1", "dela"): 10.4,
    ("rcv1subset2", "c2ae"): 0.42, ("rcv1subset2", "dela"): 10.3,
    ("rcv1subset3", "c2ae"): 0.43, ("rcv1subset3", "dela"): 10.7,
    ("Corel5k", "c2ae"): 0.34, ("Corel5k", "dela"): 13.9,
    ("tmc2007-500", "c2ae"): 1.21, ("tmc2007-500", "dela"): 11.2,
    ("bibtex", "c2ae"): 0.81, ("bibtex", "dela"): 51.1,
    ("emotions", "mpvae"): 0.30, ("emotions", "paca"): 0.373, ("emotions", "clif"): 0.353,
    ("yeast", "mpvae"): 0.96, ("yeast", "paca"): 2.75, ("yeast", "clif"): 1.25,
    ("enron", "mpvae"): 1.42, ("enron", "paca"): 5.41, ("enron", "clif"): 1.79,
    ("Corel5k", "mpvae"): 10.3, ("Corel5k", "paca"): 134.7, ("Corel5k", "clif"): 22.6,
}
_EMOTIONS_SIZE = 473 * 6  # n_train * q of an emotions fold
_EXPONENT = 0.8


def epoch_seconds(dataset: str, model: str, n_train: int, n_labels: int) -> float:
    """Seconds per epoch of ``model`` on ``dataset`` (measured, else scaled from emotions)."""
    if (dataset, model) in EPOCH_SECONDS:
        return EPOCH_SECONDS[(dataset, model)]
    base = EPOCH_SECONDS.get(("emotions", model), 0.3)
    return base * (max(n_train * n_labels, 1) / _EMOTIONS_SIZE) ** _EXPONENT


def training_shape(n_samples: int, n_folds: int, n_labels: int) -> tuple[int, int]:
    """``(n_train, n_labels)`` of a data set's folds as the estimate counts them: every fold but the
    test fold."""
    return int(n_samples * (n_folds - 1) / n_folds), n_labels


def estimate_seconds(tasks: Iterable[tuple[str, str, int, int, int]], slots: int) -> float:
    """Wall seconds of ``(dataset, model, epochs, n_train, n_labels)`` tasks on ``slots`` slots: their
    total over the slots that have a task, and at least the longest task."""
    seconds = [epochs * epoch_seconds(ds, m, n, q) for ds, m, epochs, n, q in tasks]
    if not seconds:
        return 0.0
    return max(sum(seconds) / max(min(slots, len(seconds)), 1), max(seconds))


def cell_training_seconds(timing: Mapping, epochs: int, warmup_epochs: int) -> tuple[float, bool] | None:
    """Wall seconds of a cell's selection epochs, from its timing sidecar.

    Parameters
    ----------
    timing : mapping
        The sidecar (:func:`mlabs.results.load_timing`): ``train_seconds``, the wall time of
        epochs ``first_epoch`` to ``epochs`` of the cell's last run, and ``epoch_seconds``, the
        training pass of every epoch (kept across resumes).
    epochs, warmup_epochs : int
        The cell's epochs, warm-up included, and its warm-up epochs.

    Returns
    -------
    (float, bool) or None
        The seconds of all ``epochs - warmup_epochs`` selection epochs and whether the cell
        resumed (``first_epoch`` after the first selection epoch): a resumed cell's last run is
        scaled by the training-pass seconds of all its selection epochs over those of the run
        (by the count of epochs where ``epoch_seconds`` is incomplete). None for a sidecar that
        lacks what it takes or contradicts the cell (``first_epoch`` outside the selection epochs,
        negative or non-finite seconds).
    """
    try:
        seconds, first = float(timing["train_seconds"]), int(timing["first_epoch"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (warmup_epochs < first <= epochs and np.isfinite(seconds) and seconds >= 0):
        return None
    resumed = first > warmup_epochs + 1
    if not resumed:
        return seconds, False
    passes = np.asarray(timing.get("epoch_seconds") or [], dtype=float)
    ran, selecting = passes[first - 1:epochs], passes[warmup_epochs:epochs]
    if len(passes) >= epochs and np.isfinite(selecting).all() and ran.sum() > 0:
        return seconds * float(selecting.sum() / ran.sum()), True
    return seconds * (epochs - warmup_epochs) / (epochs - first + 1), True


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{math.ceil(seconds / 60)} min" if seconds >= 120 else f"{math.ceil(seconds)} s"


def describe_estimate(n_cells: int, n_warmups: int, n_done: int, seconds: float, slots: int,
                      executor: str, pace: tuple[int, float] | None = None, n_resuming: int = 0) -> str:
    """One line: what will be trained and roughly how long it takes; with ``pace`` (finished
    cells, measured / estimated), also how long at the pace those cells had where they were
    trained (their timing sidecars); ``n_resuming`` of the cells resume from a checkpoint (the
    estimate counts only the epochs they have left)."""
    where = (f"{slots} local slot{'s' if slots != 1 else ''}" if executor == "local"
             else "one slot (divide by the number of cells the Ray cluster runs at once)")
    resuming = f" ({n_resuming} resuming from a checkpoint)" if n_resuming else ""
    line = (f"grid: {n_cells} cells{resuming} and {n_warmups} warm-ups to train "
            f"({n_done} cell{'s' if n_done != 1 else ''} already finished); "
            f"roughly {_duration(seconds)} on {where} (mlabs.cost; a CPU estimate, for planning)")
    if pace is None:
        return line
    n, ratio = pace
    return (f"{line}; the {n} finished cell{'s' if n != 1 else ''} of these data sets and models took "
            f"{ratio:.2f}x their estimate where they were trained, which makes about {_duration(seconds * ratio)}")


def describe_elapsed(n_cells: int, n_warmups: int, seconds: float, estimated: float) -> str:
    """One line after a grid ran: what it trained, the wall time it took and the estimate printed
    before it, so that every run checks the estimate."""
    ratio = f" (took {seconds / estimated:.2f}x the estimate)" if estimated > 0 else ""
    return (f"grid: trained {n_cells} cells and {n_warmups} warm-ups in {_duration(seconds)}; "
            f"estimated roughly {_duration(estimated)}{ratio}")
