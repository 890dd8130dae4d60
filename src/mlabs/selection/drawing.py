"""The drawing engine of the selecting samplers: the distribution of a refresh, and batches of B
distinct samples drawn from it by successive sampling without replacement.
"""

from __future__ import annotations

import math

import torch

from .dedup import first_distinct, rows_with_repeat
from .probabilities import levels_to_log_weights
from .slot_table import SlotTable
from .workspace import Workspace

__all__ = ["Refresh", "BatchDrawer"]

#: Below ``N < MULTINOMIAL_RATIO * B`` each batch is one ``torch.multinomial(p, B,
#: replacement=False)`` call (few batches, cheap); above it, all batches of a refresh are drawn at
#: once with replacement and de-duplicated.
MULTINOMIAL_RATIO = 20


class Refresh:
    """The selection distribution of one refresh.

    Held as quantization levels (with log(s_e)) or as unnormalised float64 log-weights; the
    log-weights of a levels refresh and the normalised p are computed once, when first asked for
    (a pass over N float64 values is a good part of a refresh's cost, and most refreshes never
    need them).
    """

    def __init__(self, *, log_weights: torch.Tensor | None = None, levels: torch.Tensor | None = None,
                 log_se: float = 0.0):
        if (log_weights is None) == (levels is None):
            raise ValueError("a refresh is given by exactly one of log_weights and levels")
        self._levels = levels
        self._log_se = log_se
        self._log_weights = log_weights
        self._p: torch.Tensor | None = None

    def log_weights(self) -> torch.Tensor:
        """Unnormalised log-probabilities (largest 0)."""
        if self._log_weights is None:
            # the levels may live in a scratch buffer: convert a copy
            self._log_weights = levels_to_log_weights(self._levels.clone(), self._log_se)
        return self._log_weights

    def p(self) -> torch.Tensor:
        """The normalised distribution (float64, sums to 1)."""
        if self._p is None:
            p = torch.exp(self.log_weights())
            self._p = p.div_(p.sum())
        return self._p


class BatchDrawer:
    """Batches of B distinct samples from the distribution of the refresh in force.

    Owns the refresh (:class:`Refresh`), the i.i.d. draws from it (:class:`SlotTable`) and the
    scratch buffers of both; a sampler holds one and calls :meth:`set_levels` or
    :meth:`set_log_weights` at every refresh, then :meth:`batches`.

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

    def set_levels(self, levels: torch.Tensor, log_se: float) -> None:
        """Refresh from quantization levels Q (float64 exact integers, N >= max Q - 1).

        The float32 ratios p_i / p_max come straight from the levels: exp(log(s_e) (Q_i - N) / N)
        with Q_i - N exact in float32 up to N = 2^24.
        """
        n = self.n_samples
        self.refresh = Refresh(levels=levels, log_se=log_se)
        ratio = self.workspace.get("ratio", n, torch.float32).copy_(levels).sub_(n)
        self.table.build(ratio.mul_(log_se / n).exp_(), self.refresh.log_weights)

    def set_log_weights(self, log_weights: torch.Tensor, build_table: bool = True) -> None:
        """Refresh from unnormalised log-weights; ``build_table=False`` leaves the slot table to
        the caller (:meth:`build_table`), for samplers that draw otherwise.

        The ratios exp(logw) are computed in float32: logw lies in [-log s_e, 0], so float32
        keeps them to ~1e-7 relative, below the 24-bit resolution of the acceptance test, and is
        several times cheaper than float64.
        """
        self.refresh = Refresh(log_weights=log_weights)
        if build_table:
            self.build_table(self.workspace.get("ratio", log_weights.numel(), torch.float32)
                             .copy_(log_weights).exp_())

    def build_table(self, ratio: torch.Tensor) -> None:
        """The slot table of the refresh in force from its ratios p_i / p_max (float32, overwritten)."""
        self.table.build(ratio, self.refresh.log_weights)

    def clear(self) -> None:
        """End the refresh in force (the next needs a :meth:`set_levels` or :meth:`set_log_weights`)."""
        self.refresh = None

    def plan(self, n_batches: int) -> tuple[torch.Tensor, list[int]]:
        """:meth:`batches` as a sampler's plan: (flat indices, batch sizes)."""
        return self.batches(n_batches).reshape(-1), [self.batch_size] * n_batches

    def batches(self, n_batches: int) -> torch.Tensor:
        """``n_batches`` independent rows of B distinct indices, successive sampling from p."""
        n, b, g = self.n_samples, self.batch_size, self._generator
        refresh = self.refresh
        if n < MULTINOMIAL_RATIO * b:
            return torch.multinomial(refresh.p().expand(n_batches, n).contiguous(), b, replacement=False, generator=g)
        # Draw with replacement and keep the first B distinct values of each row: rejecting
        # repeats is exactly successive sampling without replacement. Extra draws per row cover
        # the expected repeats, lam ~ B^2/2 * sum p^2 <= B^2/2 * p_max, with a wide margin
        # (p_max = 1 / (N * acceptance rate) needs no pass over p).
        p_max = self.table.p_max()
        if p_max is None:
            p_max = float(refresh.p().max())
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
        for j in (~complete).nonzero().reshape(-1).tolist():
            # Fewer than B distinct values among B + extra draws (very rare rows, not samples): continue
            # the same successive sampling exactly, from p restricted to the samples not drawn yet.
            got = rows[j].masked_select(first[j])
            rest_p = refresh.p().clone()
            rest_p[got] = 0.0
            got = torch.cat([got, torch.multinomial(rest_p, b - got.numel(), replacement=False, generator=g)])
            out[bad[j]] = got
        return out
