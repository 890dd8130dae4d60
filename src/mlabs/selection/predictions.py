"""What a sampler remembers of the model's predictions: a window of recent predicted probabilities.

The history-based methods (Active Bias, Recency Bias, the uncertainty method, D2ACE) score a
sample by how its predicted label probabilities behaved over its last few visits.
"""

from __future__ import annotations

import math

import torch

from ._validation import check_positive_int

__all__ = ["PredictionWindow", "binary_entropy_bits"]

_LN2 = math.log(2.0)


def binary_entropy_bits(p: torch.Tensor) -> torch.Tensor:
    """``-p log2 p - (1 - p) log2 (1 - p)`` with ``0 log 0 = 0``."""
    p = p.clamp(0.0, 1.0)
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1.0 - p, 1.0 - p)) / _LN2


class PredictionWindow:
    """The last ``size`` predicted probability vectors of every sample (a per-sample ring buffer).

    Stored as a ``(size, N, q)`` float32 tensor with per-sample write positions and counts, so a
    batch is recorded with one scatter and the window is read in time order with one gather.
    """

    def __init__(self, size: int, n_samples: int, n_labels: int, device):
        self.size = check_positive_int(size, "window", minimum=2)  # a change needs two predictions
        self.values = torch.zeros((self.size, n_samples, n_labels), dtype=torch.float32, device=device)
        self.pos = torch.zeros(n_samples, dtype=torch.int64, device=device)     # next slot
        self.count = torch.zeros(n_samples, dtype=torch.int64, device=device)   # filled slots

    def push(self, idx: torch.Tensor, probs: torch.Tensor) -> None:
        slot = self.pos.index_select(0, idx)
        self.values[slot, idx] = probs.to(torch.float32)
        self.pos.index_put_((idx,), (slot + 1) % self.size)
        self.count.index_put_((idx,), (self.count.index_select(0, idx) + 1).clamp_(max=self.size))

    def ordered(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(values oldest-first, shape (size, N, q); validity mask, shape (size, N))."""
        w = self.size
        k = torch.arange(w, device=self.pos.device)
        slots = (self.pos[None, :] + k[:, None]) % w          # oldest first
        vals = torch.gather(self.values, 0, slots[:, :, None].expand(-1, -1, self.values.shape[2]))
        valid = k[:, None] >= (w - self.count)[None, :]
        return vals, valid

    def weighted(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(values oldest-first (size, N, q); 0/1 weights of the filled slots (size, N, 1); number
        of predictions per sample (N, 1)), all in the values' dtype, for masked window statistics."""
        vals, valid = self.ordered()
        return vals, valid.to(vals.dtype)[:, :, None], valid.sum(0).to(vals.dtype)[:, None]

    def latest(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """The most recent prediction of every sample, or of ``idx`` (zeros where there is none)."""
        if idx is None:
            idx = torch.arange(self.pos.numel(), device=self.pos.device)
        slot = (self.pos.index_select(0, idx) - 1) % self.size
        return self.values[slot, idx]

    def uncertainty(self) -> torch.Tensor:
        """Per sample and label, ``1/2 mean |p_t - p_(t-1)| + 1/2 H_b(p_latest)`` (in bits): the
        prediction-uncertainty measure of the uncertainty method and D2ACE."""
        return 0.5 * self.mean_abs_change() + 0.5 * binary_entropy_bits(self.latest())

    def mean_abs_change(self) -> torch.Tensor:
        """Per label, the mean |p_t - p_(t-1)| over consecutive predictions in the window (0 if < 2)."""
        vals, valid = self.ordered()
        pair = (valid[1:] & valid[:-1]).to(vals.dtype)
        diff = (vals[1:] - vals[:-1]).abs_().mul_(pair[:, :, None]).sum(0)
        return diff / pair.sum(0).clamp(min=1.0)[:, None]

    def state(self) -> dict:
        return {"values": self.values.cpu().clone(), "pos": self.pos.cpu().clone(), "count": self.count.cpu().clone()}

    def load(self, state: dict) -> None:
        dev = self.pos.device
        if tuple(state["values"].shape) != tuple(self.values.shape):
            raise ValueError(f"state_dict history has shape {tuple(state['values'].shape)}, this sampler "
                             f"{tuple(self.values.shape)}; build the sampler with the same data and window")
        self.values = state["values"].to(dev).clone()
        self.pos = state["pos"].to(dev).clone()
        self.count = state["count"].to(dev).clone()
