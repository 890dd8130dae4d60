"""Small building blocks shared by the five models.

Everything here is model-agnostic and kept deliberately small: a fully
connected stack builder, a grouped per-label linear head, the Gaussian
reparameterisation and KL helpers, the C2AE/MPVAE pairwise ranking loss and an
L2 weight sum. Model-specific pieces (gates, flows, graphs) live with their
model.

The signatures of :func:`mlp` and :class:`GroupedLinear` are part of the
package's internal contract (PACA and CLIF import them); extend them only with
new keyword arguments that default to the current behaviour.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence, Union

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "Dropout", "GroupedLinear", "activation_module", "init_linear_", "kl_diag_gaussians",
           "l2_weight_sum", "mlp", "pairwise_exp_rank_loss", "rand_like", "randn_like", "reparameterize"]

#: names accepted by :func:`activation_module` and :func:`mlp`
ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid", "identity")

#: ``init`` of :func:`mlp`: a scheme name or ``fn(linear, index, activated)``
InitSpec = Union[str, Callable[[nn.Linear, int, bool], None]]


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal draws shaped like ``x`` from ``generator`` (``torch.randn_like`` takes none)."""
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def rand_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """U[0, 1) draws shaped like ``x`` from ``generator``."""
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


class Dropout(nn.Module):
    """Inverted dropout whose mask comes from :attr:`generator` (torch's dropout takes none).

    Same semantics as ``nn.Dropout``: in training mode each element is zeroed with probability
    ``p`` and the survivors scaled by ``1 / (1 - p)``; the identity in evaluation mode.
    :attr:`generator` is set by :meth:`MultiLabelModel.set_generators`; ``None`` means torch's
    global generator.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty_like(x).bernoulli_(keep, generator=self.generator).div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def activation_module(name: str, negative_slope: float = 0.1) -> nn.Module:
    """The activation module called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "elu":
        return nn.ELU()
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "identity":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def init_linear_(layer: nn.Module, *, weight: str = "torch", gain: float = 1.0,
                 bound: float | None = None, bias: float | tuple[float, float] = 0.0,
                 nonlinearity: str = "relu", negative_slope: float = 0.1) -> None:
    """Initialise a linear layer in place.

    Parameters
    ----------
    layer : nn.Linear or GroupedLinear
        Anything with ``weight`` (fan-in along its last axis) and ``bias``.
    weight : {"torch", "glorot_uniform", "kaiming_uniform", "uniform"}
        ``"torch"`` calls the layer's own ``reset_parameters`` and ignores the
        other arguments. ``"glorot_uniform"``: U(+-gain * sqrt(6 / (fan_in +
        fan_out))) (TensorFlow's default is gain 1). ``"kaiming_uniform"``:
        He-uniform for ``nonlinearity``. ``"uniform"``: U(+-bound).
    bias : float or (low, high)
        A constant, or the bounds of a uniform draw.
    """
    if weight == "torch":
        layer.reset_parameters()
        return
    w = layer.weight
    with torch.no_grad():
        if weight == "glorot_uniform":
            fan_out, fan_in = w.shape[0], w.shape[-1]
            a = gain * math.sqrt(6.0 / (fan_in + fan_out))
            w.uniform_(-a, a)
        elif weight == "kaiming_uniform":
            if nonlinearity in ("relu", "elu"):
                nn.init.kaiming_uniform_(w, nonlinearity="relu")
            elif nonlinearity == "leaky_relu":
                nn.init.kaiming_uniform_(w, a=negative_slope, nonlinearity="leaky_relu")
            else:
                nn.init.kaiming_uniform_(w, nonlinearity=nonlinearity)
        elif weight == "uniform":
            if bound is None:
                raise ValueError("weight='uniform' needs bound")
            w.uniform_(-bound, bound)
        else:
            raise ValueError(f"unknown weight init {weight!r}")
        if layer.bias is not None:
            if isinstance(bias, tuple):
                layer.bias.uniform_(*bias)
            else:
                layer.bias.fill_(float(bias))


def mlp(in_dim: int, sizes: Sequence[int], *, activation: str = "relu", negative_slope: float = 0.1,
        dropout: float = 0.0, output_activation: bool = True,
        init: InitSpec = "kaiming") -> nn.Sequential:
    """Fully connected stack ``in_dim -> sizes[0] -> ... -> sizes[-1]``.

    Every hidden layer is followed by the activation and (if ``dropout > 0``)
    dropout; the last layer too when ``output_activation`` is true, otherwise
    it is linear.

    Parameters
    ----------
    in_dim : int
        Input width.
    sizes : sequence of int
        Output width of each linear layer (at least one).
    activation : str
        One of :data:`ACTIVATIONS`.
    negative_slope : float
        Slope of ``"leaky_relu"``.
    dropout : float
        Dropout probability after each activated layer.
    output_activation : bool
        Whether the last layer is followed by the activation (and dropout).
    init : {"kaiming", "glorot", "torch"} or callable
        ``"kaiming"`` (default): He-uniform weights for the activation, biases
        U(0, 0.1) before an activation (a small positive bias keeps ReLU units
        alive at the start, as in the DELA package) and 0 after a linear output.
        ``"glorot"``: Glorot-uniform weights and zero biases (the TensorFlow /
        slim default, used by MPVAE). ``"torch"``: PyTorch's default.
        A callable is called as ``init(linear, index, activated)`` for every
        layer, for model-specific schemes.

    Returns
    -------
    nn.Sequential
    """
    if not sizes:
        raise ValueError("mlp needs at least one layer size")
    act_name = activation
    layers: list[nn.Module] = []
    dims = [int(in_dim), *map(int, sizes)]
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        lin = nn.Linear(d_in, d_out)
        activated = i < len(sizes) - 1 or output_activation
        if callable(init):
            init(lin, i, activated)
        elif init == "kaiming":
            nonlin = act_name if act_name in ("relu", "leaky_relu", "tanh", "sigmoid") else "relu"
            init_linear_(lin, weight="kaiming_uniform", nonlinearity=nonlin,
                         negative_slope=negative_slope, bias=(0.0, 0.1) if activated else 0.0)
        elif init == "glorot":
            init_linear_(lin, weight="glorot_uniform", bias=0.0)
        elif init != "torch":
            raise ValueError(f"unknown init {init!r}")
        layers.append(lin)
        if activated:
            layers.append(activation_module(act_name, negative_slope))
            if dropout > 0:
                layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


