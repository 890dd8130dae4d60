"""Quantized rank-based selection probabilities (``docs/method.md`` section 3)."""

from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext

import numpy as np
import torch

from ._validation import check_finite_nonnegative, check_selection_pressure

__all__ = ["selection_probabilities", "log_weights", "min_max_level_log_weights", "rank_log_weights",
           "exact_log", "step_weights", "score_weights", "level_steps", "min_max_level_weights", "rank_weights",
           "exact_sum"]

# The draws use weights, not log-weights: torch.exp and torch.log of a long tensor go through
# MKL's vector math on the CPU, whose results depend on the processor (the same torch wheel gave
# other last bits on an AVX-512 Xeon, or under MKL_CBWR=COMPATIBLE), and a last bit is enough to
# move a draw. Every weight a sampler draws from is s_e ** (-j / m) for an integer step j, taken
# from a table built by exactly rounded float64 products (:func:`step_weights`), so that the
# draws are the same on every machine (docs/selection.md, "The same draws on every machine").


def selection_probabilities(scores, selection_pressure: float, quantize: bool = True) -> torch.Tensor:
    """Selection probability of every sample from its score (higher score, higher probability).

    Quantized (default, MLABS): ``Delta = max_i s_i / N``, ``Q_i = ceil(s_i / Delta)`` in
    ``{0, ..., N}`` and ``p_i`` proportional to ``s_e ** (Q_i / N)``. This is the Loshchilov-Hutter
    rule with the level ``Q_i`` standing in for ``N - rank``: samples in the same level tie, a
    change of a score smaller than the step ``Delta`` does not move a sample to another level, and
    ``p_max / p_min <= s_e``.

    Exact rank (``quantize=False``, the ablation): ``p_i`` proportional to
    ``exp(-log(s_e) * r_i / N)`` with ``r_i`` the rank of ``s_i`` in decreasing order, ``r = 0``
    for the hardest sample. **Ties** get the average of the ranks they occupy (the "average"
    method of ``scipy.stats.rankdata``, shifted to start at 0), so equal scores always have equal
    probabilities and the result does not depend on the order of the samples.

    Parameters
    ----------
    scores : array-like or torch.Tensor, shape (N,)
        Non-negative finite scores (the loss, or weight x loss).
    selection_pressure : float
        ``s_e > 1``: the ratio of the largest to the smallest probability (at most).
    quantize : bool, default True
        Quantized levels (MLABS) or exact ranks (Loshchilov-Hutter).

    Returns
    -------
    torch.Tensor of float64, shape (N,)
        Probabilities summing to 1, on the device of ``scores``. All-zero or all-equal scores give
        the uniform distribution.

    Raises
    ------
    ValueError
        ``s_e <= 1``; scores not 1-D or empty; NaN, inf or negative scores (the message names the
        first offending sample indices).

    Notes
    -----
    Computed in float64 as ``exp(log(s_e) * (Q_i - Q_max) / N)`` (largest term 1), which stays
    accurate for N up to 1e7 and beyond, where ``s_e ** (Q_i / N)`` summed naively would not.

    Examples
    --------
    >>> p = selection_probabilities([0.0, 1.0, 2.0, 4.0], selection_pressure=4.0)
    >>> [round(v, 4) for v in p.tolist()]  # levels Q = 0, 1, 2, 4 of N = 4: p ~ 4 ** (Q / 4)
    [0.1188, 0.1681, 0.2377, 0.4754]
    """
    s_e = check_selection_pressure(selection_pressure)
    s = scores.detach() if isinstance(scores, torch.Tensor) else torch.as_tensor(np.asarray(scores, dtype=np.float64))
    if s.ndim != 1:
        raise ValueError(f"scores must be a 1-D vector with one score per sample, got shape {tuple(s.shape)}")
    n = s.numel()
    if n == 0:
        raise ValueError("scores is empty; selection probabilities need at least one sample")
    s = s.to(torch.float64)
    check_finite_nonnegative(s, "scores")
    return _probabilities(s, math.log(s_e), quantize)


def log_weights(s: torch.Tensor, log_se: float, quantize: bool, out: torch.Tensor | None = None) -> torch.Tensor:
    """Unnormalised log-probabilities (largest 0) for validated float64 scores.

    Kept separate from the normalisation so that the samplers can turn them straight into
    acceptance thresholds without a float64 exp and sum per refresh. ``out`` (float64, length N,
    not aliasing ``s``) receives the result of the quantized rule, so a sampler can reuse one
    buffer across refreshes.
    """
    n = s.numel()
    if quantize:
        level = levels(s, out)
        if level is None:
            return torch.zeros_like(s) if out is None else out.zero_()
        return levels_to_log_weights(level, log_se)
    return _average_descending_rank(s).mul_(-log_se / n)


