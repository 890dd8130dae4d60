"""The chain sampler's draws from p restricted to a segment (a label's positives, or all samples)
minus the batch so far, and the next-label draws of ``label_choice="sample"``.

"Not yet in the batch" is enforced by rejection (exactly equivalent to drawing from the
restricted distribution), checked against a per-batch hashed bitmap (:class:`BatchBitmap`), with
an exact vectorised fallback after a few rejections.
"""

from __future__ import annotations

import torch

from ..drawing import BatchDrawer, Refresh
from .tables import ChainTables

__all__ = ["BatchBitmap", "SegmentDraws", "fill_accepted"]

#: Rejection attempts of the inverse-CDF restricted draws and of the next-label draws before the
#: exact fallback.
_CHAIN_RETRIES = 4
#: Bound on the (row, candidate) pairs the exact fallback builds at once (memory).
_FALLBACK_PAIRS = 1 << 22
#: Proposals per row in the first round of the rejection draws (x4 per further round).
_CHAIN_PROPOSALS = 2
#: Rounds of the rejection draws before the exact fallback.
_CHAIN_ROUNDS = 3
#: Smallest per-segment acceptance rate of the rejection draws (else inverse CDF): it bounds
#: the expected proposals per draw.
_CHAIN_MIN_RATE = 0.25
#: Largest number of slots of the per-batch membership bitmap (one byte each; false-hit rate of
#: a candidate ~ t / slots at step t).
_BITMAP_SLOTS = 4096
#: Bound on the bytes of all per-batch bitmaps of one draw together (fewer slots beyond).
_BITMAP_BYTES = 1 << 26


def fill_accepted(out: torch.Tensor, pending: torch.Tensor, accepted: torch.Tensor,
                  values: torch.Tensor) -> torch.Tensor:
    """Write the accepted ``values`` of a retry round into ``out[pending]``; return the still pending.

    ``pending`` lists the positions of ``out`` drawn in this round, aligned with ``accepted`` and
    ``values``.
    """
    keep = accepted.nonzero().view(-1)
    out.index_copy_(0, pending.index_select(0, keep), values.index_select(0, keep))
    return pending.index_select(0, (~accepted).nonzero().view(-1))


