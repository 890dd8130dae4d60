"""InfoBatch (Qin et al., ICLR 2024, arXiv 2303.04947): unbiased random pruning of well-learned samples.

Each sample keeps its most recent loss. Every pruning epoch, a random fraction r of the samples
whose loss is below the mean loss is left out, and the kept ones among them get their loss
multiplied by 1 / (1 - r), so the epoch's expected gradient is that of the full data; samples at or
above the mean are always kept with weight 1. From the fraction ``delta`` of the epochs on, nothing
is pruned (annealing). The rules are those of the paper and of its code
(``NUS-HPC-AI-Lab/InfoBatch``), restated in ``docs/selection.md``.
"""

from __future__ import annotations

import math
import numbers

import torch

from .base import EpochBatchSampler

__all__ = ["InfoBatchSampler"]


class InfoBatchSampler(EpochBatchSampler):
    """InfoBatch: prune a random share of the below-mean-loss samples, rescale the kept ones.

    Scores start at +inf, so a sample is always kept until it has a loss; the mean is taken over
    the samples that have one. In a pruning epoch (``epoch < delta * epochs``, epochs counted from 0
    over the whole run, warm-up included) ``floor((1 - r) * n_low)`` of the ``n_low`` samples below
    the mean are kept, chosen uniformly without replacement, with loss weight ``1 / (1 - r)``; the
    kept samples are shuffled into ``ceil(n_kept / B)`` batches, so such an epoch is shorter than
    ``ceil(N / B)`` batches and ``len(sampler)`` says how long. Other epochs are shuffled epochs of
    every sample with no weights.

    Parameters
    ----------
    n_samples : int
        N.
    batch_size : int
        B.
    prune_ratio : float, default 0.5
        r, the share of the below-mean samples left out of a pruning epoch, ``0 <= r < 1``.
    delta : float, default 0.875
        Pruning stops from epoch ``delta * epochs`` on, ``0 <= delta <= 1``.
    epochs : int, default 100
        Total epochs of the run.
    warmup_epochs : int, default 0
        Shuffled epochs first (the study's shared warm-up), with no pruning.
    seed : int, default 0
    device : torch.device or str, default "cpu"

    Notes
    -----
    The draws use the private generator's ``randperm`` only. :meth:`probabilities` gives each
    sample's chance of being in the coming epoch, normalised to sum to 1 (uniform when nothing is
    pruned), the distribution the selection-strength diagnostics describe.
    """

    options = ("prune_ratio", "delta")
    takes_labels = False
    needs_epochs = True
    gives_loss_weights = True

    def __init__(self, n_samples: int, batch_size: int, *, prune_ratio: float = 0.5, delta: float = 0.875,
                 epochs: int = 100, warmup_epochs: int = 0, seed: int = 0, device="cpu"):
        for name, value, upper_open in (("prune_ratio", prune_ratio, True), ("delta", delta, False)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                    0 <= value < 1 if upper_open else 0 <= value <= 1):
                raise ValueError(f"{name} must be a number in [0, 1{')' if upper_open else ']'}, got {value!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        self.prune_ratio, self.delta, self.epochs = float(prune_ratio), float(delta), int(epochs)
        super().__init__(n_samples, batch_size, seed, device, warmup_epochs=warmup_epochs)
        self._scores = torch.full((self.n_samples,), math.inf, dtype=torch.float64, device=self.device)

    def __repr__(self) -> str:
        return (f"InfoBatchSampler(n_samples={self.n_samples}, batch_size={self.batch_size}, "
                f"prune_ratio={self.prune_ratio:g}, delta={self.delta:g}, epochs={self.epochs}, "
                f"warmup_epochs={self.warmup_epochs}, seed={self.seed})")

    # -- public ----------------------------------------------------------------------------------
    @property
    def scores(self) -> torch.Tensor:
        """Most recent loss per sample (+inf before its first; float64, length N)."""
        return self._scores

    def pruning(self, epoch: int | None = None) -> bool:
        """Whether ``epoch`` (default: the current one) prunes: after warm-up, before ``delta * epochs``."""
        e = self._epoch if epoch is None else int(epoch)
        return self.warmup_epochs <= e < self.delta * self.epochs and self.prune_ratio > 0

    def __len__(self) -> int:
        return -(-self._kept_count() // self.batch_size)

    def update(self, indices, per_sample_loss, probabilities=None) -> None:
        """Record the most recent loss of the samples just trained on."""
        idx, loss = self._check_update(indices, per_sample_loss)
        self._scores[idx] = loss

    def loss_weights(self, indices) -> torch.Tensor | None:
        """1 / (1 - r) for the kept below-mean samples of a pruning epoch, else 1; None when not pruning."""
        if self._epoch_weights is None:
            return None
        return self._epoch_weights[torch.as_tensor(indices, dtype=torch.int64, device=self.device)]

    def probabilities(self) -> torch.Tensor:
        """Each sample's chance of being in the epoch, normalised (see the class notes)."""
        low, n_keep = self._low()
        if low is None:
            return super().probabilities()
        p = torch.ones(self.n_samples, dtype=torch.float64, device=self.device)
        p[low] = n_keep / low.numel() if low.numel() else 1.0
        return p.div_(p.sum())

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(scores=self._scores.cpu().clone(), epoch_len=self._epoch_len,
                     epoch_weights=None if self._epoch_weights is None else self._epoch_weights.cpu().clone())
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._scores = state["scores"].to(device=self.device, dtype=torch.float64).clone()
        if state["active"]:  # the epoch in progress keeps its length and weights
            self._epoch_len = state["epoch_len"]
            w = state["epoch_weights"]
            self._epoch_weights = None if w is None else w.to(device=self.device, dtype=torch.float64).clone()

    # -- internals -------------------------------------------------------------------------------
    def _reset_plan(self) -> None:
        super()._reset_plan()
        self._epoch_len: int | None = None      # samples of the epoch in progress, once decided
        self._epoch_weights: torch.Tensor | None = None

    def _low(self) -> tuple[torch.Tensor | None, int]:
        """The pruning candidates of the current epoch (None when it does not prune) and how many stay."""
        if self.in_warmup or not self.pruning():
            return None, 0
        finite = torch.isfinite(self._scores)
        if not bool(finite.any()):
            return None, 0
        mean = self._scores[finite].mean()
        low = (finite & (self._scores < mean)).nonzero().reshape(-1)
        return low, int((1.0 - self.prune_ratio) * low.numel())   # the authors' int(keep_ratio * n)

    def _kept_count(self) -> int:
        if self._epoch_len is not None:
            return self._epoch_len
        low, n_keep = self._low()
        return self.n_samples if low is None else self.n_samples - low.numel() + n_keep

    def _selection_plan(self, remaining: int) -> tuple[torch.Tensor, list[int]]:
        low, n_keep = self._low()
        if low is None:
            self._epoch_len = self.n_samples
            return self._shuffled_epoch()
        g = self._generator
        keep_low = low[torch.randperm(low.numel(), generator=g, device=self.device)[:n_keep]]
        is_low = torch.zeros(self.n_samples, dtype=torch.bool, device=self.device)
        is_low[low] = True
        kept = torch.cat([(~is_low).nonzero().reshape(-1), keep_low])
        order = kept[torch.randperm(kept.numel(), generator=g, device=self.device)]
        weights = torch.ones(self.n_samples, dtype=torch.float64, device=self.device)
        weights[keep_low] = 1.0 / (1.0 - self.prune_ratio)
        self._epoch_len, self._epoch_weights = order.numel(), weights
        nb, b = -(-order.numel() // self.batch_size), self.batch_size
        return order, [b] * (nb - 1) + [order.numel() - (nb - 1) * b]