def levels(s: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor | None:
    """The quantization levels ``ceil(s_i / Delta)`` (float64, exact integers in [0, N + 1]) of
    validated float64 scores, or None when all scores are 0 (uniform); ``out`` as in
    :func:`log_weights`. A level may be N + 1: s_max / (s_max / N) can round to N + tiny."""
    n = s.numel()
    s_max = s.max()
    top = float(s_max)
    if top == 0.0:
        return None
    if top / n < 2.2250738585072014e-308:
        # the step s_max / N would be subnormal or 0 (tiny scores): rescale first
        s, s_max = s / s_max, torch.ones((), dtype=s.dtype, device=s.device)
    return torch.div(s, s_max / n, out=out).ceil_()


def levels_to_log_weights(level: torch.Tensor, log_se: float) -> torch.Tensor:
    """Log-weights (Q_i - N) * log(s_e) / N from :func:`levels`, in place (the top level clamped to N)."""
    n = level.numel()
    return level.clamp_(max=n).sub_(n).mul_(log_se / n)


def min_max_level_log_weights(score: torch.Tensor, log_se: float) -> torch.Tensor:
    """Quantized levels with step 1/N on the min-max normalised score, high score preferred.

    ``U = (s - min s) / (max s - min s)``, ``Q = clip(ceil((1 - U) N), 1, N)`` and
    ``p ~ exp(-log(s_e) Q / N)`` (the rule of Recency Bias, the uncertainty method and D2ACE),
    returned as log-weights with maximum 0. Equal scores (or s_e = 1) give the uniform distribution.
    Unlike :func:`levels` the score may be negative: only its spread matters.
    """
    steps = _min_max_steps(score, log_se)
    return torch.zeros_like(score, dtype=torch.float64) if steps is None else steps.mul_(-log_se / score.numel())


def _min_max_steps(score: torch.Tensor, log_se: float) -> torch.Tensor | None:
    """The steps ``Q_i - min Q`` (float64 integers in [0, N - 1]) of the min-max levels of
    :func:`min_max_level_log_weights`, or None for the uniform distribution."""
    score = score.to(torch.float64)
    n = score.numel()
    lo, hi = score.min(), score.max()
    span = float(hi - lo)
    if log_se == 0.0 or not span > 0.0:
        return None
    level = torch.ceil((1.0 - (score - lo) / span) * n).clamp_(1, n)
    return level.sub_(level.min())


def rank_log_weights(score: torch.Tensor, log_se: float) -> torch.Tensor:
    """``-log(s_e) r_i / N`` with ``r_i`` the descending rank of float64 scores (ties share their
    mean rank): the exact-rank rule of Loshchilov & Hutter; s_e = 1 gives the uniform distribution."""
    if log_se > 0:
        return log_weights(score, log_se, False)
    return torch.zeros_like(score)


def _probabilities(s: torch.Tensor, log_se: float, quantize: bool) -> torch.Tensor:
    """:func:`selection_probabilities` for validated float64 scores."""
    p = score_weights(s, log_se, quantize)
    return p.div_(exact_sum(p))


def exact_log(x: float) -> float:
    """``log(x)`` of a positive float, the same float on every machine (decimal arithmetic, 40
    digits, then one rounding; the C library's ``log`` may differ in the last bit between its
    FMA and plain builds)."""
    with localcontext() as ctx:
        ctx.prec = 40
        return float(Decimal(float(x)).ln())


@functools.lru_cache(maxsize=4)
def _step_table(log_se: float, m: int, device: str, reverse: bool = False) -> torch.Tensor:
    """``T[j] = exp(-log_se * j / m)``, j = 0..m, float64, from exactly rounded operations only.

    ``r = exp(-log_se / m)`` is computed once in decimal arithmetic (a pure software result,
    identical everywhere); the table is then built by doubling: ``T[L + i] = T[i] * r**L`` with
    ``r**L = T[L - 1] * r``, each entry a chain of at most ~2 log2(m) IEEE products of earlier
    ones (relative error below 1e-13 for m < 2^25), and IEEE products are exactly rounded on
    every processor and vector width. ``reverse``: the table of the quantized levels, ``T[m - Q]``
    for Q = 0..m and once more 1 for Q = m + 1 (a level may round to N + 1, see :func:`levels`).
    """
    if reverse:
        table = _step_table(log_se, m, device)
        return torch.cat([table.flip(0), table[:1]])
    with localcontext() as ctx:
        ctx.prec = 40
        r = float((-Decimal(log_se) / m).exp())
    t = torch.empty(m + 1, dtype=torch.float64)
    t[0] = 1.0
    length = 1
    while length <= m:
        step = float(t[length - 1]) * r                       # r ** length
        k = min(length, m + 1 - length)
        torch.mul(t[:k], step, out=t[length:length + k])
        length += k
    return t.to(device)


def step_weights(steps: torch.Tensor, log_se: float, m: int) -> torch.Tensor:
    """``exp(-log_se * j / m)`` (float64, largest 1 at j = 0) for integer steps j in [0, m] held in
    any dtype, by lookup in a table built from exactly rounded products (machine-independent)."""
    if log_se == 0.0 or m == 0:
        return torch.ones(steps.shape, dtype=torch.float64, device=steps.device)
    table = _step_table(float(log_se), int(m), str(steps.device))
    return table.index_select(0, steps.reshape(-1).to(torch.int64)).view(steps.shape)


def score_weights(s: torch.Tensor, log_se: float, quantize: bool) -> torch.Tensor:
    """The weights ``exp(log_weights(s, log_se, quantize))`` of validated float64 scores (largest 1),
    machine-independent: quantized, ``s_e ** ((Q_i - N) / N)`` with the level step ``N - Q_i``;
    exact ranks, ``s_e ** (-r_i / N)`` with the half-integer rank as step ``2 r_i`` of ``2 N``."""
    n = s.numel()
    if quantize:
        steps = level_steps(s, log_se)
        if steps is None:
            return torch.ones_like(s)
        return steps[1].index_select(0, steps[0])
    return step_weights(_average_descending_rank(s).mul_(2.0), log_se, 2 * n)


def level_steps(s: torch.Tensor, log_se: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The quantized rule as (levels Q_i as int32, table ``T[Q] = s_e ** (min(Q - N, 0) / N)``,
    Q = 0..N + 1) for validated float64 scores, or None for the uniform distribution (all scores 0, s_e = 1).
    Weight 1 is always taken (the largest score has level N, or N + 1 by rounding)."""
    n = s.numel()
    level = levels(s)
    if level is None or log_se == 0.0:
        return None
    return level.to(torch.int32), _step_table(float(log_se), n, str(s.device), reverse=True)


def min_max_level_weights(score: torch.Tensor, log_se: float) -> torch.Tensor:
    """``exp(min_max_level_log_weights(score, log_se))``, machine-independent (see :func:`step_weights`)."""
    steps = _min_max_steps(score, log_se)
    return torch.ones_like(score, dtype=torch.float64) if steps is None else step_weights(steps, log_se, score.numel())


def rank_weights(score: torch.Tensor, log_se: float) -> torch.Tensor:
    """``exp(rank_log_weights(score, log_se))``, machine-independent (see :func:`step_weights`)."""
    if log_se > 0:
        return score_weights(score.to(torch.float64), log_se, False)
    return torch.ones_like(score, dtype=torch.float64)


def exact_sum(w: torch.Tensor) -> float:
    """The sum of non-negative float64 weights, the same float on every machine.

    A float sum's value depends on its order, which torch's vectorised reductions choose by the
    processor's vector width; here every weight is first scaled to an integer of ``62 - log2 N``
    bits relative to the largest (rounding each by at most 2^-40 of the largest, for N < 2^22) and
    the integers are summed exactly, in any order.
    """
    top = float(w.max()) if w.numel() else 0.0
    if top == 0.0:
        return 0.0
    scale = math.ldexp(1.0, 62 - max(w.numel(), 1).bit_length()) / top
    return float((w * scale).round_().to(torch.int64).sum()) / scale


def _average_descending_rank(s: torch.Tensor) -> torch.Tensor:
    """Rank 0 for the largest value; tied values share the mean of their ranks. O(N log N)."""
    n = s.numel()
    order = torch.argsort(s, descending=True, stable=True)
    sorted_s = s[order]
    # group boundaries of equal values in sorted order
    new_group = torch.ones(n, dtype=torch.bool, device=s.device)
    new_group[1:] = sorted_s[1:] != sorted_s[:-1]
    group = torch.cumsum(new_group, 0) - 1
    starts = new_group.nonzero().reshape(-1).to(torch.float64)
    sizes = torch.bincount(group).to(torch.float64)
    mean_rank = starts + (sizes - 1.0) / 2.0
    rank = torch.empty(n, dtype=torch.float64, device=s.device)
    rank[order] = mean_rank[group]
    return rank
