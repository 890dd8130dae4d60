"""A label-balanced batch sampler: every label is drawn as often as every other."""

from __future__ import annotations

import torch

from ._validation import as_label_matrix
from .base import EpochBatchSampler
from .dedup import first_distinct

__all__ = ["BalancedBatchSampler"]

#: candidate draws per batch slot before the exact fill of rows that still lack distinct samples
_OVERSAMPLE = 2


class BalancedBatchSampler(EpochBatchSampler):
    """Label-balanced batches: pick a label uniformly, then a sample that carries it.

    The rule of ``MultilabelBalancedRandomSampler`` (``issamemari/pytorch-multilabel-balanced-
    sampler``, ``class_choice="random"``; docs/selection.md, "Other batch-selection methods"): each draw chooses one of the
    labels with positives uniformly at random and then one of that label's positive samples
    uniformly, so every label is the reason for the same share of draws whatever its frequency.
    No model signal; ``update`` validates and ignores its arguments.

    Parameters
    ----------
    labels : array-like, shape (N, q)
        0/1 training labels.
    batch_size : int
    warmup_epochs : int, default 3
        Shuffled epochs first (the protocol's shared warm-up).
    seed : int, default 0
    device : torch.device or str, default "cpu"

    Notes
    -----
    Choices (ours): a batch holds B **distinct** samples, like the other samplers (the original
    draws with replacement): each row keeps the first B distinct values of a sequence of
    independent draws (``2B`` at first, extended for the rare rows that need more), which is
    successive sampling without replacement from the per-draw distribution. Samples without any label are
    never drawn after warm-up.
    """

    options = ()

    def __init__(self, labels, batch_size: int, *, warmup_epochs: int = 3, seed: int = 0, device="cpu"):
        device = torch.device(device)
        y = as_label_matrix(labels, device)
        super().__init__(y.shape[0], batch_size, seed, device, warmup_epochs=warmup_epochs)
        self.labels = y
        self.n_labels = y.shape[1]
        counts = y.sum(dim=0)
        self._labels_drawn = (counts > 0).nonzero().reshape(-1)  # labels that can be drawn
        n_drawable = int(y.any(dim=1).sum())
        if n_drawable < self.batch_size:
            raise ValueError(f"only {n_drawable} samples carry a label, fewer than batch_size = {batch_size}; "
                             "use a smaller batch size")
        # positives of each label, CSR by label
        lab, smp = y.T.nonzero(as_tuple=True)
        self._members = smp
        self._start = torch.zeros(self.n_labels + 1, dtype=torch.int64, device=device)
        self._start[1:] = torch.cumsum(counts.to(torch.int64), 0)
        self._count = counts.to(torch.float64)

    def probabilities(self) -> torch.Tensor:
        """Per-draw probability of each sample: ``sum over its labels j of 1 / (q' n_j)``."""
        if self.in_warmup:
            return super().probabilities()
        w = torch.zeros(self.n_labels, dtype=torch.float64, device=self.device)
        w[self._labels_drawn] = 1.0 / (self._labels_drawn.numel() * self._count[self._labels_drawn])
        return self.labels.to(torch.float64) @ w

    def _draws(self, shape) -> torch.Tensor:
        g, dev = self._generator, self.device
        label = self._labels_drawn[torch.randint(0, self._labels_drawn.numel(), shape, generator=g, device=dev)]
        u = torch.rand(shape, generator=g, dtype=torch.float64, device=dev)
        pos = self._start[label] + (u * self._count[label]).to(torch.int64)
        return self._members[torch.minimum(pos, self._start[label + 1] - 1)]

    def _selection_plan(self, remaining: int):
        b = self.batch_size
        out = torch.empty((remaining, b), dtype=torch.int64, device=self.device)
        rows = torch.arange(remaining, device=self.device)
        cand = self._draws((remaining, _OVERSAMPLE * b))
        while True:
            full, keep, _ = first_distinct(cand, b)
            done = full.nonzero().view(-1)
            keep = keep.index_select(0, done)
            out.index_copy_(0, rows.index_select(0, done), cand.index_select(0, done).masked_select(keep).view(-1, b))
            short = (~full).nonzero().view(-1)
            if short.numel() == 0:
                return out.reshape(-1), [b] * remaining
            # rows still short of B distinct samples continue the same sequence of draws
            rows = rows.index_select(0, short)
            cand = torch.cat([cand.index_select(0, short), self._draws((short.numel(), b))], dim=1)

    def __repr__(self) -> str:
        return (f"BalancedBatchSampler(n_samples={self.n_samples}, batch_size={self.batch_size}, "
                f"n_labels={self.n_labels}, warmup_epochs={self.warmup_epochs}, seed={self.seed})")

