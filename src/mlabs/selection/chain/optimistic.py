"""The chain sampler's optimistic strategy: argmax walks with rejection draws, in bulk.

Every batch's chain skeleton is built chain by chain and every draw made at once, ignoring "not
in the batch yet"; the few batches with a repeated sample are redrawn from their first repeat on.
This is exactly the step-by-step process (see :meth:`OptimisticChains.batches`).
"""

from __future__ import annotations

import math

import torch

from ..dedup import first_occurrence, rows_with_repeat
from ..drawing import BatchDrawer
from .draws import SegmentDraws
from .fixpoint import PositionStreams, fixpoint_batches
from .tables import ChainTables

__all__ = ["OptimisticChains"]

#: Bulk redraws of the batches with a repeated sample before the fixpoint repair.
_OPTIMISTIC_ROUNDS = 6
#: The bulk redraws stop early when more than this share of the batches drawn in a round still
#: have a repeat (large B / N: nearly every batch does, and redraws only move the first repeat).
_STILL_REPEATED = 0.5


class OptimisticChains:
    """Chain batches of the argmax walk, drawn optimistically in bulk (rejection draws only).

    Parameters
    ----------
    tables : ChainTables
    draws : SegmentDraws
        Restricted draws of the refresh in force (which must draw by rejection).
    drawer : BatchDrawer
        The owning sampler's drawer, whose slot table draws the seeds i.i.d. from p.
    batch_size : int
    generator : torch.Generator
        The owning sampler's generator (the repair's position streams).
    """

    def __init__(self, tables: ChainTables, draws: SegmentDraws, drawer: BatchDrawer, batch_size: int,
                 generator: torch.Generator):
        self._tables = tables
        self._generator = generator
        self._draws = draws
        self._drawer = drawer
        self._workspace = drawer.workspace
        self.batch_size = batch_size
        self.n_samples = drawer.n_samples
        self.device = drawer.device

    def batches(self, n_batches: int) -> torch.Tensor:
        """The argmax chain batches, drawn optimistically in bulk and repaired where needed.

        :meth:`_fill` builds every batch's chain skeleton chain by chain (seeds are
        i.i.d. draws from p, the walk's segments follow from the seed label) and draws every walk
        sample at once from p restricted to its segment, ignoring "not in the batch yet". Each
        draw is the first accepted proposal of its own stream: exactly what the step-by-step
        rejection process draws as long as that is not already in the batch. So a batch without a
        repeated sample is exactly the step-by-step result, and in a batch with a repeat
        everything before the first repeated position t* is exact (t* depends only on the draws
        up to t*). Such batches are redrawn from t* on (fresh randomness, state at t* kept), a few
        times in bulk while that resolves most of them, then by the exact bulk fixpoint of
        :func:`fixpoint_batches` (which also handles a walk label whose samples are all in the
        batch; such a position repeats at every bulk redraw).
        """
        nb, b, dev = n_batches, self.batch_size, self.device
        # batch-major (nb x B) with one extra entry that absorbs the writes of unused positions
        flat = torch.empty(nb * b + 1, dtype=torch.int32, device=dev)
        out = flat[: nb * b].view(nb, b)
        rows = start = current = None
        for _ in range(_OPTIMISTIC_ROUNDS):
            if rows is None:
                self._fill(flat, nb)
                vals = out
            else:
                # the batches being redrawn, compacted (their prefix before `start` is kept)
                k = rows.numel()
                buf = torch.empty(k * b + 1, dtype=torch.int32, device=dev)
                vals = buf[: k * b].view(k, b)
                torch.index_select(out, 0, rows, out=vals)
                self._fill(buf, k, start, current)
                out.index_copy_(0, rows, vals)
            bad = rows_with_repeat(vals, self.n_samples, self._workspace)
            if bad.numel() == 0:
                return out
            redo = vals.index_select(0, bad)
            first = first_occurrence(redo.to(torch.int64))
            start = (~first).to(torch.uint8).argmax(dim=1)
            current = self._state_at(redo, start)
            rows = bad if rows is None else rows.index_select(0, bad)
            if bad.numel() > _STILL_REPEATED * vals.shape[0]:
                break
        redo = out.index_select(0, rows).to(torch.int64)
        streams = PositionStreams(rows.numel(), b, self._generator, dev)
        fixed = fixpoint_batches(self._tables, self._draws.accept, redo, start, current, streams)
        out.index_copy_(0, rows, fixed.to(torch.int32))
        return out

    def _state_at(self, vals: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Chain state (see :class:`ChainTables`) of the draw at position ``t[i]`` of each complete
        optimistic batch ``vals[i]`` (int64).

        The chains tile the batch: the seeds are the positions reached from 0 by jumps of the
        chain length of each seed (``_seed_len``, cut at B), found by pointer doubling.
        """
        k, b = vals.shape
        dev, idle = self.device, self._tables.idle_state
        steps = max(self._tables.chain_length - 1, 0)
        if steps == 0 or k == 0:
            return torch.full((k,), idle, dtype=torch.int64, device=dev)
        at = torch.arange(b, device=dev)
        jump = torch.full((k, b + 1), b, dtype=torch.int64, device=dev)       # column b: past the end
        jump[:, :b] = self._tables.seed_len.index_select(0, vals.reshape(-1)).view(k, b).add(at).clamp_(max=b)
        seed = torch.zeros((k, b + 1), dtype=torch.bool, device=dev)
        seed[:, 0] = True
        for _ in range(max(b - 1, 1).bit_length()):
            # the seeds found so far (the first 2^i) also mark those 2^i chains further on
            seed.scatter_(1, torch.where(seed, jump, b), True)
            jump = jump.gather(1, jump)
        u = torch.where(seed[:, :b] & (at[None, :] <= t[:, None]), at, -1).amax(dim=1)   # the chain's seed
        d = t - u
        base = self._tables.seed_state.index_select(0, vals.gather(1, u[:, None]).reshape(-1))
        return torch.where(d == 0, idle, base + d - 1)

    def _fill(self, val_flat: torch.Tensor, k: int, start: torch.Tensor | None = None,
                         current: torch.Tensor | None = None) -> None:
        """Fill positions ``start[i]`` .. B-1 (default 0) of the k batch-major batches in
        ``val_flat`` (k * B entries and a last one absorbing unused writes), state ``current``
        (default idle) at the start, ignoring "not in the batch yet"."""
        b, dev = self.batch_size, self.device
        steps = max(self._tables.chain_length - 1, 0)
        idle, q, dump = self._tables.idle_state, self._tables.n_labels, k * b
        off = torch.arange(steps, dtype=torch.int32, device=dev)
        walk_at, walk_state = [], []      # flat position and state of every walk draw
        if start is None:
            pos = torch.zeros(k, dtype=torch.int32, device=dev)
        else:
            pos = start.to(torch.int32)
            if steps:
                # the chain in progress at the start: its remaining walk steps
                walking = current != idle
                label = torch.where(walking, torch.div(current, steps, rounding_mode="floor"), q)
                j0 = torch.where(walking, current - label * steps, 0)
                remaining = torch.minimum((self._tables.walk_len.index_select(0, label) - j0).clamp_(min=0),
                                          b - start).to(torch.int32)
                cont = off[None, :] < remaining[:, None]
                walk_at.append(torch.where(cont, (torch.arange(k, device=dev) * b + start)[:, None] + off,
                                           dump).view(-1))
                walk_state.append(torch.where(cont, current[:, None] + off, idle).to(torch.int32).view(-1))
                pos = pos + remaining
        # new chains: a block of i.i.d. seeds per open batch at a time (the unused ones are
        # discarded); a chain starts at the batch's position plus the lengths of the chains
        # before it in the block, and is cut at B
        open_rows = (pos < b).nonzero().view(-1)
        pos = pos.index_select(0, open_rows)
        mean, var = self._tables.chain_len_mean, self._tables.chain_len_var
        while open_rows.numel():
            r = open_rows.numel()
            need = int(b - pos.min())
            width = int(math.ceil(need / mean + 1.5 * math.sqrt(need * var / mean ** 3))) + 2
            seed = self._drawer.table.draws(r * width).to(torch.int32).view(r, width)
            length = torch.index_select(self._tables.seed_len, 0, seed.view(-1),
                                        out=self._workspace.get("chain_len", r * width, torch.int32)).view(r, width)
            end = torch.cumsum(length, dim=1, dtype=torch.int32).add_(pos[:, None])
            first = end - length
            at = first + (open_rows * b)[:, None]                          # flat position (int64)
            val_flat.scatter_(0, at.masked_fill_(first >= b, dump).view(-1), seed.view(-1))
            if steps:
                chains = ((length > 1) & (first < b - 1)).view(-1).nonzero().view(-1)
                size = (end.clamp_(max=b) - first).view(-1).index_select(0, chains)   # within the batch
                p = at.view(-1).index_select(0, chains)[:, None] + 1 + off
                walk_at.append(p.masked_fill_(off[None, :] + 1 >= size[:, None], dump).view(-1))
                state = self._tables.seed_state32.index_select(0, seed.view(-1).index_select(0, chains))
                walk_state.append((state[:, None] + off).view(-1))
            last = end[:, -1]
            keep = (last < b).nonzero().view(-1)
            open_rows, pos = open_rows.index_select(0, keep), last.index_select(0, keep)
        if walk_at:
            at = walk_at[0] if len(walk_at) == 1 else torch.cat(walk_at)
            state = walk_state[0] if len(walk_state) == 1 else torch.cat(walk_state)
            val_flat.scatter_(0, at, self._draws.bulk(state))
