"""Multi-label adaptive batch selection (MLABS): hard and imbalanced samples more often.

:class:`AdaptiveBatchSampler` keeps the loss table and the static imbalance weights and turns them
into the selection distribution at every refresh; the batches are drawn by the
:class:`~mlabs.selection.drawing.BatchDrawer` it holds. Its docstring shows a training loop.
"""

from __future__ import annotations

import torch

from ._validation import as_label_matrix, check_positive_int, check_same_rows, check_selection_pressure
from .base import EpochBatchSampler
from .drawing import BatchDrawer
from .imbalance import imbalance_weights
from .probabilities import exact_log, exact_sum, level_steps, log_weights, score_weights

__all__ = ["AdaptiveBatchSampler"]

#: the scores the adaptive sampler can select by: the published w * L, and the ablations L alone,
#: w alone and w_raw * L (imbalance weights without the per-label normalisation, not published)
SCORES = ("weighted_loss", "loss", "imbalance", "raw_weighted_loss")


class AdaptiveBatchSampler(EpochBatchSampler):
    """Multi-label adaptive batch selection (MLABS): hard and imbalanced samples more often.

    After ``warmup_epochs`` shuffled epochs, every epoch consists of ``ceil(N/B)`` independent
    batches of exactly B distinct samples, each drawn by successive sampling without replacement
    from ``p = selection_probabilities(w * L, selection_pressure, quantize)``, with L the loss table
    (latest per-sample loss, initially 0) and w the static imbalance weights. ``p`` is recomputed
    from the whole loss table at the start of every epoch (or every ``refresh_every`` batches);
    :meth:`update` writes the losses of each batch into the table, warm-up batches included.

    Parameters
    ----------
    labels : array-like, torch.Tensor or scipy.sparse matrix, shape (N, q)
        0/1 training labels.
    batch_size : int
        B, ``1 <= B <= N``.
    selection_pressure : float, default 2.0
        s_e > 1, the largest-to-smallest probability ratio.
    warmup_epochs : int, default 3
        Epochs of shuffled batches before selection starts.
    features : array-like, torch.Tensor or scipy.sparse matrix, shape (N, d), optional
        Scaled training features for the imbalance weights; ``None`` means w = 1.
    score : {"weighted_loss", "loss", "imbalance", "raw_weighted_loss"}, default "weighted_loss"
        Ablations: ``"loss"`` ignores the imbalance weights, ``"imbalance"`` ignores the loss (the
        weights alone, static), ``"raw_weighted_loss"`` multiplies the loss by the imbalance weights
        without their per-label normalisation (``imbalance_weights(..., normalise=False)``, not the
        published method). The last two need ``features``.
    quantize : bool, default True
        Quantized levels (MLABS) or exact ranks (ablation), see :func:`selection_probabilities`.
    refresh_every : int, optional
        Recompute ``p`` every this many batches within an epoch (and at every epoch start);
        default once per epoch.
    k_neighbors : int, default 5
        Neighbours of the imbalance weights.
    seed : int, default 0
        Seed of the private generator.
    device : torch.device or str, default "cpu"
        Device of all state (labels, loss table, probabilities, draws).

    Notes
    -----
    :meth:`probabilities` is uniform during warm-up epochs; after warm-up it returns the
    distribution of the current refresh during an epoch, and between epochs the one the next
    refresh would compute from the current loss table.

    Differences from the authors' code (``CquptZA/MLAdaBatch``): probabilities are recomputed from
    the whole loss table (no stale per-batch normalisation), warm-up batches are shuffled, and
    the imbalance weighting is on by default (when ``features`` are given).

    Examples
    --------
    A plain PyTorch loop for any multi-label model returning logits::

        sampler = AdaptiveBatchSampler(Y_train, batch_size=128, features=X_train, selection_pressure=2.0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        for epoch in range(100):
            sampler.set_epoch(epoch)
            for idx in sampler:
                logits = model(X_train[idx])
                per_sample = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, Y_train[idx], reduction="none").mean(dim=1)
                opt.zero_grad()
                per_sample.mean().backward()
                opt.step()
                sampler.update(idx, per_sample.detach())

    The same sampler works as ``DataLoader(dataset, batch_sampler=sampler)``.
    """

    options = ("score", "quantize", "refresh_every", "k_neighbors")
    uses_selection_pressure = True
    needs_features = True

    def __init__(self, labels, batch_size: int, *, selection_pressure: float = 2.0, warmup_epochs: int = 3,
                 features=None, score: str = "weighted_loss", quantize: bool = True,
                 refresh_every: int | None = None, k_neighbors: int = 5, seed: int = 0, device="cpu"):
        device = torch.device(device)
        y = as_label_matrix(labels, device)
        super().__init__(y.shape[0], batch_size, seed, device, warmup_epochs=warmup_epochs)
        self.selection_pressure = check_selection_pressure(selection_pressure)
        self.labels = y
        self.n_labels = y.shape[1]
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        self.score = score
        if not isinstance(quantize, bool):
            raise ValueError(f"quantize must be True or False, got {quantize!r}")
        self.quantize = quantize
        self.refresh_every = None if refresh_every is None else check_positive_int(refresh_every, "refresh_every")
        self.k_neighbors = check_positive_int(k_neighbors, "k_neighbors")
        if features is not None:
            check_same_rows(features, self.n_samples)
        if features is None and score in ("imbalance", "raw_weighted_loss"):
            raise ValueError(f"score={score!r} needs the imbalance weights: pass features")
        if features is not None and score != "loss":
            self._weights = imbalance_weights(features, y, k=self.k_neighbors, device=device,
                                              normalise=score != "raw_weighted_loss")
        else:
            self._weights = None
        self._loss = torch.zeros(self.n_samples, dtype=torch.float64, device=device)
        self._drawer = BatchDrawer(self.n_samples, self.batch_size, self._generator, device)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_samples={self.n_samples}, batch_size={self.batch_size}, "
                f"selection_pressure={self.selection_pressure:g}, warmup_epochs={self.warmup_epochs}, "
                f"score={self.score!r}, weighted={self._weights is not None}, quantize={self.quantize}, "
                f"refresh_every={self.refresh_every}, seed={self.seed})")

    # -- public ----------------------------------------------------------------------------------
    @property
    def loss_table(self) -> torch.Tensor:
        """Latest per-sample loss (float64, length N; do not modify in place)."""
        return self._loss

    @property
    def weights(self) -> torch.Tensor:
        """Imbalance weights w (ones when unweighted)."""
        return torch.ones_like(self._loss) if self._weights is None else self._weights

    def scores(self) -> torch.Tensor:
        """Selection scores ``w * L`` (``L`` alone for ``score="loss"``, ``w`` for ``"imbalance"``)."""
        if self.score == "imbalance":
            return self._weights
        return self._loss if self._weights is None else self._weights * self._loss

    def update(self, indices, per_sample_loss, probabilities=None) -> None:
        """Record the losses of the samples just trained on.

        Parameters
        ----------
        indices : sequence of int or LongTensor, shape (n,)
            Sample indices (e.g. the batch as yielded); any n, e.g. all N at once to seed the table.
        per_sample_loss : array-like or torch.Tensor, shape (n,)
            Finite, non-negative per-sample losses (detached), e.g. mean BCE over labels.
        probabilities : torch.Tensor, shape (n, q), optional
            Predicted label probabilities; ignored by this sampler (accepted for samplers that
            score uncertainty).

        Notes
        -----
        The new values take effect at the next refresh of the probabilities. If an index repeats
        within one call, which of its values is kept is unspecified.
        """
        idx, loss = self._check_update(indices, per_sample_loss)
        self._loss[idx] = loss

    def probabilities(self) -> torch.Tensor:
        """The selection distribution (length N, float64, sums to 1); see the class notes."""
        if self.in_warmup:
            return super().probabilities()
        refresh = self._drawer.refresh
        if refresh is not None:
            return refresh.p().clone()
        w = self._draw_weights()
        return w.div_(exact_sum(w))

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(loss_table=self._loss.cpu().clone(),
                     weights=None if self._weights is None else self._weights.cpu().clone(),
                     **self._drawer.state_dict(), selection_pressure=self.selection_pressure, quantize=self.quantize, score=self.score)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._loss = state["loss_table"].to(device=self.device, dtype=torch.float64).clone()
        if state.get("weights") is not None and self._weights is not None:
            self._weights = state["weights"].to(device=self.device, dtype=torch.float64).clone()
        self._drawer.load_state_dict(state)

    # -- internals -------------------------------------------------------------------------------
    def _end_epoch(self) -> None:
        super()._end_epoch()
        self._drawer.clear()

    def _log_weights(self) -> torch.Tensor:
        # scores are finite and non-negative by construction (validated in update)
        return log_weights(self.scores(), exact_log(self.selection_pressure), self.quantize)

    def _draw_scores(self) -> torch.Tensor:
        """:meth:`scores` for a refresh, in a reused scratch buffer when weighted."""
        if self._weights is None:
            return self._loss
        if self.score == "imbalance":
            return self._weights
        return torch.mul(self._weights, self._loss, out=self._drawer.workspace.get("scores", self.n_samples,
                                                                                   torch.float64))

    def _draw_weights(self) -> torch.Tensor:
        """The weights of a refresh from the loss table (machine-independent, largest 1; see
        :func:`~mlabs.selection.probabilities.score_weights`)."""
        return score_weights(self._draw_scores(), exact_log(self.selection_pressure), self.quantize)

    def _selection_plan(self, remaining: int) -> tuple[torch.Tensor, list[int]]:
        n_batches = remaining if self.refresh_every is None else min(remaining, self.refresh_every)
        self._refresh_draw()
        return self._draw_batches(n_batches).reshape(-1), [self.batch_size] * n_batches

    def _refresh_draw(self) -> None:
        """Recompute the weights from the loss table and build the tables the draws use (the
        quantized levels index the weight table directly, see :meth:`BatchDrawer.set_steps`)."""
        steps = level_steps(self._draw_scores(), exact_log(self.selection_pressure)) if self.quantize else None
        if steps is None:
            self._drawer.set_weights(self._draw_weights())
        else:
            self._drawer.set_steps(*steps)

    def _draw_batches(self, n_batches: int) -> torch.Tensor:
        """``n_batches`` independent rows of B distinct indices, successive sampling from p."""
        return self._drawer.batches(n_batches)