class BatchBitmap:
    """Per-batch hashed membership bitmaps of the batches being built (one draw's lifetime).

    A clear slot proves a candidate is not in the batch, so the exact O(t) comparison runs only
    for the few hash hits.

    Parameters
    ----------
    n_batches : int
        Batches built together.
    device : torch.device
    """

    def __init__(self, n_batches: int, device):
        slots = _BITMAP_SLOTS
        while slots > 256 and n_batches * slots > _BITMAP_BYTES:
            slots //= 2
        self._hash_bits = slots.bit_length() - 1
        #: the bitmaps, ``slots`` entries per batch, zeroed
        self.table = torch.zeros(n_batches * slots, dtype=torch.bool, device=device)
        #: first slot of each batch's bitmap
        self.row_base = torch.arange(n_batches, dtype=torch.int64, device=device) * slots

    def slots(self, samples: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Bitmap positions ``base + hash(sample)``: the top bits of a 32-bit multiplicative hash."""
        bits = self._hash_bits
        if samples.dtype == torch.int32:
            h = (samples * -1640531535).bitwise_right_shift_(32 - bits).bitwise_and_((1 << bits) - 1)
        else:
            h = ((samples * 2654435761) & 0xFFFFFFFF) >> (32 - bits)
        return base + h

    def mark(self, samples: torch.Tensor, base: torch.Tensor) -> None:
        """Record ``samples`` as members of the batches whose bitmaps start at ``base``."""
        self.table.index_fill_(0, self.slots(samples, base), True)


class SegmentDraws:
    """Draws from p restricted to segments, for the refresh in force.

    Parameters
    ----------
    tables : ChainTables
        The segments and the correlation CDF.
    drawer : BatchDrawer
        The owning sampler's drawer: its refresh (p for the exact fallback), slot table (seeds)
        and scratch buffers.
    generator : torch.Generator
        The owning sampler's generator.
    """

    def __init__(self, tables: ChainTables, drawer: BatchDrawer, generator: torch.Generator):
        self._tables = tables
        self._drawer = drawer
        self._workspace = drawer.workspace
        self._generator = generator
        self.device = drawer.device
        self.n_samples = drawer.n_samples
        #: whether the refresh in force draws by rejection (else by inverse CDF within segments)
        self.rejection = False
        #: acceptance probabilities w / max(w) of the rejection draws (float32)
        self.accept: torch.Tensor | None = None
        # inverse-CDF tables: cumulative weights over the segment members, per segment base and total
        self._seg_cum: torch.Tensor | None = None
        self._seg_base: torch.Tensor | None = None
        self._seg_total: torch.Tensor | None = None

    def refresh(self, refresh: Refresh, seed_table: bool) -> None:
        """The draw tables of a refresh (:class:`~mlabs.selection.drawing.Refresh`, machine-independent
        weights; segment draws only need relative weights); ``seed_table``: also build the
        drawer's slot table, for i.i.d. seeds from p.
        """
        # Rejection proposals: a uniform member of the segment, accepted with probability
        # w / max(w) (exact for p restricted to the segment); used when min(w) / max(w) >=
        # _CHAIN_MIN_RATE (s_e <= 1 / _CHAIN_MIN_RATE), which bounds every segment's acceptance
        # rate, else inverse CDF. float32 keeps the acceptance probabilities to ~1e-7 relative
        # (exactly rounded from the weights: the same on every machine).
        n = self.n_samples
        w32 = refresh.ratios(self._workspace.get("chain_accept", n, torch.float32))    # largest exactly 1
        self.rejection = self._tables.small and bool(w32.min() >= _CHAIN_MIN_RATE)
        if self.rejection:
            self.accept = w32
            if seed_table:
                # the optimistic bulk path draws its seeds (i.i.d. from p over all samples) with
                # the drawer's slot table: several times cheaper than segment draws
                self._drawer.build_table(w32)
            return
        self.accept = None
        w = refresh.weights.index_select(0, self._tables.seg_members)
        self._seg_cum = torch.cumsum(w, 0)
        before = torch.cat([torch.zeros(1, dtype=torch.float64, device=self.device), self._seg_cum])
        self._seg_base = before[self._tables.seg_start[:-1]]
        self._seg_total = before[self._tables.seg_start[1:]] - self._seg_base

    def bulk(self, state: torch.Tensor) -> torch.Tensor:
        """One draw from p restricted to the segment of chain state ``state[i]`` per entry,
        independently (rejection mode), int32.

        One proposal per pending entry and round (a uniform member, accepted with probability
        w / max(w), rate >= _CHAIN_MIN_RATE): rounds shrink geometrically. One float64 uniform
        per proposal gives the member (integer part of u * size) and the acceptance test (the
        fraction). One proposal per entry and round keeps the number of float64 uniforms, which
        dominate the cost, at its minimum. The large temporaries live in reused scratch buffers.
        """
        g, dev = self._generator, self.device
        e = state.numel()
        out = torch.empty(e, dtype=torch.int32, device=dev)
        lo_all = torch.index_select(self._tables.state_lo32, 0, state, out=self._workspace.get("bulk_lo", e, torch.int32))
        size_all = torch.index_select(self._tables.state_size, 0, state, out=self._workspace.get("bulk_size", e, torch.float64))
        lo, size = lo_all, size_all
        pending = None                          # entries of `out` drawn in this round (None: all)
        while True:
            c = lo.numel()
            x = self._workspace.get("bulk_x", c, torch.float64).uniform_(generator=g).mul_(size)
            pos = self._workspace.get("bulk_pos", c, torch.int32).copy_(x)          # floor (x >= 0)
            frac = x.sub_(pos)
            cand = out if pending is None else self._workspace.get("bulk_cand", c, torch.int32)
            torch.index_select(self._tables.seg_members32, 0, pos.add_(lo), out=cand)
            accept = torch.index_select(self.accept, 0, cand, out=self._workspace.get("bulk_acc", c, torch.float32))
            rejected = torch.ge(frac, accept, out=self._workspace.get("bulk_rej", c, torch.bool)).nonzero().view(-1)
            if pending is None:
                pending = rejected
            else:
                # every entry drawn is written; a rejected value is overwritten in a later round
                out.scatter_(0, pending, cand)
                pending = pending.index_select(0, rejected)
            if pending.numel() == 0:
                return out
            lo, size = lo_all.index_select(0, pending), size_all.index_select(0, pending)

    def next_labels(self, current: torch.Tensor, visited: torch.Tensor) -> torch.Tensor:
        """Next segment per row: a label drawn proportionally to A[current, k] over the labels k
        not in ``visited``; q (a seed) where ``current`` is -1 or all those correlations are 0.

        Rejection of visited labels (exact) from the flat CDF of A, exact fallback after a few tries.
        """
        q, dev = self._tables.n_labels, self.device
        segment = torch.full_like(current, q)
        rows = (current >= 0).nonzero().reshape(-1)
        if rows.numel() == 0:
            return segment
        cur = current.index_select(0, rows)
        vis = visited.index_select(0, rows)
        base, total = self._tables.corr_base.index_select(0, cur), self._tables.corr_total.index_select(0, cur)
        lo = cur * q
        pending = torch.arange(rows.numel(), device=dev)
        for _ in range(_CHAIN_RETRIES):
            u = torch.rand((pending.numel(), _CHAIN_PROPOSALS), generator=self._generator, dtype=torch.float64,
                           device=dev)
            val = u.mul_(total.index_select(0, pending)[:, None]).add_(base.index_select(0, pending)[:, None])
            pos = torch.searchsorted(self._tables.corr_cum, val, right=True)
            lo_p = lo.index_select(0, pending)[:, None]
            pos = torch.minimum(torch.maximum(pos, lo_p), lo_p + (q - 1))
            lab = pos - lo_p
            # zero-weight labels (reached only by rounding) and visited labels are rejected
            ok = (self._tables.corr_flat.index_select(0, pos.reshape(-1)).reshape(pos.shape) > 0)
            ok &= ~(vis.index_select(0, pending)[:, :, None] == lab[:, None, :]).any(dim=1)
            got = ok.any(dim=1)
            first = ok.to(torch.uint8).argmax(dim=1, keepdim=True)   # the first accepted proposal
            accept = got.nonzero().reshape(-1)
            segment.index_copy_(0, rows.index_select(0, pending.index_select(0, accept)),
                                lab.gather(1, first).reshape(-1).index_select(0, accept))
            pending = pending.index_select(0, (~got).nonzero().reshape(-1))
            if pending.numel() == 0:
                return segment
        # exact fallback: the full row of A over the unvisited labels
        vis = vis.index_select(0, pending)
        mask = torch.zeros((pending.numel(), q + 1), dtype=torch.bool, device=dev)
        mask.scatter_(1, torch.where(vis >= 0, vis, q), True)
        nxt = self._next_labels_exact(cur.index_select(0, pending), mask[:, :q])
        segment.index_copy_(0, rows.index_select(0, pending), torch.where(nxt >= 0, nxt, q))
        return segment

    def _next_labels_exact(self, current: torch.Tensor, visited: torch.Tensor) -> torch.Tensor:
        """Next label drawn proportionally to A[current, k] over unvisited k; -1 when all are 0."""
        w = self._tables.correlation.index_select(0, current).masked_fill_(visited, 0.0)
        cum = torch.cumsum(w, dim=1)
        total = cum[:, -1]
        u = torch.rand(current.numel(), generator=self._generator, dtype=torch.float64, device=self.device)
        pick = torch.searchsorted(cum, (u * total)[:, None], right=True).clamp_(max=w.shape[1] - 1)
        # rounding can land on a zero-weight label at the end of the row: take the last positive one
        positive = w > 0
        last_pos = torch.where(positive, torch.arange(w.shape[1], device=self.device), -1).cummax(dim=1).values
        pick = last_pos.gather(1, pick).reshape(-1)
        return torch.where(total > 0, pick, torch.full_like(pick, -1))

    def rejection_draws(self, segment: torch.Tensor, rows: torch.Tensor, out: torch.Tensor, t: int,
                        bitmap: BatchBitmap):
        """As :meth:`restricted_draws`, by rejection from uniform members of the segment.

        A proposal (uniform member i of the segment) is accepted with probability
        ``w_i / max(w)`` and rejected when already in the batch: exactly p restricted to the
        segment minus the batch. ``_CHAIN_PROPOSALS << 2r`` proposals per row in round r, the first
        accepted one is kept; rows without one after ``_CHAIN_ROUNDS`` rounds (42 proposals, all
        rejected with probability ~ (1 - rate)^62 unless the segment is nearly all in the batch)
        use the exact fallback. Returns (picked, found) with ``found`` None when every row found one.
        """
        k, dev, g = rows.numel(), self.device, self._generator
        picked = torch.empty(k, dtype=torch.int32, device=dev)
        if k == 0:
            return picked, None
        lo = self._tables.seg_start32.index_select(0, segment)
        size = self._tables.seg_len.index_select(0, segment)
        base = bitmap.row_base.index_select(0, rows) if t > 0 else None
        pending = None                                               # positions still to draw
        for r in range(_CHAIN_ROUNDS):
            if pending is None:
                lo_p, size_p, rows_p, base_p = lo, size, rows, base
            else:
                lo_p, size_p, rows_p = lo.index_select(0, pending), size.index_select(0, pending), \
                    rows.index_select(0, pending)
                base_p = None if base is None else base.index_select(0, pending)
            n_prop = _CHAIN_PROPOSALS << (2 * r)
            # one uniform gives the member (integer part) and the acceptance test (fraction)
            x = torch.rand((lo_p.numel(), n_prop), generator=g, dtype=torch.float64, device=dev).mul_(size_p[:, None])
            pos = x.to(torch.int32)
            frac = x.sub_(pos)
            cand = self._tables.seg_members32.index_select(0, pos.add_(lo_p[:, None]).view(-1))
            ok = frac < self.accept.index_select(0, cand).view(x.shape)
            cand = cand.view(x.shape)
            if t > 0:
                slot = bitmap.slots(cand, base_p[:, None])
                hits = bitmap.table.index_select(0, slot.view(-1)).view(x.shape).logical_and_(ok).nonzero()
                if hits.numel():
                    # exact check of the hash hits against the batch so far
                    hr, hc = hits[:, 0], hits[:, 1]
                    value = cand[hr, hc]
                    taken = (out[:t].index_select(1, rows_p.index_select(0, hr)) == value[None, :]).any(dim=0)
                    ok[hr, hc] = ~taken
            if n_prop == 2:
                got = ok[:, 0] | ok[:, 1]
                value = torch.where(ok[:, 0], cand[:, 0], cand[:, 1])
            else:
                got = ok.any(dim=1)
                value = cand.gather(1, ok.to(torch.uint8).argmax(dim=1, keepdim=True)).view(-1)
            if pending is None:
                picked.copy_(value)
                pending = (~got).nonzero().view(-1)
            else:
                pending = fill_accepted(picked, pending, got, value)
            if pending.numel() == 0:
                return picked, None
        values, ok = self._restricted_exact(segment.index_select(0, pending), rows.index_select(0, pending),
                                                 out, t)
        picked.index_copy_(0, pending, values.to(torch.int32))
        found = torch.ones(k, dtype=torch.bool, device=dev)
        found.index_copy_(0, pending, ok)
        return picked, None if bool(ok.all()) else found

    def restricted_draws(self, segment: torch.Tensor, rows: torch.Tensor, out: torch.Tensor, t: int,
                         bitmap: BatchBitmap):
        """One draw per row from p restricted to ``segment`` minus the batch so far, ``out[:t, row]``.

        Returns (picked, found); ``found`` is False where the restricted set is empty, None when
        every row found a sample.
        """
        k = rows.numel()
        dev = self.device
        picked = torch.full((k,), -1, dtype=torch.int64, device=dev)
        found = torch.ones(k, dtype=torch.bool, device=dev)
        if k == 0:
            return picked, None
        lo = self._tables.seg_start.index_select(0, segment)
        hi = self._tables.seg_start.index_select(0, segment + 1) - 1
        base, total = self._seg_base.index_select(0, segment), self._seg_total.index_select(0, segment)
        pending = None                                               # positions still to draw
        # Inverse-CDF proposals within the segment; a proposal already in the batch is rejected
        # (exactly sampling p restricted to the segment minus the batch).
        for _ in range(_CHAIN_RETRIES):
            if pending is None:
                lo_p, hi_p, base_p, total_p, rows_p = lo, hi, base, total, rows
            else:
                rows_p = rows.index_select(0, pending)
                lo_p, hi_p = lo.index_select(0, pending), hi.index_select(0, pending)
                base_p, total_p = base.index_select(0, pending), total.index_select(0, pending)
            u = torch.rand(lo_p.numel(), generator=self._generator, dtype=torch.float64, device=dev)
            pos = torch.searchsorted(self._seg_cum, u.mul_(total_p).add_(base_p), right=True)
            cand = self._tables.seg_members.index_select(0, torch.minimum(torch.maximum(pos, lo_p), hi_p))
            taken = torch.zeros(cand.numel(), dtype=torch.bool, device=dev)
            if t > 0:
                slot = bitmap.slots(cand, bitmap.row_base.index_select(0, rows_p))
                hits = bitmap.table.index_select(0, slot).nonzero().reshape(-1)
                if hits.numel():
                    # exact check of the hash hits against the batch so far
                    batch = out[:t].index_select(1, rows_p.index_select(0, hits))
                    taken[hits] = (batch == cand.index_select(0, hits)[None, :]).any(dim=0)
            if pending is None:
                picked.copy_(cand)
                pending = taken.nonzero().reshape(-1)
            else:
                pending = fill_accepted(picked, pending, ~taken, cand)
            if pending.numel() == 0:
                return picked, None
        if pending is None:
            pending = torch.arange(k, device=dev)
        values, ok = self._restricted_exact(segment.index_select(0, pending), rows.index_select(0, pending),
                                                 out, t)
        picked.index_copy_(0, pending, values)
        found.index_copy_(0, pending, ok)
        return picked, None if bool(ok.all()) else found

    def _restricted_exact(self, segment: torch.Tensor, rows: torch.Tensor, out: torch.Tensor, t: int):
        """Exact restricted draw by enumerating the segment's members, in groups of bounded size."""
        dev = self.device
        lengths = self._tables.seg_start.index_select(0, segment + 1) - self._tables.seg_start.index_select(0, segment)
        picked = torch.full((rows.numel(),), -1, dtype=torch.int64, device=dev)
        found = torch.zeros(rows.numel(), dtype=torch.bool, device=dev)
        ends = torch.cumsum(lengths, 0)
        start_row = 0
        while start_row < rows.numel():
            # rows start_row .. stop_row - 1 with at most _FALLBACK_PAIRS pairs (at least one row)
            offset = int(ends[start_row - 1]) if start_row else 0
            stop_row = int(torch.searchsorted(ends, torch.tensor(offset + _FALLBACK_PAIRS, device=dev), right=True))
            stop_row = max(stop_row, start_row + 1)
            seg, rws, lens = segment[start_row:stop_row], rows[start_row:stop_row], lengths[start_row:stop_row]
            r = rws.numel()
            pair_row = torch.repeat_interleave(torch.arange(r, device=dev), lens)
            row_first = torch.cumsum(lens, 0) - lens
            pos = (self._tables.seg_start.index_select(0, seg).index_select(0, pair_row)
                   + torch.arange(pair_row.numel(), device=dev) - row_first.index_select(0, pair_row))
            cand = self._tables.seg_members.index_select(0, pos)
            n = self.n_samples
            if t > 0:
                in_batch = (torch.arange(r, device=dev)[None, :] * n + out[:t].index_select(1, rws)).reshape(-1)
                taken = torch.isin(pair_row * n + cand, in_batch)
            else:
                taken = torch.zeros_like(cand, dtype=torch.bool)
            w = self._drawer.refresh.p().index_select(0, cand).masked_fill_(taken, 0.0)
            cum = torch.cumsum(w, 0)
            before = torch.cat([torch.zeros(1, dtype=torch.float64, device=dev), cum])
            row_base = before.index_select(0, row_first)
            row_total = before.index_select(0, row_first + lens) - row_base
            ok = row_total > 0
            u = torch.rand(r, generator=self._generator, dtype=torch.float64, device=dev)
            choice = torch.searchsorted(cum, row_base + u * row_total, right=True)
            choice = torch.minimum(torch.maximum(choice, row_first), row_first + lens - 1)
            # rounding past a row's end can land on a taken (zero-weight) member: step back to the
            # last member with positive weight, which lies in the same row when the row total > 0
            last_pos = torch.where(w > 0, torch.arange(w.numel(), device=dev), -1).cummax(dim=0).values
            choice = last_pos.index_select(0, choice).clamp_(min=0)
            picked[start_row:stop_row] = torch.where(ok, cand.index_select(0, choice), torch.full_like(choice, -1))
            found[start_row:stop_row] = ok
            start_row = stop_row
        return picked, found
