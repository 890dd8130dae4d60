"""CLIF: collaborative learning of label semantics and deep label-specific features.

Hang & Zhang, *Collaborative Learning of Label Semantics and Deep Label-Specific
Features for Multi-Label Classification*, IEEE TPAMI 44(12), 2022. See
``models.md`` section 4.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import register
from .base import MultiLabelModel, StepOutput
from .graph import GIN, cosine_link_loss, label_cooccurrence
from .layers import GroupedLinear, mlp
from .sizes import resolve_size

__all__ = ["CLIF"]


@register("clif")
class CLIF(MultiLabelModel):
    """CLIF, original configuration, with the batch-selection authors' variant as options.

    Label semantic encoder: a GIN over the label co-occurrence graph ``A`` of
    the training labels, with frozen random node features (q x q, N(0, 1)),
    gives label embeddings ``E`` (q x ``embedding_dim``). Feature
    disentangling: ``h = NN1(x)``, gate ``g_j = sigmoid(W e_j + b)``,
    ``f_j = NN3(h * g_j)`` (``[B, q, H]``), one linear head per label.

    Loss: mean BCE over labels and samples + ``link_weight`` x
    ``mean((A - cos(E))^2)``. Prediction: ``sigmoid(logits)``. Selection loss:
    per-sample mean BCE of the same logits (x-only path).

    Parameters
    ----------
    n_features, n_labels : int
        ``d`` and ``q``.
    train_labels : array-like (n_train, q), required
        0/1 labels of the training part of the fold; ``A`` is built from them
        (``A_jk = (P(j|k) + P(k|j)) / 2``, zero diagonal). There is no
        fallback: the identity graph of the authors' code is a defect.
    hidden_dim : int or size rule, default 512
        FD width ``H`` (authors' variant: 768). Sizes take an int or a rule of
        :mod:`mlabs.models.sizes` (``"q"``, ``"half_q"``, ...).
    in_layers : int, default 1
        Layers of ``NN1`` (``d -> H -> ... -> H``; authors' variant: 3).
    embedding_dim : int or size rule, default 256
        Label-embedding size (authors' variant: ``"q"``).
    gin_hidden : sequence of int or size rule, default (128,)
        Hidden widths of each GIN layer's MLP (authors' variant: ``["half_q"]``).
    gin_layers : int, default 2
        Number of GIN layers.
    link_weight : float, default 1.0
        ``lambda``, weight of the link-prediction loss (authors' variant: 1e-3).
    gate_sigmoid : bool, default True
        Squash the label gate with a sigmoid (authors' variant: False, a raw
        linear projection).
    dropout : float, default 0.0
        Dropout after every hidden activation of ``NN1`` (the authors' variant
        uses 0.2, from their MLP default, there and in the GIN MLPs; the GIN
        here has no dropout, as in the original).
    negative_slope : float, default 0.1
        Leaky-ReLU slope everywhere.

    Notes
    -----
    Deviations from / choices against the sources:

    * The authors' embedding target ``A + I`` (= 2I with their identity graph)
      is not offered: the target is ``A`` (zero diagonal). With the cosine
      decoder the diagonal of ``cos(E)`` is always 1, so the diagonal
      contributes a constant ``1/q`` to the loss and no gradient.
    * ``H = 512`` and ``in_layers = 1`` follow the original paper and the
      derivative project's defaults, not MLAdaBatch (768, 3).
    * The node features are drawn from the global torch RNG at construction,
      so seeding before ``build`` makes them reproducible.
    * BatchNorm in the GIN normalises over the ``q`` label nodes; it needs
      ``q >= 2`` in training mode.
    """

    per_sample_objective_supported = True

    def __init__(self, n_features: int, n_labels: int, *, train_labels: Any = None,
                 hidden_dim: int = 512, in_layers: int = 1, embedding_dim: int = 256,
                 gin_hidden: Sequence[int] = (128,), gin_layers: int = 2, link_weight: float = 1.0,
                 gate_sigmoid: bool = True, dropout: float = 0.0, negative_slope: float = 0.1):
        super().__init__(n_features, n_labels)
        if train_labels is None:
            raise ValueError("CLIF needs train_labels (the 0/1 training label matrix) to build its "
                             "label co-occurrence graph; pass build('clif', ..., train_labels=Y_train)")
        adj = label_cooccurrence(train_labels)
        if adj.shape != (n_labels, n_labels):
            raise ValueError(f"train_labels has {adj.shape[0]} label columns, expected {n_labels}")
        if n_labels < 2:
            raise ValueError("CLIF needs at least 2 labels (BatchNorm over label nodes)")
        if in_layers < 1:
            raise ValueError(f"in_layers must be >= 1, got {in_layers}")
        size = functools.partial(resolve_size, n_features=n_features, n_labels=n_labels)
        hidden_dim = size(hidden_dim, name="hidden_dim")
        embedding_dim = size(embedding_dim, name="embedding_dim")
        if isinstance(gin_hidden, (int, str)):  # one hidden layer written without a list
            gin_hidden = (gin_hidden,)
        gin_hidden = tuple(size(h, name="gin_hidden") for h in gin_hidden)
        self.link_weight = float(link_weight)
        self.gate_sigmoid = bool(gate_sigmoid)
        self.register_buffer("adj", adj)
        # frozen random node features: a buffer, so it moves with .to() and is saved, not trained
        self.register_buffer("node_features", torch.randn(n_labels, n_labels))

        self.gin = GIN(n_labels, embedding_dim, n_layers=gin_layers, hidden=gin_hidden,
                       negative_slope=negative_slope)
        # NN1: in_layers linear maps of width H, each followed by leaky-ReLU
        self.nn1 = mlp(n_features, [hidden_dim] * in_layers, activation="leaky_relu",
                       negative_slope=negative_slope, dropout=dropout, output_activation=True)
        self.gate = nn.Linear(embedding_dim, hidden_dim)
        nn.init.kaiming_uniform_(self.gate.weight, nonlinearity="sigmoid")
        nn.init.zeros_(self.gate.bias)
        # NN3: one H -> H leaky-ReLU layer applied to every label's gated feature
        self.nn3 = mlp(hidden_dim, [hidden_dim], activation="leaky_relu",
                       negative_slope=negative_slope, dropout=0.0, output_activation=True)
        self.head = GroupedLinear(n_labels, hidden_dim)

    # ------------------------------------------------------------------ pieces
    def label_embeddings(self) -> torch.Tensor:
        """``E`` (q x embedding_dim) from the GIN over ``A``."""
        return self.gin(self.node_features, self.adj)

    def label_gates(self, emb: torch.Tensor) -> torch.Tensor:
        """``g_j`` for every label: (q, H)."""
        g = self.gate(emb)
        return torch.sigmoid(g) if self.gate_sigmoid else g

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.label_embeddings()
        h = self.nn1(x)                                        # (B, H)
        f = self.nn3(h.unsqueeze(1) * self.label_gates(emb))   # (B, q, H)
        return self.head(f), emb                               # (B, q), (q, e)

    # --------------------------------------------------------------- interface
    def link_loss(self, emb: torch.Tensor | None = None) -> torch.Tensor:
        """``mean((A - cos(E))^2)``."""
        return cosine_link_loss(self.label_embeddings() if emb is None else emb, self.adj)

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        logits, emb = self._forward(x)
        link = self.link_weight * self.link_loss(emb)
        loss = F.binary_cross_entropy_with_logits(logits, y) + link
        # the BCE is a mean of per-sample means over labels; the link loss belongs to no sample
        per_sample = F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(dim=1)
        return StepOutput.from_prediction(loss, y, logits=logits, per_sample_objective=per_sample,
                                          batch_objective=link)

    def _predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self._forward(x)[0])
