"""Where a value first occurs in each row of a draw matrix: "is this value in the row before
position t" for the chain sampler's repair rounds (a module of its own, so that the other
samplers' code, and with it their cells' code digests, does not depend on it)."""

from __future__ import annotations

import torch

__all__ = ["FirstPositions"]

#: Largest dense (row, value) table of :class:`FirstPositions` (else sorted keys).
DENSE_ENTRIES = 1 << 22


class FirstPositions:
    """The first position of each value in each row of ``draws`` (values in [0, n)), for
    "is this value in the row before position t" queries: a dense (row, value) table while small,
    else each row's keys (value, position) sorted, searched row by row."""

    def __init__(self, draws: torch.Tensor, n: int):
        k, b = draws.shape
        self._n, self._b = n, b
        at = torch.arange(b, device=draws.device).expand(k, b)
        self._dense = k * n <= DENSE_ENTRIES and n <= 64 * b      # (a fill of k n entries against a sort of k b)
        if self._dense:
            key = torch.arange(k, device=draws.device)[:, None] * n + draws
            self._table = torch.full((k * n,), b, dtype=torch.int64, device=draws.device).scatter_reduce_(
                0, key.reshape(-1), at.reshape(-1), "amin")
        else:
            self._table = torch.sort(draws * b + at, dim=1).values

    def taken(self, rows: torch.Tensor, values: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
        """Whether ``values`` (e x P) occur in their rows ``rows`` (e x 1) at a position < ``before``."""
        if self._dense:
            key = rows * self._n + values
            return self._table.index_select(0, key.reshape(-1)).view(key.shape) < before
        key = values * self._b
        seq = self._table.index_select(0, rows.reshape(-1))
        hit = seq.gather(1, torch.searchsorted(seq, key).clamp_(max=self._b - 1))
        return (hit >= key) & (hit - key < before)
