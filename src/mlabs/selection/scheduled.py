"""Shared machinery of the other batch-selection methods (``docs/selection.md``, "Other methods").

They all turn a per-sample score into probabilities with a rank or quantized-level rule under a
selection pressure that follows a schedule, and several keep a short history of predicted
probabilities. The warm-up, the epoch bookkeeping and exact resume come from
:class:`~mlabs.selection.base.EpochBatchSampler`, the drawing of B distinct samples per batch
from the :class:`~mlabs.selection.drawing.BatchDrawer` a sampler holds; a method only defines
its score (``_score``) and, for history-based ones, what ``update`` records.
"""

from __future__ import annotations

import math
import numbers

import torch

from ._validation import as_label_matrix, check_positive_int
from .base import EpochBatchSampler
from .drawing import BatchDrawer
from .probabilities import log_weights

_LN2 = math.log(2.0)


def check_pressure_at_least_one(value, name: str) -> float:
    """A selection pressure of a schedule: a number >= 1 (1 means uniform)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 1:
        raise ValueError(f"{name} must be a finite number >= 1 (1 means uniform selection), got {value!r}")
    return float(value)


def exponential_schedule(start: float, end: float, t: int, t0: int, t1: int) -> float:
    """``start * (end / start) ** ((t - t0) / (t1 - t0))``, constant outside ``[t0, t1]``.

    The selection-pressure schedule of Loshchilov & Hutter (baselines.md section 0).
    """
    if t1 <= t0 or t <= t0:
        return start
    if t >= t1:
        return end
    return start * (end / start) ** ((t - t0) / (t1 - t0))


def level_log_weights(score: torch.Tensor, log_se: float) -> torch.Tensor:
    """Quantized levels with step 1/N on the min-max normalised score, high score preferred.

    ``U = (s - min s) / (max s - min s)``, ``Q = clip(ceil((1 - U) N), 1, N)`` and
    ``p ~ exp(-log(s_e) Q / N)`` (the rule of Recency Bias, the uncertainty method and D2ACE),
    returned as log-weights with maximum 0. Equal scores (or s_e = 1) give the uniform distribution.
    """
    n = score.numel()
    lo, hi = score.min(), score.max()
    span = float(hi - lo)
    if log_se == 0.0 or not span > 0.0:
        return torch.zeros_like(score, dtype=torch.float64)
    u = (score.to(torch.float64) - lo) / span
    level = torch.ceil((1.0 - u) * n).clamp_(1, n)
    return (level - level.min()).mul_(-log_se / n)


def binary_entropy_bits(p: torch.Tensor) -> torch.Tensor:
    """``-p log2 p - (1 - p) log2 (1 - p)`` with ``0 log 0 = 0``."""
    p = p.clamp(0.0, 1.0)
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1.0 - p, 1.0 - p)) / _LN2


class PredictionWindow:
    """The last ``size`` predicted probability vectors of every sample (a per-sample ring buffer).

    Stored as a ``(size, N, q)`` float32 tensor with per-sample write positions and counts, so a
    batch is recorded with one scatter and the window is read in time order with one gather.
    """

    def __init__(self, size: int, n_samples: int, n_labels: int, device):
        self.size = check_positive_int(size, "window")
        self.values = torch.zeros((self.size, n_samples, n_labels), dtype=torch.float32, device=device)
        self.pos = torch.zeros(n_samples, dtype=torch.int64, device=device)     # next slot
        self.count = torch.zeros(n_samples, dtype=torch.int64, device=device)   # filled slots

    def push(self, idx: torch.Tensor, probs: torch.Tensor) -> None:
        slot = self.pos.index_select(0, idx)
        self.values[slot, idx] = probs.to(torch.float32)
        self.pos.index_put_((idx,), (slot + 1) % self.size)
        self.count.index_put_((idx,), (self.count.index_select(0, idx) + 1).clamp_(max=self.size))

    def ordered(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(values oldest-first, shape (size, N, q); validity mask, shape (size, N))."""
        w = self.size
        k = torch.arange(w, device=self.pos.device)
        slots = (self.pos[None, :] + k[:, None]) % w          # oldest first
        vals = torch.gather(self.values, 0, slots[:, :, None].expand(-1, -1, self.values.shape[2]))
        valid = k[:, None] >= (w - self.count)[None, :]
        return vals, valid

    def latest(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """The most recent prediction of every sample, or of ``idx`` (zeros where there is none)."""
        if idx is None:
            idx = torch.arange(self.pos.numel(), device=self.pos.device)
        slot = (self.pos.index_select(0, idx) - 1) % self.size
        return self.values[slot, idx]

    def uncertainty(self) -> torch.Tensor:
        """Per sample and label, ``1/2 mean |p_t - p_(t-1)| + 1/2 H_b(p_latest)`` (in bits): the
        prediction-uncertainty measure of the uncertainty method and D2ACE."""
        return 0.5 * self.mean_abs_change() + 0.5 * binary_entropy_bits(self.latest())

    def mean_abs_change(self) -> torch.Tensor:
        """Per label, the mean |p_t - p_(t-1)| over consecutive predictions in the window (0 if < 2)."""
        vals, valid = self.ordered()
        pair = (valid[1:] & valid[:-1]).to(vals.dtype)
        diff = (vals[1:] - vals[:-1]).abs_().mul_(pair[:, :, None]).sum(0)
        return diff / pair.sum(0).clamp(min=1.0)[:, None]

    def state(self) -> dict:
        return {"values": self.values.cpu().clone(), "pos": self.pos.cpu().clone(), "count": self.count.cpu().clone()}

    def load(self, state: dict) -> None:
        dev = self.pos.device
        if tuple(state["values"].shape) != tuple(self.values.shape):
            raise ValueError(f"state_dict history has shape {tuple(state['values'].shape)}, this sampler "
                             f"{tuple(self.values.shape)}; build the sampler with the same data and window")
        self.values = state["values"].to(dev).clone()
        self.pos = state["pos"].to(dev).clone()
        self.count = state["count"].to(dev).clone()


class ScheduledSampler(EpochBatchSampler):
    """Base of the other methods: a score, a probability rule and an exponential s_e schedule.

    The selection pressure decays (or grows) exponentially from ``selection_pressure`` at the
    first selection epoch (``warmup_epochs``) to ``selection_pressure_end`` at the last epoch
    (``epochs - 1``); ``selection_pressure_end=None`` keeps it constant. At the start of every
    selection epoch the score gives the distribution of that epoch, from which a
    :class:`BatchDrawer` draws the batches.
    """

    #: "rank": exact descending rank (Loshchilov & Hutter); "level": step 1/N on the min-max score
    _rule = "level"
    # what the training protocol gives these samplers (:class:`EpochBatchSampler`): their own s_e
    # and its schedule over ``epochs``, from their options; each method declares its ``options``
    needs_epochs = True

    def __init__(self, labels, batch_size: int, *, selection_pressure: float, selection_pressure_end,
                 warmup_epochs: int = 3, epochs: int = 100, window: int | None = None, seed: int = 0,
                 device="cpu"):
        device = torch.device(device)
        y = as_label_matrix(labels, device)
        super().__init__(y.shape[0], batch_size, seed, device, warmup_epochs=warmup_epochs)
        self.labels = y
        self.n_labels = y.shape[1]
        self.selection_pressure = check_pressure_at_least_one(selection_pressure, "selection_pressure")
        self.selection_pressure_end = (self.selection_pressure if selection_pressure_end is None else
                                       check_pressure_at_least_one(selection_pressure_end, "selection_pressure_end"))
        self.epochs = check_positive_int(epochs, "epochs")
        self._loss = torch.zeros(self.n_samples, dtype=torch.float64, device=device)
        self._window = (None if window is None else
                        PredictionWindow(window, self.n_samples, self.n_labels, self.device))
        self._drawer = BatchDrawer(self.n_samples, self.batch_size, self._generator, device)

    # -- public ----------------------------------------------------------------------------------
    def pressure(self, epoch: int | None = None) -> float:
        """The selection pressure in force at ``epoch`` (default: the current epoch)."""
        t = self._epoch if epoch is None else epoch
        return exponential_schedule(self.selection_pressure, self.selection_pressure_end, t,
                                    self.warmup_epochs, self.epochs - 1)

    def update(self, indices, per_sample_loss, probabilities=None) -> None:
        """Record the losses (and, for history-based methods, predicted probabilities) of a batch.

        Parameters
        ----------
        indices : sequence of int or LongTensor, shape (n,)
        per_sample_loss : array-like or torch.Tensor, shape (n,)
            Finite, non-negative per-sample losses.
        probabilities : torch.Tensor, shape (n, q), optional
            Predicted label probabilities of those samples (e.g. ``sigmoid(logits)`` of the
            training forward, detached). Required by the methods that score predictions.
        """
        idx, loss = self._check_update(indices, per_sample_loss)
        self._loss[idx] = loss
        if self.needs_predictions:
            probs = self._check_probabilities(probabilities, idx)
            self._record(idx, probs)

    @property
    def loss_table(self) -> torch.Tensor:
        """Latest per-sample loss (float64, length N; do not modify in place)."""
        return self._loss

    def probabilities(self) -> torch.Tensor:
        """The selection distribution (length N, float64, sums to 1): uniform during warm-up, else
        that of the epoch in progress, or between epochs the one the next epoch would start with."""
        if self.in_warmup:
            return super().probabilities()
        refresh = self._drawer.refresh
        p = torch.exp(refresh.log_weights() if refresh is not None else self._log_weights())
        return p.div_(p.sum())

    def state_dict(self) -> dict:
        state = super().state_dict()
        refresh = self._drawer.refresh
        state.update(loss_table=self._loss.cpu().clone(),
                     log_weights=None if refresh is None else refresh.log_weights().cpu().clone(),
                     history=None if self._window is None else self._window.state(),
                     extra=self._extra_state())
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._loss = state["loss_table"].to(device=self.device, dtype=torch.float64).clone()
        self._drawer.clear()
        if state.get("log_weights") is not None:
            self._drawer.set_log_weights(state["log_weights"].to(device=self.device, dtype=torch.float64).clone(),
                                         build_table=False)
        if self._window is not None:
            self._window.load(state["history"])
        self._load_extra_state(state.get("extra") or {})

    # -- for subclasses --------------------------------------------------------------------------
    def _score(self) -> torch.Tensor:
        raise NotImplementedError

    def _record(self, idx: torch.Tensor, probs: torch.Tensor) -> None:
        self._window.push(idx, probs)

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, extra: dict) -> None:
        pass

    def _selection_plan(self, remaining: int) -> tuple[torch.Tensor, list[int]]:
        self._drawer.set_log_weights(self._log_weights())
        return self._drawer.plan(remaining)

    def _end_epoch(self) -> None:
        super()._end_epoch()
        self._drawer.clear()

    def _log_weights(self) -> torch.Tensor:
        log_se = math.log(self.pressure())
        score = self._score().to(torch.float64)
        if self._rule == "rank":
            return log_weights(score, log_se, False) if log_se > 0 else torch.zeros_like(score)
        return level_log_weights(score, log_se)

    def _check_probabilities(self, probabilities, idx: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        if probabilities is None:
            raise ValueError(f"{name}.update needs probabilities=: the (n, q) predicted label probabilities "
                             "of the batch (e.g. torch.sigmoid(logits).detach())")
        p = probabilities.detach() if isinstance(probabilities, torch.Tensor) else torch.as_tensor(probabilities)
        if p.shape != (idx.numel(), self.n_labels):
            raise ValueError(f"probabilities must have shape (n, q) = ({idx.numel()}, {self.n_labels}), "
                             f"got {tuple(p.shape)}")
        p = p.to(device=self.device, dtype=torch.float32)
        if not bool(((p >= 0) & (p <= 1)).all()):  # also catches NaN
            raise ValueError("probabilities must lie in [0, 1] (no NaN); pass sigmoid outputs, not logits")
        return p

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_samples={self.n_samples}, batch_size={self.batch_size}, "
                f"selection_pressure={self.selection_pressure:g}->{self.selection_pressure_end:g}, "
                f"warmup_epochs={self.warmup_epochs}, epochs={self.epochs}, seed={self.seed})")
