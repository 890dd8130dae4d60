"""The chain sampler's exact repair of argmax chain batches: a fixpoint over whole batches.

The step-by-step process draws position t of a batch from p restricted to the segment of its chain
state minus the samples at positions < t. Give every position its own streams of uniforms
(:class:`PositionStreams`): its draw is then a function of the values before it, and the batch is
the unique fixpoint of "recompute every position from the current values of the positions
before it". Iterating that map in bulk (Jacobi iteration) reaches the fixpoint after at most B
passes: about 6 on emotions (B = 128, N = 473), about 40 with the rare labels of the 1e4-sample
benchmark, whose exhausted walks chain the positions together. A pass costs about a hundred
tensor operations over all positions at once instead of one step-by-step draw per position.
"""

from __future__ import annotations

import torch

from .tables import ChainTables

__all__ = ["PositionStreams", "fixpoint_batches"]

#: Rejection proposals per position before the exact draw (all rejected with probability at most
#: (1 - rate)^32 ~ 1e-4 at the smallest acceptance rate 0.25, unless the segment is nearly all
#: in the batch).
PROPOSALS = 32
#: Proposals looked at first; only the positions that accept none of them look at the rest.
_FIRST_PROPOSALS = 8
#: Largest (row, sample) table of first positions kept dense (else binary search).
_DENSE_ENTRIES = 1 << 22


class PositionStreams:
    """The uniforms of every position of ``k`` batches of ``b`` positions.

    ``walk``/``walk_exact``: the position's own draw (a seed, or the walk's next sample), as
    ``PROPOSALS`` rejection proposals then one uniform for the exact draw; ``seed``/``seed_exact``:
    the seed drawn instead when the walk's segment has no sample left outside the batch.
    """

    def __init__(self, k: int, b: int, generator: torch.Generator, device):
        def rand(*shape):
            return torch.rand(shape, generator=generator, dtype=torch.float64, device=device)

        self.walk, self.walk_exact = rand(k, b, PROPOSALS), rand(k, b)
        self.seed, self.seed_exact = rand(k, b, PROPOSALS), rand(k, b)