class GroupedLinear(nn.Module):
    """One linear map per group (label): ``(..., G, D) -> (..., G)``.

    ``out[..., g] = <weight[g], x[..., g, :]> + bias[g]``; the same map as
    ``Conv1d(G, G, D, groups=G)`` applied to a ``(B, G, D)`` tensor, with the
    same default initialisation (U(+-1/sqrt(D)) for weights and biases), but
    without the reshapes and for any number of leading dimensions.

    Parameters
    ----------
    n_groups : int
        Number of groups ``G`` (labels).
    in_dim : int
        Input width ``D`` of each group.
    bias : bool
        Whether to add a per-group bias.
    """

    def __init__(self, n_groups: int, in_dim: int, bias: bool = True):
        super().__init__()
        self.n_groups, self.in_dim = int(n_groups), int(in_dim)
        self.weight = nn.Parameter(torch.empty(self.n_groups, self.in_dim))
        self.bias = nn.Parameter(torch.empty(self.n_groups)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_dim)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("...gd,gd->...g", x, self.weight)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return f"n_groups={self.n_groups}, in_dim={self.in_dim}, bias={self.bias is not None}"


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``mu + eps * exp(logvar / 2)`` with ``eps ~ N(0, I)`` drawn from ``generator`` unless given.

    Passing ``eps`` lets two branches share one noise draw (MPVAE).
    """
    if eps is None:
        eps = randn_like(mu, generator)
    return mu + eps * torch.exp(0.5 * logvar)


def kl_diag_gaussians(mu_q: torch.Tensor, logvar_q: torch.Tensor,
                      mu_p: torch.Tensor | None = None, logvar_p: torch.Tensor | None = None,
                      var_eps: float = 0.0) -> torch.Tensor:
    """KL(N(mu_q, diag e^logvar_q) || N(mu_p, diag e^logvar_p)), summed over the last axis.

    ``mu_p``/``logvar_p`` default to the standard normal. ``var_eps`` is added
    to the prior variance in the mean term's denominator (MPVAE adds 1e-6
    there). Returns one value per leading index (e.g. ``(B,)``).
    """
    if mu_p is None:
        mu_p = torch.zeros_like(mu_q)
    if logvar_p is None:
        logvar_p = torch.zeros_like(logvar_q)
    kl = (logvar_p - logvar_q - 1.0 + torch.exp(logvar_q - logvar_p)
          + (mu_q - mu_p).pow(2) / (torch.exp(logvar_p) + var_eps))
    return 0.5 * kl.sum(dim=-1)


def pairwise_exp_rank_loss(scores: torch.Tensor, y: torch.Tensor, scale: float = 5.0) -> torch.Tensor:
    """C2AE's pairwise ranking loss per sample, without the pairwise tensor.

    For each row, ``sum_{p in Y+} sum_{n in Y-} exp(-scale * (s_p - s_n)) /
    (|Y+| * |Y-|)``; rows without positives or without negatives give 0 (the
    published code replaces their 0/0 by 0).

    The double sum factorises, ``sum_p exp(-c s_p) * sum_n exp(c s_n)``, so the
    cost and memory are O(q) per row instead of the O(q^2) ``[..., q, q]``
    tensor of the reference implementations; the value is the same. Each
    factor is computed relative to a per-row shift (which cancels in the
    product), so it stays finite for any scores whose within-row range is
    moderate; for probabilities (range <= 1) it is always exact.

    Parameters
    ----------
    scores : Tensor, shape (..., q)
        Predicted scores (probabilities for C2AE and MPVAE).
    y : Tensor, broadcastable to ``scores``
        0/1 labels.
    scale : float
        The constant 5 of the papers.

    Returns
    -------
    Tensor, shape ``scores.shape[:-1]``
    """
    y = y.to(scores.dtype).expand_as(scores)
    shift = scores.detach().mean(dim=-1, keepdim=True)
    s = scale * (scores - shift)
    pos = (torch.exp(-s) * y).sum(dim=-1)
    neg = (torch.exp(s) * (1.0 - y)).sum(dim=-1)
    n_pairs = y.sum(dim=-1) * (1.0 - y).sum(dim=-1)
    # empty Y+ or Y- makes pos or neg exactly 0, so clamping the count gives the 0 the papers use
    return pos * neg / n_pairs.clamp(min=1.0)


def l2_weight_sum(modules: Iterable[nn.Module]) -> torch.Tensor:
    """Sum of squared weights (not biases) of every linear / grouped layer in ``modules``.

    The published C2AE and MPVAE objectives penalise weight matrices only.
    """
    total = None
    for module in modules:
        for sub in module.modules():
            if isinstance(sub, (nn.Linear, GroupedLinear)):
                term = sub.weight.pow(2).sum()
                total = term if total is None else total + term
    if total is None:
        raise ValueError("l2_weight_sum found no linear layers")
    return total
