"""MPVAE: Multivariate Probit Variational AutoEncoder (Bai, Kong & Gomes, IJCAI 2020).

Reimplemented from the paper and the official TensorFlow code
(``JunwenBai/MPVAE``); see ``docs/models.md`` and the project reference
``models.md`` section 2.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import register
from .base import MultiLabelModel, StepOutput
from .layers import kl_diag_gaussians, l2_weight_sum, mlp, pairwise_exp_rank_loss, randn_like, reparameterize

__all__ = ["MPVAE"]

#: upper bound on the elements of one ``[draws, B, max(q, z_dim)]`` block at inference
_DRAW_BLOCK_ELEMENTS = 1 << 22


@register("mpvae")
class MPVAE(MultiLabelModel):
    """Multivariate Probit VAE.

    Architecture (official):

    * label encoder q(z | x, y): concat(x, y) -> 512 -> 256 (ReLU, dropout)
      -> linear heads ``mu_e``, ``logvar_e`` (size L, times ``scale_coeff``);
    * feature encoder p(z | x): x -> 256 -> 512 -> 256 (ReLU, dropout) -> heads
      ``mu_x``, ``logvar_x``;
    * one shared noise draw ``eps``: ``z_e = mu_e + eps sigma_e``,
      ``z_x = mu_x + eps sigma_x``;
    * decoder concat(x, z) -> 256 -> 512 (ReLU), **shared** by both branches,
      with one linear head of size q per branch (``label_mp_mu``,
      ``feat_mp_mu``);
    * multivariate probit: R (q x z_dim, init U(+-sqrt(6 / (q + z_dim)))),
      Sigma = R R^T + I. For S draws ``n ~ N(0, I_{z_dim})`` (shared by the two
      branches, independent per sample), ``r = n R^T + mu`` and
      ``E = Phi(r) (1 - eps) + eps / 2``, eps = 1e-6.

    Objective (official weights, every term a mean over the batch)::

        loss = 0.5 * l2_penalty * sum ||W||^2
               + nll_coeff * (NLL_label + NLL_feat)
               + c_coeff   * (RL_label + RL_feat)
               + kl_coeff  * KL(q(z|x,y) || p(z|x))

    * NLL: ``-log mean_S prod_j Bernoulli(y_j; E_j)`` by log-sum-exp over the
      S draws;
    * RL: C2AE's ranking loss ``sum_{p,n} exp(-5 (E_p - E_n)) / (5 |Y+| |Y-|)``,
      0 for samples without positives or negatives, averaged over draws and
      samples;
    * KL between the two diagonal Gaussians, 1e-6 added to the prior variance
      in the mean term, as in the official code.

    The official code builds the ``[S, B, q, q]`` pairwise tensor for RL
    (1.5 GB at q = 170 with S = 100, B = 128). Here the pairwise sum is
    factorised exactly (:func:`~mlabs.models.layers.pairwise_exp_rank_loss`),
    so RL costs O(S B q) time and memory, the same order as the NLL; no
    chunking over S or reduction of S is needed for the data sets of the study.

    Prediction (official ``test.py``): feature branch only, dropout off, one
    latent draw ``z_x``, probability = mean of E over ``n_test_sample`` probit
    draws. The draws are processed in blocks of at most ~4 M elements, so
    memory stays bounded whatever ``n_test_sample``; the cost is
    O(n_test_sample * B * q * z_dim) (for large q consider lowering
    ``n_test_sample``).

    Selection loss (``per_sample_loss``): from the same training forward, the
    feature-branch probabilities averaged over the S draws (``indiv_prob`` of
    the official code), mean BCE over labels against y. The label branch sees
    y and is never used for it.

    Parameters
    ----------
    n_features, n_labels : int
        ``d`` and ``q``.
    latent_dim : int, default 50
        L (``latent_dim``; no official script changes it).
    z_dim : int or None, default None
        Columns of R; None means q (every official script sets z_dim = q; the
        config default 100 is never used).
    dropout : float, default 0.5
        Dropout probability in both encoders (keep-prob 0.5).
    n_train_sample : int, default 100
        Probit draws S per training sample.
    n_test_sample : int, default 10000
        Probit draws at prediction (the official scripts; 5 for delicious).
    nll_coeff : float, default 0.1
    c_coeff : float, default 200.0
        Config defaults of the official code (the per-data-set scripts tune
        them, e.g. yeast 0.1 / 20; see ``docs/models.md``).
    kl_coeff : float, default 1.1
        beta of the beta-VAE, hard-coded 1.1 in the official code.
    l2_penalty : float, default 1e-5
        ``weight_decay`` of the official slim regularizer on every fully
        connected weight matrix (not biases, not R), applied as
        ``l2_penalty * sum ||W||^2 / 2`` (``tf.nn.l2_loss``), ``l2_coeff`` = 1.
    scale_coeff : float, default 1.0
        Multiplier of the encoder heads.
    prob_eps : float, default 1e-6
        The eps of ``E = Phi(r)(1 - eps) + eps/2``.
    rank_scale : float, default 5.0
        The constant 5 of the ranking loss (both in the exponent and in the
        divisor, as in the official code).
    """

    per_sample_objective_supported = True

    def __init__(self, n_features: int, n_labels: int, *, latent_dim: int = 50,
                 z_dim: int | None = None, dropout: float = 0.5, n_train_sample: int = 100,
                 n_test_sample: int = 10000, nll_coeff: float = 0.1, c_coeff: float = 200.0,
                 kl_coeff: float = 1.1, l2_penalty: float = 1e-5, scale_coeff: float = 1.0,
                 prob_eps: float = 1e-6, rank_scale: float = 5.0):
        super().__init__(n_features, n_labels)
        z_dim = n_labels if z_dim is None else int(z_dim)
        if latent_dim < 1 or z_dim < 1 or n_train_sample < 1 or n_test_sample < 1:
            raise ValueError("latent_dim, z_dim, n_train_sample and n_test_sample must be >= 1")
        d, q, L = n_features, n_labels, int(latent_dim)
        self.latent_dim, self.z_dim = L, z_dim
        self.n_train_sample, self.n_test_sample = int(n_train_sample), int(n_test_sample)
        self.nll_coeff, self.c_coeff, self.kl_coeff = float(nll_coeff), float(c_coeff), float(kl_coeff)
        self.l2_penalty, self.scale_coeff = float(l2_penalty), float(scale_coeff)
        self.prob_eps, self.rank_scale = float(prob_eps), float(rank_scale)

        # slim.fully_connected defaults: Glorot-uniform weights, zero biases
        enc = dict(activation="relu", dropout=dropout, output_activation=True, init="glorot")
        self.label_encoder = mlp(d + q, [512, 256], **enc)
        self.label_mu = mlp(256, [L], output_activation=False, init="glorot")
        self.label_logvar = mlp(256, [L], output_activation=False, init="glorot")
        self.feat_encoder = mlp(d, [256, 512, 256], **enc)
        self.feat_mu = mlp(256, [L], output_activation=False, init="glorot")
        self.feat_logvar = mlp(256, [L], output_activation=False, init="glorot")
        self.decoder = mlp(d + L, [256, 512], activation="relu", output_activation=True, init="glorot")
        self.label_mp_mu = mlp(512, [q], output_activation=False, init="glorot")
        self.feat_mp_mu = mlp(512, [q], output_activation=False, init="glorot")
        bound = math.sqrt(6.0 / (q + z_dim))
        self.r_sqrt_sigma = nn.Parameter(torch.empty(q, z_dim).uniform_(-bound, bound))

    # -- pieces -------------------------------------------------------------------------------
    @property
    def covariance(self) -> torch.Tensor:
        """Sigma = R R^T + I (q x q), positive definite by construction."""
        r = self.r_sqrt_sigma
        return r @ r.T + torch.eye(self.n_labels, device=r.device, dtype=r.dtype)

    def encode_label(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.label_encoder(torch.cat([x, y], dim=1))
        return self.label_mu(h) * self.scale_coeff, self.label_logvar(h) * self.scale_coeff

    def encode_feat(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.feat_encoder(x)
        return self.feat_mu(h) * self.scale_coeff, self.feat_logvar(h) * self.scale_coeff

    def probit_noise(self, n_draws: int, batch: int) -> torch.Tensor:
        """``n R^T`` for ``n ~ N(0, I_{z_dim})`` from the current mode's stream: shape ``(n_draws, batch, q)``."""
        r = self.r_sqrt_sigma
        noise = torch.randn(n_draws, batch, self.z_dim, device=r.device, dtype=r.dtype, generator=self.generator)
        return noise @ r.T

    def probit_prob(self, mean: torch.Tensor, noise_r: torch.Tensor) -> torch.Tensor:
        """``E = Phi(noise_r + mean) (1 - eps) + eps / 2``, in ``[eps/2, 1 - eps/2]``."""
        return torch.special.ndtr(noise_r + mean) * (1.0 - self.prob_eps) + 0.5 * self.prob_eps

    def branch_losses(self, probs: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean NLL (log-sum-exp over draws) and mean ranking loss of ``probs`` ``(S, B, q)``."""
        nll, rank = self.branch_terms(probs, y)
        return nll.mean(), rank.mean()

    def branch_terms(self, probs: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample NLL ``(B,)`` and per-draw ranking loss ``(S, B)`` of :meth:`branch_losses`."""
        logprob = (y * torch.log(probs) + (1.0 - y) * torch.log1p(-probs)).sum(dim=2)   # (S, B)
        nll = -(torch.logsumexp(logprob, dim=0) - math.log(probs.shape[0]))
        rank = pairwise_exp_rank_loss(probs, y, self.rank_scale) / self.rank_scale     # (S, B)
        return nll, rank

    # -- interface ----------------------------------------------------------------------------
    def losses(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every term of the objective, the total ``loss`` and the feature-branch ``indiv_prob``."""
        mu_e, logvar_e = self.encode_label(x, y)
        mu_x, logvar_x = self.encode_feat(x)
        eps = randn_like(mu_e, self.generator)             # one draw shared by both branches
        z_e = reparameterize(mu_e, logvar_e, eps)
        z_x = reparameterize(mu_x, logvar_x, eps)
        kl = kl_diag_gaussians(mu_e, logvar_e, mu_x, logvar_x, var_eps=1e-6).mean()

        label_mean = self.label_mp_mu(self.decoder(torch.cat([x, z_e], dim=1)))
        feat_mean = self.feat_mp_mu(self.decoder(torch.cat([x, z_x], dim=1)))
        noise_r = self.probit_noise(self.n_train_sample, x.shape[0])   # shared, as in the official code
        e_label = self.probit_prob(label_mean, noise_r)
        e_feat = self.probit_prob(feat_mean, noise_r)
        # per-sample terms once; their means are the terms of branch_losses, bit for bit
        nll_label_i, rank_label_si = self.branch_terms(e_label, y)
        nll_feat_i, rank_feat_si = self.branch_terms(e_feat, y)
        nll_label, rank_label = nll_label_i.mean(), rank_label_si.mean()
        nll_feat, rank_feat = nll_feat_i.mean(), rank_feat_si.mean()
        l2 = 0.5 * l2_weight_sum([self.label_encoder, self.label_mu, self.label_logvar,
                                  self.feat_encoder, self.feat_mu, self.feat_logvar,
                                  self.decoder, self.label_mp_mu, self.feat_mp_mu])
        loss = (self.l2_penalty * l2 + self.nll_coeff * (nll_label + nll_feat)
                + self.c_coeff * (rank_label + rank_feat) + self.kl_coeff * kl)
        # every term but the L2 penalty is a mean over the batch of per-sample terms (the ranking
        # loss also over the S probit draws, which the samples share)
        per_sample = (self.nll_coeff * (nll_label_i + nll_feat_i)
                      + self.c_coeff * (rank_label_si.mean(dim=0) + rank_feat_si.mean(dim=0))
                      + self.kl_coeff * kl_diag_gaussians(mu_e, logvar_e, mu_x, logvar_x, var_eps=1e-6))
        return {"loss": loss, "nll_label": nll_label, "nll_feat": nll_feat, "rank_label": rank_label,
                "rank_feat": rank_feat, "kl": kl, "l2": l2, "indiv_prob": e_feat.mean(dim=0),
                "per_sample": per_sample, "batch": self.l2_penalty * l2}

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        """Full MPVAE objective; selection loss from the feature branch of the same forward."""
        terms = self.losses(x, y)
        return StepOutput.from_prediction(terms["loss"], y, probs=terms["indiv_prob"],
                                          per_sample_objective=terms["per_sample"], batch_objective=terms["batch"])

    def _predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        mu_x, logvar_x = self.encode_feat(x)
        z_x = reparameterize(mu_x, logvar_x, generator=self.generator)  # one latent draw, as in test.py
        mean = self.feat_mp_mu(self.decoder(torch.cat([x, z_x], dim=1)))
        n, block = x.shape[0], max(1, _DRAW_BLOCK_ELEMENTS // (max(1, x.shape[0]) * max(self.n_labels, self.z_dim)))
        total = torch.zeros_like(mean)
        done = 0
        while done < self.n_test_sample:
            k = min(block, self.n_test_sample - done)
            total += self.probit_prob(mean, self.probit_noise(k, n)).sum(dim=0)
            done += k
        return total / self.n_test_sample
