"""Label-conditional normalizing flows for PACA's prototype distributions.

PACA (Hang & Zhang, AAAI 2022) models, for every label ``j``, a "positive" and
a "negative" prototype distribution over the latent space ``R^L``. Each is a
normalizing flow conditioned on the one-hot code of label ``j``:

    z  --(conditional deep-sigmoidal NAF layer)-->  h
       --(conditional affine layer)-->              u ~ N(0, I_L)

so ``log p_j(z) = log N(u; 0, I) + log|det dh/dz| + log|det du/dh|``.

Every flow here evaluates **all q label codes at once**: the conditioning code
is always one of the ``q`` one-hot vectors, so a linear map of the code is a
lookup table of ``q`` rows, and a latent point ``z`` of shape ``(B, L)`` is
scored against every label, giving ``(B, q)`` log-densities. Because the
first conditioner layer acts on ``z`` (the same for all labels) and on the
code (the same for all samples), it is computed on ``(B, H)`` and ``(q, H)``
separately and broadcast, instead of on a ``(B, q, ·)`` tensor.

Design notes (differences from the public re-implementation, which exists in
``iunanyou/D2ACE`` ``layers.py``, see ``models.md`` section 3):

* The masked conditioner emits ``context_dim`` values per latent dimension,
  a fixed number, which a linear map shared by all dimensions turns into the
  ``3 * n_sigmoids`` deep-sigmoidal parameters. The public code uses
  ``3 * (hidden // L)`` values per dimension, which is 0 for ``L > hidden``
  and breaks the model for wide inputs.
* The code also reaches the conditioner output directly (a per-label bias on
  the emitted parameters). With MADE masks the first latent dimension sees
  no hidden unit, so without this term its sigmoidal transform could not
  depend on the label.
* The deep-sigmoidal transform ``logit(u)`` is computed as
  ``log(u) - log(1 - u)`` with ``1 - u = sum_k w_k sigmoid(-s_k)`` evaluated
  directly, instead of clipping ``u`` to ``[eps, 1 - eps]``: exact up to
  float precision, and finite (clamped at the smallest normal float) only
  when every sigmoid is saturated beyond ``|s| ~ 87``; a fully log-space
  version (log-sum-exp of log-sigmoids) would cost ~25 % more on CPU.
* The conditional affine layer's scale and shift are per-label tables, the
  exact equivalent, for one-hot codes, of the public residual MLPs of the
  code; they start at the identity (scale 1, shift 0) as there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConditionalMADE", "ConditionalDSF", "ConditionalAffine", "PrototypeFlow"]

_LOG_2PI = math.log(2.0 * math.pi)


def _broadcast_latent(z: torch.Tensor, n_codes: int) -> torch.Tensor:
    """View ``z`` as ``(B, 1, L)`` (shared by all labels) or check ``(B, q, L)``."""
    if z.dim() == 2:
        return z.unsqueeze(1)
    if z.dim() == 3 and z.shape[1] in (1, n_codes):
        return z
    raise ValueError(f"latent points must be (B, L) or (B, {n_codes}, L), got {tuple(z.shape)}")


class ConditionalMADE(nn.Module):
    """Autoregressive conditioner ``c_i = f(z_{<i}, label)`` (masked MLP).

    One hidden layer of ``hidden_dim`` ELU units with MADE masks (input
    degrees ``1..L`` in order, hidden degrees assigned cyclically in
    ``1..L-1``), so that output block ``i`` depends on ``z_1..z_{i-1}`` only.
    The one-hot label code enters the hidden layer (a table of ``q`` rows) and
    the output (a per-label bias).

    Parameters
    ----------
    dim : int
        Latent size ``L``.
    n_codes : int
        Number of labels ``q`` (one-hot codes).
    hidden_dim : int
        Width of the masked hidden layer.
    context_dim : int
        Values emitted per latent dimension.

    Shapes: ``forward(z)`` with ``z`` ``(B, L)`` or ``(B, q, L)`` returns
    ``(B, q, L, context_dim)``.
    """

    def __init__(self, dim: int, n_codes: int, *, hidden_dim: int = 256, context_dim: int = 12):
        super().__init__()
        if min(dim, n_codes, hidden_dim, context_dim) < 1:
            raise ValueError("dim, n_codes, hidden_dim and context_dim must be >= 1")
        self.dim, self.n_codes = int(dim), int(n_codes)
        self.hidden_dim, self.context_dim = int(hidden_dim), int(context_dim)

        deg_in = torch.arange(1, dim + 1)
        deg_hidden = torch.arange(hidden_dim) % max(dim - 1, 1) + 1
        deg_out = deg_in.repeat_interleave(context_dim)  # output row i*c + k belongs to dim i
        # hidden unit may see inputs of degree <= its own; output of dim i only hidden units of
        # degree < i, which makes the map strictly autoregressive
        self.register_buffer("mask_in", (deg_hidden[:, None] >= deg_in[None, :]).float())
        self.register_buffer("mask_out", (deg_out[:, None] > deg_hidden[None, :]).float())

        self.lin_in = nn.Linear(dim, hidden_dim)
        self.lin_out = nn.Linear(hidden_dim, dim * context_dim)
        # linear maps of a one-hot code are lookup tables: (q, H) into the hidden layer and
        # (q, L*c) straight into the output
        self.code_hidden = nn.Parameter(torch.empty(n_codes, hidden_dim))
        self.code_out = nn.Parameter(torch.zeros(n_codes, dim * context_dim))
        bound = 1.0 / math.sqrt(n_codes)  # what nn.Linear(q, H) would use
        nn.init.uniform_(self.code_hidden, -bound, bound)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = _broadcast_latent(z, self.n_codes)
        # (B, 1 or q, H) + (q, H): the z-part is computed once for all labels when z is shared
        h = F.linear(z, self.lin_in.weight * self.mask_in, self.lin_in.bias) + self.code_hidden
        h = F.elu(h)
        out = F.linear(h, self.lin_out.weight * self.mask_out, self.lin_out.bias) + self.code_out
        return out.unflatten(-1, (self.dim, self.context_dim))


class ConditionalDSF(nn.Module):
    """Conditional neural autoregressive flow layer with a deep-sigmoidal transform.

    Per latent dimension ``i`` and label ``j`` (Huang et al., ICML 2018):
    ``h_i = logit( sum_k w_k * sigmoid(a_k * z_i + b_k) )`` with ``a_k > 0``
    (softplus), ``w`` on the simplex (softmax) and ``(a, b, w)`` produced by a
    :class:`ConditionalMADE` from ``z_{<i}`` and the label. Strictly
    increasing in ``z_i``, hence invertible, with a triangular Jacobian.

    Parameters
    ----------
    dim, n_codes : int
        Latent size ``L`` and number of labels ``q``.
    hidden_dim : int
        Conditioner hidden width (256 in the public PACA code).
    context_dim : int
        Conditioner values per dimension, mapped to the ``3 * n_sigmoids``
        transform parameters by a linear layer shared across dimensions.
        Independent of ``L`` (see module notes).
    n_sigmoids : int
        Sigmoid units of the transform (16 in the public code).
    """

    def __init__(self, dim: int, n_codes: int, *, hidden_dim: int = 256, context_dim: int = 12,
                 n_sigmoids: int = 16):
        super().__init__()
        self.dim, self.n_codes, self.n_sigmoids = int(dim), int(n_codes), int(n_sigmoids)
        self.conditioner = ConditionalMADE(dim, n_codes, hidden_dim=hidden_dim, context_dim=context_dim)
        self.to_params = nn.Linear(context_dim, 3 * n_sigmoids)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform ``z`` for every label.

        Returns
        -------
        h : Tensor ``(B, q, L)``
        log_det : Tensor ``(B, q)``, ``sum_i log dh_i/dz_i``.
        """
        z = _broadcast_latent(z, self.n_codes)
        params = self.to_params(self.conditioner(z))            # (B, q, L, 3K)
        pre_a, b, pre_w = params.split(self.n_sigmoids, dim=-1)
        a = F.softplus(pre_a)
        w = torch.softmax(pre_w, dim=-1)
        s = a * z.unsqueeze(-1) + b                              # (B, q, L, K)
        # sigmoid(-s) is computed directly, not as 1 - sigmoid(s), so that 1 - u keeps its
        # precision when the sigmoids saturate (no clipping of u to [eps, 1 - eps] needed)
        sig, sig_neg = torch.sigmoid(s), torch.sigmoid(-s)
        tiny = torch.finfo(s.dtype).tiny
        u = (w * sig).sum(-1).clamp_min(tiny)
        one_minus_u = (w * sig_neg).sum(-1).clamp_min(tiny)
        # dh/dz = sum_k w_k a_k sig_k (1 - sig_k) / (u (1 - u)); the clamps only act when every
        # sigmoid is saturated beyond |s| ~ 87 and keep the log-density finite there
        du = (w * a * sig * sig_neg).sum(-1).clamp_min(tiny)
        log_u, log_1mu = torch.log(u), torch.log(one_minus_u)
        h = log_u - log_1mu
        log_det = (torch.log(du) - log_u - log_1mu).sum(-1)
        return h, log_det


