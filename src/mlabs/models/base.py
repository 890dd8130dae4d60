"""The training interface shared by every model.

A model is a ``torch.nn.Module`` that knows how to compute its own training
objective for a batch, and how to predict label probabilities from features
alone. The trainer and the batch samplers only talk to this interface, so a
new model plugs in by subclassing :class:`MultiLabelModel` and registering
itself with :func:`mlabs.models.register`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from .layers import Dropout

__all__ = ["StepOutput", "MultiLabelModel", "as_dense_tensor", "per_sample_bce"]


@dataclass
class StepOutput:
    """What one training forward pass returns.

    Attributes
    ----------
    loss : Tensor
        Scalar training objective of the model (all its published terms),
        differentiable, ready for ``loss.backward()``.
    per_sample_loss : Tensor
        Shape ``(B,)``, detached: the mean binary cross-entropy over the ``q``
        labels of the model's prediction from ``x`` alone (never from a path
        that sees ``y``). This is the hardness signal the batch samplers
        consume (``docs/method.md`` section 1).
    probabilities : Tensor, optional
        Shape ``(B, q)``, detached: the label probabilities of that same
        prediction, for samplers that score uncertainty (``update(...,
        probabilities=...)``).
    per_sample_objective : Tensor, optional
        Shape ``(B,)``, differentiable: each sample's share of the objective, for models whose
        objective decomposes per sample (:attr:`MultiLabelModel.per_sample_objective_supported`).
    batch_objective : Tensor, optional
        Scalar, differentiable: the terms that belong to no sample (weight penalties, a
        constraint on the whole batch), so that ``loss == per_sample_objective.mean() +
        batch_objective`` up to float rounding (``docs/models.md`` lists each model's split).
    """

    loss: torch.Tensor
    per_sample_loss: torch.Tensor
    probabilities: torch.Tensor | None = None
    per_sample_objective: torch.Tensor | None = None
    batch_objective: torch.Tensor | None = None

    def weighted_loss(self, weights: torch.Tensor | None) -> torch.Tensor:
        """The objective with per-sample loss weights: ``mean(w * per_sample_objective) +
        batch_objective``; ``weights=None`` returns :attr:`loss` itself (bit-identical).

        The weights multiply only the per-sample part; the batch terms stay unweighted.
        """
        if weights is None:
            return self.loss
        if self.per_sample_objective is None:
            raise ValueError("this model's objective does not decompose per sample, so per-sample loss "
                             "weights cannot be applied; use a method without loss weights")
        w = weights.to(device=self.per_sample_objective.device, dtype=self.per_sample_objective.dtype)
        if w.shape != self.per_sample_objective.shape:
            raise ValueError(f"loss weights have shape {tuple(w.shape)}, the batch has "
                             f"{tuple(self.per_sample_objective.shape)} samples; give one weight per sample")
        out = (w * self.per_sample_objective).mean()
        return out if self.batch_objective is None else out + self.batch_objective

    @classmethod
    def from_prediction(cls, loss: torch.Tensor, y: torch.Tensor, *, logits: torch.Tensor | None = None,
                        probs: torch.Tensor | None = None, per_sample_objective: torch.Tensor | None = None,
                        batch_objective: torch.Tensor | None = None) -> "StepOutput":
        """The step's output with the selection signals of a prediction from ``x`` alone."""
        with torch.no_grad():
            p = torch.sigmoid(logits) if logits is not None else probs
            p = None if p is None else p.detach()
        return cls(loss, per_sample_bce(y, logits=logits, probs=probs), p, per_sample_objective, batch_objective)


def as_dense_tensor(x: Any, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Convert features or labels to a dense tensor on ``device``.

    Accepts numpy arrays, scipy sparse matrices, and dense or sparse torch
    tensors. Sparse inputs are densified here, at the boundary, because every
    model's first layer is a dense linear map.
    """
    if isinstance(x, torch.Tensor):
        if x.is_sparse or x.layout in (torch.sparse_csr, torch.sparse_csc):
            x = x.to_dense()
        return x.to(device=device, dtype=dtype)
    if sp.issparse(x):
        x = x.toarray()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array (samples x columns), got shape {arr.shape}")
    return torch.as_tensor(arr, dtype=dtype, device=device)


def per_sample_bce(y: torch.Tensor, *, logits: torch.Tensor | None = None,
                   probs: torch.Tensor | None = None, eps: float = 1e-7) -> torch.Tensor:
    """Mean BCE over labels for each sample, detached.

    Give either ``logits`` (numerically preferable) or ``probs`` (clamped to
    ``[eps, 1 - eps]`` so that saturated outputs give a finite loss).
    """
    with torch.no_grad():
        if logits is not None:
            out = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
        elif probs is not None:
            out = F.binary_cross_entropy(probs.clamp(eps, 1.0 - eps), y, reduction="none")
        else:
            raise ValueError("per_sample_bce needs logits or probs")
        return out.mean(dim=1).detach()


class MultiLabelModel(nn.Module, abc.ABC):
    """Base class of the five models.

    Subclasses implement :meth:`training_step` and :meth:`_predict_proba`.
    Both receive dense float tensors already on the model's device; the
    public :meth:`predict_proba` does the conversion, batching, ``eval()``
    mode and ``no_grad``.

    Parameters
    ----------
    n_features, n_labels : int
        Input width ``d`` and number of labels ``q``.
    """

    #: registry name, set by :func:`mlabs.models.register`
    name: ClassVar[str] = ""
    #: whether :meth:`training_step` fills ``per_sample_objective`` (the objective is a mean of
    #: per-sample terms plus batch terms); the methods that weight samples' losses need it
    per_sample_objective_supported: ClassVar[bool] = False

    def __init__(self, n_features: int, n_labels: int):
        super().__init__()
        if n_features < 1 or n_labels < 1:
            raise ValueError(f"n_features and n_labels must be >= 1, got {n_features}, {n_labels}")
        self.n_features = int(n_features)
        self.n_labels = int(n_labels)
        self._train_generator: torch.Generator | None = None
        self._eval_generator: torch.Generator | None = None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def set_generators(self, train: torch.Generator | None = None,
                       eval: torch.Generator | None = None) -> "MultiLabelModel":
        """Give the model its random streams; returns the model.

        Parameters
        ----------
        train : torch.Generator, optional
            Every draw of a training forward: dropout masks, reparameterisation noise, Gumbel
            gates, probit draws.
        eval : torch.Generator, optional
            Every draw at prediction (MPVAE's latent and probit draws), so that how much a
            prediction draws never moves the training stream.

        Both must live on the model's device (call this after ``.to(device)``). A stream left
        ``None`` is torch's global generator, as for any torch module: a model that is never given
        generators draws from the global RNG and is reproducible under ``torch.manual_seed``.
        """
        for name, g in (("train", train), ("eval", eval)):
            if g is not None and not isinstance(g, torch.Generator):
                raise TypeError(f"{name} must be a torch.Generator or None, got {type(g).__name__}")
            params = next(self.parameters(), None)
            if g is not None and params is not None and g.device.type != params.device.type:
                raise ValueError(f"the {name} generator is on {g.device.type} but the model is on "
                                 f"{params.device.type}; move the model first, then set generators on its device")
        self._train_generator, self._eval_generator = train, eval
        for module in self.modules():
            if isinstance(module, Dropout):
                module.generator = train
        return self

    @property
    def generator(self) -> torch.Generator | None:
        """The stream of the current mode: the training generator in ``train()`` mode, the
        evaluation generator in ``eval()`` mode (``None``: torch's global generator)."""
        return self._train_generator if self.training else self._eval_generator

    @abc.abstractmethod
    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        """Forward one training batch (``x``: ``(B, d)``, ``y``: ``(B, q)`` in {0, 1})."""

    @abc.abstractmethod
    def _predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Label probabilities ``(B, q)`` by the model's published inference rule."""

    def predict_proba(self, x: Any, batch_size: int = 2048) -> torch.Tensor:
        """Predict label probabilities in ``[0, 1]`` for ``x`` (dense or sparse).

        Runs in evaluation mode without gradients and restores the previous
        mode afterwards. Returns a CPU-independent tensor on the model's device.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                if isinstance(x, torch.Tensor) and x.layout != torch.strided:
                    # torch sparse tensors cannot be row-sliced; scipy CSR input stays sparse
                    x = x.to_dense()
                n = x.shape[0]
                chunks = []
                for start in range(0, n, batch_size):
                    xb = as_dense_tensor(x[start:start + batch_size], self.device)
                    chunks.append(self._predict_proba(xb))
                if not chunks:
                    return torch.empty(0, self.n_labels, device=self.device)
                return torch.cat(chunks).clamp_(0.0, 1.0)
        finally:
            self.train(was_training)

    def parameter_groups(self, lr: float) -> list[dict]:
        """Optimiser parameter groups; models with per-group rates override this."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]