def fixpoint_batches(tables: ChainTables, accept: torch.Tensor, values: torch.Tensor, start: torch.Tensor,
                     current: torch.Tensor, streams: PositionStreams) -> torch.Tensor:
    """Positions ``start[i]`` .. B-1 of the argmax chain batches ``values`` (k x B, int64),
    redrawn exactly; the positions before ``start[i]`` are kept, ``current[i]`` is the chain
    state at ``start[i]``.

    ``accept`` holds the acceptance probabilities w / max(w) of the rejection proposals. The
    result is the one the step-by-step process gives with the same streams (see the module).
    """
    k, b = values.shape
    dev = values.device
    at = torch.arange(b, device=dev)
    steps, idle = tables.steps, tables.idle_state
    # the chain in progress at the start: its walk occupies start .. start + remaining - 1
    if steps:
        walking = current != idle
        label = torch.where(walking, torch.div(current, steps, rounding_mode="floor"), tables.n_labels)
        remaining = (tables.walk_len.index_select(0, label) - (current - label * steps)).clamp_(min=0)
        remaining = torch.where(walking, remaining, 0)
    else:
        remaining = torch.zeros_like(start)
    in_progress_end = (start + remaining).clamp_(max=b)
    n = tables.seed_len.numel()
    everything = torch.full((k * b,), tables.n_labels, dtype=torch.int64, device=dev)   # the seed segment
    walk_u, walk_x = streams.walk.view(k * b, -1), streams.walk_exact.view(-1)
    seed_u, seed_x = streams.seed.view(k * b, -1), streams.seed_exact.view(-1)
    values = values.clone()
    exhausted = torch.zeros((k, b), dtype=torch.bool, device=dev)
    # the batches not at their fixpoint yet (a batch depends on nothing but its own positions),
    # and per batch the first position not known to be final: a pass that changes nothing before
    # position f also leaves f's inputs, so f's new value, unchanged in the next pass
    active = torch.arange(k, device=dev)
    final = start.clone()
    for _ in range(b + 1):
        a = active.numel()
        vals, ex = values.index_select(0, active), exhausted.index_select(0, active)
        # the positions drawn, flat in the active batches, and their place in the streams
        drawn = (at[None, :] >= final.index_select(0, active)[:, None]).view(-1).nonzero().view(-1)
        rows, pos = torch.div(drawn, b, rounding_mode="floor"), drawn % b
        place = active.index_select(0, rows) * b + pos
        lookup = _FirstPosition(vals, n)

        def draw(entries, u, x, segment=None):
            return _restricted(tables, accept, lookup, rows.index_select(0, entries), pos.index_select(0, entries),
                               everything[: entries.numel()] if segment is None else segment,
                               u, x, place.index_select(0, entries))

        # every position's draw as a seed (it does not depend on the chains): from its own stream,
        # or from its second one where the walk was exhausted in the last pass
        was_exhausted = ex.view(-1).index_select(0, drawn)
        seed, _ = draw(torch.arange(drawn.numel(), device=dev), walk_u, walk_x)
        forced = was_exhausted.nonzero().view(-1)
        forced_seed = seed.clone()
        if forced.numel():
            forced_seed.index_copy_(0, forced, draw(forced, seed_u, seed_x)[0])
        # the chains those seeds start, then the walks' draws
        seeds = vals.clone()
        seeds.view(-1).index_copy_(0, drawn, torch.where(was_exhausted, forced_seed, seed))
        state = _chain_states(tables, seeds, ex, start.index_select(0, active), current.index_select(0, active),
                              in_progress_end.index_select(0, active))
        segment = tables.state_segment.index_select(0, state.view(-1).index_select(0, drawn))
        walks = (segment != tables.n_labels).nonzero().view(-1)
        new = seed
        now_exhausted = torch.zeros_like(was_exhausted)
        if walks.numel():
            picked, empty = draw(walks, walk_u, walk_x, segment.index_select(0, walks))
            new.index_copy_(0, walks, picked)
            # an exhausted walk (never a seed: B <= N) starts a new chain with its second stream
            empty = walks.index_select(0, empty.nonzero().view(-1))
            if empty.numel():
                now_exhausted.index_fill_(0, empty, True)
                fresh = empty.index_select(0, (~was_exhausted.index_select(0, empty)).nonzero().view(-1))
                if fresh.numel():
                    forced_seed.index_copy_(0, fresh, draw(fresh, seed_u, seed_x)[0])
                new.index_copy_(0, empty, forced_seed.index_select(0, empty))
        changed = (new != vals.view(-1).index_select(0, drawn)) | (now_exhausted != was_exhausted)
        changed = changed.nonzero().view(-1)
        first = torch.full((a,), b, dtype=torch.int64, device=dev)
        first.scatter_reduce_(0, rows.index_select(0, changed), pos.index_select(0, changed), "amin")
        final.index_copy_(0, active, first + 1)
        moved = first < b
        vals.view(-1).index_copy_(0, drawn, new)
        ex.view(-1).index_copy_(0, drawn, now_exhausted)
        values.index_copy_(0, active, vals)
        exhausted.index_copy_(0, active, ex)
        active = active.index_select(0, moved.nonzero().view(-1))
        if active.numel() == 0:
            return values
    raise AssertionError("the chain fixpoint did not converge in B + 1 passes")  # unreachable (see module)


