"""Repeated values within the rows of a draw matrix: the "B distinct samples per batch" helpers.

Samplers that draw with replacement and keep the first B distinct values of each row (which is
exactly successive sampling without replacement) use these to find the rows with a repeat and
the first occurrences within them.
"""

from __future__ import annotations

import torch

from .workspace import Workspace

__all__ = ["rows_with_repeat", "first_occurrence", "first_distinct"]

#: Bound on the bytes of the per-row hashed occurrence counts of :func:`rows_with_repeat`.
REPEAT_TABLE_BYTES = 1 << 26


def _sort_keys(draws: torch.Tensor) -> torch.Tensor:
    """Row-wise sorted composite keys value * m + column (unique, so an unstable sort suffices)."""
    m = draws.shape[1]
    keys = draws * m + torch.arange(m, device=draws.device)
    return torch.sort(keys, dim=1).values


def rows_with_repeat(draws: torch.Tensor, n: int, workspace: Workspace | None = None) -> torch.Tensor:
    """Sorted indices of the rows of ``draws`` (values in [0, n)) that contain a value more than once.

    Exact, without sorting every row: each row counts its values in a small hashed table of its
    own, keyed by the values' low bits; only the values whose slot was hit more than once (a
    repeat or a hash collision) are compared exactly, after one sort by value. ``workspace``
    keeps the count table between calls.
    """
    rows, b = draws.shape
    dev = draws.device
    if b < 2 or rows == 0:
        return torch.zeros(0, dtype=torch.int64, device=dev)
    slots = 1 << max(8 * b - 1, 1).bit_length()          # power of two >= 8 B: ~12% flagged (uniform draws)
    while slots > 2 * b and rows * slots > REPEAT_TABLE_BYTES:
        slots //= 2
    scratch = (Workspace(dev) if workspace is None else workspace).get

    flat = draws.reshape(-1)
    # Counts start at -1 (255 in uint8, which wraps), so a slot hit exactly once ends at 0 and the
    # values of slots hit more than once are the nonzero ones (a row adds at most b < 256 to a
    # uint8 count). Row-wise scatter/gather (dim 1 of a rows x slots table) are several times
    # cheaper than the same work as 1-D index_add_/index_select over the flat table.
    ctype = torch.uint8 if (b < 256 and dev.type == "cpu") else torch.int32
    table = scratch("repeat_counts", rows * slots, ctype).fill_(255 if ctype == torch.uint8 else -1).view(rows, slots)
    # int64 keys (scatter/gather indices); widening first and masking in place is cheaper than a
    # mixed-type bitwise op
    key = scratch("repeat_key", rows * b, torch.int64).view(rows, b).copy_(draws).bitwise_and_(slots - 1)
    # (a materialised source: an expanded scalar is copied by scatter_add_ on every call)
    table.scatter_add_(1, key, scratch("repeat_ones", rows * b, ctype).fill_(1).view(rows, b))
    hits = torch.gather(table, 1, key, out=scratch("repeat_hits", rows * b, ctype).view(rows, b))
    cand = hits.view(-1).nonzero().view(-1)                  # ~12 % of the values (uniform draws)
    if cand.numel() == 0:
        return cand
    # Exact check of the candidates: a stable sort by value keeps each value's entries in flat
    # (row-major) order, so two entries of one row with the same value end up side by side.
    values = flat.index_select(0, cand)
    order = torch.argsort(values, stable=True)
    values, cand = values.index_select(0, order), cand.index_select(0, order)
    row = torch.div(cand, b, rounding_mode="floor")
    same = (values[1:] == values[:-1]) & (row[1:] == row[:-1])
    return torch.unique(row[1:][same])


def first_occurrence(draws: torch.Tensor) -> torch.Tensor:
    """Mask of the first occurrence (lowest column) of each value within every row."""
    m = draws.shape[1]
    keys = _sort_keys(draws)
    values = torch.div(keys, m, rounding_mode="floor")
    cols = keys - values * m
    new = torch.ones_like(keys, dtype=torch.bool)
    new[:, 1:] = values[:, 1:] != values[:, :-1]
    first = torch.empty_like(new)
    first.scatter_(1, cols, new)
    return first


def first_distinct(draws: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``b`` distinct values of each row of ``draws``, where a row has that many.

    Returns ``(complete, keep, first)``: which rows hold ``b`` distinct values, the mask of their
    first ``b`` first occurrences (``draws[i][keep[i]]`` in column order) and the mask of all first
    occurrences.
    """
    first = first_occurrence(draws)
    rank = torch.cumsum(first, dim=1)
    return rank[:, -1] >= b, first & (rank <= b), first
