"""Chain-based adaptive selection with label correlations (``docs/method.md`` section 5, a reconstruction)."""

from __future__ import annotations

import torch

from .._validation import check_positive_int
from ..adaptive import AdaptiveBatchSampler
from ..probabilities import exact_log, level_steps
from .engine import ChainEngine

__all__ = ["ChainBatchSampler"]

LABEL_CHOICES = ("argmax", "sample")


class ChainBatchSampler(AdaptiveBatchSampler):
    """Chain-based adaptive selection with label correlations (``docs/method.md`` section 5, a reconstruction).

    Each post-warm-up batch of exactly B distinct samples is built from chains of up to
    ``chain_length`` samples:

    1. seed: a sample drawn from p among those not yet in the batch;
    2. seed label: its positive label with the largest IRLbl (ties: the smaller label index);
       a seed without labels ends the chain;
    3. walk: the next label is the label not yet visited in this chain with the largest
       correlation ``A[l, k]`` (:func:`label_correlation`; ties: the smaller label index), or one
       drawn proportionally to ``A[l, k]`` over the unvisited labels with
       ``label_choice="sample"``; the chain stops when that correlation is 0. The next sample is
       drawn from p restricted to the samples carrying that label and not yet in the batch (the
       chain stops when there is none). Repeat until the chain has ``chain_length`` samples or the
       batch is full, then start a new chain with a new seed.

    Warm-up, loss table, refreshes and every other parameter are as in :class:`AdaptiveBatchSampler`.

    Parameters
    ----------
    chain_length : int, default 4
        m, the maximum number of samples per chain (1 makes every pick a seed, i.e. plain adaptive
        selection).
    label_choice : {"argmax", "sample"}, default "argmax"
        How the walk picks the next label.

    Notes
    -----
    The batches are drawn in bulk by :class:`~mlabs.selection.chain.engine.ChainEngine`, exactly
    as the step-by-step process.
    """

    options = AdaptiveBatchSampler.options + ("chain_length", "label_choice")

    def __init__(self, labels, batch_size: int, *, chain_length: int = 4, label_choice: str = "argmax",
                 selection_pressure: float = 2.0, warmup_epochs: int = 3, features=None,
                 score: str = "weighted_loss", quantize: bool = True, refresh_every: int | None = None,
                 k_neighbors: int = 5, seed: int = 0, device="cpu"):
        super().__init__(labels, batch_size, selection_pressure=selection_pressure, warmup_epochs=warmup_epochs,
                         features=features, score=score, quantize=quantize, refresh_every=refresh_every,
                         k_neighbors=k_neighbors, seed=seed, device=device)
        self.chain_length = check_positive_int(chain_length, "chain_length")
        if label_choice not in LABEL_CHOICES:
            raise ValueError(f"label_choice must be one of {LABEL_CHOICES}, got {label_choice!r}")
        self.label_choice = label_choice
        self._engine = ChainEngine(self.labels, self.chain_length, label_choice, self._drawer, self._generator)
        #: the label co-occurrence matrix A the walks follow
        self.correlation = self._engine.correlation

    def _refresh_draw(self) -> None:
        steps = level_steps(self._draw_scores(), exact_log(self.selection_pressure)) if self.quantize else None
        if steps is None:
            self._drawer.set_weights(self._draw_weights(), build_table=False)
        else:
            self._drawer.set_steps(*steps, build_table=False)
        self._engine.refresh()

    def _draw_batches(self, n_batches: int) -> torch.Tensor:
        return self._engine.batches(n_batches)