def _chain_states(tables: ChainTables, values: torch.Tensor, exhausted: torch.Tensor, start: torch.Tensor,
                  current: torch.Tensor, in_progress_end: torch.Tensor) -> torch.Tensor:
    """Per position, the chain state it is drawn in, ignoring its own exhaustion (idle: a seed).

    A chain started by a seed at u ends at u + its length or at the first exhausted position
    after u, which starts a new chain; the seeds after the chain in progress are found by pointer
    doubling over those jumps.
    """
    k, b = values.shape
    dev = values.device
    idle = tables.idle_state
    at = torch.arange(b, device=dev)
    # first exhausted position >= u (b: none), and > u
    ex_at = torch.where(exhausted, at, b)
    ex_from = ex_at.flip(1).cummin(dim=1).values.flip(1)
    ex_after = torch.cat([ex_from[:, 1:], torch.full((k, 1), b, device=dev)], dim=1)
    first_new = torch.minimum(in_progress_end, ex_from.gather(1, start.clamp(max=b - 1)[:, None]).view(-1))
    first_new = torch.where(start >= b, b, first_new)
    jump = torch.full((k, b + 1), b, dtype=torch.int64, device=dev)
    seed_len = tables.seed_len.index_select(0, values.reshape(-1)).view(k, b).to(torch.int64)
    jump[:, :b] = torch.minimum(seed_len + at, ex_after).clamp_(max=b)
    seed = torch.zeros((k, b + 1), dtype=torch.bool, device=dev)
    seed.scatter_(1, first_new[:, None], True)
    for _ in range(max(b - 1, 1).bit_length()):
        seed.scatter_(1, torch.where(seed, jump, b), True)
        jump = jump.gather(1, jump)
    seed = seed[:, :b]
    # the last seed strictly before each position (-1: none after the chain in progress)
    last = torch.where(seed, at, -1).cummax(dim=1).values
    prev = torch.cat([torch.full((k, 1), -1, device=dev), last[:, :-1]], dim=1)
    d = at - prev
    prev_len = seed_len.gather(1, prev.clamp(min=0))
    prev_state = tables.seed_state.index_select(0, values.gather(1, prev.clamp(min=0)).view(-1)).view(k, b)
    state = torch.where((prev >= 0) & (d < prev_len), prev_state + d - 1, idle)
    # positions of the chain in progress (no seed since the start)
    in_progress = (prev < 0) & (at[None, :] >= start[:, None]) & (at[None, :] < in_progress_end[:, None])
    return torch.where(in_progress, current[:, None] + (at[None, :] - start[:, None]), state)


