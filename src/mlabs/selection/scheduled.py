"""The sampler of the other batch-selection methods: a scoring rule under a pressure schedule.

Every other method (``docs/selection.md``, "Other methods") draws each selection epoch from
log-weights that a *scoring rule* computes from what the sampler has observed (the latest
per-sample losses and, for history-based rules, a window of recent predictions), at a selection
pressure that follows an :class:`~mlabs.selection.schedules.ExponentialSchedule`. The sampler
holds the rule, the schedule, the observations and a
:class:`~mlabs.selection.drawing.BatchDrawer`; the warm-up, the epoch bookkeeping and exact resume
come from :class:`~mlabs.selection.base.EpochBatchSampler`. A method is a scoring rule plus the
constructor that validates its options (e.g. :mod:`mlabs.selection.active_bias`).
"""

from __future__ import annotations


import torch

from ._validation import as_label_matrix, check_positive_int
from .base import EpochBatchSampler
from .drawing import BatchDrawer
from .predictions import PredictionWindow
from .probabilities import exact_log, exact_sum
from .schedules import ExponentialSchedule, check_pressure_at_least_one

__all__ = ["ScoreRule", "ScheduledSampler"]


class ScoreRule:
    """How a :class:`ScheduledSampler` turns its observations into an epoch's log-weights.

    A rule implements :meth:`weights` (or only :meth:`log_weights`, whose ``exp`` may then differ
    in the last bit between machines: the built-in rules give their weights from the
    machine-independent tables of :mod:`~mlabs.selection.probabilities`) and says whether it reads recent predictions
    (``needs_window``: the sampler then keeps a :class:`PredictionWindow` and ``update`` requires
    ``probabilities``). A rule with state of its own, beyond the sampler's loss table and window,
    also implements :meth:`observe` and the state methods, so that the sampler's ``state_dict``
    covers it.
    """

    #: the rule reads the window of recent predictions
    needs_window = False

    def log_weights(self, loss: torch.Tensor, window: PredictionWindow | None, epoch: int,
                    log_se: float) -> torch.Tensor:
        """The selection distribution of epoch ``epoch`` as unnormalised log-weights.

        Parameters
        ----------
        loss : torch.Tensor, shape (N,)
            Latest per-sample loss (float64).
        window : PredictionWindow or None
            Recent predictions (None unless :attr:`needs_window`).
        epoch : int
            The selection epoch about to be drawn (for rules that change over the run).
        log_se : float
            ``log`` of the selection pressure in force (0: uniform).

        Returns
        -------
        torch.Tensor, shape (N,)
            float64 log-weights, maximum 0.
        """
        raise NotImplementedError

    def weights(self, loss: torch.Tensor, window: PredictionWindow | None, epoch: int,
                log_se: float) -> torch.Tensor:
        """``exp`` of :meth:`log_weights` (float64, positive): what the batches are drawn from."""
        logw = self.log_weights(loss, window, epoch, log_se)
        return torch.exp(logw - logw.max())

    def observe(self, idx: torch.Tensor, probs: torch.Tensor, window: PredictionWindow) -> None:
        """See the predictions ``probs`` (n, q) of samples ``idx`` before they enter ``window``."""

    def state_dict(self) -> dict:
        """The rule's own state (tensors on CPU); empty for a stateless rule."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""


class ScheduledSampler(EpochBatchSampler):
    """Batches drawn from the distribution a scoring rule gives under an annealed selection pressure.

    The selection pressure moves exponentially from ``selection_pressure`` at the first selection
    epoch (``warmup_epochs``) to ``selection_pressure_end`` at the last epoch (``epochs - 1``);
    ``selection_pressure_end=None`` keeps it constant. At the start of every selection epoch
    ``score_rule.weights`` gives the distribution of that epoch, from which the batches of B
    distinct samples are drawn.

    Parameters
    ----------
    labels : array-like, shape (N, q)
        0/1 training labels.
    batch_size : int
    score_rule : ScoreRule
        The method's scoring rule.
    selection_pressure : float
        s_e at the first selection epoch (>= 1; 1 is uniform).
    selection_pressure_end : float or None
        s_e at the last epoch (None: constant).
    window : int, optional
        Predictions kept per sample (>= 2), required by a rule that ``needs_window`` and
        refused by one that does not; ``update`` then requires ``probabilities``.
    warmup_epochs : int, default 3
    epochs : int, default 100
        Total epochs (warm-up included), for the schedule.
    seed : int, default 0
    device : torch.device or str, default "cpu"
    """

    # the protocol gives these samplers their own s_e and its schedule over ``epochs``, from their
    # options; each method declares its ``options``
    needs_epochs = True

    def __init__(self, labels, batch_size: int, *, score_rule: ScoreRule, selection_pressure: float,
                 selection_pressure_end: float | None, window: int | None = None, warmup_epochs: int = 3,
                 epochs: int = 100, seed: int = 0, device="cpu"):
        device = torch.device(device)
        y = as_label_matrix(labels, device)
        super().__init__(y.shape[0], batch_size, seed, device, warmup_epochs=warmup_epochs)
        self.labels = y
        self.n_labels = y.shape[1]
        if not isinstance(score_rule, ScoreRule):
            raise TypeError(f"score_rule must be a ScoreRule (see mlabs.selection.scheduled), got {score_rule!r}")
        if score_rule.needs_window != (window is not None):
            raise ValueError(f"{type(score_rule).__name__} " + ("needs window= (predictions kept per sample)"
                             if score_rule.needs_window else "reads no predictions; leave window=None"))
        # the registry reads the class flag; a rule's own need decides for a directly built sampler
        if type(self).needs_predictions != score_rule.needs_window and type(self) is not ScheduledSampler:
            raise TypeError(f"{type(self).__name__}.needs_predictions disagrees with its rule "
                            f"{type(score_rule).__name__}.needs_window")
        self.needs_predictions = score_rule.needs_window
        self.score_rule = score_rule
        start = check_pressure_at_least_one(selection_pressure, "selection_pressure")
        end = start if selection_pressure_end is None else check_pressure_at_least_one(selection_pressure_end,
                                                                                       "selection_pressure_end")
        self.epochs = check_positive_int(epochs, "epochs")
        self.schedule = ExponentialSchedule(start, end, self.warmup_epochs, self.epochs - 1)
        self._loss = torch.zeros(self.n_samples, dtype=torch.float64, device=device)
        self._window = (None if window is None else
                        PredictionWindow(window, self.n_samples, self.n_labels, self.device))
        self._drawer = BatchDrawer(self.n_samples, self.batch_size, self._generator, device)

    # -- public ----------------------------------------------------------------------------------
    @property
    def selection_pressure(self) -> float:
        """s_e at the first selection epoch (the schedule's start)."""
        return self.schedule.start

    @property
    def selection_pressure_end(self) -> float:
        """s_e at the last epoch (the schedule's end)."""
        return self.schedule.end

    def pressure(self, epoch: int | None = None) -> float:
        """The selection pressure in force at ``epoch`` (default: the current epoch)."""
        return self.schedule(self._epoch if epoch is None else epoch)

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
            self.score_rule.observe(idx, probs, self._window)
            self._window.push(idx, probs)

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
        if refresh is not None:
            return refresh.p().clone()
        w = self._draw_weights()
        return w / exact_sum(w)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(loss_table=self._loss.cpu().clone(), **self._drawer.state_dict(),
                     history=None if self._window is None else self._window.state(),
                     score_rule=self.score_rule.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._loss = state["loss_table"].to(device=self.device, dtype=torch.float64).clone()
        self._drawer.load_state_dict(state)
        if self._window is not None:
            self._window.load(state["history"])
        # "extra": the key of states written before the rules were objects of their own
        self.score_rule.load_state_dict(state.get("score_rule", state.get("extra")) or {})

    # -- the epoch machinery's selection step ----------------------------------------------------
    def _selection_plan(self, remaining: int) -> tuple[torch.Tensor, list[int]]:
        self._drawer.set_weights(self._draw_weights())
        return self._drawer.plan(remaining)

    def _end_epoch(self) -> None:
        super()._end_epoch()
        self._drawer.clear()

    def _draw_weights(self) -> torch.Tensor:
        return self.score_rule.weights(self._loss, self._window, self._epoch, exact_log(self.pressure()))

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
