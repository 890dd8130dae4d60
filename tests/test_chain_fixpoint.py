"""The bulk fixpoint repair of argmax chain batches against the step-by-step process with the same
position streams: equal batches, value for value."""

import numpy as np
import pytest
import torch

from mlabs.selection.chain.fixpoint import PositionStreams, fixpoint_batches
from mlabs.selection.chain.tables import ChainTables


def _labels(n, seed):
    rng = np.random.default_rng(seed)
    rates = np.array([0.6, 0.4, 0.2, 0.1, 0.05])
    y = rng.random((n, rates.size)) < rates
    y[: rates.size] = np.eye(rates.size, dtype=bool)          # every label has a positive
    y[-3:] = False                                             # a few samples without labels
    return torch.as_tensor(y)


def _draw(tables, accept, segment, proposals, exact, batch):
    """Step-by-step draw: the first accepted proposal, else inverse CDF over the free members."""
    lo, hi = int(tables.seg_start[segment]), int(tables.seg_start[segment + 1])
    members = tables.seg_members[lo:hi].tolist()
    size = len(members)
    for u in proposals.tolist():
        x = u * size
        i = min(int(np.floor(x)), size - 1)
        m = members[i]
        if x - np.floor(x) < float(accept[m]) and m not in batch:
            return m, False
    free = [m for m in members if m not in batch]
    if not free:
        return -1, True
    w = np.array([float(accept[m]) for m in free], dtype=np.float64)
    cum = np.cumsum(w)
    return free[min(int(np.searchsorted(cum, float(exact) * cum[-1], side="right")), len(free) - 1)], False


def _step_by_step(tables, accept, streams, row, b):
    """One batch and the chain state before each position, from the process's definition."""
    q, idle = tables.n_labels, tables.idle_state
    batch, states, state, exhausted = [], [], idle, 0
    for t in range(b):
        states.append(state)
        segment = int(tables.state_segment[state])
        value, empty = _draw(tables, accept, segment, streams.walk[row, t], streams.walk_exact[row, t], batch)
        if empty:                                   # the walk's label has no free sample: a new seed
            exhausted += 1
            value, _ = _draw(tables, accept, q, streams.seed[row, t], streams.seed_exact[row, t], batch)
            segment = q
        state = int(tables.seed_state[value]) if segment == q else int(tables.state_next[state])
        batch.append(value)
    return batch, states, exhausted


@pytest.mark.parametrize("n,b,chain_length,seed", [(30, 24, 4, 0), (30, 30, 3, 1), (60, 16, 4, 2),
                                                   (40, 12, 1, 3), (200, 64, 5, 4)])
def test_fixpoint_equals_step_by_step(n, b, chain_length, seed):
    y = _labels(n, seed)
    tables = ChainTables(y, chain_length)
    g = torch.Generator().manual_seed(seed)
    # acceptance probabilities w / max(w) of a selection-pressure-4 distribution (rate >= 0.25)
    accept = (0.25 + 0.75 * torch.rand(n, generator=g)).to(torch.float32)
    accept /= accept.max()
    k = 6
    streams = PositionStreams(k, b, g, "cpu")
    ref = [_step_by_step(tables, accept, streams, r, b) for r in range(k)]
    # from scratch, starting from arbitrary values
    start = torch.zeros(k, dtype=torch.int64)
    current = torch.full((k,), tables.idle_state, dtype=torch.int64)
    garbage = torch.randint(0, n, (k, b), generator=g)
    got = fixpoint_batches(tables, accept, garbage, start, current, streams)
    assert got.tolist() == [r[0] for r in ref]
    # from a position inside the batch, the prefix and the chain state there kept
    start = torch.randint(1, b, (k,), generator=g)
    current = torch.tensor([ref[r][1][int(start[r])] for r in range(k)])
    partial = torch.where(torch.arange(b)[None, :] < start[:, None], got, garbage)
    assert fixpoint_batches(tables, accept, partial, start, current, streams).tolist() == got.tolist()
    for batch, _, _ in ref:
        assert len(set(batch)) == b


def test_fixpoint_cases_exercise_exhausted_walks():
    # the parameters above include batches whose walk label runs out of samples (the forced seed)
    y = _labels(30, 0)
    tables = ChainTables(y, 4)
    g = torch.Generator().manual_seed(0)
    accept = (0.25 + 0.75 * torch.rand(30, generator=g)).to(torch.float32)
    accept /= accept.max()
    streams = PositionStreams(6, 24, g, "cpu")
    assert sum(_step_by_step(tables, accept, streams, r, 24)[2] for r in range(6)) > 0
