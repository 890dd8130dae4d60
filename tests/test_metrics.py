"""Tests for mlabs.metrics: scikit-learn agreement, hand-computed cases, edge cases, validation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from mlabs import metrics as M

ZERO_DIVISIONS = [0.0, 1.0, np.nan]


# ---------------------------------------------------------------------------
# scikit-learn oracle
# ---------------------------------------------------------------------------


def sk_macro_auc(Y, F):
    """scikit-learn macro-AUC over the non-constant label columns."""
    valid = [j for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < Y.shape[0]]
    if not valid:
        return np.nan
    return float(np.mean([skm.roc_auc_score(Y[:, j], F[:, j]) for j in valid]))


def sk_coverage(Y, F):
    """(coverage_error - 1) / q per sample, 0 for samples without relevant labels."""
    n, q = Y.shape
    n_nonempty = np.count_nonzero(Y.sum(axis=1) > 0)
    # coverage_error scores empty samples 0, so subtract 1 only for the others.
    return (skm.coverage_error(Y, F) * n - n_nonempty) / (n * q)


def sk_all(Y, F, threshold=0.5, zero_division=0.0):
    P = (F > threshold).astype(int)
    zd = zero_division
    return {
        "macro_f1": skm.f1_score(Y, P, average="macro", zero_division=zd),
        "micro_f1": skm.f1_score(Y, P, average="micro", zero_division=zd),
        "macro_auc": sk_macro_auc(Y, F),
        "ranking_loss": skm.label_ranking_loss(Y, F),
        "hamming_loss": skm.hamming_loss(Y, P),
        "one_error": float(np.mean(Y[np.arange(len(Y)), np.argmax(F, axis=1)] == 0)),
        "coverage": sk_coverage(Y, F),
        "average_precision": skm.label_ranking_average_precision_score(Y, F),
        "example_f1": skm.f1_score(Y, P, average="samples", zero_division=zd),
    }


def assert_metrics_close(got, want):
    assert list(got) == list(M.ALL_METRICS)
    for key in M.ALL_METRICS:
        g, w = got[key], want[key]
        if np.isnan(w):
            assert np.isnan(g), key
        else:
            assert g == pytest.approx(w, abs=1e-12), key


def random_case(rng, n, q, density=0.2, ties=False):
    Y = (rng.random((n, q)) < density).astype(int)
    F = rng.random((n, q))
    if ties:
        # A coarse grid produces many ties, including exact 0.5 on the threshold.
        F = np.round(F * 4) / 4
    return Y, F


# ---------------------------------------------------------------------------
# Agreement with scikit-learn
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS)
def test_evaluate_matches_sklearn_random(seed, ties, zero_division):
    rng = np.random.default_rng(seed)
    n, q = int(rng.integers(5, 200)), int(rng.integers(2, 40))
    density = float(rng.choice([0.02, 0.1, 0.3, 0.6]))
    Y, F = random_case(rng, n, q, density, ties)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        got = M.evaluate(Y, F, zero_division=zero_division)
    assert_metrics_close(got, sk_all(Y, F, zero_division=zero_division))


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.75, 1.0])
def test_threshold_matches_sklearn(threshold):
    rng = np.random.default_rng(7)
    Y, F = random_case(rng, 60, 8, 0.3, ties=True)
    got = M.evaluate(Y, F, threshold=threshold)
    assert_metrics_close(got, sk_all(Y, F, threshold=threshold))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 12),
    q=st.integers(2, 7),
    grid=st.sampled_from([2, 4, 10, 0]),
)
def test_evaluate_matches_sklearn_hypothesis(data, n, q, grid):
    Y = data.draw(hnp.arrays(np.int64, (n, q), elements=st.integers(0, 1)))
    F = data.draw(
        hnp.arrays(np.float64, (n, q), elements=st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False))
    )
    if grid:
        F = np.round(F * grid) / grid  # ties
    zd = data.draw(st.sampled_from(ZERO_DIVISIONS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        got = M.evaluate(Y, F, zero_division=zd)
    assert_metrics_close(got, sk_all(Y, F, zero_division=zd))


def test_individual_functions_match_evaluate():
    rng = np.random.default_rng(3)
    Y, F = random_case(rng, 80, 12, 0.25, ties=True)
    res = M.evaluate(Y, F)
    for key in M.ALL_METRICS:
        assert getattr(M, key)(Y, F) == res[key], key


# ---------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------

# 3 samples x 4 labels.  Predictions P = F > 0.5 (0.5 itself is negative):
#   P = [[1,1,0,0], [0,1,1,0], [1,0,1,0]]
Y_HAND = np.array([[1, 0, 1, 0], [0, 0, 1, 0], [1, 1, 0, 1]])
F_HAND = np.array(
    [
        [0.9, 0.6, 0.4, 0.1],
        [0.2, 0.7, 0.7, 0.5],
        [0.8, 0.3, 0.55, 0.3],
    ]
)


def test_hand_hamming():
    # wrong entries per row: 2 (labels 1, 2), 1 (label 1), 3 (labels 1, 2, 3) -> 6 / 12
    assert M.hamming_loss(Y_HAND, F_HAND) == pytest.approx(0.5)


def test_hand_f1():
    # per label (TP, FP, FN): (2,0,0) F1 1; (0,2,1) F1 0; (1,1,1) F1 1/2; (0,0,1) F1 0
    assert M.macro_f1(Y_HAND, F_HAND) == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    # pooled: TP 3, FP 3, FN 3 -> 6 / 12
    assert M.micro_f1(Y_HAND, F_HAND) == pytest.approx(0.5)
    # per sample: 2*1/(2+2), 2*1/(1+2), 2*1/(3+2)
    assert M.example_f1(Y_HAND, F_HAND) == pytest.approx((1 / 2 + 2 / 3 + 2 / 5) / 3)


def test_hand_one_error_ties_to_first_label():
    # row 1: labels 1 and 2 tie at 0.7; the first (label 1) is taken and it is irrelevant.
    assert M.one_error(Y_HAND, F_HAND) == pytest.approx(1 / 3)
    # Swapping the tied labels' relevance makes row 1 correct.
    Y2 = Y_HAND.copy()
    Y2[1] = [0, 1, 0, 0]
    assert M.one_error(Y2, F_HAND) == pytest.approx(0.0)


def test_hand_ranking_loss():
    # row 0: pair (2, 1) misordered -> 1/4; row 1: (2, 1) tied -> 1/3;
    # row 2: (1, 2) and (3, 2) misordered -> 2/3
    assert M.ranking_loss(Y_HAND, F_HAND) == pytest.approx((1 / 4 + 1 / 3 + 2 / 3) / 3)


def test_hand_coverage():
    # pessimistic rank of the worst relevant label: 3, 2 (tie at 0.7), 4 (tie at 0.3)
    # -> (2 + 1 + 3) / 3 / q
    assert M.coverage(Y_HAND, F_HAND) == pytest.approx((2 + 1 + 3) / 3 / 4)


def test_hand_average_precision():
    # row 0: label 0 at rank 1 (1/1), label 2 at rank 3 with 2 relevant at/above (2/3)
    # row 1: label 2 at pessimistic rank 2 (1/2)
    # row 2: label 0 (1/1); labels 1 and 3 tie at rank 4 with 3 relevant at/above (3/4 each)
    expected = ((1 + 2 / 3) / 2 + 1 / 2 + (1 + 3 / 4 + 3 / 4) / 3) / 3
    assert M.average_precision(Y_HAND, F_HAND) == pytest.approx(expected)


def test_hand_macro_auc_tie_free():
    # label 0: 2/2; label 1: 0/2; label 2: 1/2; label 3: 1/2; no ties within a column
    assert M.macro_auc(Y_HAND, F_HAND) == pytest.approx(0.5)
    assert M.macro_auc_authors(Y_HAND, F_HAND) == pytest.approx(0.5)


def test_hand_macro_auc_ties_and_constant_column():
    Y = np.array([[1, 0], [0, 0], [0, 0], [1, 0]])
    F = np.array([[0.5, 0.1], [0.5, 0.2], [0.2, 0.3], [0.9, 0.4]])
    # label 0 pairs (pos, neg): (.5,.5) tie, (.5,.2) win, (.9,.5) win, (.9,.2) win
    # label 1 has no positives: dropped by the project, counted as 0 by the authors.
    assert M.macro_auc(Y, F) == pytest.approx(3.5 / 4)
    assert M.macro_auc_authors(Y, F) == pytest.approx((4 / 4) / 2)


# ---------------------------------------------------------------------------
# Authors' macro-AUC vs scikit-learn
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_authors_auc_agrees_without_ties_or_constant_columns(seed):
    rng = np.random.default_rng(seed)
    n, q = 150, 20
    Y = (rng.random((n, q)) < 0.3).astype(int)
    Y[0], Y[1] = 1, 0  # every column has both classes
    F = rng.random((n, q))  # continuous: no ties (with probability 1)
    assert len(np.unique(F)) == F.size
    assert M.macro_auc_authors(Y, F) == pytest.approx(sk_macro_auc(Y, F), abs=1e-12)
    assert M.macro_auc(Y, F) == pytest.approx(sk_macro_auc(Y, F), abs=1e-12)


def test_authors_auc_differs_with_ties_by_half_tie_credit():
    rng = np.random.default_rng(11)
    n, q = 100, 10
    Y = (rng.random((n, q)) < 0.4).astype(int)
    Y[0], Y[1] = 1, 0
    F = np.round(rng.random((n, q)) * 5) / 5
    pos = Y.sum(0)
    neg = n - pos
    # per label: tied positive/negative pairs, over all pairs
    tie_frac = np.array(
        [np.sum(F[Y[:, j] == 1, j][:, None] == F[Y[:, j] == 0, j][None, :]) / (pos[j] * neg[j]) for j in range(q)]
    )
    assert tie_frac.min() > 0
    # authors give ties full credit instead of half
    assert M.macro_auc_authors(Y, F) == pytest.approx(sk_macro_auc(Y, F) + 0.5 * tie_frac.mean(), abs=1e-12)
    assert M.macro_auc_authors(Y, F) > M.macro_auc(Y, F)


def test_authors_auc_divides_by_all_labels():
    rng = np.random.default_rng(12)
    n, q = 120, 8
    Y = (rng.random((n, q)) < 0.3).astype(int)
    Y[0], Y[1] = 1, 0
    Y[:, 2] = 0  # no positives
    Y[:, 5] = 1  # no negatives
    F = rng.random((n, q))
    assert M.macro_auc(Y, F) == pytest.approx(sk_macro_auc(Y, F), abs=1e-12)
    assert M.macro_auc_authors(Y, F) == pytest.approx(sk_macro_auc(Y, F) * 6 / 8, abs=1e-12)


# ---------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("zero_division, expected", [(0.0, 0.5), (1.0, 1.0), (np.nan, 1.0)])
def test_macro_f1_label_without_positives(zero_division, expected):
    # label 1: no true and no predicted positive -> F1 = zero_division (nan: excluded)
    Y = np.array([[1, 0], [0, 0]])
    F = np.array([[0.9, 0.1], [0.2, 0.3]])
    assert M.macro_f1(Y, F, zero_division=zero_division) == pytest.approx(expected)


def test_macro_f1_label_without_positives_but_predicted_is_zero():
    # a false positive makes F1 = 0 whatever zero_division says
    Y = np.array([[1, 0], [0, 0]])
    F = np.array([[0.9, 0.8], [0.2, 0.3]])
    for zd in ZERO_DIVISIONS:
        assert M.macro_f1(Y, F, zero_division=zd) == pytest.approx(0.5)


def test_f1_all_undefined_with_nan_is_nan():
    Y = np.zeros((3, 2), dtype=int)
    F = np.full((3, 2), 0.1)
    assert np.isnan(M.macro_f1(Y, F, zero_division=np.nan))
    assert np.isnan(M.micro_f1(Y, F, zero_division=np.nan))
    assert np.isnan(M.example_f1(Y, F, zero_division=np.nan))
    assert M.macro_f1(Y, F) == 0.0 and M.micro_f1(Y, F, zero_division=1.0) == 1.0


def test_sample_without_relevant_labels():
    Y = np.array([[0, 0, 0], [1, 0, 0]])
    F = np.array([[0.9, 0.5, 0.1], [0.9, 0.5, 0.1]])
    # the empty sample is always a one-error, is perfectly "ranked" otherwise
    assert M.one_error(Y, F) == pytest.approx(0.5)
    assert M.ranking_loss(Y, F) == pytest.approx(0.0)
    assert M.coverage(Y, F) == pytest.approx(0.0)
    assert M.average_precision(Y, F) == pytest.approx(1.0)
    # example-F1: sample 0 has empty truth and predicts label 0 -> 0; sample 1 exact -> 1
    assert M.example_f1(Y, F) == pytest.approx(0.5)


def test_all_equal_scores():
    Y = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1]])
    F = np.full(Y.shape, 0.3)
    res = M.evaluate(Y, F)
    assert res["macro_auc"] == pytest.approx(0.5)  # every pair is a tie: half credit
    assert M.macro_auc_authors(Y, F) == pytest.approx(1.0)  # full credit
    assert res["ranking_loss"] == pytest.approx((1 + 1 + 0 + 0) / 4)  # ties are errors
    assert res["one_error"] == pytest.approx(0.5)  # argmax -> label 0 for every row
    assert res["coverage"] == pytest.approx((2 / 3 * 3 + 0) / 4)
    assert res["average_precision"] == pytest.approx((2 / 3 + 1 / 3 + 1 + 1) / 4)
    assert res["hamming_loss"] == pytest.approx(6 / 12)  # nothing predicted: the 6 ones are wrong
    assert res["macro_f1"] == 0.0 and res["micro_f1"] == 0.0
    assert_metrics_close(res, sk_all(Y, F))


def test_threshold_is_strict():
    Y = np.array([[1, 0], [0, 1]])
    F = np.array([[0.5, 0.5], [0.5, 0.5000001]])
    # only the last entry is predicted positive
    assert M.hamming_loss(Y, F) == pytest.approx(1 / 4)
    assert M.hamming_loss(Y, F, threshold=0.4) == pytest.approx(2 / 4)


def test_macro_auc_nan_when_no_label_qualifies():
    Y = np.array([[1, 0], [1, 0]])
    F = np.array([[0.2, 0.4], [0.6, 0.8]])
    with pytest.warns(UndefinedMetricWarning, match="no label has both"):
        assert np.isnan(M.macro_auc(Y, F))
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(M.evaluate(Y, F)["macro_auc"])
    assert M.macro_auc_authors(Y, F) == 0.0


def test_macro_auc_no_warning_when_some_labels_valid():
    Y = np.array([[1, 0], [0, 0]])
    F = np.array([[0.8, 0.4], [0.6, 0.8]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.macro_auc(Y, F) == pytest.approx(1.0)


def test_single_sample_and_single_label():
    with pytest.warns(UndefinedMetricWarning):  # one sample: every label column is constant
        assert M.evaluate([[1, 0, 1]], [[0.2, 0.9, 0.6]])["one_error"] == 1.0
    res = M.evaluate([[1], [0], [1]], [[0.9], [0.2], [0.4]])
    assert res["macro_auc"] == pytest.approx(1.0)
    assert res["ranking_loss"] == 0.0  # no sample has both relevant and irrelevant labels


# ---------------------------------------------------------------------------
# Input types
# ---------------------------------------------------------------------------


def test_accepts_lists_bool_float_targets_and_float32():
    rng = np.random.default_rng(5)
    Y, F = random_case(rng, 40, 6, 0.3)
    ref = M.evaluate(Y, F)
    assert M.evaluate(Y.astype(bool), F) == ref
    assert M.evaluate(Y.astype(np.float32), F) == ref
    assert M.evaluate(Y.tolist(), F.tolist()) == ref
    F32 = F.astype(np.float32)
    assert_metrics_close(M.evaluate(Y, F32), sk_all(Y, F32.astype(np.float64)))


def test_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    Y, F = random_case(rng, 40, 6, 0.3)
    ref = M.evaluate(Y, F)
    Ft = torch.tensor(F, requires_grad=True)
    assert M.evaluate(torch.tensor(Y), Ft) == ref
    assert M.evaluate(torch.tensor(Y, dtype=torch.float32), Ft) == ref
    # reduced-precision outputs are widened exactly, so they agree with their float64 copy
    for dtype in (torch.float16, torch.bfloat16):
        Fh = torch.tensor(F).to(dtype)
        assert M.evaluate(Y, Fh) == M.evaluate(Y, Fh.double().numpy())


def test_saturated_float32_sigmoid_ties():
    torch = pytest.importorskip("torch")
    logits = torch.tensor([[20.0, 30.0, -1.0], [18.0, 25.0, 0.0]])
    F = torch.sigmoid(logits)  # float32: the first two columns saturate to exactly 1.0
    assert float(F[0, 0]) == 1.0 == float(F[0, 1])
    Y = np.array([[0, 1, 0], [0, 1, 1]])
    # argmax ties go to label 0, which is irrelevant in both rows
    assert M.one_error(Y, F) == 1.0
    assert M.ranking_loss(Y, F) == pytest.approx(skm.label_ranking_loss(Y, F.double().numpy()))


# ---------------------------------------------------------------------------
# evaluate() contract
# ---------------------------------------------------------------------------


def test_constants_and_keys():
    assert M.REPORTED_METRICS == (
        "macro_f1",
        "micro_f1",
        "macro_auc",
        "ranking_loss",
        "hamming_loss",
        "one_error",
    )
    assert set(M.HIGHER_IS_BETTER) == set(M.ALL_METRICS)
    assert [k for k in M.ALL_METRICS if M.HIGHER_IS_BETTER[k]] == [
        "macro_f1",
        "micro_f1",
        "macro_auc",
        "average_precision",
        "example_f1",
    ]
    res = M.evaluate(Y_HAND, F_HAND)
    assert list(res) == list(M.ALL_METRICS)
    assert all(type(v) is float for v in res.values())


def test_perfect_predictions_hit_the_best_values():
    Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    F = np.where(Y == 1, 0.9, 0.1)
    res = M.evaluate(Y, F)
    for key in M.ALL_METRICS:
        best = 1.0 if M.HIGHER_IS_BETTER[key] else 0.0
        if key == "coverage":
            best = np.mean((Y.sum(1) - 1) / 3)  # coverage cannot go below (|Y+| - 1) / q
        assert res[key] == pytest.approx(best), key


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

GOOD_Y = np.array([[1, 0], [0, 1]])
GOOD_F = np.array([[0.7, 0.2], [0.1, 0.6]])


@pytest.mark.parametrize(
    "Y, F, match",
    [
        (np.array([1, 0]), np.array([0.5, 0.5]), "Y must be 2-D"),
        (GOOD_Y, np.array([0.5, 0.5]), "F must be 2-D"),
        (GOOD_Y, np.ones((2, 3)) / 2, "same shape"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "at least one sample"),
        (np.array([[1, 2], [0, 1]]), GOOD_F, "only 0 and 1"),
        (np.array([[1, -1], [0, 1]]), GOOD_F, "only 0 and 1"),
        (np.array([[1.0, np.nan], [0, 1]]), GOOD_F, "only 0 and 1"),
        (np.array([["a", "b"], ["c", "d"]]), GOOD_F, "numeric or boolean"),
        (GOOD_Y, np.array([[0.7, np.nan], [0.1, 0.6]]), "finite"),
        (GOOD_Y, np.array([[0.7, np.inf], [0.1, 0.6]]), "finite"),
        (GOOD_Y, np.array([[1.5, 0.2], [0.1, 0.6]]), r"\[0, 1\]"),
        (GOOD_Y, np.array([[-0.1, 0.2], [0.1, 0.6]]), r"\[0, 1\]"),
        (GOOD_Y, GOOD_F.astype(complex), "real-valued"),
        ([[1, 0], [0]], GOOD_F, "could not be converted"),
    ],
)
@pytest.mark.parametrize("fn", [M.evaluate, M.macro_auc, M.macro_auc_authors, M.hamming_loss, M.one_error])
def test_invalid_inputs_raise(fn, Y, F, match):
    with pytest.raises(ValueError, match=match):
        fn(Y, F)


def test_sparse_input_rejected():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(ValueError, match="dense"):
        M.evaluate(sparse.csr_matrix(GOOD_Y), GOOD_F)


@pytest.mark.parametrize("threshold", [-0.1, 1.1, np.nan, "x", None])
def test_invalid_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        M.evaluate(GOOD_Y, GOOD_F, threshold=threshold)
    with pytest.raises(ValueError, match="threshold"):
        M.macro_f1(GOOD_Y, GOOD_F, threshold=threshold)


@pytest.mark.parametrize("zd", [0.5, -1, "warn", None])
def test_invalid_zero_division(zd):
    with pytest.raises(ValueError, match="zero_division"):
        M.macro_f1(GOOD_Y, GOOD_F, zero_division=zd)
    with pytest.raises(ValueError, match="zero_division"):
        M.evaluate(GOOD_Y, GOOD_F, zero_division=zd)
