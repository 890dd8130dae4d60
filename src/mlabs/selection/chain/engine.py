"""The chain sampler's drawing engine: all batches of a refresh laid out at once, then repaired.

Every position of a batch has its own stream of i.i.d. draws from p restricted to its segment (the
walk's label, or every sample for a seed); the step-by-step process takes the first draw not in the
batch yet. The layout takes every first draw; a repeated value (a conflict) continues its stream
against the values before it. Those values only gain members (a conflict's old value occurs
earlier), so a batch without a conflict is the step-by-step result. Where a seed changes its seed
label or a walk's label runs out, the rest of the batch is laid out afresh (docs/selection.md).
"""

from __future__ import annotations

import math

import torch

from ..dedup import first_occurrence, rows_with_repeat
from ..first_positions import FirstPositions
from ..drawing import BatchDrawer
from ..imbalance import label_correlation

__all__ = ["ChainEngine", "label_walk_table", "walks"]

#: Smallest p_i / p_max with segment draws by rejection (rate >= 1/4), else by inverse CDF.
MIN_RATE = 0.25
#: Proposals per draw when drawn several at once (conflicts, and layouts of at most FEW draws).
PROPOSALS = 8
FEW = 1 << 12
#: Conflicts in segments of at most max(ENUMERATE, B) samples (only those can run out) enumerate them.
ENUMERATE = 512
#: Rows of label draws at once with ``label_choice="sample"`` (q int64 each).
LABEL_ROWS = 1 << 15


