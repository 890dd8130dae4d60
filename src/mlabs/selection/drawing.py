"""The drawing engine of the selecting samplers: the distribution of a refresh, and batches of B
distinct samples drawn from it by successive sampling without replacement.
"""

from __future__ import annotations

import functools
import math

import torch

from .dedup import first_distinct, rows_with_repeat
from .probabilities import exact_sum
from .slot_table import SlotTable
from .workspace import Workspace

__all__ = ["Refresh", "BatchDrawer"]

#: Below ``N < SUCCESSIVE_RATIO * B`` the batches are drawn by :meth:`BatchDrawer.successive`
#: (rounds over p restricted to the samples not drawn yet; few batches, many repeats otherwise);
#: above it, all batches of a refresh are drawn at once with replacement and de-duplicated.
SUCCESSIVE_RATIO = 20


@functools.lru_cache(maxsize=4)
def _float32(table: torch.Tensor) -> torch.Tensor:
    """A float32 copy of a (cached, never modified) weight table, kept while the table is in use."""
    return table.to(torch.float32)


class Refresh:
    """The selection distribution of one refresh, as unnormalised float64 weights.

    The weights are the machine-independent ones of :mod:`~mlabs.selection.probabilities`; the
    draws use them (never ``exp`` of log-weights, see there). Given as the weights themselves or
    as integer steps into a table of weights whose largest entry 1 is taken (the quantized
    levels): then the float32 ratios of the slot table come straight from a float32 copy of the
    table, and the float64 weights are looked up only when asked for (p, states, integer weights).
    """

    def __init__(self, weights: torch.Tensor | None = None, steps: torch.Tensor | None = None,
                 table: torch.Tensor | None = None):
        if (weights is None) == (steps is None):
            raise ValueError("a refresh is given by exactly one of weights and steps (with table)")
        self._weights = weights
        self._steps, self._table = steps, table
        self._p: torch.Tensor | None = None

    @property
    def weights(self) -> torch.Tensor:
        """The unnormalised float64 weights."""
        if self._weights is None:
            self._weights = self._table.index_select(0, self._steps)
        return self._weights

    def ratios(self, out: torch.Tensor) -> torch.Tensor:
        """p_i / p_max in float32, written to ``out`` (exactly rounded, so machine-independent)."""
        if self._weights is None:
            return torch.index_select(_float32(self._table), 0, self._steps, out=out)
        top = float(self._weights.max())
        return out.copy_(self._weights if top == 1.0 else self._weights / top)

    def log_weights(self) -> torch.Tensor:
        """Unnormalised log-probabilities (for reports, not for draws)."""
        return torch.log(self.weights)

    def p(self) -> torch.Tensor:
        """The normalised distribution (float64, sums to 1; machine-independent)."""
        if self._p is None:
            self._p = self.weights / exact_sum(self.weights)
        return self._p


