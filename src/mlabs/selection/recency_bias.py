"""Recency Bias (Song et al.), multi-label form: samples uncertain "at the moment" are preferred."""

from __future__ import annotations

import torch

from .predictions import binary_entropy_bits
from .probabilities import min_max_level_log_weights, min_max_level_weights
from .scheduled import ScheduledSampler, ScoreRule

__all__ = ["RecencyBiasSampler", "PredictedLabelEntropy"]


class PredictedLabelEntropy(ScoreRule):
    """Score = per label, the binary entropy of the share of positive predictions (``p > threshold``)
    in the window, summed over labels; probabilities by min-max quantized levels."""

    needs_window = True

    def __init__(self, threshold: float):
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
        self.threshold = float(threshold)

    def score(self, window, epoch):
        """The per-sample score (higher: drawn more often)."""
        vals, w, n = window.weighted()
        share = ((vals > self.threshold).to(vals.dtype) * w).sum(0) / n.clamp(min=1.0)  # positive predictions
        return binary_entropy_bits(share).sum(1)

    def log_weights(self, loss, window, epoch, log_se):
        return min_max_level_log_weights(self.score(window, epoch), log_se)

    def weights(self, loss, window, epoch, log_se):
        return min_max_level_weights(self.score(window, epoch), log_se)


class RecencyBiasSampler(ScheduledSampler):
    """Selection by the entropy of the recent predicted labels.

    Hwanjun Song, Minseok Kim, Sundong Kim, Jae-Gil Lee, *Carpe Diem, Seize the Samples Uncertain
    "at the Moment" for Adaptive Batch Selection*, CIKM 2020, arXiv 1911.08050.

    Score (multi-label form of the batch-selection authors; docs/selection.md, "Other batch-selection methods"): for every
    label, the binary entropy (bits) of the thresholded predictions (``p > threshold``) over the
    sample's last ``window`` predictions, summed over labels, so samples whose predicted labels
    keep flipping score highest. Probabilities: quantized levels with step 1/N on the min-max
    normalised score (uncertain preferred), ``p ~ exp(-log(s_e) Q / N)``, s_e decaying
    exponentially from ``selection_pressure`` to ``selection_pressure_end``.

    Parameters
    ----------
    labels : array-like, shape (N, q)
    batch_size : int
    window : int, default 5
        The sliding window of predictions (the single-label paper: 10).
    threshold : float, default 0.5
    selection_pressure : float, default 10
        The authors' multi-label runs: 10 -> 1 (the single-label paper: 100 -> 1).
    selection_pressure_end : float, default 1
    warmup_epochs, epochs, seed, device
        As for the other samplers.

    Notes
    -----
    The single-label paper signs the distance by whether the majority prediction is correct;
    the level only uses its magnitude, which the multi-label form keeps. The authors' cell for
    this method refers to an undefined variable and does not run; this is our reading of it.
    ``update`` needs ``probabilities``.
    """

    options = ("window", "threshold", "selection_pressure", "selection_pressure_end")
    needs_predictions = True

    def __init__(self, labels, batch_size: int, *, window: int = 5, threshold: float = 0.5,
                 selection_pressure: float = 10.0, selection_pressure_end: float | None = 1.0,
                 warmup_epochs: int = 3, epochs: int = 100, seed: int = 0, device="cpu"):
        super().__init__(labels, batch_size, score_rule=PredictedLabelEntropy(threshold),
                         selection_pressure=selection_pressure,
                         selection_pressure_end=selection_pressure_end, warmup_epochs=warmup_epochs,
                         epochs=epochs, window=window, seed=seed,
                         device=device)

