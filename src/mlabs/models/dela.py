"""DELA: DuaL perspective of label-specific feature leArning (Hang & Zhang, ICML 2022).

Reimplemented from the paper and the official DELA code package (vendored in
``FloAvis/Masterthesis_TabPFN_HIV``, ``DELA/DELANet.py``); see
``docs/models.md`` and the project reference ``models.md`` section 5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import register
from .base import MultiLabelModel, StepOutput
from .layers import GroupedLinear, mlp, rand_like, randn_like
from .sizes import resolve_size

__all__ = ["DELA", "gumbel_sigmoid"]


def gumbel_sigmoid(logits: torch.Tensor, tau: float, hard: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary-Concrete (Gumbel-sigmoid) sample of gates with logits ``logits``.

    ``soft = sigmoid((logits + log u - log(1 - u)) / tau)``, ``u ~ U(0, 1)``
    (the difference of two Gumbel variables is logistic). With ``hard`` the
    forward value is ``soft > 0.5`` and the gradient is that of ``soft``
    (straight-through). ``u`` comes from ``generator`` (``None``: torch's global generator).
    """
    tiny = torch.finfo(logits.dtype).eps
    u = rand_like(logits, generator).clamp_(tiny, 1.0 - tiny)
    soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / tau)
    if not hard:
        return soft
    return (soft > 0.5).to(soft.dtype) + soft - soft.detach()


