"""Active Bias (Chang et al.), multi-label form: samples whose predictions vary are preferred."""

from __future__ import annotations

import torch

from .probabilities import min_max_level_log_weights, min_max_level_weights
from .scheduled import ScheduledSampler, ScoreRule

__all__ = ["ActiveBiasSampler", "PredictionVariance"]


class PredictionVariance(ScoreRule):
    """Score = per label, the corrected standard deviation of the predictions in the window, summed
    over labels (0 below 2 predictions); probabilities by min-max quantized levels."""

    needs_window = True

    def score(self, window, epoch):
        """The per-sample score (higher: drawn more often)."""
        vals, w, n = window.weighted()
        mean = (vals * w).sum(0) / n.clamp(min=1.0)
        var = ((vals - mean) ** 2 * w).sum(0) / (n - 1.0).clamp(min=1.0)
        std = torch.sqrt(var + var * var / (n - 1.0).clamp(min=1.0))
        score = torch.where(n >= 2, std, torch.zeros_like(std)).sum(1)
        return score

    def log_weights(self, loss, window, epoch, log_se):
        return min_max_level_log_weights(self.score(window, epoch), log_se)

    def weights(self, loss, window, epoch, log_se):
        return min_max_level_weights(self.score(window, epoch), log_se)


class ActiveBiasSampler(ScheduledSampler):
    """Selection by prediction variance over a window of recent predictions.

    Haw-Shiuan Chang, Erik Learned-Miller, Andrew McCallum, *Active Bias: Training More Accurate
    Neural Networks by Emphasizing High Variance Samples*, NeurIPS 2017, arXiv 1704.07433.

    Score (the multi-label form coded by the batch-selection authors, ``CquptZA/Uncertainty_Batch``;
    docs/selection.md, "Other batch-selection methods"): for every label, the standard deviation of the sample's last
    ``window`` predicted probabilities with the paper's small-history correction,
    ``sqrt(var + var^2 / (n - 1))`` (sample variance, ``n`` predictions), summed over labels;
    samples with fewer than 2 predictions score 0. Probabilities: quantized levels with step 1/N
    on the min-max normalised score, higher variance preferred, ``p ~ exp(-log(s_e) Q / N)``;
    s_e decays exponentially from ``selection_pressure`` to ``selection_pressure_end``.

    Parameters
    ----------
    labels : array-like, shape (N, q)
    batch_size : int
    window : int, default 5
        Predictions kept per sample.
    selection_pressure : float, default 10
    selection_pressure_end : float, default 1
    warmup_epochs : int, default 3
    epochs : int, default 100
    seed : int, default 0
    device : torch.device or str, default "cpu"

    Notes
    -----
    The paper's SGD-SPV samples in proportion to the uncertainty and SGD-WPV re-weights the losses
    of random batches; like the authors' multi-label adaptation this sampler **samples**, through
    the rank-level rule above, so it plugs into any loop unchanged. ``update`` needs
    ``probabilities`` (the batch's predicted label probabilities).
    """

    options = ("window", "selection_pressure", "selection_pressure_end")
    needs_predictions = True

    def __init__(self, labels, batch_size: int, *, window: int = 5, selection_pressure: float = 10.0,
                 selection_pressure_end: float | None = 1.0, warmup_epochs: int = 3, epochs: int = 100,
                 seed: int = 0, device="cpu"):
        super().__init__(labels, batch_size, score_rule=PredictionVariance(), selection_pressure=selection_pressure,
                         selection_pressure_end=selection_pressure_end, warmup_epochs=warmup_epochs,
                         epochs=epochs, window=window, seed=seed,
                         device=device)

