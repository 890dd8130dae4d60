"""I.i.d. draws from a distribution p over N samples: the slot table of the selecting samplers.

Proposals are uniform slots of a table, accepted with a probability proportional to p_i / (slots
holding i): rejection needs one random memory access per proposal, while inverse-CDF search needs
~log2(N), so the CDF is used only when the acceptance rate is low (exact-rank ablation with a
large s_e). The draws are exact: every accepted proposal is an independent draw from p.
"""

from __future__ import annotations

from typing import Callable

import torch

from .workspace import Workspace

__all__ = ["SlotTable"]

#: Resolution of the acceptance test (bits of the uniform).
ACCEPT_BITS = 24
ACCEPT_SCALE = 1 << ACCEPT_BITS
#: Above this many positions rejected by the first round, they get a second proposal in place;
#: fewer take accepted fresh proposals in order at once (listing few positions is cheap, a second
#: full round over few is not worth its fixed cost).
COMPACT_BELOW = 1 << 14


class SlotTable:
    """The i.i.d. sampler of one refresh's p, rebuilt by :meth:`build` at every refresh.

    Parameters
    ----------
    n_samples : int
        N.
    generator : torch.Generator
        The owning sampler's generator (the draws advance it).
    workspace : Workspace
        Scratch buffers of the owning sampler.
    """

    def __init__(self, n_samples: int, generator: torch.Generator, workspace: Workspace):
        self.n_samples = n_samples
        self.device = workspace.device
        self._generator = generator
        self._workspace = workspace
        #: acceptance rate of a uniform proposal, sum(p) / (N p_max) (sizes the draws)
        self.accept_rate = 0.0
        self._cdf: torch.Tensor | None = None          # inverse-CDF path (exact int64 cumulative weights)
        self._int_weights: torch.Tensor | None = None  # integer weights of the refresh, when asked for
        self._weights: Callable[[], torch.Tensor] | None = None
        self._accept: torch.Tensor | None = None       # packed slot entries (or 64-bit thresholds)
        self._accept_lo: torch.Tensor | None = None    # low threshold bits, decided on ties
        self._index_shift: int | None = None           # None: 64-bit proposals (N > 2^30)
        self._proposal_rate = 0.0
        self._tie_bits = 0
        self._slot_base: torch.Tensor | None = None    # slot index << shift, kept between refreshes

    def p_max(self) -> float | None:
        """The largest probability, when the table knows it without a pass over p (else None)."""
        return 1.0 / (self.n_samples * self.accept_rate) if self._accept is not None else None

    def build(self, ratio: torch.Tensor, weights: Callable[[], torch.Tensor]) -> None:
        """The table of the refresh whose ratios p_i / p_max are ``ratio`` (float32, largest exactly
        1, overwritten); ``weights()`` gives its float64 weights, asked only for integer weights.

        Every quantity that decides a draw, or how many random numbers are drawn, comes from
        exactly rounded elementwise operations, comparisons or integer sums of the ratios, so
        that the draws are the same on every machine (a float sum's order is the processor's).
        """
        n, dev = self.n_samples, self.device
        self._weights = weights
        self._int_weights = None
        lo, top = float(ratio.min()), 1.0
        self._cdf = self._accept = self._accept_lo = None
        exact_rate = None
        if lo < 0.25 * top:
            # sum(p) / (N p_max) decides the path: from the ratios truncated to 24 bits and summed
            # exactly as integers (x 2^24 is exact; an integer sum does not depend on the order)
            scaled = torch.mul(ratio, float(ACCEPT_SCALE), out=self._workspace.get("ratio_scaled", n, torch.float32))
            exact_rate = self.accept_rate = int(scaled.to(torch.int32).sum()) / (n * ACCEPT_SCALE)
            if self.accept_rate < 0.25:
                self._cdf = torch.cumsum(self.int_weights(), 0)
                return
        index_bits = max((n - 1).bit_length(), 1)
        shift = 31 - index_bits
        if shift < 1:                                             # N > 2^30: 64-bit proposals
            self._accept = ratio.mul_(ACCEPT_SCALE).round_().to(torch.int32).clamp_(min=1)
            if exact_rate is None:
                self.accept_rate = int(self._accept.sum()) / (n * ACCEPT_SCALE)
            self._index_shift, self._proposal_rate = None, self.accept_rate
            return
        # Slot table: one slot per sample and, in the spare slots up to the next power of two,
        # second slots of the samples with the largest p (tighter envelope, fewer rejections).
        # A slot of sample i is accepted with probability p_i / (bound * p_max * copies_i), bound
        # covering every sample, so a proposal is accepted as i with probability proportional to
        # p_i: exact. Each entry packs (sample << shift) | high bits of the 24-bit threshold.
        slots = 1 << index_bits
        spare = slots - n
        r_max = 1.0                                               # ratio = weights / max(weights)
        bound, doubled = r_max, None
        if spare:
            # cut c with at most `spare` ratios above it, from a strided sample of the ratios
            sample = ratio[:: max(n // 4096, 1)]
            k = min(int(sample.numel() * (1.0 - 0.9 * spare / n)), sample.numel() - 1)
            cut = float(torch.kthvalue(sample, k + 1).values)
            doubled = (ratio > cut).nonzero().view(-1)
            if doubled.numel() > spare:                           # unrepresentative sample: no copies
                doubled = None
            else:
                bound = max(cut, r_max / 2)
        thr = ratio.mul_(ACCEPT_SCALE / bound)
        if doubled is not None:
            thr.index_copy_(0, doubled, thr.index_select(0, doubled).mul_(0.5))
        accept = self._workspace.get("slot_accept", slots, torch.int32)
        accept[n:].zero_()                                        # spare slots 0: rejected
        accept[:n] = thr.round_().clamp_(1, ACCEPT_SCALE - 1)
        if self._slot_base is None or self._slot_base.numel() != slots:
            self._slot_base = torch.arange(slots, dtype=torch.int32, device=dev) << shift
        if doubled is not None and doubled.numel():
            d = doubled.numel()
            accept[n:n + d] = accept.index_select(0, doubled)
        if exact_rate is None:
            # sum(p) / (N p_max) from the integer thresholds (the copies of a sample share its
            # weight), summed exactly: one pass fewer than summing the ratios first
            self.accept_rate = int(accept[:n + (0 if doubled is None else doubled.numel())].sum()) * bound / (
                ACCEPT_SCALE * n)
        # sizing only: expected acceptance per proposal
        self._proposal_rate = self.accept_rate * n / (bound * slots)
        if shift >= ACCEPT_BITS:
            self._tie_bits = 0
            table = accept.bitwise_left_shift_(shift - ACCEPT_BITS)
        else:
            self._tie_bits = ACCEPT_BITS - shift
            table = torch.bitwise_right_shift(accept, self._tie_bits,
                                              out=self._workspace.get("slot_table", slots, torch.int32))
            self._accept_lo = accept.bitwise_and_((1 << self._tie_bits) - 1)
        table.bitwise_or_(self._slot_base)
        if doubled is not None and doubled.numel():
            # spare slots hold their sample, not their own index
            table[n:n + d] = table[n:n + d].bitwise_and_((1 << shift) - 1).bitwise_or_(doubled.to(torch.int32) << shift)
        if spare:
            table[n + (0 if doubled is None else doubled.numel()):] = 0   # sample 0 with threshold 0
        self._accept, self._index_shift = table, shift

    def int_weights(self) -> torch.Tensor:
        """The refresh's weights as int64 of ``62 - log2 N`` bits relative to the largest (every
        positive weight at least 1): their sums and cumulative sums are exact in any order."""
        if self._int_weights is None:
            w = self._weights()
            scale = float(1 << (62 - max(self.n_samples, 1).bit_length()))
            iw = (w / w.max()).mul_(scale).round_().to(torch.int64)
            self._int_weights = torch.where((iw == 0) & (w > 0), torch.ones_like(iw), iw)
        return self._int_weights

    def draws(self, count: int) -> torch.Tensor:
        """``count`` independent draws from p (with replacement): int32 below N = 2^30, else int64."""
        g, n, dev = self._generator, self.n_samples, self.device
        if self._cdf is not None:
            # an integer uniform in [0, total) from a 53-bit uniform, then the exact inverse CDF
            total = self._cdf[-1:]
            u = torch.rand(count, generator=g, dtype=torch.float64, device=dev).mul_(float(total)).floor_()
            u = torch.minimum(u.to(torch.int64), total - 1)
            return torch.searchsorted(self._cdf, u, right=True).clamp_(max=n - 1)
        if self._index_shift is None:
            # N > 2^30: one 64-bit integer per proposal, the high part a uniform index, the low
            # 24 bits an independent uniform for the acceptance test
            out = torch.empty(count, dtype=torch.int64, device=dev)
            have = 0
            while have < count:
                k = int((count - have) / self._proposal_rate * 1.03) + 64
                r = torch.randint(0, n * ACCEPT_SCALE, (k,), generator=g, device=dev)
                cand = r >> ACCEPT_BITS
                ok = (r & (ACCEPT_SCALE - 1)) < self._accept.index_select(0, cand)
                acc = cand.index_select(0, ok.nonzero().view(-1)[: count - have])
                out[have:have + acc.numel()] = acc
                have += acc.numel()
            return out
        out = torch.empty(count, dtype=torch.int32, device=dev)
        # Every position gets a proposal, its sample written in place whatever the outcome; the
        # rejected positions (~1 - acceptance rate) get a second one the same way, and the few
        # still rejected then take, in order, the accepted ones among fresh proposals. Each
        # position thus ends with the first accepted value of its own i.i.d. proposals: exact.
        # (Writing every proposal and listing the rejected ones avoids listing the accepted ones:
        # nonzero's cost grows with the number of indices it returns.)
        pending, tie_wins = self._propose_in_place(out)
        if pending.numel() > COMPACT_BELOW:
            pending, later_wins = self._propose_in_place(out, pending)
            tie_wins = later_wins + tie_wins
        while pending.numel():
            m = pending.numel()
            acc = self._accepted_proposals(int(m / self._proposal_rate * 1.05) + 64)
            take = min(m, acc.numel())
            out.index_copy_(0, pending[:take], acc[:take])
            pending = pending[take:]
        # proposals accepted on a tie were left listed as rejected and overwritten since: write
        # them back, the first round's last (a position keeps its first accepted value)
        for positions, samples in tie_wins:
            out.index_copy_(0, positions, samples)
        return out

    def _random31(self, count: int, name: str) -> torch.Tensor:
        """``count`` independent uniform int32 in [0, 2^31), in a reused scratch buffer.

        Drawn as 64-bit integers split in two: torch's per-element overhead dominates the cost of
        its generator, and a 64-bit draw costs little more than a 32-bit one.
        """
        r64 = self._workspace.get(name, (count + 1) // 2, torch.int64).random_(generator=self._generator)
        return r64.view(torch.int32)[:count].bitwise_and_(0x7FFFFFFF)

    def _proposal_fields(self, count: int, prefix: str) -> tuple[torch.Tensor, ...]:
        """``count`` proposals: (slot, 24-bit uniform's high part, slot-table entry).

        One 31-bit integer per proposal: its high bits are a uniform slot, its low ``shift`` bits
        the high part of the acceptance uniform, compared with the high part of the slot's 24-bit
        threshold; the low parts are drawn only on a tie (:meth:`_tie_accepted`). The large
        temporaries live in reused scratch buffers: fresh multi-MB tensors cost page faults.
        """
        shift = self._index_shift
        mask = (1 << shift) - 1
        r = self._random31(count, prefix + "r")
        slot = torch.bitwise_right_shift(r, shift, out=self._workspace.get(prefix + "slot", count, torch.int32))
        u = r.bitwise_and_(mask)
        entry = torch.index_select(self._accept, 0, slot, out=self._workspace.get(prefix + "entry", count, torch.int32))
        return slot, u, entry

    def _tie_accepted(self, slot: torch.Tensor, tie: torch.Tensor) -> torch.Tensor:
        """Mask of the ties (indices ``tie`` into ``slot``) accepted by the threshold's low bits.

        A tie, equal high parts of the uniform and the threshold (probability 2^-shift per
        proposal), is decided by ``tie_bits`` more random bits: the test is exact to 24 bits.
        """
        low = torch.empty(tie.numel(), dtype=torch.int32, device=slot.device).random_(generator=self._generator)
        low.bitwise_and_((1 << self._tie_bits) - 1)
        return low < self._accept_lo.index_select(0, slot.index_select(0, tie))

    def _propose_in_place(self, out: torch.Tensor, positions: torch.Tensor | None = None):
        """One proposal for each of ``positions`` of ``out`` (all when None), its sample written there.

        Returns the positions whose proposal was rejected and a list with the (positions,
        samples) of proposals accepted on a tie, which are still listed as rejected: removing
        them from the long list would cost more than writing them back at the end.
        """
        count = out.numel() if positions is None else positions.numel()
        prefix = "" if positions is None else "retry_"
        slot, u, entry = self._proposal_fields(count, prefix)
        if positions is None:
            torch.bitwise_right_shift(entry, self._index_shift, out=out)
        else:
            out.index_copy_(0, positions, torch.bitwise_right_shift(entry, self._index_shift))
        # u - threshold (the entry's low bits), in place: >= 0 rejected, == 0 a tie
        diff = u.sub_(entry.bitwise_and_((1 << self._index_shift) - 1))
        rejected = torch.ge(diff, 0, out=self._workspace.get(prefix + "reject", count, torch.bool)).nonzero().view(-1)
        rejected_at = rejected if positions is None else positions.index_select(0, rejected)
        tie_wins = []
        if self._tie_bits and rejected.numel():
            tie = (diff.index_select(0, rejected) == 0).nonzero().view(-1)
            if tie.numel():
                won = tie.masked_select(self._tie_accepted(slot, rejected.index_select(0, tie)))
                at = rejected_at.index_select(0, won)
                tie_wins.append((at, out.index_select(0, at)))
        return rejected_at, tie_wins

    def _accepted_proposals(self, count: int) -> torch.Tensor:
        """The samples of the accepted ones among ``count`` proposals, in proposal order (i.i.d. from p)."""
        slot, u, entry = self._proposal_fields(count, "fresh_")
        threshold = entry & ((1 << self._index_shift) - 1)
        accept = torch.lt(u, threshold)
        if self._tie_bits:
            tie = torch.eq(u, threshold).nonzero().view(-1)
            if tie.numel():
                accept.index_put_((tie,), self._tie_accepted(slot, tie))
        keep = accept.nonzero().view(-1)
        return entry.index_select(0, keep).bitwise_right_shift_(self._index_shift)
