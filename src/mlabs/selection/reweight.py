"""Selection's control: random batches whose per-sample objective is weighted by N * p_i.

Drawing sample i with probability p_i and training on uniform batches with sample i's loss weighted
by N * p_i have the same expected gradient; the second keeps every sample in every epoch. With p the
adaptive sampler's own distribution, the comparison asks whether *selecting* helps beyond what
*weighting* the same samples gives (``docs/selection.md``).
"""

from __future__ import annotations

import torch

from .adaptive import AdaptiveBatchSampler
from .base import EpochBatchSampler

__all__ = ["ReweightSampler"]


class ReweightSampler(EpochBatchSampler):
    """Shuffled batches; each sample's objective weighted by N * p_i of the adaptive distribution.

    p is computed by an :class:`AdaptiveBatchSampler` held inside (same options, same loss table,
    same s_e), exactly when the adaptive sampler would refresh it: at the start of every selection
    epoch and, with ``refresh_every=k``, every k batches. The batches are those of
    :class:`RandomBatchSampler` with the same seed (one permutation per epoch from the private
    generator; the inner sampler never draws). Warm-up epochs have no weights.

    Parameters
    ----------
    labels, batch_size, selection_pressure, warmup_epochs, features, score, quantize, refresh_every, k_neighbors
        As in :class:`AdaptiveBatchSampler` (they define p).
    seed : int, default 0
        Seed of the private generator (the shuffles).
    device : torch.device or str, default "cpu"

    Notes
    -----
    :meth:`loss_weights` returns ``N * p[indices]`` for a batch it yielded, or None when p is
    uniform (all weights 1), so that such a run trains bit-identically to random batches.
    :meth:`probabilities` returns p, the weighting distribution (the batches themselves are uniform).
    """

    options = AdaptiveBatchSampler.options
    uses_selection_pressure = True
    needs_features = True
    gives_loss_weights = True

    def __init__(self, labels, batch_size: int, *, selection_pressure: float = 2.0, warmup_epochs: int = 3,
                 features=None, score: str = "weighted_loss", quantize: bool = True,
                 refresh_every: int | None = None, k_neighbors: int = 5, seed: int = 0, device="cpu"):
        # composition: the adaptive sampler owns the loss table, the weights and the rule for p
        self._adaptive = AdaptiveBatchSampler(
            labels, batch_size, selection_pressure=selection_pressure, warmup_epochs=warmup_epochs,
            features=features, score=score, quantize=quantize, refresh_every=refresh_every,
            k_neighbors=k_neighbors, seed=seed, device=device)
        super().__init__(self._adaptive.n_samples, batch_size, seed, device, warmup_epochs=warmup_epochs)
        self._w: torch.Tensor | None = None   # N * p of the refresh in force (None: uniform)
        self._w_key: tuple[int, int] | None = None   # (epoch, refresh) the weights belong to

    def __repr__(self) -> str:
        a = self._adaptive
        return (f"ReweightSampler(n_samples={self.n_samples}, batch_size={self.batch_size}, "
                f"selection_pressure={a.selection_pressure:g}, warmup_epochs={self.warmup_epochs}, "
                f"score={a.score!r}, quantize={a.quantize}, refresh_every={a.refresh_every}, seed={self.seed})")

    @property
    def adaptive(self) -> AdaptiveBatchSampler:
        """The adaptive sampler whose distribution weights the objective (do not iterate it)."""
        return self._adaptive

    def update(self, indices, per_sample_loss, probabilities=None) -> None:
        """Record the losses of the samples just trained on (the adaptive sampler's loss table)."""
        self._adaptive.update(indices, per_sample_loss, probabilities=probabilities)

    def probabilities(self) -> torch.Tensor:
        """The weighting distribution p (uniform in warm-up epochs); see the class notes."""
        self._adaptive.set_epoch(self._epoch)
        return self._adaptive.probabilities()

    def loss_weights(self, indices) -> torch.Tensor | None:
        """``N * p[indices]`` for a batch of the epoch in progress; None in warm-up or when p is uniform."""
        if self.in_warmup:
            return None
        every = self._adaptive.refresh_every
        refresh = 0 if every is None else max(self._pos - 1, 0) // every
        key = (self._epoch, refresh)
        if key != self._w_key:
            p = self.probabilities()
            self._w = None if bool(p.max() == p.min()) else p * self.n_samples
            self._w_key = key
        if self._w is None:
            return None
        idx = torch.as_tensor(indices, dtype=torch.int64, device=self.device)
        return self._w[idx]

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(adaptive=self._adaptive.state_dict(),
                     loss_weights=None if self._w is None else self._w.cpu().clone(),
                     loss_weights_key=self._w_key)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._adaptive.load_state_dict(state["adaptive"])
        w = state.get("loss_weights")
        self._w = None if w is None else w.to(device=self.device, dtype=torch.float64).clone()
        key = state.get("loss_weights_key")
        self._w_key = None if key is None else tuple(int(k) for k in key)
