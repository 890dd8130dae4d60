"""D2ACE (Liu et al., arXiv 2605.09400): uncertainty and hardness mixed, with label context."""

from __future__ import annotations

import torch

from ._validation import as_label_matrix, check_batch_size, check_positive_int, check_same_rows
from .imbalance import k_nearest_neighbors
from .predictions import PredictionWindow
from .probabilities import exact_sum, min_max_level_weights
from .scheduled import ScheduledSampler, ScoreRule
from .schedules import LinearSchedule

__all__ = ["D2ACEBatchSampler", "DualDynamics"]


class DualDynamics(ScoreRule):
    """D2ACE's scoring rule: a ``beta``-mixture of the uncertainty and the hardness distributions.

    Parameters
    ----------
    labels : torch.Tensor, shape (N, q), bool
    features : array-like or scipy.sparse, shape (N, d)
        Scaled training features, for the ``k_neighbors`` nearest neighbours of the local context.
    k_neighbors : int
    beta : callable
        ``beta(epoch)``, the weight of the uncertainty distribution (a :class:`LinearSchedule`).
    """

    needs_window = True

    def __init__(self, labels: torch.Tensor, features, k_neighbors: int, beta):
        self.k_neighbors = check_positive_int(k_neighbors, "k_neighbors")
        self.beta = beta
        n, q = labels.shape
        device = labels.device
        nn_idx = k_nearest_neighbors(features, min(self.k_neighbors, n - 1), device=device)
        self._context = labels | labels[nn_idx].any(dim=1)                # Z, (N, q) bool
        self._yf = labels.to(torch.float32)
        self._entry_loss = torch.zeros((n, q), dtype=torch.float32, device=device)
        self._flip = torch.zeros_like(self._entry_loss)

    # -- metrics ---------------------------------------------------------------------------------
    def hardness(self) -> torch.Tensor:
        """H (N, q)."""
        return (-torch.expm1(-self._entry_loss)) * (1.0 - self._flip)

    def label_weights(self, metric: torch.Tensor) -> torch.Tensor:
        """Dynamic label weights ``v_j = exp(mean_i M_ij / 2 + std_i M_ij / 2)`` (population std)."""
        return torch.exp(0.5 * metric.mean(0) + 0.5 * metric.std(0, unbiased=False))

    def sample_scores(self, metric: torch.Tensor) -> torch.Tensor:
        """``sum_j v_j M_ij (1 + Y_ij S_ij)`` for a metric M (N, q)."""
        v = self.label_weights(metric)
        masked = metric * self._yf
        cols = masked / (masked.norm(dim=0, keepdim=True) + 1e-8)
        corr = cols.T @ cols
        corr = corr / corr.sum(1, keepdim=True).clamp(min=1e-12)
        context = self._context.to(torch.float32) @ corr.T
        return (metric * v * (1.0 + self._yf * context)).sum(1)

    # -- the rule --------------------------------------------------------------------------------
    def observe(self, idx: torch.Tensor, probs: torch.Tensor, window: PredictionWindow) -> None:
        had = (window.count.index_select(0, idx) > 0).to(torch.float32)[:, None]
        prev = window.latest(idx)  # O(batch), not O(N)
        flip = 0.7 * (probs - prev).abs() * had + 0.3 * self._flip.index_select(0, idx)
        self._flip.index_copy_(0, idx, flip)
        p = probs.clamp(1e-7, 1 - 1e-7)
        y = self._yf.index_select(0, idx)
        self._entry_loss.index_copy_(0, idx, -(y * torch.log(p) + (1 - y) * torch.log1p(-p)))

    def weights(self, loss, window, epoch, log_se):
        # the mixture of the two level distributions, normalised by exact sums (machine-independent)
        w_unc = min_max_level_weights(self.sample_scores(window.uncertainty()), log_se)
        w_hard = min_max_level_weights(self.sample_scores(self.hardness()), log_se)
        beta = self.beta(epoch)
        mix = w_unc.mul_(beta / exact_sum(w_unc)).add_(w_hard.mul_((1.0 - beta) / exact_sum(w_hard)))
        return mix.div_(mix.max())

    def log_weights(self, loss, window, epoch, log_se):
        return torch.log(self.weights(loss, window, epoch, log_se))

    def state_dict(self) -> dict:
        return {"entry_loss": self._entry_loss.cpu().clone(), "flip": self._flip.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        for key in ("entry_loss", "flip"):
            if key not in state or tuple(state[key].shape) != tuple(self._flip.shape):
                raise ValueError(f"state_dict of D2ACE lacks {key!r} of shape {tuple(self._flip.shape)}; restore a "
                                 "state of a D2ACE sampler built with the same data")
        device = self._flip.device
        self._entry_loss = state["entry_loss"].to(device).clone()
        self._flip = state["flip"].to(device).clone()


class D2ACEBatchSampler(ScheduledSampler):
    """Bernoulli mixture of an uncertainty and a noise-resistant hardness distribution.

    Bin Liu, Haoyu Peng, Zhijia Wei, Jiajing Zhang, Grigorios Tsoumakas, *D2ACE: Multi-Label
    Batch Selection Guided by Dual Dynamics and Adaptive Correlation Enhancement*, IJCAI-ECAI
    2026, arXiv 2605.09400 (docs/selection.md, "Other batch-selection methods").

    For metric M in {E (uncertainty), H (hardness)}, per sample i and label j:

    * ``E_ij = 1/2 mean_t |p_t - p_(t-1)| + 1/2 H_b(p_now)`` over the last ``window`` predictions;
    * ``H_ij = (1 - exp(-l_ij)) (1 - f_ij)``, ``l_ij`` the latest binary cross-entropy of label j
      and ``f_ij <- 0.7 |p_t - p_(t-1)| + 0.3 f_ij`` an average of recent flips (noise resistance);
    * dynamic label weights ``v_j = exp(mean_i M_ij / 2 + std_i M_ij / 2)``, recomputed each epoch;
    * local context ``Z_ij = 1`` if the sample or one of its ``k_neighbors`` nearest neighbours
      (Euclidean, training features) carries label j; label correlation ``C`` = cosine
      similarity of the columns of ``M * Y``, rows normalised to sum 1; ``S = Z C^T``;
    * score ``s_i = sum_j v_j M_ij (1 + Y_ij S_ij)``.

    Each score gives quantized-level probabilities (step 1/N on the min-max normalised score,
    ``p ~ exp(-log(s) Q / N)``) at a pressure decaying exponentially from ``selection_pressure``
    to ``selection_pressure_end``; the sampler draws from ``beta_t p_E + (1 - beta_t) p_H`` with
    ``beta_t`` linear from ``beta_start`` at the first selection epoch to ``beta_end`` two thirds
    of the way to the last epoch (published: epoch 10 to 70 of 100), constant afterwards.

    Parameters
    ----------
    labels : array-like, shape (N, q)
    batch_size : int
    features : array-like or scipy.sparse, shape (N, d)
        Scaled training features, for the neighbourhoods (required).
    window : int, default 5
    k_neighbors : int, default 6
    selection_pressure : float, default 8
    selection_pressure_end : float, default 1
    beta_start, beta_end : float, default 0.7, 0.3
    warmup_epochs, epochs, seed, device
        As for the other samplers.

    Notes
    -----
    Differences from the released code (``iunanyou/D2ACE``): the hardness transform is
    ``1 - exp(-l)`` in [0, 1), the evident intent, where the code's ``1 - expm1(-l)`` equals
    ``2 - exp(-l)``; every batch has B distinct samples (the code's last batch is smaller); the
    warm-up is the protocol's shared one. ``update`` needs ``probabilities``.
    """

    options = ("window", "k_neighbors", "selection_pressure", "selection_pressure_end", "beta_start", "beta_end")
    needs_features = True
    needs_predictions = True

    def __init__(self, labels, batch_size: int, *, features=None, window: int = 5, k_neighbors: int = 6,
                 selection_pressure: float = 8.0, selection_pressure_end: float | None = 1.0,
                 beta_start: float = 0.7, beta_end: float = 0.3, warmup_epochs: int = 3, epochs: int = 100,
                 seed: int = 0, device="cpu"):
        y = as_label_matrix(labels, device)
        check_batch_size(batch_size, y.shape[0])  # before the O(N^2) neighbours
        if features is None:
            raise ValueError("D2ACEBatchSampler needs features= (the scaled training features) for its local "
                             "label context of nearest neighbours")
        check_same_rows(features, y.shape[0])
        for name, b in (("beta_start", beta_start), ("beta_end", beta_end)):
            if not 0.0 <= float(b) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {b!r}")
        # beta moves linearly over the first 2/3 of the selection epochs, then stays
        t0 = check_positive_int(warmup_epochs, "warmup_epochs", minimum=0)
        t1 = t0 + (2.0 / 3.0) * (check_positive_int(epochs, "epochs") - 1 - t0)
        rule = DualDynamics(y, features, k_neighbors, LinearSchedule(beta_start, beta_end, t0, t1))
        super().__init__(y, batch_size, score_rule=rule, selection_pressure=selection_pressure,
                         selection_pressure_end=selection_pressure_end, warmup_epochs=warmup_epochs,
                         epochs=epochs, window=window, seed=seed,
                         device=device)

    def beta(self, epoch: int | None = None) -> float:
        """Weight of the uncertainty distribution in the mixture at ``epoch`` (default: the current)."""
        return self.score_rule.beta(self._epoch if epoch is None else epoch)
