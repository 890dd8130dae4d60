"""Online batch selection (Loshchilov & Hutter): exact loss rank, annealed selection pressure."""

from __future__ import annotations

from ._validation import check_positive_int
from .probabilities import rank_log_weights, rank_weights
from .scheduled import ScheduledSampler, ScoreRule

__all__ = ["OnlineBatchSampler", "LossRank"]


class LossRank(ScoreRule):
    """Score = the latest loss, probabilities by its exact descending rank."""

    def log_weights(self, loss, window, epoch, log_se):
        return rank_log_weights(loss, log_se)

    def weights(self, loss, window, epoch, log_se):
        return rank_weights(loss, log_se)


class OnlineBatchSampler(ScheduledSampler):
    """Online batch selection by the rank of the latest loss.

    Ilya Loshchilov, Frank Hutter, *Online Batch Selection for Faster Training of Neural
    Networks*, ICLR 2016 workshop track, arXiv 1511.06343.

    After warm-up, each epoch draws ``ceil(N/B)`` batches of B distinct samples from
    ``p_i ~ exp(-log(s_e) r_i / N)``, ``r_i`` the rank of sample i's latest loss (0 for the
    largest; ties share their mean rank). ``s_e`` decays exponentially from
    ``selection_pressure`` at the first selection epoch to ``selection_pressure_end`` at the last
    (s_e = 1 is uniform). Losses come from the training forward (``update``) and, every
    ``recompute_every`` selection epochs, from a full pass over the training set: the trainer asks
    :meth:`recompute_due` at each epoch start and then calls ``update`` with all N losses.

    Parameters
    ----------
    labels : array-like, shape (N, q)
        0/1 training labels (only N is used).
    batch_size : int
    selection_pressure : float, default 100
        s_e at the first selection epoch (the published re-implementation's 100).
    selection_pressure_end : float, default 1
        s_e at the last epoch (``None``: constant).
    recompute_every : int, optional
        Recompute all losses every this many selection epochs (1: every epoch, as in the
        re-implementation; default never, i.e. only the losses of trained batches).
    warmup_epochs : int, default 3
    epochs : int, default 100
        Total epochs (warm-up included), for the schedule.
    seed : int, default 0
    device : torch.device or str, default "cpu"

    Notes
    -----
    Multi-label form (ours; the paper is single-label): the loss is the per-sample mean binary
    cross-entropy over labels. MLABS is this rule with the rank replaced by a quantized loss
    level. Differences from the published re-implementation (``kaist-dmlab/RecencyBias``): the
    warm-up is the protocol's shared one (3 epochs here, 10 there) and recomputation is optional.
    """

    options = ("selection_pressure", "selection_pressure_end", "recompute_every")

    def __init__(self, labels, batch_size: int, *, selection_pressure: float = 100.0,
                 selection_pressure_end: float | None = 1.0, recompute_every: int | None = None,
                 warmup_epochs: int = 3, epochs: int = 100, seed: int = 0, device="cpu"):
        super().__init__(labels, batch_size, score_rule=LossRank(), selection_pressure=selection_pressure,
                         selection_pressure_end=selection_pressure_end, warmup_epochs=warmup_epochs,
                         epochs=epochs, seed=seed, device=device)
        self.recompute_every = None if recompute_every is None else check_positive_int(recompute_every,
                                                                                        "recompute_every")

    def recompute_due(self, epoch: int) -> bool:
        """Whether the losses of all samples should be recomputed before epoch ``epoch``."""
        if self.recompute_every is None or epoch < self.warmup_epochs:
            return False
        return (epoch - self.warmup_epochs) % self.recompute_every == 0
