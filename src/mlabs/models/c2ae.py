"""C2AE: Canonical-Correlated AutoEncoder (Yeh et al., AAAI 2017).

Reimplemented from the paper and the official MATLAB code
(``chihkuanyeh/C2AE``); see ``docs/models.md`` and the project reference
``models.md`` section 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import register
from .base import MultiLabelModel, StepOutput
from .layers import init_linear_, l2_weight_sum, mlp, pairwise_exp_rank_loss

__all__ = ["C2AE"]


def _official_init(slope_layer_count: int):
    """Initialiser for :func:`mlp` that reproduces ``deepnetinit.m``.

    Leaky-ReLU layers: weights U(-0.01, 0.01), biases U(0, 0.1) (a small
    positive bias so the first activations are non-zero). Sigmoid output
    layers: 4 x Glorot-uniform weights, zero biases.
    """
    def init(layer: nn.Linear, index: int, activated: bool) -> None:
        if index < slope_layer_count:
            init_linear_(layer, weight="uniform", bound=0.01, bias=(0.0, 0.1))
        else:
            init_linear_(layer, weight="glorot_uniform", gain=4.0, bias=0.0)
    return init


@register("c2ae")
class C2AE(MultiLabelModel):
    """Canonical-Correlated AutoEncoder.

    Three networks: feature encoder ``Fx`` (d -> H -> H -> K), label encoder
    ``Fe`` (q -> H -> K) and label decoder ``Fd`` (K -> H -> q). Hidden layers
    use leaky-ReLU (slope 0.1); the latent outputs of ``Fx`` and ``Fe`` are
    the "zero-mean sigmoid" sigma(.) - 0.5; ``Fd`` ends in a sigmoid (kept as
    logits here and squashed where needed). K = round(0.8 q), at least 1.

    Training objective for a batch of B samples::

        loss = (1/B) * [ ||Fx(X) - Fe(Y)||_F^2
                         + lam * (||Fx(X)^T Fx(X) - I||_F^2 + ||Fe(Y)^T Fe(Y) - I||_F^2) ]
               + alpha * mean_i rank_i(Fd(Fe(y_i)), y_i)
               + l2_penalty * sum ||W||^2            (weight matrices of Fx, Fe, Fd)

    with ``rank_i = sum_{p in Y+, n in Y-} exp(-5 (yhat_p - yhat_n)) / (|Y+| |Y-|)``
    (``BR_error.m``; 0 for a sample without positives or negatives). The
    output loss is computed on ``Fd(Fe(y))``, so its gradient reaches only
    ``Fe`` and ``Fd``, never ``Fx``, as in ``DCCA_grad.m``; the embedding loss
    trains ``Fx`` and ``Fe``. There is no BCE and no KL term. The MATLAB
    code's second decoder copy (F3, trained on the Fx path but never used) is
    not built.

    Prediction: ``Fd(Fx(x))``.

    Selection loss (``per_sample_loss``): the training forward never predicts
    from x alone (it decodes ``Fe(y)``), so one extra, gradient-free decoder
    pass is made on the ``Fx(x)`` already computed for the embedding loss:
    mean BCE over labels of ``Fd(Fx(x))`` (from its logits) against ``y``.
    This is the cheapest correct choice: no second encoder pass.

    Parameters
    ----------
    n_features, n_labels : int
        ``d`` and ``q``.
    hidden_dim : int, default 512
        Width ``H`` of every hidden layer.
    latent_ratio : float, default 0.8
        ``K = round(latent_ratio * q)`` (``reduction_rate`` in ``demo.m``),
        at least 1. Ignored when ``latent_dim`` is given.
    latent_dim : int or None, default None
        Explicit latent size ``K``.
    negative_slope : float, default 0.1
        Leaky-ReLU slope.
    embed_lambda : float, default 0.5
        Lagrange weight ``lam`` of the orthogonality (CCA) constraint
        (``CORR_error.m``).
    alpha : float, default 0.5
        Weight of the output (ranking) loss. ``demo.m`` sets ``alpha = 2`` and
        divides the output-loss gradient by it, i.e. a weight of 0.5.
    rank_scale : float, default 5.0
        The constant in ``exp(-5 (yhat_p - yhat_n))``, fixed in the paper. (The
        TensorFlow port additionally divides the loss by 5; the official code
        does not, and neither does this class.)
    l2_penalty : float, default 2e-6
        Weight of ``sum ||W||^2`` over weight matrices (biases excluded; the
        official gradient is ``2 * l2penalty * W``). The published 1e-3
        multiplies an objective that *sums* the embedding and output losses
        over a batch of 500; this class averages them, so the same relative
        strength is 1e-3 / 500 = 2e-6 here (the default). Pass
        ``l2_penalty=1e-3`` to apply the published number to the averaged
        objective, which regularises about 500 times more strongly.

    Notes
    -----
    Scaling: the official code sums the batch losses (batch 500) and lets
    RMSProp normalise the gradient. Here the embedding loss is divided by B
    and the output loss averaged over the batch, which keeps the official
    ratio between the two while making the scale independent of B. The
    orthogonality constraint is kept as published, on the un-normalised
    batch Gram matrix ``Fx(X)^T Fx(X) = I``; its target therefore still
    depends on B (the latent codes shrink like 1/sqrt(B)), exactly as in the
    official code.

    The official optimiser (RMSProp with momentum 0.99, lr 1e-4 x 0.98 per
    epoch, batch 500, 50 epochs) is not part of the model; the project trains
    with the shared protocol of ``docs/method.md``.
    """

    per_sample_objective_supported = True

    def __init__(self, n_features: int, n_labels: int, *, hidden_dim: int = 512,
                 latent_ratio: float = 0.8, latent_dim: int | None = None,
                 negative_slope: float = 0.1, embed_lambda: float = 0.5, alpha: float = 0.5,
                 rank_scale: float = 5.0, l2_penalty: float = 2e-6):
        super().__init__(n_features, n_labels)
        if latent_dim is None:
            # MATLAB's round (half away from zero), not Python's banker's rounding
            latent_dim = max(1, int(math.floor(latent_ratio * n_labels + 0.5)))
        if latent_dim < 1 or hidden_dim < 1:
            raise ValueError(f"latent_dim and hidden_dim must be >= 1, got {latent_dim}, {hidden_dim}")
        self.latent_dim = int(latent_dim)
        self.hidden_dim = int(hidden_dim)
        self.embed_lambda = float(embed_lambda)
        self.alpha = float(alpha)
        self.rank_scale = float(rank_scale)
        self.l2_penalty = float(l2_penalty)
        H, K, d, q = self.hidden_dim, self.latent_dim, n_features, n_labels
        common = dict(activation="leaky_relu", negative_slope=negative_slope, output_activation=False)
        self.fx = mlp(d, [H, H, K], init=_official_init(2), **common)
        self.fe = mlp(q, [H, K], init=_official_init(1), **common)
        self.fd = mlp(K, [H, q], init=_official_init(1), **common)

    # -- the three networks -------------------------------------------------------------------
    def encode_x(self, x: torch.Tensor) -> torch.Tensor:
        """``Fx(x)`` in (-0.5, 0.5)^K."""
        return torch.sigmoid(self.fx(x)) - 0.5

    def encode_y(self, y: torch.Tensor) -> torch.Tensor:
        """``Fe(y)`` in (-0.5, 0.5)^K."""
        return torch.sigmoid(self.fe(y)) - 0.5

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid output of ``Fd`` (its sigmoid is the label probability)."""
        return self.fd(z)

    # -- objective ----------------------------------------------------------------------------
    def embedding_loss(self, fx: torch.Tensor, fe: torch.Tensor) -> torch.Tensor:
        """Official embedding loss (``CORR_error.m``) divided by the batch size."""
        eye = torch.eye(fx.shape[1], device=fx.device, dtype=fx.dtype)
        fit = (fx - fe).pow(2).sum()
        ortho = (fx.T @ fx - eye).pow(2).sum() + (fe.T @ fe - eye).pow(2).sum()
        return (fit + self.embed_lambda * ortho) / fx.shape[0]

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """All terms of the objective and the intermediate ``fx`` (for inspection and tests).

        Returns a dict with ``embedding``, ``output`` (unweighted mean ranking
        loss), ``l2`` (unweighted weight sum), ``loss`` (the weighted total)
        and ``fx``.
        """
        fx = self.encode_x(x)
        fe = self.encode_y(y)
        embedding = self.embedding_loss(fx, fe)
        recon = torch.sigmoid(self.decode_logits(fe))
        rank = pairwise_exp_rank_loss(recon, y, self.rank_scale)
        output = rank.mean()
        l2 = l2_weight_sum([self.fx, self.fe, self.fd])
        loss = embedding + self.alpha * output + self.l2_penalty * l2
        # the split of the same objective: the latent fit and the ranking loss belong to a sample,
        # the orthogonality constraint (on the batch's Gram matrices) and the L2 penalty do not
        eye = torch.eye(fx.shape[1], device=fx.device, dtype=fx.dtype)
        ortho = (fx.T @ fx - eye).pow(2).sum() + (fe.T @ fe - eye).pow(2).sum()
        per_sample = (fx - fe).pow(2).sum(dim=1) + self.alpha * rank
        batch = self.embed_lambda * ortho / fx.shape[0] + self.l2_penalty * l2
        return {"loss": loss, "embedding": embedding, "output": output, "l2": l2, "fx": fx,
                "per_sample": per_sample, "batch": batch}

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        """Full C2AE objective; selection loss from one extra no-grad ``Fd`` pass on ``Fx(x)``."""
        terms = self.losses(x, y)
        with torch.no_grad():
            logits = self.decode_logits(terms["fx"].detach())
        return StepOutput.from_prediction(terms["loss"], y, logits=logits, per_sample_objective=terms["per_sample"],
                                          batch_objective=terms["batch"])

    def _predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(self.encode_x(x)))
