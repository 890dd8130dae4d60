"""Shuffled batches: the "random" baseline."""

from __future__ import annotations

from .base import EpochBatchSampler

__all__ = ["RandomBatchSampler"]


class RandomBatchSampler(EpochBatchSampler):
    """Shuffled batches: a fresh permutation every epoch (the "random" baseline).

    Parameters
    ----------
    n_samples : int
        Number of training samples N.
    batch_size : int
        Batch size B, ``1 <= B <= N``; the last batch holds ``N - (ceil(N/B) - 1) * B`` samples
        (like ``DataLoader(shuffle=True, drop_last=False)``).
    seed : int, default 0
        Seed of the sampler's private generator.
    device : torch.device or str, default "cpu"
        Where the permutation is drawn.

    Notes
    -----
    :meth:`update` validates its arguments and otherwise ignores them, so a training loop can
    treat every sampler alike; :meth:`probabilities` is uniform.
    """

    options = ()
    takes_labels = False
    has_warmup = False

    def __init__(self, n_samples: int, batch_size: int, seed: int = 0, device="cpu"):
        super().__init__(n_samples, batch_size, seed, device)

    def __repr__(self) -> str:
        return f"RandomBatchSampler(n_samples={self.n_samples}, batch_size={self.batch_size}, seed={self.seed})"