class BatchDrawer:
    """Batches of B distinct samples from the distribution of the refresh in force.

    Owns the refresh (:class:`Refresh`), the i.i.d. draws from it (:class:`SlotTable`) and the
    scratch buffers of both; a sampler holds one and calls :meth:`set_weights` at every refresh,
    then :meth:`batches`.

    Parameters
    ----------
    n_samples, batch_size : int
        N and B.
    generator : torch.Generator
        The owning sampler's generator (the draws advance it, so the sampler's state covers them).
    device : torch.device or str
    """

    def __init__(self, n_samples: int, batch_size: int, generator: torch.Generator, device):
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.device = torch.device(device)
        self._generator = generator
        self.workspace = Workspace(self.device)
        self.table = SlotTable(n_samples, generator, self.workspace)
        #: the refresh in force (None between refreshes)
        self.refresh: Refresh | None = None

    def set_weights(self, weights: torch.Tensor, build_table: bool = True) -> None:
        """Refresh from unnormalised float64 weights (positive, machine-independent, e.g. from
        :func:`~mlabs.selection.probabilities.score_weights`); ``build_table=False`` leaves the
        slot table to the caller (:meth:`build_table`), for samplers that draw otherwise."""
        self.refresh = Refresh(weights)
        if build_table:
            self.build_table()

    def set_steps(self, steps: torch.Tensor, table: torch.Tensor, build_table: bool = True) -> None:
        """Refresh from integer steps (int32) into a float64 weight table whose largest entry 1 is
        among those taken (e.g. the quantized levels into the reversed table of
        :func:`~mlabs.selection.probabilities.level_steps`); ``build_table`` as in :meth:`set_weights`."""
        self.refresh = Refresh(steps=steps, table=table)
        if build_table:
            self.build_table()

    def set_log_weights(self, log_weights: torch.Tensor, build_table: bool = True) -> None:
        """Refresh from log-weights (states written before the weights were kept; ``exp`` may
        differ in the last bit between machines, so the samplers themselves use :meth:`set_weights`)."""
        self.set_weights(torch.exp(log_weights - log_weights.max()), build_table)

    def build_table(self, ratios: torch.Tensor | None = None) -> None:
        """The slot table of the refresh in force; ``ratios``: its p_i / p_max (float32) when the
        caller has them already (copied, not modified)."""
        refresh = self.refresh
        out = self.workspace.get("ratio", self.n_samples, torch.float32)
        self.table.build(refresh.ratios(out) if ratios is None else out.copy_(ratios), lambda: refresh.weights)

    def clear(self) -> None:
        """End the refresh in force (the next needs a :meth:`set_weights`)."""
        self.refresh = None

    def state_dict(self) -> dict:
        """The weights of the refresh in force (on CPU; None between refreshes), for a sampler's
        ``state_dict``: a sampler stopped mid-epoch resumes with the same distribution."""
        return {"draw_weights": None if self.refresh is None else self.refresh.weights.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (also from a sampler state that kept ``log_weights``, written
        before the weights were kept); the slot table is rebuilt by the sampler's next refresh."""
        self.clear()
        if state.get("draw_weights") is not None:
            self.set_weights(state["draw_weights"].to(device=self.device, dtype=torch.float64).clone(),
                             build_table=False)
        elif state.get("log_weights") is not None:
            self.set_log_weights(state["log_weights"].to(device=self.device, dtype=torch.float64).clone(),
                                 build_table=False)

    def plan(self, n_batches: int) -> tuple[torch.Tensor, list[int]]:
        """:meth:`batches` as a sampler's plan: (flat indices, batch sizes)."""
        return self.batches(n_batches).reshape(-1), [self.batch_size] * n_batches

    def batches(self, n_batches: int) -> torch.Tensor:
        """``n_batches`` independent rows of B distinct indices, successive sampling from p."""
        n, b, g = self.n_samples, self.batch_size, self._generator
        refresh = self.refresh
        if n < SUCCESSIVE_RATIO * b:
            return self.successive(torch.empty((n_batches, 0), dtype=torch.int64, device=self.device))
        # Draw with replacement and keep the first B distinct values of each row: rejecting
        # repeats is exactly successive sampling without replacement. Extra draws per row cover
        # the expected repeats, lam ~ B^2/2 * sum p^2 <= B^2/2 * p_max, with a wide margin
        # (p_max = 1 / (N * acceptance rate) needs no pass over p).
        p_max = self.table.p_max()
        if p_max is None:
            p_max = 1.0 / exact_sum(refresh.weights)
        lam = 0.5 * b * b * p_max
        extra = int(math.ceil(2.0 * lam + 6.0 * math.sqrt(lam) + 8.0))
        # Most rows have no repeat among their B draws (probability ~ 1 - lam); only the others
        # continue their own stream of i.i.d. draws (drawn after all rows: the draws are
        # independent, so the order in which they are generated does not matter).
        out = self.table.draws(n_batches * b).view(n_batches, b)
        bad = rows_with_repeat(out, n, self.workspace)
        if bad.numel() == 0:
            return out
        more = self.table.draws(bad.numel() * extra).view(bad.numel(), extra)
        rows = torch.cat([out.index_select(0, bad), more.to(out.dtype)], dim=1).to(torch.int64)
        complete, keep, first = first_distinct(rows, b)
        done = complete.nonzero().reshape(-1)
        if done.numel():
            out.index_copy_(0, bad.index_select(0, done),
                            rows.index_select(0, done).masked_select(keep.index_select(0, done)).view(-1, b)
                            .to(out.dtype))
        short = (~complete).nonzero().reshape(-1)
        if short.numel():
            # fewer than B distinct values among B + extra draws (very rare rows): continue the
            # same successive sampling exactly, from p restricted to the samples not drawn yet
            out.index_copy_(0, bad.index_select(0, short), self.successive(rows.index_select(0, short)).to(out.dtype))
        return out

    def successive(self, drawn: torch.Tensor) -> torch.Tensor:
        """Complete each row of ``drawn`` (int64, the draws so far of a row, repeats allowed; may
        have 0 columns) to its first B distinct values by successive sampling without replacement.

        Each round draws B values i.i.d. from p restricted to the samples not yet in the row
        (integer weights, an exact integer cumulative table, one uniform per draw), appends them
        and keeps the first B distinct values: drawing with replacement and skipping repeats is
        successive sampling, and restricting the distribution to the samples not yet drawn does
        not change it. Integer weights and cumulative sums make the draws machine-independent.
        """
        b, g, n = self.batch_size, self._generator, self.n_samples
        weights = self.table.int_weights()
        out = torch.empty((drawn.shape[0], b), dtype=torch.int64, device=self.device)
        rows = torch.arange(drawn.shape[0], device=self.device)
        while rows.numel():
            free = weights.expand(rows.numel(), n).clone()
            if drawn.shape[1]:
                free.scatter_(1, drawn, 0)
            cum = free.cumsum_(1)
            total = cum[:, -1:]
            if bool((total == 0).any()):
                raise ValueError(f"fewer than batch_size = {b} samples have a positive selection weight; "
                                 "use a smaller batch size or a score rule that gives every sample a weight")
            u = torch.rand((rows.numel(), b), generator=g, dtype=torch.float64, device=self.device)
            u = u.mul_(total.to(torch.float64)).floor_().to(torch.int64)
            u = torch.minimum(u, total - 1)
            drawn = torch.cat([drawn, torch.searchsorted(cum, u, right=True)], dim=1)
            complete, keep, _ = first_distinct(drawn, b)
            done = complete.nonzero().reshape(-1)
            if done.numel():
                out.index_copy_(0, rows.index_select(0, done),
                                drawn.index_select(0, done).masked_select(keep.index_select(0, done)).view(-1, b))
            short = (~complete).nonzero().reshape(-1)
            rows, drawn = rows.index_select(0, short), drawn.index_select(0, short)
        return out
