"""The static tables of the chain sampler: label walks, chain states, label segments, the CDF of A.

All depend only on the fold's labels and the chain options, so they are built once per sampler.
"""

from __future__ import annotations

import torch

from ..imbalance import label_correlation

__all__ = ["ChainTables", "label_walk_table"]


class ChainTables:
    """Per-fold tables of the chain sampler.

    Segments: the positives of each label (CSR by label, ascending sample index), then one
    segment q with every sample, used for seeds. Chain states of the argmax walk: state
    ``l * steps + k`` (steps = m - 1) is the chain started at seed label l that made k walk
    steps; state ``q * steps`` (:attr:`idle_state`, the last one) means the next draw is a seed.

    Parameters
    ----------
    labels : torch.Tensor, shape (N, q), bool
    chain_length : int
        m, the maximum number of samples per chain.
    """

    def __init__(self, labels: torch.Tensor, chain_length: int):
        y = labels
        n, q = y.shape
        dev = y.device
        self.n_labels = q
        self.chain_length = chain_length
        #: walk steps per chain (m - 1)
        self.steps = steps = max(chain_length - 1, 0)
        counts = y.sum(dim=0).to(torch.float64)
        ir = counts.max() / counts.clamp(min=1.0)
        # most-minority positive label per sample, -1 for samples without labels; torch.argmax
        # returns the first maximum, so ties go to the smaller label index
        masked = torch.where(y, ir[None, :], torch.full((), -1.0, dtype=torch.float64, device=dev))
        self.seed_label = torch.where(y.any(dim=1), masked.argmax(dim=1),
                                      torch.full((), -1, dtype=torch.int64, device=dev))
        self.correlation = label_correlation(y, device=dev)
        self.walk = label_walk_table(self.correlation, chain_length)
        lab, smp = y.T.nonzero(as_tuple=True)
        self.seg_members = torch.cat([smp, torch.arange(n, device=dev)])
        sizes = torch.cat([y.sum(dim=0).to(torch.int64), torch.tensor([n], device=dev)])
        self.seg_start = torch.zeros(q + 2, dtype=torch.int64, device=dev)
        self.seg_start[1:] = torch.cumsum(sizes, 0)
        self.seg_len = sizes.to(torch.float64)
        # int32 copies for the rejection draws (half the memory traffic of the random accesses)
        self.small = n < 2**31 and self.seg_members.numel() < 2**31
        self.seg_members32 = self.seg_members.to(torch.int32) if self.small else None
        self.seg_start32 = self.seg_start.to(torch.int32) if self.small else None

        idle = q * steps
        self.idle_state = idle
        walk = self.walk[:, :steps].reshape(-1)
        # segment drawn from in each state (q: a seed draw)
        self.state_segment = torch.cat([torch.where(walk >= 0, walk, torch.full_like(walk, q)),
                                        torch.tensor([q], device=dev)])
        # state after a successful walk draw
        k = torch.arange(idle, device=dev)
        self.state_next = torch.cat([torch.where((k % max(steps, 1)) + 1 < steps, k + 1, torch.full_like(k, idle)),
                                     torch.tensor([idle], device=dev)])
        # state after a seed draw, per sample
        lab = self.seed_label
        self.seed_state = (torch.where(lab >= 0, lab * steps, torch.full_like(lab, idle)) if steps
                           else torch.full_like(lab, idle))
        # optimistic bulk path: walk steps after each seed label (entry q: a seed without label),
        # samples per chain started by each sample (1 + its walk steps, int32; their mean and
        # variance under uniform draws size the seed blocks), and per state the segment start
        # (int32) and size (float64) of its draw
        self.walk_len = torch.cat([(self.walk[:, :steps] >= 0).sum(dim=1),
                                   torch.zeros(1, dtype=torch.int64, device=dev)])
        self.seed_len = (1 + self.walk_len.index_select(0, torch.where(lab >= 0, lab, q))).to(torch.int32)
        chain_len = self.seed_len.to(torch.float64)
        self.chain_len_mean = float(chain_len.mean())
        self.chain_len_var = float(chain_len.var()) if chain_len.numel() > 1 else 0.0
        self.seed_state32 = self.seed_state.to(torch.int32)
        self.state_lo32 = self.seg_start32.index_select(0, self.state_segment) if self.small else None
        self.state_size = self.seg_len.index_select(0, self.state_segment) if self.small else None
        # flat CDF of the rows of A (label_choice="sample"): row l occupies [l * q, (l + 1) * q)
        a = self.correlation.to(torch.float64)
        self.corr_flat = a.reshape(-1).contiguous()
        self.corr_cum = torch.cumsum(self.corr_flat, 0)
        before = torch.cat([torch.zeros(1, dtype=torch.float64, device=dev), self.corr_cum])
        self.corr_base = before[torch.arange(q, device=dev) * q]
        self.corr_total = before[torch.arange(1, q + 1, device=dev) * q] - self.corr_base


def label_walk_table(correlation: torch.Tensor, chain_length: int) -> torch.Tensor:
    """Deterministic argmax walks: row l lists the labels visited after seed label l (-1: stopped).

    Step s picks the unvisited label with the largest correlation to the previous one (the first
    such label on ties); the walk stops at a correlation of 0.
    """
    q = correlation.shape[0]
    dev = correlation.device
    steps = max(chain_length - 1, 0)
    table = torch.full((q, max(steps, 1)), -1, dtype=torch.int64, device=dev)
    if steps == 0:
        return table
    visited = torch.eye(q, dtype=torch.bool, device=dev)
    current = torch.arange(q, device=dev)
    alive = torch.ones(q, dtype=torch.bool, device=dev)
    for s in range(steps):
        a = correlation[current.clamp(min=0)].masked_fill(visited, -1.0)
        nxt = a.argmax(dim=1)  # first maximum: ties go to the smaller label index
        best = a.gather(1, nxt[:, None]).reshape(-1)
        alive &= best > 0
        nxt = torch.where(alive, nxt, torch.full_like(nxt, -1))
        table[:, s] = nxt
        visited[alive.nonzero().reshape(-1), nxt[alive]] = True
        current = nxt
    return table
