"""Evaluation metrics for multi-label classification.

All functions take dense 0/1 targets ``Y`` of shape ``(n, q)`` (``n`` samples,
``q`` labels) and scores ``F`` of the same shape with values in ``[0, 1]``
(per-label probabilities).  NumPy arrays, anything :func:`numpy.asarray`
accepts and PyTorch tensors (on any device) are accepted; they are converted
and validated once at the boundary.

Threshold-based metrics (Hamming loss and the three F1 scores) use the
predictions ``P = F > threshold`` with ``threshold = 0.5`` by default.  The
comparison is **strictly greater**: a probability of exactly 0.5 is predicted
negative.  This is what the batch-selection authors' ``np.round(F)`` does
(NumPy rounds half to even, so 0.5 -> 0) and it keeps our numbers comparable
with theirs.

Conventions (see ``docs/metrics.md`` for the full table):

* F1 scores: a label (macro), a sample (example-based) or the whole split
  (micro) with no true and no predicted positives has an undefined F1; it is
  scored ``zero_division`` (default ``0.0``, the scikit-learn default and what
  the authors' numbers use).  ``np.nan`` excludes such terms from the average.
* Macro-AUC: mean over the labels that have both classes in the evaluated
  split; ties get half credit (scikit-learn ``roc_auc_score``).  If no label
  qualifies the result is NaN with an ``UndefinedMetricWarning``.
  :func:`macro_auc_authors` reproduces the authors' variant.
* Ranking loss: identical to ``sklearn.metrics.label_ranking_loss`` (tied
  relevant/irrelevant pairs are errors; samples with no relevant or no
  irrelevant label contribute 0 and stay in the average).
* One-error: arg-max of the scores with ties going to the first label; a
  sample without relevant labels always counts as an error (as the authors).
* Coverage: Zhang & Zhou's coverage (steps down the ranking needed to cover
  all relevant labels, ties ranked pessimistically) divided by ``q``, i.e.
  ``(sklearn.metrics.coverage_error - 1) / q`` per sample; samples without
  relevant labels contribute 0.
* Average precision: label-ranking average precision, identical to
  ``sklearn.metrics.label_ranking_average_precision_score`` (ties get the
  pessimistic rank; samples with no relevant label score 1).

Implementation note: every metric is computed by vectorised NumPy kernels
(one row-wise sort for the ranking metrics, one column-wise sort for the
AUCs, integer counts for the rest).  The scikit-learn functions are the
reference the test-suite checks against; they are not called at run time
because several of them loop over samples or labels in Python
(``label_ranking_average_precision_score`` alone takes ~0.7 s on 3000 x 150),
which is too slow for per-epoch evaluation.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = [
    "REPORTED_METRICS",
    "EXTRA_METRICS",
    "ALL_METRICS",
    "HIGHER_IS_BETTER",
    "DEFAULT_THRESHOLD",
    "hamming_loss",
    "micro_f1",
    "macro_f1",
    "example_f1",
    "macro_auc",
    "macro_auc_authors",
    "ranking_loss",
    "one_error",
    "coverage",
    "average_precision",
    "evaluate",
]

#: The six metrics reported in the batch-selection paper, in table order.
REPORTED_METRICS: tuple[str, ...] = (
    "macro_f1",
    "micro_f1",
    "macro_auc",
    "ranking_loss",
    "hamming_loss",
    "one_error",
)
#: Additional (not reported) metrics returned by :func:`evaluate`.
EXTRA_METRICS: tuple[str, ...] = ("coverage", "average_precision", "example_f1")
#: All keys of the dictionary returned by :func:`evaluate`, in order.
ALL_METRICS: tuple[str, ...] = REPORTED_METRICS + EXTRA_METRICS

#: ``True`` when a larger value of the metric is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "macro_f1": True,
    "micro_f1": True,
    "macro_auc": True,
    "ranking_loss": False,
    "hamming_loss": False,
    "one_error": False,
    "coverage": False,
    "average_precision": True,
    "example_f1": True,
}

#: Decision threshold on the probabilities (predict iff ``F > threshold``).
DEFAULT_THRESHOLD: float = 0.5


# ---------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """Convert a NumPy array, array-like or torch tensor to a NumPy array."""
    # Duck-typed so that importing this module does not import torch.
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):
        x = x.detach().cpu()
        # float16/bfloat16 have no (or no exact) NumPy counterpart; widening to
        # float64 is exact, so order and ties of the scores are preserved.
        if x.is_floating_point():
            x = x.double()
        x = x.numpy()
    if hasattr(x, "toarray") and not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a dense array; got a sparse matrix ({type(x).__name__}).")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and similar
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    return arr


def _check_targets_scores(Y: Any, F: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``Y`` and ``F`` and return ``(Y as bool, F as float64)``.

    Raises
    ------
    ValueError
        If the arrays are not 2-D with the same non-empty shape, if ``Y``
        contains values other than 0/1, or if ``F`` is not real, not finite or
        outside ``[0, 1]``.
    """
    Y = _to_numpy(Y, "Y")
    F = _to_numpy(F, "F")
    if Y.ndim != 2:
        raise ValueError(f"Y must be 2-D (n_samples, n_labels); got shape {Y.shape}.")
    if F.ndim != 2:
        raise ValueError(f"F must be 2-D (n_samples, n_labels); got shape {F.shape}.")
    if Y.shape != F.shape:
        raise ValueError(f"Y and F must have the same shape; got {Y.shape} and {F.shape}.")
    if Y.shape[0] == 0 or Y.shape[1] == 0:
        raise ValueError(f"Y and F must have at least one sample and one label; got shape {Y.shape}.")

    if Y.dtype.kind not in "biuf":
        raise ValueError(f"Y must be numeric or boolean 0/1; got dtype {Y.dtype}.")
    if Y.dtype.kind != "b":
        # NaN fails both comparisons, so it is rejected here as well.
        if not np.all((Y == 0) | (Y == 1)):
            bad = np.unique(Y[~((Y == 0) | (Y == 1))])[:5]
            raise ValueError(f"Y must contain only 0 and 1; found e.g. {bad.tolist()}.")
        Y = Y == 1
    if F.dtype.kind not in "biuf":
        raise ValueError(f"F must be real-valued; got dtype {F.dtype}.")
    F = F.astype(np.float64, copy=False)
    if not np.all(np.isfinite(F)):
        raise ValueError("F must be finite (found NaN or inf); the model output is broken.")
    if F.min() < 0.0 or F.max() > 1.0:
        raise ValueError(
            f"F must be probabilities in [0, 1]; got range [{F.min():.6g}, {F.max():.6g}]. "
            "Apply a sigmoid to logits before evaluating."
        )
    return Y, F