def _take(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for any shape of ``index`` (a flat ``index_select``)."""
    return table.index_select(0, index.reshape(-1)).view(index.shape)


def _first(cand: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Each row's first accepted proposal (arbitrary where none is)."""
    return cand.gather(1, ok.to(torch.uint8).argmax(dim=1, keepdim=True)).view(-1)


def label_walk_table(correlation: torch.Tensor, chain_length: int) -> torch.Tensor:
    """Argmax walks: row l lists the labels visited after seed label l (-1: stopped), shape (q, m - 1).

    Each step takes the unvisited label with the largest correlation to the previous one (the
    smaller index on ties); the walk stops at a correlation of 0.
    """
    q = correlation.shape[0]
    label = torch.arange(q, device=correlation.device)
    return walks(torch.nn.functional.pad(correlation, (0, 1)), label, chain_length - 1, lambda w: w.argmax(dim=1)).long()


def walks(weights: torch.Tensor, label: torch.Tensor, steps: int, pick) -> torch.Tensor:
    """Walks of ``steps`` steps from each of ``label`` (q: none) over ``weights`` (q x (q + 1), the
    last column 0), int32, -1 where stopped: each step ``pick`` s a label from the rows of weights
    of the current labels with the visited ones zeroed (the first maximum for argmax walks: the
    smaller index on ties); a row of zeros stops the walk."""
    q, dev = weights.shape[0], weights.device
    out = torch.full((label.numel(), steps), -1, dtype=torch.int32, device=dev)
    visited = torch.full((label.numel(), steps + 1), q, dtype=torch.int64, device=dev)
    visited[:, 0] = label
    for s in range(steps):
        for part in (visited[:, s] < q).nonzero().view(-1).split(LABEL_ROWS):
            w = weights.index_select(0, visited[part, s]).scatter_(1, visited.index_select(0, part), 0)
            nxt = torch.where(w.amax(dim=1) > 0, pick(w), -1)
            out[part, s] = nxt.to(torch.int32)
            visited[part, s + 1] = torch.where(nxt >= 0, nxt, q)
    return out


class ChainEngine:
    """Chain batches from the refresh of ``drawer``; segment l < q: label l's positives, q: all samples."""

    def __init__(self, labels: torch.Tensor, chain_length: int, label_choice: str, drawer: BatchDrawer,
                 generator: torch.Generator):
        y, dev = labels, drawer.device
        n, q = y.shape
        self.n, self.q, self.b, self.steps = n, q, drawer.batch_size, max(chain_length - 1, 0)
        self.label_choice, self._drawer, self._g, self.dev = label_choice, drawer, generator, dev
        counts = y.sum(dim=0).to(torch.float64)
        ir = torch.where(y, (counts.max() / counts.clamp(min=1.0))[None, :], -1.0)
        #: each sample's positive label with the largest IRLbl (ties: the smaller index), -1: none
        self.seed_label = torch.where(y.any(dim=1), ir.argmax(dim=1), -1)
        self._y, self.correlation = y, label_correlation(y, device=dev)
        self._walk = torch.cat([label_walk_table(self.correlation, chain_length).int(),
                                torch.full((1, self.steps), -1, dtype=torch.int32, device=dev)])   # row q: none
        # per sample: its walk's row and the length of its argmax chain (sizes the seed blocks)
        self._seed_row = torch.where(self.seed_label >= 0, self.seed_label, q)
        self._seed_len = (self._walk >= 0).sum(dim=1, dtype=torch.int32).add_(1).index_select(0, self._seed_row)
        self._walk_start = (self._seed_row * self.steps - 1).to(torch.int32)   # its row in the flat table, - 1
        self._walk_q = torch.where(self._walk >= 0, self._walk, q).view(-1)
        s1, s2 = int(self._seed_len.sum()), int(self._seed_len.long().pow(2).sum())   # exact integer sums
        self._len_mean, self._len_var = s1 / n, (s2 - s1 * s1 / n) / max(n - 1, 1)
        lab, smp = y.T.nonzero(as_tuple=True)
        self._idx = torch.int32 if n < 2**31 else torch.int64
        self._members = torch.cat([smp, torch.arange(n, device=dev)]).to(self._idx)
        sizes = torch.cat([counts.to(torch.int64), torch.tensor([n], device=dev)])
        self._start = torch.cat([torch.zeros(1, dtype=torch.int64, device=dev), sizes.cumsum(0)])
        self._size, self._sizef, self._start32 = sizes, sizes.double(), self._start.to(self._idx)
        # label_choice="sample": A as int64 weights whose rows sum exactly (column q: 0)
        a = self.correlation.double()
        self._a_int = torch.nn.functional.pad((a * (2.0 ** (62 - q.bit_length()) / max(float(a.max()), 1e-300))
                                               ).round().to(torch.int64), (0, 1))

    def refresh(self) -> None:
        """The segment draws of the drawer's refresh: acceptance ratios, or a segmented int64 CDF."""
        self._ratio = self._drawer.refresh.ratios(self._drawer.workspace.get("chain_ratio", self.n, torch.float32))
        self.rejection = bool(self._ratio.min() >= MIN_RATE)
        self._drawer.build_table(self._ratio)        # the seeds of the layout: i.i.d. from p
        self._iw = self._drawer.table.int_weights() if not self.rejection else None
        if not self.rejection:
            # weights of ``62 - log2(entries)`` bits: the flat cumulative table is exact in int64
            extra = max(self._members.numel().bit_length() - self.n.bit_length(), 0)
            w = (self._iw >> extra).clamp_(min=1).index_select(0, self._members.long())
            self._cum = w.cumsum(0)
            self._base = torch.cat([torch.zeros(1, dtype=torch.int64, device=self.dev), self._cum])[self._start]

    def _propose(self, segment: torch.Tensor, u: torch.Tensor):
        """Proposals from p restricted to ``segment`` (broadcast against the uniforms ``u``):
        (sample, accepted). Rejection: a uniform member accepted with probability p_i / p_max;
        inverse CDF: always accepted."""
        if self.rejection:
            size = _take(self._size, segment)
            x = u * size
            pos = x.floor()
            cand = _take(self._members, pos.long().clamp_(max=size - 1) + _take(self._start, segment))
            return cand, (x - pos) < _take(self._ratio, cand)
        base = _take(self._base, segment)
        total = _take(self._base, segment + 1) - base
        pos = torch.searchsorted(self._cum, torch.minimum((u * total).floor_().long(), total - 1) + base, right=True)
        return _take(self._members, pos), torch.ones_like(pos, dtype=torch.bool)

    def _bulk(self, segment: torch.Tensor, prefix=None, row=None) -> torch.Tensor:
        """A draw from p restricted to each entry's segment (few entries: not in their ``row``'s ``prefix``)."""
        if not self.rejection:
            u = torch.rand(segment.numel(), generator=self._g, dtype=torch.float64, device=self.dev)
            return self._propose(segment, u)[0]
        if segment.numel() <= FEW:                      # few entries: PROPOSALS proposals each at once
            out = torch.empty(segment.numel(), dtype=self._idx, device=self.dev)
            pending = torch.arange(segment.numel(), device=self.dev)
            while pending.numel():
                cand, ok = self._propose(segment.index_select(0, pending)[:, None].expand(-1, PROPOSALS), torch.rand(
                    pending.numel(), PROPOSALS, generator=self._g, dtype=torch.float64, device=self.dev))
                if prefix is not None:
                    r = row.index_select(0, pending)
                    ok &= ~prefix[0].taken(r[:, None], cand.long(), prefix[1].index_select(0, r)[:, None])
                out.index_copy_(0, pending, _first(cand, ok))
                pending = pending.index_select(0, (~ok.any(dim=1)).nonzero().view(-1))
            return out
        # One float64 uniform per proposal gives the member (integer part of u * size, < size) and
        # the acceptance test (the fraction); rounds shrink geometrically (rate >= MIN_RATE). The
        # large temporaries live in the drawer's scratch buffers (fresh ones cost page faults).
        ws, e = self._drawer.workspace.get, segment.numel()
        out = torch.empty(e, dtype=self._idx, device=self.dev)
        lo = lo_all = torch.index_select(self._start32, 0, segment, out=ws("chain_lo", e, self._idx))
        size = size_all = torch.index_select(self._sizef, 0, segment, out=ws("chain_size", e, torch.float64))
        pending = None                                  # the entries drawn in this round (None: all)
        while True:
            c = lo.numel()
            x = ws("chain_x", c, torch.float64).uniform_(generator=self._g).mul_(size)
            pos = ws("chain_pos", c, self._idx).copy_(x)                  # floor (x >= 0)
            frac = x.sub_(pos)
            cand = out if pending is None else ws("chain_cand", c, self._idx)
            torch.index_select(self._members, 0, pos.add_(lo), out=cand)
            accept = torch.index_select(self._ratio, 0, cand, out=ws("chain_acc", c, torch.float32))
            rejected = torch.ge(frac, accept, out=ws("chain_rej", c, torch.bool)).nonzero().view(-1)
            if pending is None:
                pending = rejected
            else:
                out.scatter_(0, pending, cand)          # a rejected value is overwritten later
                pending = pending.index_select(0, rejected)
            if pending.numel() == 0:
                return out
            lo, size = lo_all.index_select(0, pending), size_all.index_select(0, pending)

    def _pick(self, w: torch.Tensor) -> torch.Tensor:
        """A column per row of the int64 weights ``w`` drawn proportionally to them (exact CDF)."""
        cum = w.cumsum_(1)
        total = cum[:, -1:]
        u = torch.rand(w.shape[0], 1, generator=self._g, dtype=torch.float64, device=self.dev)
        return torch.searchsorted(cum, torch.minimum((u * total).floor_().long(), total - 1).clamp_(min=0), right=True).view(-1)

    def batches(self, nb: int) -> torch.Tensor:
        """``nb`` rows of B distinct samples, each built chain by chain as the step-by-step process."""
        b, dev = self.b, self.dev
        out = torch.empty(nb * b + 1, dtype=self._idx, device=dev)      # last entry: unused writes
        seg = self._drawer.workspace.get("chain_seg", nb * b + 1, torch.int32).fill_(self.q)   # segment per position
        self._layout(out, seg, torch.zeros(nb, dtype=torch.int64, device=dev))
        vals, segs = out[:-1].view(nb, b), seg[:-1].view(nb, b)
        rows = rows_with_repeat(vals, self.n, self._drawer.workspace)
        while rows.numel():
            v, s = self._repair(vals.index_select(0, rows).long(), segs.index_select(0, rows).long())
            vals.index_copy_(0, rows, v.to(self._idx))
            segs.index_copy_(0, rows, s.to(torch.int32))
            rows = rows.index_select(0, rows_with_repeat(v, self.n, self._drawer.workspace))
        return vals

    def _layout(self, out: torch.Tensor, seg: torch.Tensor, start: torch.Tensor,
                given: torch.Tensor | None = None, dead: torch.Tensor | None = None, prefix=None) -> None:
        """Chains from position ``start[i]`` of row i of ``out`` (rows x B flat, a last entry for unused
        writes) on, the first seed ``given[i]``: blocks of i.i.d. seeds from p, each chain after the
        ones before it, cut at B and before a label with ``dead[i, label]`` (run out: a seed takes
        that position), then all walk draws at once; ``seg`` (q there) gets the walks' labels.
        ``prefix``: (FirstPositions of the rows, start): small layouts skip its values before start."""
        b, q, dev = self.b, self.q, self.dev
        dump, rows, pos = out.numel() - 1, torch.arange(start.numel(), device=dev), start.to(torch.int32)
        walk_draws = []
        off = torch.arange(1, self.steps + 1, device=dev)
        while rows.numel():
            r, need = rows.numel(), int(b - pos.min())
            width = int(math.ceil(need / self._len_mean + 1.5 * math.sqrt(need * self._len_var / self._len_mean ** 3))) + 2
            seeds = self._drawer.table.draws(r * width).to(out.dtype).view(r, width)
            if given is not None:
                seeds[:, 0], given = given.to(out.dtype), None
            walk = None
            if self.label_choice == "argmax" and dead is None:
                length = torch.index_select(self._seed_len, 0, seeds.view(-1), out=self._drawer.workspace.get(
                    "chain_len", r * width, torch.int32)).view(r, width)
            else:
                row = self._seed_row.index_select(0, seeds.view(-1))
                walk = (self._walk.index_select(0, row) if self.label_choice == "argmax" else
                        walks(self._a_int, row, self.steps, self._pick))
                if dead is not None:
                    cut = dead.index_select(0, rows).gather(1, walk.view(r, -1).long().clamp_(min=0)).view(walk.shape)
                    walk.masked_fill_((cut | (walk < 0)).cummax(dim=1).values, -1)
                length = (walk >= 0).sum(dim=1, dtype=torch.int32).add_(1).view(r, width)
            unused = None
            if r * width <= FEW:    # a row's seeds are one stream: a seed already in the row is skipped
                unused = ~first_occurrence(seeds.long())
                if prefix is not None:
                    unused |= prefix[0].taken(rows[:, None], seeds.long(), prefix[1].index_select(0, rows)[:, None])
                length = length.masked_fill(unused, 0)
            end = length.cumsum(dim=1, dtype=torch.int32).add_(pos[:, None])
            first = end - length
            at = (first + (rows * b)[:, None]).masked_fill_(first >= b, dump)
            out.scatter_(0, (at if unused is None else at.masked_fill_(unused, dump)).view(-1), seeds.view(-1))
            if self.steps:
                chains = ((length > 1) & (first < b - 1)).view(-1).nonzero().view(-1)
                size = (end.clamp_(max=b) - first).view(-1).index_select(0, chains)    # within the batch
                cut = off >= size[:, None]
                wat = (at.view(-1).index_select(0, chains)[:, None] + off).masked_fill_(cut, dump).view(-1)
                # (the label of an unused entry only needs to be valid: q past the walk's end)
                label = walk.index_select(0, chains).masked_fill_(cut, q) if walk is not None else self._walk_q.index_select(
                    0, (self._walk_start.index_select(0, seeds.view(-1).index_select(0, chains))[:, None] + off.int()).view(-1))
                walk_draws.append((wat, label.view(-1)))
            last = end[:, -1]
            keep = (last < b).nonzero().view(-1)
            rows, pos = rows.index_select(0, keep), last.index_select(0, keep)
        for at, label in walk_draws:                    # after all seeds: each block's walks at once
            row = None if prefix is None else torch.div(at, b, rounding_mode="floor").clamp_(max=start.numel() - 1)
            out.scatter_(0, at, self._bulk(label, prefix, row).to(out.dtype))
            seg.scatter_(0, at, label)

    def _repair(self, v: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One round over rows with a repeat: every conflict continues its stream against the values
        before it; rows whose chain layout changes are laid out afresh after the first change."""
        k, b, q, n = v.shape[0], self.b, self.q, self.n
        r, t = (~first_occurrence(v)).nonzero(as_tuple=True)      # the conflicts: values seen earlier
        segment = s[r, t]
        lookup = FirstPositions(v, n)
        new, got, empty = self._restricted(lookup, r, t, segment)
        ex = empty.nonzero().view(-1)
        if ex.numel():                      # the walk's label has no free sample: a new seed instead
            segment[ex] = q
            new[ex], got[ex], _ = self._restricted(lookup, r[ex], t[ex], segment[ex])
        old_label = self.seed_label.index_select(0, v[r, t])
        change = got & empty | got & (segment == q) & (self.seed_label.index_select(0, new) != old_label)
        c = torch.full((k,), b, dtype=torch.int64, device=self.dev)
        c.scatter_reduce_(0, r[change], t[change], "amin")
        apply = (got & (t <= c[r])).nonzero().view(-1)
        v[r[apply], t[apply]] = new[apply]
        s[r[apply], t[apply]] = segment[apply]
        redo = (c < b).nonzero().view(-1)
        if redo.numel():
            vr, sr, cr = v[redo], s[redo], c[redo]
            sr.masked_fill_(torch.arange(b, device=self.dev) >= cr[:, None], q)
            flat_v, flat_s = torch.cat([vr.view(-1), vr.new_zeros(1)]), torch.cat([sr.view(-1), sr.new_zeros(1)]).int()
            kept = first_occurrence(vr) & (torch.arange(b, device=self.dev) <= cr[:, None])
            count = (self._y.index_select(0, vr.view(-1)).view(-1, b, q) & kept[:, :, None]).sum(dim=1)
            dead = torch.nn.functional.pad(count >= self._size[:q], (0, 1))     # labels run out: they stay so
            self._layout(flat_v, flat_s, cr, vr.gather(1, cr[:, None]).view(-1), dead,
                         (FirstPositions(vr, n), cr) if n <= 64 * b else None)   # (small N: frequent repeats)
            v[redo], s[redo] = flat_v[:-1].view(-1, b), flat_s[:-1].view(-1, b).long()
        return v, s

    def _restricted(self, lookup: FirstPositions, r: torch.Tensor, t: torch.Tensor, segment: torch.Tensor):
        """A draw from p restricted to ``segment`` minus the values before position t of row r, per
        entry: (sample, drawn, empty). Small segments are enumerated (exact, and ``empty`` where no
        member is free); the others take the first accepted free one of ``PROPOSALS`` proposals
        (``drawn`` False if none: the conflict stays and continues its stream next round)."""
        n, b = self.n, self.b

        size = self._size.index_select(0, segment)
        new = torch.empty_like(r)
        got, empty = torch.zeros_like(r, dtype=torch.bool), torch.zeros_like(r, dtype=torch.bool)
        small = size <= max(ENUMERATE, b)
        big = (~small).nonzero().view(-1)
        if big.numel():
            cand, ok = self._propose(segment[big, None].expand(-1, PROPOSALS), torch.rand(
                big.numel(), PROPOSALS, generator=self._g, dtype=torch.float64, device=self.dev))
            ok &= ~lookup.taken(r[big, None], cand.long(), t[big, None])
            new[big], got[big] = _first(cand, ok).long(), ok.any(dim=1)
        small = small.nonzero().view(-1)
        if small.numel():
            length = size[small]
            col = torch.arange(int(length.max()), device=self.dev)
            inside = col < length[:, None]
            member = _take(self._members, (self._start[segment[small], None] + col).masked_fill_(~inside, 0)).long()
            free = inside & ~lookup.taken(r[small, None], member, t[small, None])
            self._iw = self._drawer.table.int_weights() if self._iw is None else self._iw
            w = _take(self._iw, member) * free
            pick = self._pick(w).clamp_(max=member.shape[1] - 1)            # w is now cumulative
            new[small], got[small] = member.gather(1, pick[:, None]).view(-1), w[:, -1] > 0
            empty[small] = w[:, -1] == 0
        return new, got, empty
