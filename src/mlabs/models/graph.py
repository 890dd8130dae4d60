"""Label-graph pieces of CLIF: the co-occurrence graph, a GIN encoder, the link loss.

CLIF (Hang & Zhang, TPAMI 2022) learns label embeddings with the encoder of a
graph autoencoder over the label co-occurrence graph. The graph is the
symmetric conditional co-occurrence matrix of the training labels,

    A_jk = 1/2 * (P(j | k) + P(k | j)) = 1/2 * (C_jk / n_k + C_jk / n_j),  A_jj = 0,

the same matrix as the label-correlation matrix of the chain-based selection
variant (``docs/method.md`` section 5).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["label_cooccurrence", "GINLayer", "GIN", "cosine_link_loss"]


def label_cooccurrence(labels: Any) -> torch.Tensor:
    """Symmetric conditional co-occurrence matrix ``A`` (q x q, float32, CPU, zero diagonal).

    ``A_jk = (C_jk / n_k + C_jk / n_j) / 2`` for ``j != k``, where ``C`` counts
    samples with both labels and ``n_j`` samples with label ``j``; entries of
    a label without positives are 0. A float32 view of
    :func:`mlabs.selection.label_correlation`, so that CLIF's graph and the
    chain sampler's correlation matrix are one definition.

    Parameters
    ----------
    labels : array-like, scipy sparse matrix or tensor of shape (n, q)
        0/1 label matrix of the training samples.
    """
    # imported here: the selection package is not needed to import the models
    from mlabs.selection import label_correlation

    return label_correlation(labels).to(device="cpu", dtype=torch.float32)


def _init_leaky(linear: nn.Linear, slope: float) -> None:
    # Kaiming-uniform for leaky-ReLU and small positive biases, as in CLIF's public MLPs
    nn.init.kaiming_uniform_(linear.weight, a=slope, nonlinearity="leaky_relu")
    nn.init.uniform_(linear.bias, 0.0, 0.1)


class GINLayer(nn.Module):
    """Graph isomorphism layer ``h' = MLP((1 + eps) h + A h)`` (+ ``h`` if sizes match).

    The MLP has hidden sizes ``hidden`` and output ``out_dim``; every linear
    map is followed by BatchNorm (over the nodes) and leaky-ReLU.

    Parameters
    ----------
    in_dim, out_dim : int
        Node feature sizes.
    hidden : sequence of int
        Hidden widths of the MLP.
    negative_slope : float
        Leaky-ReLU slope.
    train_eps : bool
        Whether ``eps`` (initialised to 0) is trained.
    """

    def __init__(self, in_dim: int, out_dim: int, *, hidden: Sequence[int] = (128,),
                 negative_slope: float = 0.1, train_eps: bool = True):
        super().__init__()
        dims = [in_dim, *hidden, out_dim]
        blocks: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            lin = nn.Linear(d_in, d_out)
            _init_leaky(lin, negative_slope)
            blocks += [lin, nn.BatchNorm1d(d_out), nn.LeakyReLU(negative_slope)]
        self.mlp = nn.Sequential(*blocks)
        eps = torch.zeros(1)
        if train_eps:
            self.eps = nn.Parameter(eps)
        else:
            self.register_buffer("eps", eps)
        self.residual = in_dim == out_dim

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        out = self.mlp((1.0 + self.eps) * h + adj @ h)
        return out + h if self.residual else out


class GIN(nn.Module):
    """Stack of :class:`GINLayer` from ``in_dim`` to ``out_dim`` node features.

    Parameters
    ----------
    in_dim, out_dim : int
        Input node features and output embedding size.
    n_layers : int
        Number of GIN layers (the first maps ``in_dim -> out_dim``, the others
        ``out_dim -> out_dim`` with a residual connection).
    hidden : sequence of int
        Hidden widths inside every layer's MLP.
    negative_slope : float
        Leaky-ReLU slope.
    """

    def __init__(self, in_dim: int, out_dim: int, *, n_layers: int = 2, hidden: Sequence[int] = (128,),
                 negative_slope: float = 0.1):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.layers = nn.ModuleList(
            GINLayer(in_dim if i == 0 else out_dim, out_dim, hidden=hidden, negative_slope=negative_slope)
            for i in range(n_layers))

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            h = layer(h, adj)
        return h


def cosine_link_loss(emb: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
    """Graph-decoder loss ``mean((A - cos(E))^2)`` over all ``q^2`` entries.

    The decoder predicts the adjacency as the cosine similarity of the label
    embeddings (rows of ``emb``).
    """
    e = F.normalize(emb, dim=1)
    return (adj - e @ e.T).pow(2).mean()