def _check_threshold(threshold: Any) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"threshold must be a real number; got {threshold!r}.") from exc
    if not (0.0 <= t <= 1.0):  # also rejects NaN
        raise ValueError(f"threshold must lie in [0, 1]; got {threshold!r}.")
    return t


def _check_zero_division(zero_division: Any) -> float:
    try:
        z = float(zero_division)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"zero_division must be 0.0, 1.0 or np.nan; got {zero_division!r}.") from exc
    if not (math.isnan(z) or z in (0.0, 1.0)):
        raise ValueError(f"zero_division must be 0.0, 1.0 or np.nan; got {zero_division!r}.")
    return z


# ---------------------------------------------------------------------------
# Kernels (inputs already validated: Y bool, F float64, same 2-D shape)
# ---------------------------------------------------------------------------


def _tie_bounds(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of each element's tie group in rows sorted ascending.

    ``S`` has shape ``(m, k)`` and each row is sorted.  Returns integer arrays
    ``start`` and ``end`` of the same shape: the tied block containing position
    ``p`` of row ``r`` is ``S[r, start[r, p] : end[r, p] + 1]``.  This lets all
    tie-aware counts (half credit, pessimistic ranks) be read from cumulative
    sums without a Python loop.
    """
    m, k = S.shape
    idx = np.broadcast_to(np.arange(k), (m, k))
    differs = S[:, 1:] != S[:, :-1]  # boundary between positions p and p+1
    is_start = np.ones((m, k), dtype=bool)
    is_start[:, 1:] = differs
    is_end = np.ones((m, k), dtype=bool)
    is_end[:, :-1] = differs
    start = np.maximum.accumulate(np.where(is_start, idx, 0), axis=1)
    end = np.minimum.accumulate(np.where(is_end, idx, k - 1)[:, ::-1], axis=1)[:, ::-1]
    return start, end


def _confusion(Y: np.ndarray, P: np.ndarray, axis: int | None):
    tp = np.count_nonzero(Y & P, axis=axis)
    fp = np.count_nonzero(~Y & P, axis=axis)
    fn = np.count_nonzero(Y & ~P, axis=axis)
    return tp, fp, fn


def _f1_terms(tp, fp, fn, zero_division: float) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN); ``zero_division`` where the denominator is 0.

    This is the direct form scikit-learn (>= 1.3) uses, so a label with
    predicted but no true positives scores 0, not ``zero_division``.
    """
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    denom = 2.0 * tp + fp + fn
    out = np.full(denom.shape, zero_division, dtype=np.float64)
    np.divide(2.0 * tp, denom, out=out, where=denom > 0)
    return out


def _mean_ignoring_nan(values: np.ndarray) -> float:
    # With zero_division=nan the undefined terms are excluded from the average;
    # if all are undefined the result is NaN (as in scikit-learn), silently.
    valid = ~np.isnan(values)
    if not valid.any():
        return float("nan")
    return float(values[valid].mean())


def _hamming(Y, P) -> float:
    return float(np.count_nonzero(Y != P) / Y.size)


def _micro_f1(Y, P, zero_division) -> float:
    return float(_f1_terms(*_confusion(Y, P, axis=None), zero_division))


def _macro_f1(Y, P, zero_division) -> float:
    return _mean_ignoring_nan(_f1_terms(*_confusion(Y, P, axis=0), zero_division))


def _example_f1(Y, P, zero_division) -> float:
    return _mean_ignoring_nan(_f1_terms(*_confusion(Y, P, axis=1), zero_division))


def _one_error(Y, F) -> float:
    # np.argmax returns the first maximal index: ties go to the lowest label
    # index, as in the authors' code.  A sample without relevant labels can
    # never have its top label relevant, so it always counts as an error.
    top = np.argmax(F, axis=1)
    return float(1.0 - Y[np.arange(Y.shape[0]), top].mean())


def _sample_rank_stats(Y, F):
    """Per-sample ranking statistics from one row-wise sort.

    Returns
    -------
    rank : ndarray (n, q)
        ``rank[i, j] = #{k : F[i, k] >= F[i, j]}``, the 1-based position of
        label ``j`` in the descending ranking with ties ranked pessimistically
        (scikit-learn's ``rankdata(-F, 'max')``).  In sorted order, not label
        order; paired with ``rel``.
    rel_above : ndarray (n, q)
        ``#{k relevant : F[i, k] >= F[i, j]}`` in the same sorted order.
    rel : ndarray (n, q) of bool
        Relevance of the label at each sorted position.
    """
    # Sorting -F ascending gives the descending ranking; scores are in [0, 1]
    # so negation is exact.  The order inside a tie block is irrelevant (every
    # count below is read at the block's end), so the faster unstable sort is fine.
    order = np.argsort(-F, axis=1)
    S = np.take_along_axis(-F, order, axis=1)
    rel = np.take_along_axis(Y, order, axis=1)
    _, end = _tie_bounds(S)
    rank = end + 1  # everything up to the end of the tie block scores >= F_ij
    cum_rel = np.cumsum(rel, axis=1)
    rel_above = np.take_along_axis(cum_rel, end, axis=1)
    return rank, rel_above, rel


def _ranking_from_stats(rank, rel_above, rel, q):
    """Ranking loss, coverage and average precision from the rank statistics."""
    n_pos = rel.sum(axis=1)
    n_neg = q - n_pos

    # Ranking loss: for each relevant label, the irrelevant labels scored >= it.
    errors = np.where(rel, rank - rel_above, 0).sum(axis=1)
    pairs = n_pos * n_neg
    rloss = np.zeros(rank.shape[0])
    np.divide(errors, pairs, out=rloss, where=pairs > 0)

    # Coverage: pessimistic rank of the lowest-ranked relevant label, minus 1.
    worst = np.where(rel, rank, 0).max(axis=1)
    cov = np.where(n_pos > 0, worst - 1, 0) / q

    # Average precision: mean over relevant labels of (relevant at or above) / rank.
    prec = np.where(rel, rel_above / rank, 0.0).sum(axis=1)
    ap = np.ones(rank.shape[0])
    np.divide(prec, n_pos, out=ap, where=n_pos > 0)  # no relevant label -> 1

    return float(rloss.mean()), float(cov.mean()), float(ap.mean())


def _label_auc_counts(Y, F):
    """Per label: positives, negatives, and pair counts with and without ties.

    Returns ``(n_pos, n_neg, below, ties)`` where, summed over the positives
    ``a`` of label ``j``, ``below[j] = #{(a, b) : b negative, F_bj < F_aj}``
    and ``ties[j] = #{(a, b) : b negative, F_bj == F_aj}``.
    """
    G = np.ascontiguousarray(F.T)  # (q, n): one row per label
    order = np.argsort(G, axis=1)  # unstable is fine: counts use tie-block bounds
    S = np.take_along_axis(G, order, axis=1)
    pos = np.take_along_axis(np.ascontiguousarray(Y.T), order, axis=1)
    start, end = _tie_bounds(S)
    # cneg[:, p] = negatives among the first p sorted samples (prefix sums with a leading 0).
    cneg = np.zeros((G.shape[0], G.shape[1] + 1), dtype=np.int64)
    np.cumsum(~pos, axis=1, out=cneg[:, 1:])
    neg_lt = np.take_along_axis(cneg, start, axis=1)
    neg_le = np.take_along_axis(cneg, end + 1, axis=1)
    below = np.where(pos, neg_lt, 0).sum(axis=1)
    ties = np.where(pos, neg_le - neg_lt, 0).sum(axis=1)
    n_pos = pos.sum(axis=1)
    n_neg = G.shape[1] - n_pos
    return n_pos, n_neg, below, ties


def _macro_auc(Y, F) -> float:
    n_pos, n_neg, below, ties = _label_auc_counts(Y, F)
    valid = (n_pos > 0) & (n_neg > 0)
    if not valid.any():
        # imported here: scikit-learn costs ~2 s to import, paid by every worker process
        from sklearn.exceptions import UndefinedMetricWarning

        warnings.warn(
            "macro_auc is undefined: no label has both positive and negative samples in "
            "this split; returning NaN.",
            UndefinedMetricWarning,
            stacklevel=3,
        )
        return float("nan")
    auc = (below[valid] + 0.5 * ties[valid]) / (n_pos[valid] * n_neg[valid])
    return float(auc.mean())


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def _predict(F: np.ndarray, threshold: float) -> np.ndarray:
    # Strictly greater, matching the authors' np.round (0.5 rounds to 0).
    return F > threshold


def hamming_loss(Y, F, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Fraction of wrongly predicted sample-label entries.

    ``(1 / (n q)) * sum_ij [P_ij != Y_ij]`` with ``P = F > threshold``; equal
    to ``sklearn.metrics.hamming_loss(Y, P)``.  Lower is better.

    Parameters
    ----------
    Y : array-like or torch.Tensor of shape (n, q)
        True labels, 0/1 (bool, integer or float).
    F : array-like or torch.Tensor of shape (n, q)
        Scores (probabilities) in ``[0, 1]``.
    threshold : float, default 0.5
        A label is predicted iff ``F > threshold`` (strictly).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        On invalid shapes, non-0/1 targets, non-finite or out-of-range scores,
        or a threshold outside ``[0, 1]``.
    """
    Y, F = _check_targets_scores(Y, F)
    return _hamming(Y, _predict(F, _check_threshold(threshold)))


def micro_f1(Y, F, threshold: float = DEFAULT_THRESHOLD, zero_division: float = 0.0) -> float:
    """Micro-averaged F1: ``2 sum TP / (2 sum TP + sum FP + sum FN)`` over all labels.

    Equal to ``sklearn.metrics.f1_score(Y, P, average='micro',
    zero_division=zero_division)``.  Higher is better.

    Parameters
    ----------
    Y, F, threshold
        As in :func:`hamming_loss`.
    zero_division : {0.0, 1.0, np.nan}, default 0.0
        Value returned when the split has no true and no predicted positive at all.

    Returns
    -------
    float
    """
    Y, F = _check_targets_scores(Y, F)
    return _micro_f1(Y, _predict(F, _check_threshold(threshold)), _check_zero_division(zero_division))


def macro_f1(Y, F, threshold: float = DEFAULT_THRESHOLD, zero_division: float = 0.0) -> float:
    """Macro-averaged F1: mean over the q labels of ``2 TP_j / (2 TP_j + FP_j + FN_j)``.

    Equal to ``sklearn.metrics.f1_score(Y, P, average='macro',
    zero_division=zero_division)``.  Higher is better.

    Parameters
    ----------
    Y, F, threshold
        As in :func:`hamming_loss`.
    zero_division : {0.0, 1.0, np.nan}, default 0.0
        F1 of a label with no true and no predicted positive in the split
        (F1 is 0/0 there).  The default 0.0 is scikit-learn's default and what
        the batch-selection authors' numbers use: such a label (possible when
        a rare label is absent from a validation/test split) pulls macro-F1
        down.  ``np.nan`` drops these labels from the average instead; ``1.0``
        counts the correct "never predicted" as perfect.

    Returns
    -------
    float
        NaN if ``zero_division`` is NaN and every label is undefined.
    """
    Y, F = _check_targets_scores(Y, F)
    return _macro_f1(Y, _predict(F, _check_threshold(threshold)), _check_zero_division(zero_division))


def example_f1(Y, F, threshold: float = DEFAULT_THRESHOLD, zero_division: float = 0.0) -> float:
    """Example-based F1: mean over samples of ``2 |Y_i & P_i| / (|Y_i| + |P_i|)``.

    Equal to ``sklearn.metrics.f1_score(Y, P, average='samples',
    zero_division=zero_division)``.  Higher is better.  Not reported in the
    paper.

    Parameters
    ----------
    Y, F, threshold
        As in :func:`hamming_loss`.
    zero_division : {0.0, 1.0, np.nan}, default 0.0
        Score of a sample with no relevant and no predicted label.  0.0 is
        scikit-learn's default (kept for consistency with :func:`macro_f1`);
        ``np.nan`` drops such samples, which is what MPVAE's ``evals.py`` does.

    Returns
    -------
    float
    """
    Y, F = _check_targets_scores(Y, F)
    return _example_f1(Y, _predict(F, _check_threshold(threshold)), _check_zero_division(zero_division))


def macro_auc(Y, F) -> float:
    """Macro-averaged ROC AUC over the labels that have both classes in the split.

    For each label ``j`` with ``n_pos_j > 0`` positives and ``n_neg_j > 0``
    negatives, ``AUC_j = (#{F_aj > F_bj} + 0.5 #{F_aj == F_bj}) / (n_pos_j n_neg_j)``
    over positive/negative pairs ``(a, b)``; the result is the mean of the
    ``AUC_j``.  This equals ``sklearn.metrics.roc_auc_score(Y[:, valid],
    F[:, valid], average='macro')`` with ``valid`` the non-constant columns
    (scikit-learn itself raises on a constant column).  Higher is better.

    Parameters
    ----------
    Y, F
        As in :func:`hamming_loss` (no threshold is used).

    Returns
    -------
    float
        NaN, with an ``UndefinedMetricWarning``, if no label has both classes.

    See Also
    --------
    macro_auc_authors : the batch-selection authors' variant.
    """
    Y, F = _check_targets_scores(Y, F)
    return _macro_auc(Y, F)


def macro_auc_authors(Y, F) -> float:
    """Macro-AUC as computed by the batch-selection authors (``macro_averaging_auc``).

    For reproducing their numbers only; the project default is
    :func:`macro_auc`.  Two differences from it:

    * ties get **full** credit: ``AUC_j = #{F_bj <= F_aj} / (n_pos_j n_neg_j)``;
    * labels with no positives or no negatives in the split are skipped in the
      sum but the sum is divided by **all** ``q`` labels, so each such label
      counts as an AUC of 0.

    On tie-free scores without constant label columns both functions agree.
    If no label has both classes this returns 0.0 (as the authors' code does),
    without a warning.

    Parameters
    ----------
    Y, F
        As in :func:`hamming_loss`.

    Returns
    -------
    float
    """
    Y, F = _check_targets_scores(Y, F)
    n_pos, n_neg, below, ties = _label_auc_counts(Y, F)
    valid = (n_pos > 0) & (n_neg > 0)
    auc = (below[valid] + ties[valid]) / (n_pos[valid] * n_neg[valid])
    return float(auc.sum() / Y.shape[1])


def ranking_loss(Y, F) -> float:
    """Fraction of relevant/irrelevant label pairs ranked wrongly, averaged over samples.

    ``(1/n) sum_i #{(a, b) in Y_i+ x Y_i- : F_ia <= F_ib} / (|Y_i+| |Y_i-|)``.
    Ties count as errors; samples with no relevant or no irrelevant label
    contribute 0 but stay in the average.  Equal to
    ``sklearn.metrics.label_ranking_loss`` and to the authors' implementation.
    Lower is better.

    Parameters
    ----------
    Y, F
        As in :func:`hamming_loss`.

    Returns
    -------
    float
    """
    Y, F = _check_targets_scores(Y, F)
    return _ranking_from_stats(*_sample_rank_stats(Y, F), Y.shape[1])[0]


def one_error(Y, F) -> float:
    """Fraction of samples whose top-scored label is not relevant.

    ``(1/n) sum_i [argmax_j F_ij not in Y_i+]``.  Ties for the top score go
    to the first (lowest-index) label, as ``np.argmax`` and the authors do.
    A sample without relevant labels always counts as an error (as in the
    authors' code), which puts a floor under one-error on data sets with
    such samples.  Lower is better.

    Parameters
    ----------
    Y, F
        As in :func:`hamming_loss`.

    Returns
    -------
    float
    """
    Y, F = _check_targets_scores(Y, F)
    return _one_error(Y, F)


def coverage(Y, F) -> float:
    """Normalised coverage: ranking depth needed to cover all relevant labels, over q.

    For sample ``i`` with relevant labels, ``(max_{j in Y_i+} rank_ij - 1) / q``
    where ``rank_ij = #{k : F_ik >= F_ij}`` (1-based, ties ranked
    pessimistically).  This is Zhang & Zhou's coverage divided by ``q``, the
    form Hang & Zhang (DELA) report, and equals ``(coverage_error - 1) / q``
    sample-wise in scikit-learn terms.  Samples without relevant labels
    contribute 0.  Lies in ``[0, (q - 1) / q]``; lower is better.

    Parameters
    ----------
    Y, F
        As in :func:`hamming_loss`.

    Returns
    -------
    float
    """
    Y, F = _check_targets_scores(Y, F)
    return _ranking_from_stats(*_sample_rank_stats(Y, F), Y.shape[1])[1]


def average_precision(Y, F) -> float:
    """Label-ranking average precision (Zhang & Zhou's "average precision").

    ``(1/n) sum_i (1/|Y_i+|) sum_{j in Y_i+} #{k in Y_i+ : F_ik >= F_ij} / rank_ij``
    with ``rank_ij = #{k : F_ik >= F_ij}``.  Equal to
    ``sklearn.metrics.label_ranking_average_precision_score``: ties get the
    pessimistic rank, and samples without relevant labels score 1 (Hang &
    Zhang skip them instead).  Higher is better.

    Parameters
    ----------
    Y, F
        As in :func:`hamming_loss`.

    Returns
    -------
    float
    """
    Y, F = _check_targets_scores(Y, F)
    return _ranking_from_stats(*_sample_rank_stats(Y, F), Y.shape[1])[2]


def evaluate(Y, F, threshold: float = DEFAULT_THRESHOLD, zero_division: float = 0.0) -> dict[str, float]:
    """Compute all metrics at once (inputs validated and ranked once).

    Parameters
    ----------
    Y : array-like or torch.Tensor of shape (n, q)
        True labels, 0/1.
    F : array-like or torch.Tensor of shape (n, q)
        Probabilities in ``[0, 1]``.
    threshold : float, default 0.5
        Predict iff ``F > threshold`` (strictly).
    zero_division : {0.0, 1.0, np.nan}, default 0.0
        Passed to the F1 scores (see :func:`macro_f1`).

    Returns
    -------
    dict[str, float]
        Keys, in this order: ``macro_f1, micro_f1, macro_auc, ranking_loss,
        hamming_loss, one_error`` (:data:`REPORTED_METRICS`) then
        ``coverage, average_precision, example_f1``.  See
        :data:`HIGHER_IS_BETTER` for the direction of each.  ``macro_auc`` is
        NaN (with a warning) if no label has both classes.
    """
    Y, F = _check_targets_scores(Y, F)
    t = _check_threshold(threshold)
    zd = _check_zero_division(zero_division)
    P = _predict(F, t)
    rloss, cov, ap = _ranking_from_stats(*_sample_rank_stats(Y, F), Y.shape[1])
    return {
        "macro_f1": _macro_f1(Y, P, zd),
        "micro_f1": _micro_f1(Y, P, zd),
        "macro_auc": _macro_auc(Y, F),
        "ranking_loss": rloss,
        "hamming_loss": _hamming(Y, P),
        "one_error": _one_error(Y, F),
        "coverage": cov,
        "average_precision": ap,
        "example_f1": _example_f1(Y, P, zd),
    }