class _FirstPosition:
    """The first position of each sample in each row of a value matrix.

    A dense (row, sample) table while it stays small, else binary search over sorted keys.
    """

    def __init__(self, values: torch.Tensor, n_samples: int):
        k, b = values.shape
        dev = values.device
        self._b, self._n = b, n_samples
        rows = torch.arange(k, device=dev)[:, None]
        at = torch.arange(b, device=dev).expand(k, b)
        if k * n_samples <= _DENSE_ENTRIES:
            self._dense = torch.full((k * n_samples,), b, dtype=torch.int64, device=dev)
            self._dense.scatter_reduce_(0, (rows * n_samples + values).view(-1), at.reshape(-1), "amin")
        else:
            # unique keys (row, value, position): the first key of a (row, value) has its first position
            self._dense = None
            self._keys = torch.sort(((rows * n_samples + values) * b + at).view(-1)).values

    def taken(self, rows: torch.Tensor, samples: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
        """Whether ``samples`` occur in their ``rows`` at a position < ``before`` (broadcast)."""
        if self._dense is not None:
            index = rows * self._n + samples
            return self._dense.index_select(0, index.reshape(-1)).view(index.shape) < before
        key = (rows * self._n + samples) * self._b
        i = torch.searchsorted(self._keys, key).clamp_(max=self._keys.numel() - 1)
        hit = self._keys.index_select(0, i.view(-1)).view(i.shape)
        return (hit - key >= 0) & (hit - key < before)


def _restricted(tables: ChainTables, accept: torch.Tensor, lookup: _FirstPosition, rows, at, segment,
                proposals: torch.Tensor, exact: torch.Tensor, place: torch.Tensor):
    """One draw per entry from p restricted to ``segment`` minus the row's values before ``at``.

    The first accepted of the entry's rejection proposals (row ``place`` of ``proposals``: a
    uniform member, kept with probability w / max(w) unless already taken), else an exact
    inverse-CDF draw over the free members with the entry's uniform of ``exact``. Returns (picked, empty): ``empty`` where the
    segment has no free member.
    """
    lo = tables.seg_start.index_select(0, segment)
    size = tables.seg_len.index_select(0, segment)
    picked, got = _first_accepted(tables, accept, lookup, rows, at, lo, size,
                                  proposals[:, :_FIRST_PROPOSALS].index_select(0, place))
    rest = (~got).nonzero().view(-1)
    if rest.numel():
        # the first accepted of the remaining proposals (same rule: the first accepted of all)
        value, found = _first_accepted(tables, accept, lookup, rows.index_select(0, rest), at.index_select(0, rest),
                                       lo.index_select(0, rest), size.index_select(0, rest),
                                       proposals[:, _FIRST_PROPOSALS:].index_select(0, place.index_select(0, rest)))
        picked.index_copy_(0, rest, value)
        got.index_copy_(0, rest, found)
    empty = torch.zeros_like(got)
    miss = (~got).nonzero().view(-1)
    if miss.numel():
        value, none = _exact(tables, accept, lookup, rows.index_select(0, miss), at.index_select(0, miss),
                             segment.index_select(0, miss), exact.index_select(0, place.index_select(0, miss)))
        picked.index_copy_(0, miss, value)
        empty.index_copy_(0, miss, none)
    return picked, empty


def _first_accepted(tables: ChainTables, accept: torch.Tensor, lookup: _FirstPosition, rows, at, lo, size,
                    proposals: torch.Tensor):
    """The first accepted of each entry's ``proposals`` in the segment starting at ``lo`` of
    ``size`` members: (picked, found)."""
    x = proposals * size[:, None]
    pos = x.floor()
    frac = x - pos
    # (u * size rounds up to size for a few u close to 1)
    pos = pos.to(torch.int64).minimum((size[:, None] - 1).to(torch.int64))
    cand = tables.seg_members.index_select(0, (pos + lo[:, None]).view(-1)).view(x.shape)
    ok = (frac < accept.index_select(0, cand.view(-1)).view(x.shape)) & ~lookup.taken(rows[:, None], cand, at[:, None])
    return cand.gather(1, ok.to(torch.uint8).argmax(dim=1, keepdim=True)).view(-1), ok.any(dim=1)


def _exact(tables: ChainTables, accept: torch.Tensor, lookup: _FirstPosition, rows, at, segment, u):
    """Inverse-CDF draw over the free members of each entry's segment (weights w / max(w))."""
    dev = rows.device
    lens = (tables.seg_start.index_select(0, segment + 1) - tables.seg_start.index_select(0, segment))
    entry = torch.repeat_interleave(torch.arange(rows.numel(), device=dev), lens)
    first = torch.cumsum(lens, 0) - lens
    member = tables.seg_members.index_select(
        0, tables.seg_start.index_select(0, segment).index_select(0, entry)
        + torch.arange(entry.numel(), device=dev) - first.index_select(0, entry))
    free = ~lookup.taken(rows.index_select(0, entry), member, at.index_select(0, entry))
    w = accept.index_select(0, member).to(torch.float64) * free
    cum = torch.cumsum(w, 0)
    before = torch.cat([torch.zeros(1, dtype=torch.float64, device=dev), cum])
    base = before.index_select(0, first)
    total = before.index_select(0, first + lens) - base
    choice = torch.searchsorted(cum, base + u * total, right=True)
    choice = torch.minimum(choice, first + lens - 1)
    # rounding at a row's end can land on a taken member: step back to the last free one
    last_free = torch.where(w > 0, torch.arange(w.numel(), device=dev), -1).cummax(dim=0).values
    choice = last_free.index_select(0, choice).clamp_(min=0)
    empty = total <= 0
    return torch.where(empty, -1, member.index_select(0, choice)), empty