class ConditionalAffine(nn.Module):
    """Label-conditional element-wise affine layer ``u = h * s_j + t_j``.

    ``s_j = softplus(.) > 0`` and ``t_j`` are per-label tables of size ``L``,
    initialised to the identity (``s = 1``, ``t = 0``) plus tiny noise.
    """

    def __init__(self, dim: int, n_codes: int):
        super().__init__()
        self.dim, self.n_codes = int(dim), int(n_codes)
        inv_softplus_one = math.log(math.e - 1.0)
        self.scale_raw = nn.Parameter(torch.empty(n_codes, dim).uniform_(-1e-3, 1e-3) + inv_softplus_one)
        self.shift = nn.Parameter(torch.empty(n_codes, dim).uniform_(-1e-3, 1e-3))

    def scale(self) -> torch.Tensor:
        return F.softplus(self.scale_raw).clamp_min(1e-12)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``h`` ``(B, q, L)`` -> ``(u, log_det)`` with ``log_det`` of shape ``(1, q)``."""
        s = self.scale()
        return h * s + self.shift, torch.log(s).sum(-1).unsqueeze(0)

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        return (u - self.shift) / self.scale()


class PrototypeFlow(nn.Module):
    """One prototype family: ``q`` label-conditional densities on ``R^L``.

    A :class:`ConditionalDSF` layer followed by a :class:`ConditionalAffine`
    layer onto the base distribution ``N(0, I_L)``.

    Parameters
    ----------
    dim, n_codes : int
        Latent size ``L`` and number of labels ``q``.
    hidden_dim, context_dim, n_sigmoids : int
        See :class:`ConditionalDSF`.
    """

    def __init__(self, dim: int, n_codes: int, *, hidden_dim: int = 256, context_dim: int = 12,
                 n_sigmoids: int = 16):
        super().__init__()
        self.dim, self.n_codes = int(dim), int(n_codes)
        self.dsf = ConditionalDSF(dim, n_codes, hidden_dim=hidden_dim, context_dim=context_dim,
                                  n_sigmoids=n_sigmoids)
        self.affine = ConditionalAffine(dim, n_codes)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map ``z`` ``(B, L)`` or ``(B, q, L)`` to base space: ``(u (B, q, L), log_det (B, q))``."""
        h, ld1 = self.dsf(z)
        u, ld2 = self.affine(h)
        return u, ld1 + ld2

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log p_j(z)`` for every label ``j``: ``(B, q)``."""
        u, log_det = self.forward(z)
        return -0.5 * (u.pow(2).sum(-1) + self.dim * _LOG_2PI) + log_det

    @torch.no_grad()
    def inverse(self, u: torch.Tensor, *, n_iter: int = 100, bound: float = 1e3) -> torch.Tensor:
        """Numerical inverse ``z = T^{-1}(u)`` for ``u`` ``(B, q, L)`` (tests, sampling).

        The affine layer is inverted exactly; the deep-sigmoidal layer has no
        closed form, so each dimension is found by bisection in order (the
        layer is increasing in ``z_i`` given ``z_{<i}``). Costs ``L * n_iter``
        conditioner passes: not meant for training.
        """
        h = self.affine.inverse(u)
        z = torch.zeros_like(h)
        for i in range(self.dim):  # autoregressive: dim i needs dims < i already solved
            lo = torch.full_like(h[..., i], -bound)
            hi = torch.full_like(h[..., i], bound)
            for _ in range(n_iter):
                mid = 0.5 * (lo + hi)
                z[..., i] = mid
                too_big = self.dsf(z)[0][..., i] > h[..., i]
                hi = torch.where(too_big, mid, hi)
                lo = torch.where(too_big, lo, mid)
            z[..., i] = 0.5 * (lo + hi)
        return z
