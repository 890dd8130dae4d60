"""The chain sampler's stepwise strategy: all batches built in parallel, one chain step at a time.

Used for ``label_choice="sample"`` and for refreshes whose segment draws need the inverse CDF
(large s_e); B vectorised steps per refresh.
"""

from __future__ import annotations

import torch

from .draws import BatchBitmap, SegmentDraws
from .tables import ChainTables

__all__ = ["StepwiseChains"]


class StepwiseChains:
    """Chain batches built step by step.

    Parameters
    ----------
    tables : ChainTables
    draws : SegmentDraws
        Restricted draws of the refresh in force.
    batch_size : int
    label_choice : {"argmax", "sample"}
        How the walk picks the next label.
    """

    def __init__(self, tables: ChainTables, draws: SegmentDraws, batch_size: int, label_choice: str):
        self._tables = tables
        self._draws = draws
        self.batch_size = batch_size
        self.label_choice = label_choice
        self.device = draws.device

    def batches(self, n_batches: int) -> torch.Tensor:
        """All batches built in parallel one chain step at a time (B vectorised steps)."""
        nb, b, m, q, dev = n_batches, self.batch_size, self._tables.chain_length, self._tables.n_labels, self.device
        # batch-major transposed (B x nb): step t writes the contiguous row out[t]
        rejection = self._draws.rejection
        out = torch.empty((b, nb), dtype=torch.int32 if rejection else torch.int64, device=dev)
        sample_labels = self.label_choice == "sample"
        draw = self._draws.rejection_draws if rejection else self._draws.restricted_draws
        if sample_labels:
            current = torch.full((nb,), -1, dtype=torch.int64, device=dev)   # label to walk from, -1: seed
            length = torch.zeros(nb, dtype=torch.int64, device=dev)          # samples in the chain
            visited = torch.full((nb, m), -1, dtype=torch.int64, device=dev)  # labels of the chain
            one = torch.ones((), dtype=torch.int64, device=dev)
        else:
            state = torch.full((nb,), self._tables.idle_state, dtype=torch.int64, device=dev)
        # Per-batch hashed bitmap of the members so far: a clear slot proves a candidate is not in
        # the batch, so the exact O(t) comparison runs only for the few hash hits.
        bitmap = BatchBitmap(nb, dev)
        all_rows = torch.arange(nb, device=dev)
        seed_segment = torch.full((nb,), q, dtype=torch.int64, device=dev)
        for t in range(b):
            # segment of this step's draw per batch: the walk's next label, or q (all samples) for
            # a new seed (chain finished, seed without label, or correlation 0)
            if sample_labels:
                segment = self._draws.next_labels(current, visited)
            else:
                segment = self._tables.state_segment.index_select(0, state)
            picked, found = draw(segment, all_rows, out, t, bitmap)
            if found is not None:
                # the walk's label has no sample left outside the batch: the chain stops and a new
                # seed takes this position
                failed = (~found).nonzero().reshape(-1)
                seeds, _ = draw(seed_segment[: failed.numel()], failed, out, t, bitmap)
                picked.index_copy_(0, failed, seeds)
                segment.index_fill_(0, failed, q)
            out[t] = picked
            bitmap.mark(picked, bitmap.row_base)
            is_seed = segment == q
            if sample_labels:
                label = self._tables.seed_label.index_select(0, picked)
                length = torch.where(is_seed, one, length + 1)
                current = torch.where(is_seed, label, segment)
                visited.masked_fill_(is_seed[:, None], -1)
                visited.scatter_(1, (length - 1)[:, None], current[:, None])
                current.masked_fill_(length >= m, -1)
            else:
                state = torch.where(is_seed, self._tables.seed_state.index_select(0, picked),
                                    self._tables.state_next.index_select(0, state))
        return out.T.to(torch.int64)