@register("dela")
class DELA(MultiLabelModel):
    """DELA, official configuration; the batch-selection authors' values are options.

    * Encoder: d -> 256 -> 512 -> 256 (ReLU, dropout), then linear heads
      ``mu`` (the latent embedding, size L) and ``logvar`` (log-variance of the
      perturbation noise), sharing the trunk.
    * Gates: logits Theta (q x L, init U(-10, 10)) through ``scale_layer``
      (L -> L, bias init 2.0); hard Gumbel-sigmoid samples s in {0, 1}^{q x L}
      with temperature ``tau``, straight-through, whose forward value is then
      clamped at ``off_noise`` (0.5): an "off" gate still lets half of the
      noise std through, which keeps ``log s`` and so the KL finite.
    * Training latent per label: ``z_j = mu + s_j * sigma * eps`` (one eps per
      sample, shared by the labels) -> ``(B, q, L)``.
    * Per-label decoder with shared weights: concat(x, z_j) -> 256 -> 512
      (ReLU), then one linear head per label (``GroupedLinear``, the official
      grouped ``Conv1d``) -> logits ``(B, q)``.

    Objective: ``q * mean BCE(logits, y) + beta * KL`` with KL the mean over
    the B x q pairs of ``KL(N(mu, diag(s^2 sigma^2)) || N(0, I))`` summed over
    L (``DELANet._KL``, including its ``log(s + 1e-6)``).

    Prediction: noise-free, ``z = mu(x)`` for every label; ``sigmoid(logits)``.

    Selection loss (``per_sample_loss``): mean BCE over labels of the logits
    of the training forward itself, i.e. with the perturbed latent and
    dropout, as in the batch-selection authors' code; no extra pass.

    Computation: the first decoder layer is linear in concat(x, z), so its x
    part is computed once per sample and broadcast over the q labels instead
    of on the ``(B, q, d)`` copy of x (same result, q times less work on the
    x part); at prediction the latent is the same for every label, so the
    decoder trunk runs once per sample and only the heads are per label.

    Parameters
    ----------
    n_features, n_labels : int
        ``d`` and ``q``.
    latent_dim : int or size rule, default 50
        L. Official default 50 (tuned values differ per data set, e.g. 64 for
        tmc2007, 256 for mediamill). ``"half_d"`` gives ceil(d / 2), the
        batch-selection authors' setting (rules: :mod:`mlabs.models.sizes`).
    tau : float, default 2/3
        Gumbel-sigmoid temperature (official and authors).
    off_noise : float, default 0.5
        Lower clamp of the gate's forward value (official). The authors' code
        comments the clamp out; ``off_noise=0`` reproduces that defect (KL
        term about 13.8 per off gate and dimension, half of -2 log 1e-6, and
        straight-through gradients of order 1e6), and is not recommended.
    beta : float, default 1.0
        KL weight (official default; the authors use 1e-4, the official tuned
        configurations 1e-4 ... 1.0).
    dropout : float, default 0.0
        Encoder dropout (official 0.0; authors 0.2).
    decoder_dropout : float, default 0.0
        Decoder dropout (official none; the authors' ``MLP`` default adds 0.2).
    lr_ratio : float, default 1.0
        Learning-rate multiplier of Theta and ``scale_layer`` (see
        :meth:`parameter_groups`). Official 1.0; the authors configure 0.8 but
        their scripts build one parameter group, so it has no effect there.
    """

    per_sample_objective_supported = True

    def __init__(self, n_features: int, n_labels: int, *, latent_dim: int | str = 50,
                 tau: float = 2.0 / 3.0, off_noise: float = 0.5, beta: float = 1.0,
                 dropout: float = 0.0, decoder_dropout: float = 0.0, lr_ratio: float = 1.0):
        super().__init__(n_features, n_labels)
        latent_dim = resolve_size(latent_dim, n_features=n_features, n_labels=n_labels, name="latent_dim")
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        if not 0.0 <= off_noise <= 1.0:
            raise ValueError(f"off_noise must be in [0, 1], got {off_noise}")
        d, q, L = n_features, n_labels, int(latent_dim)
        self.latent_dim = L
        self.tau, self.off_noise, self.beta = float(tau), float(off_noise), float(beta)
        self.lr_ratio = float(lr_ratio)

        self.encoder = mlp(d, [256, 512, 256], activation="relu", dropout=dropout,
                           output_activation=True)
        self.fc_mu = nn.Linear(256, L)
        self.fc_logvar = nn.Linear(256, L)
        self.gate_logits = nn.Parameter(torch.empty(q, L).uniform_(-10.0, 10.0))
        self.scale_layer = nn.Linear(L, L)
        nn.init.constant_(self.scale_layer.bias, 2.0)
        self.decoder = mlp(d + L, [256, 512], activation="relu", dropout=decoder_dropout,
                           output_activation=True)
        self.classifier = GroupedLinear(q, 512)

    # -- pieces -------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def sample_gates(self) -> torch.Tensor:
        """Hard straight-through gates ``(q, L)`` with the ``off_noise`` clamp on the forward value."""
        s = gumbel_sigmoid(self.scale_layer(self.gate_logits), self.tau, hard=True, generator=self.generator)
        return s.clamp(min=self.off_noise).detach() + s - s.detach()

    def decode(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, q)`` from ``x`` ``(B, d)`` and ``z`` ``(B, q, L)`` or ``(B, L)`` (same for all labels)."""
        first = self.decoder[0]
        d = self.n_features
        # Linear(concat(x, z)) = W_x x + W_z z + b: do the x part once per sample
        hx = F.linear(x, first.weight[:, :d], first.bias)
        hz = F.linear(z, first.weight[:, d:])
        h = self.decoder[1:](hz + (hx.unsqueeze(1) if z.dim() == 3 else hx))
        if h.dim() == 2:
            h = h.unsqueeze(1).expand(-1, self.n_labels, -1)
        return self.classifier(h)

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """Mean over B x q of KL(N(mu, s^2 sigma^2) || N(0, I)), summed over L (official form)."""
        mu, logvar, s = mu.unsqueeze(1), logvar.unsqueeze(1), gates.unsqueeze(0)
        kl = -logvar - 2.0 * torch.log(s + 1e-6) - 1.0 + torch.exp(logvar) * s.pow(2) + mu.pow(2)
        return 0.5 * kl.sum(dim=2).mean()

    # -- interface ----------------------------------------------------------------------------
    def losses(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Classification and KL terms, the total ``loss``, the training ``logits`` and ``gates``."""
        mu, logvar = self.encode(x)
        gates = self.sample_gates()
        eps = randn_like(mu, self.generator)
        z = mu.unsqueeze(1) + gates.unsqueeze(0) * (torch.exp(0.5 * logvar) * eps).unsqueeze(1)
        logits = self.decode(x, z)
        cls = F.binary_cross_entropy_with_logits(logits, y) * self.n_labels
        kl = self.kl(mu, logvar, gates)
        # both terms are means over the batch of per-sample terms (DELA has no batch-level term)
        per_sample = (F.binary_cross_entropy_with_logits(logits, y, reduction="none").sum(dim=1)
                      + self.beta * self.kl_per_sample(mu, logvar, gates))
        return {"loss": cls + self.beta * kl, "cls": cls, "kl": kl, "logits": logits, "gates": gates,
                "per_sample": per_sample}

    def kl_per_sample(self, mu: torch.Tensor, logvar: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """:meth:`kl` per sample ``(B,)``: the mean over labels, summed over L."""
        mu, logvar, s = mu.unsqueeze(1), logvar.unsqueeze(1), gates.unsqueeze(0)
        kl = -logvar - 2.0 * torch.log(s + 1e-6) - 1.0 + torch.exp(logvar) * s.pow(2) + mu.pow(2)
        return 0.5 * kl.sum(dim=2).mean(dim=1)

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        """Full DELA objective; selection loss from the logits of this (perturbed) forward."""
        terms = self.losses(x, y)
        return StepOutput.from_prediction(terms["loss"], y, logits=terms["logits"],
                                          per_sample_objective=terms["per_sample"],
                                          batch_objective=torch.zeros_like(terms["loss"]))

    def _predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encode(x)
        return torch.sigmoid(self.decode(x, mu))

    def parameter_groups(self, lr: float) -> list[dict]:
        """Gate logits Theta and ``scale_layer`` at ``lr * lr_ratio``, the rest at ``lr``."""
        gate_ids = {id(self.gate_logits), *(id(p) for p in self.scale_layer.parameters())}
        gate = [p for p in self.parameters() if id(p) in gate_ids and p.requires_grad]
        rest = [p for p in self.parameters() if id(p) not in gate_ids and p.requires_grad]
        return [{"params": rest, "lr": lr}, {"params": gate, "lr": lr * self.lr_ratio}]
