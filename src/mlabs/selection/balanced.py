"""A label-balanced batch sampler: every label is drawn as often as every other."""

from __future__ import annotations

import torch

from ._validation import as_label_matrix, check_positive_int
from .samplers import _EpochBatchSampler

__all__ = ["BalancedBatchSampler"]

#: candidate draws per batch slot before the exact fill of rows that still lack distinct samples
_OVERSAMPLE = 2


class BalancedBatchSampler(_EpochBatchSampler):
    """Label-balanced batches: pick a label uniformly, then a sample that carries it.

    The rule of ``MultilabelBalancedRandomSampler`` (``issamemari/pytorch-multilabel-balanced-
    sampler``, ``class_choice="random"``; baselines.md section 8.1): each draw chooses one of the
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
    draws with replacement): each row keeps the first B distinct of ``2B`` candidate draws, which
    is successive sampling without replacement from the per-draw distribution; the rare rows
    with fewer distinct candidates are completed by further draws. Samples without any label are
    never drawn after warm-up.
    """

    def __init__(self, labels, batch_size: int, *, warmup_epochs: int = 3, seed: int = 0, device="cpu"):
        device = torch.device(device)
        y = as_label_matrix(labels, device)
        super().__init__(y.shape[0], batch_size, seed, device)
        self.labels = y
        self.n_labels = y.shape[1]
        self.warmup_epochs = check_positive_int(warmup_epochs, "warmup_epochs", minimum=0)
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

    def _warmup_epochs(self) -> int:
        return self.warmup_epochs

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

    def _draw_plan(self, remaining: int):
        if self.in_warmup:
            return self._shuffled_epoch()
        b, n = self.batch_size, self.n_samples
        cand = self._draws((remaining, _OVERSAMPLE * b))
        first = _first_distinct(cand, n)
        rank = torch.cumsum(first, dim=1)
        keep = first & (rank <= b)
        out = torch.empty((remaining, b), dtype=torch.int64, device=self.device)
        full = rank[:, -1] >= b
        rows = full.nonzero().reshape(-1)
        out[rows] = cand[rows].masked_select(keep[rows]).view(-1, b)
        for r in (~full).nonzero().reshape(-1).tolist():  # rare rows, not samples
            got = cand[r].masked_select(first[r]).tolist()
            seen = set(got)
            while len(got) < b:
                for v in self._draws((b,)).tolist():
                    if v not in seen and len(got) < b:
                        seen.add(v)
                        got.append(v)
            out[r] = torch.tensor(got, device=self.device)
        return out.reshape(-1), [b] * remaining

    def __repr__(self) -> str:
        return (f"BalancedBatchSampler(n_samples={self.n_samples}, batch_size={self.batch_size}, "
                f"n_labels={self.n_labels}, warmup_epochs={self.warmup_epochs}, seed={self.seed})")


def _first_distinct(rows: torch.Tensor, n: int) -> torch.Tensor:
    """Mask of the first occurrence of each value within every row."""
    m = rows.shape[1]
    keys = rows * m + torch.arange(m, device=rows.device)
    keys = torch.sort(keys, dim=1).values
    values, cols = torch.div(keys, m, rounding_mode="floor"), keys % m
    new = torch.ones_like(keys, dtype=torch.bool)
    new[:, 1:] = values[:, 1:] != values[:, :-1]
    first = torch.empty_like(new)
    first.scatter_(1, cols, new)
    return first
