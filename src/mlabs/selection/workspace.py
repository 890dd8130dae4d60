"""Reused scratch tensors of the samplers' hot paths.

Fresh multi-megabyte temporaries cost page faults at every draw; a :class:`Workspace` keeps one
buffer per name and hands out views of it. The contents of a buffer are undefined between uses:
a workspace holds no sampler state.
"""

from __future__ import annotations

import torch

__all__ = ["Workspace"]


class Workspace:
    """Named 1-D scratch buffers on one device, grown on demand."""

    def __init__(self, device):
        self.device = torch.device(device)
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, numel: int, dtype: torch.dtype) -> torch.Tensor:
        """A 1-D tensor of ``numel`` elements from buffer ``name`` (contents undefined)."""
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < numel or buf.dtype != dtype:
            buf = self._buffers[name] = torch.empty(numel, dtype=dtype, device=self.device)
        return buf[:numel]
