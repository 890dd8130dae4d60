"""Tests of mlabs.selection: probabilities, imbalance weights, label correlation, samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch.utils.data import DataLoader, TensorDataset

from mlabs.selection import (
    AdaptiveBatchSampler,
    ChainBatchSampler,
    RandomBatchSampler,
    imbalance_weights,
    k_nearest_neighbors,
    label_correlation,
    minority_labels,
    selection_probabilities,
)
from mlabs.selection import dedup, drawing, slot_table
from mlabs.selection.chain import label_walk_table

SETTINGS = settings(max_examples=60, deadline=None)
# no subnormals: scaling them by a constant underflows to 0, which changes the input, not the rule
scores_st = st.lists(st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_subnormal=False),
                     min_size=1, max_size=60)
pressure_st = st.sampled_from([1.5, 2.0, 4.0, 16.0, 64.0])


# ------------------------------------------------------------------------------------------------
# selection probabilities
# ------------------------------------------------------------------------------------------------
@SETTINGS
@given(scores=scores_st, s_e=pressure_st, quantize=st.booleans())
def test_probabilities_distribution_monotone_bounded(scores, s_e, quantize):
    s = torch.tensor(scores, dtype=torch.float64)
    p = selection_probabilities(s, s_e, quantize=quantize)
    assert p.dtype == torch.float64 and p.shape == s.shape
    assert torch.all(p > 0)
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-12)
    order = torch.argsort(s)
    assert torch.all(p[order][1:] >= p[order][:-1] * (1 - 1e-12))   # higher score, never lower p
    assert float(p.max() / p.min()) <= s_e * (1 + 1e-9)


@SETTINGS
@given(scores=scores_st, s_e=pressure_st, quantize=st.booleans(),
       c=st.floats(min_value=1e-3, max_value=1e3))
def test_probabilities_scale_invariant(scores, s_e, quantize, c):
    s = torch.tensor(scores, dtype=torch.float64)
    p = selection_probabilities(s, s_e, quantize=quantize)
    q = selection_probabilities(s * 2.0, s_e, quantize=quantize)   # exact scaling: no rounding
    assert torch.allclose(p, q, rtol=1e-12, atol=0)
    if not quantize:   # ranks are invariant to any positive scaling
        assert torch.allclose(p, selection_probabilities(s * c, s_e, quantize=False), rtol=1e-12, atol=0)


@pytest.mark.parametrize("quantize", [True, False])
def test_equal_scores_equal_probabilities(quantize):
    s = torch.tensor([3.0, 1.0, 3.0, 0.5, 3.0, 1.0])
    p = selection_probabilities(s, 4.0, quantize=quantize)
    assert p[0] == p[2] == p[4] and p[1] == p[5]
    for const in (0.0, 2.5):
        u = selection_probabilities(torch.full((7,), const), 4.0, quantize=quantize)
        assert torch.allclose(u, torch.full((7,), 1 / 7, dtype=torch.float64))


def test_quantization_step_perturbation_invariance():
    rng = np.random.default_rng(0)
    n = 200
    levels = rng.integers(1, n, size=n).astype(np.float64)
    levels[0] = n                                  # the maximum fixes Delta = 1
    s = torch.tensor(levels)                       # scores on the level grid: Q = s
    p = selection_probabilities(s, 8.0)
    noise = torch.tensor(rng.uniform(-0.9, 0.0, size=n))
    noise[0] = 0.0                                 # keep the max, so Delta is unchanged
    q = selection_probabilities(s + noise, 8.0)    # still within the same levels
    assert torch.equal(p, q)
    # and the formula: p ~ s_e^(Q/N)
    expected = 8.0 ** (s / n)
    assert torch.allclose(p, expected / expected.sum(), rtol=1e-12)
    # a step larger than Delta does change the probabilities
    bumped = s.clone()
    bumped[1] += 1.0 if bumped[1] < n else -1.0
    assert not torch.equal(p, selection_probabilities(bumped, 8.0))


def test_exact_rank_matches_loshchilov_hutter_by_hand():
    s = [0.3, 5.0, 1.2, 0.0, 2.2]                 # ranks (0 = hardest): 3, 0, 2, 4, 1
    s_e, n = 16.0, 5
    ranks = [3, 0, 2, 4, 1]
    w = [math.exp(-math.log(s_e) * r / n) for r in ranks]
    expected = [x / sum(w) for x in w]
    p = selection_probabilities(s, s_e, quantize=False)
    assert np.allclose(p.numpy(), expected, rtol=1e-13)
    # ties share the average of their ranks
    p = selection_probabilities([2.0, 2.0, 1.0], 4.0, quantize=False)   # ranks 0.5, 0.5, 2
    w = [math.exp(-math.log(4.0) * r / 3) for r in (0.5, 0.5, 2.0)]
    assert np.allclose(p.numpy(), [x / sum(w) for x in w], rtol=1e-13)


def test_probabilities_large_n_stable():
    n = 10**6
    s = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    p = selection_probabilities(s, 64.0)
    assert torch.isfinite(p).all() and math.isclose(float(p.sum()), 1.0, rel_tol=1e-9)
    assert float(p.max() / p.min()) <= 64.0 * (1 + 1e-9)


@pytest.mark.parametrize("bad,match", [
    ([1.0, float("nan"), 2.0, float("inf")], r"NaN or infinite values at sample indices \[1, 3\]"),
    ([1.0, -0.5, 2.0], r"non-negative.*\[1\]"),
    ([[1.0, 2.0]], "1-D"),
    ([], "empty"),
])
def test_probabilities_bad_scores(bad, match):
    with pytest.raises(ValueError, match=match):
        selection_probabilities(bad, 2.0)


@pytest.mark.parametrize("s_e", [1.0, 0.5, -2.0, float("nan"), float("inf"), "x"])
def test_probabilities_bad_pressure(s_e):
    with pytest.raises(ValueError, match="selection_pressure"):
        selection_probabilities([1.0, 2.0], s_e)


# ------------------------------------------------------------------------------------------------
# imbalance weights and neighbours
# ------------------------------------------------------------------------------------------------
def _brute_force_weights(X, Y, k):
    """Plain-loop reference of docs/method.md section 2 (ties by smaller index)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y)
    n, q = Y.shape
    counts = Y.sum(axis=0)
    ir = [max(counts) / counts[j] for j in range(q)]
    mean_ir = sum(ir) / q
    minority = [j for j in range(q) if ir[j] > mean_ir]
    nbrs = []
    for i in range(n):
        d = []
        for j in range(n):
            if j != i:
                d.append((float(((X[i] - X[j]) ** 2).sum()), j))
        d.sort()
        nbrs.append([j for _, j in d[:k]])
    B = np.zeros((n, q))
    for j in minority:
        for i in range(n):
            if Y[i, j] == 1:
                B[i, j] = sum(1 for m in nbrs[i] if Y[m, j] != 1) / k
    w = np.ones(n)
    for j in minority:
        informative = [i for i in range(n) if 0 < B[i, j] < 1]
        total = sum(B[i, j] for i in informative)
        for i in informative:
            w[i] += B[i, j] / total
    return w, nbrs


def _random_problem(seed, n=40, d=4, q=5, integer=False, duplicates=True):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, size=(n, d)).astype(float) if integer else rng.normal(size=(n, d))
    if duplicates:
        X[5] = X[3]
        X[7] = X[3]
        X[20] = X[11]
    rates = np.array([0.6, 0.4, 0.2, 0.12, 0.08])[:q]
    Y = (rng.random((n, q)) < rates).astype(np.uint8)
    Y[0] = 1                                    # every label has a positive
    return X, Y


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_imbalance_weights_match_brute_force(seed, integer, k):
    X, Y = _random_problem(seed, integer=integer)
    w_ref, nbrs = _brute_force_weights(X, Y, k)
    for chunk in (None, 1, 7):
        w = imbalance_weights(X, Y, k=k, chunk_size=chunk)
        assert np.allclose(w.numpy(), w_ref, rtol=1e-12, atol=1e-12)
        assert k_nearest_neighbors(X, k, chunk_size=chunk).tolist() == nbrs
    # the same through sparse and torch input
    assert np.allclose(imbalance_weights(sp.csr_matrix(X), Y, k=k).numpy(), w_ref, rtol=1e-12)
    assert np.allclose(imbalance_weights(torch.tensor(X), torch.tensor(Y), k=k).numpy(), w_ref, rtol=1e-12)


def test_knn_duplicates_excluded_by_index_and_ties_by_index():
    X = np.array([[0.0, 0.0]] * 4 + [[1.0, 0.0], [0.0, 1.0]])
    nbr = k_nearest_neighbors(X, 3)
    assert nbr[0].tolist() == [1, 2, 3]         # duplicates are neighbours at distance 0
    assert nbr[2].tolist() == [0, 1, 3]         # itself excluded by index, ties by index
    assert nbr[4].tolist() == [0, 1, 2]
    assert k_nearest_neighbors(sp.csr_matrix(X), 3).tolist() == nbr.tolist()


def test_weights_one_without_minority_labels_and_at_least_one():
    X, Y = _random_problem(3)
    w = imbalance_weights(X, Y)
    minority = minority_labels(Y).numpy()
    plain = Y[:, minority].sum(axis=1) == 0
    assert plain.any() and np.all(w.numpy()[plain] == 1.0)
    assert torch.all(w >= 1.0)
    assert float(w.max()) > 1.0


def test_imbalance_weights_errors():
    X, Y = _random_problem(0)
    Y0 = Y.copy()
    Y0[:, 2] = 0
    with pytest.raises(ValueError, match=r"labels \[2\] have no positive"):
        imbalance_weights(X, Y0)
    with pytest.raises(ValueError, match="rows"):
        imbalance_weights(X[:-1], Y)
    with pytest.raises(ValueError, match="only 0 and 1"):
        imbalance_weights(X, Y * 2)
    with pytest.raises(ValueError, match="2-D"):
        imbalance_weights(X, Y[:, 0])
    with pytest.raises(ValueError, match="k = 40"):
        imbalance_weights(X, Y, k=40)
    Xn = X.copy()
    Xn[6, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in sample rows \[6\]"):
        imbalance_weights(Xn, Y)


# ------------------------------------------------------------------------------------------------
# label correlation
# ------------------------------------------------------------------------------------------------
def test_label_correlation_hand_example():
    Y = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 0], [0, 0, 1]])
    # n = (3, 3, 2); C01 = 2, C02 = 1, C12 = 1
    A = label_correlation(Y).numpy()
    expected = np.array([[0, 2 / 3, (1 / 2 + 1 / 3) / 2],
                         [2 / 3, 0, (1 / 2 + 1 / 3) / 2],
                         [(1 / 2 + 1 / 3) / 2, (1 / 2 + 1 / 3) / 2, 0]])
    assert np.allclose(A, expected, rtol=1e-14)


@SETTINGS
@given(st.integers(0, 10_000), st.integers(1, 30), st.integers(1, 8))
def test_label_correlation_properties(seed, n, q):
    Y = (np.random.default_rng(seed).random((n, q)) < 0.4).astype(int)
    A = label_correlation(sp.csr_matrix(Y))
    assert torch.equal(A, A.T)
    assert torch.all((A >= 0) & (A <= 1))
    assert torch.all(torch.diagonal(A) == 0)


def test_label_walk_table_argmax_ties_and_stop():
    A = torch.tensor([[0.0, 0.5, 0.5, 0.0],
                      [0.5, 0.0, 0.2, 0.0],
                      [0.5, 0.2, 0.0, 0.0],
                      [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    W = label_walk_table(A, 4)
    assert W[0].tolist() == [1, 2, -1]          # tie 0.5/0.5 -> smaller index 1; then 2; then stop
    assert W[1].tolist() == [0, 2, -1]
    assert W[3].tolist() == [-1, -1, -1]        # uncorrelated label: chain stops at once


# ------------------------------------------------------------------------------------------------
# samplers
# ------------------------------------------------------------------------------------------------
def _labels(n=300, q=6, seed=0):
    rng = np.random.default_rng(seed)
    rates = np.array([0.5, 0.3, 0.15, 0.08, 0.05, 0.03])[:q]
    Y = (rng.random((n, q)) < rates).astype(np.float32)
    Y[:q, :] = np.eye(q)                        # every label has a positive
    return Y


def _run_epoch(sampler, losses):
    batches = []
    for batch in sampler:
        batches.append(batch)
        idx = torch.tensor(batch)
        sampler.update(idx, losses[idx])
    return batches


SAMPLERS = [
    lambda Y, **kw: AdaptiveBatchSampler(Y, 16, **kw),
    lambda Y, **kw: ChainBatchSampler(Y, 16, **kw),
    lambda Y, **kw: ChainBatchSampler(Y, 16, label_choice="sample", chain_length=3, **kw),
]


@pytest.mark.parametrize("make", SAMPLERS)
def test_warmup_then_distinct_batches(make):
    Y = _labels()
    n = len(Y)
    losses = torch.rand(n, generator=torch.Generator().manual_seed(1))
    s = make(Y, warmup_epochs=2, seed=3)
    assert len(s) == math.ceil(n / 16) and s.n_samples == n and s.batch_size == 16
    for epoch in range(2):
        batches = _run_epoch(s, losses)
        assert s.epoch == epoch and s.in_warmup
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(n))              # warm-up covers every sample exactly once
        assert [len(b) for b in batches] == [16] * (len(s) - 1) + [n - 16 * (len(s) - 1)]
    torch.testing.assert_close(s.loss_table, losses.double())   # warm-up losses seed the table
    for epoch in range(2, 4):
        batches = _run_epoch(s, losses)
        assert s.epoch == epoch and not s.in_warmup and len(batches) == len(s)
        for b in batches:
            assert len(b) == 16 and len(set(b)) == 16 and all(0 <= i < n for i in b)
            assert all(isinstance(i, int) for i in b)


def test_random_batch_sampler():
    s = RandomBatchSampler(10, 4, seed=1)
    e0 = list(s)
    e1 = list(s)
    assert [len(b) for b in e0] == [4, 4, 2] and sorted(sum(e0, [])) == list(range(10))
    assert e0 != e1 and s.epoch == 1                 # a fresh shuffle every epoch (auto-advance)
    s.set_epoch(7)
    list(s)
    assert s.epoch == 7
    s.update([1, 2], [0.3, 0.1])                     # accepted and ignored
    assert torch.allclose(s.probabilities(), torch.full((10,), 0.1, dtype=torch.float64))
    assert list(RandomBatchSampler(10, 4, seed=1)) == e0


def _mc_inclusion(p, b, draws, seed):
    g = torch.Generator().manual_seed(seed)
    rows = torch.multinomial(p.float().expand(draws, -1).contiguous(), b, replacement=False, generator=g)
    return torch.bincount(rows.reshape(-1), minlength=p.numel()).double()


def _two_sample_chi2(c1, c2):
    mask = (c1 + c2) > 0
    stat = float((((c1 - c2) ** 2) / (c1 + c2))[mask].sum())
    return stats.chi2.sf(stat, int(mask.sum()) - 1)


@pytest.mark.parametrize("n,b,s_e,force_vectorised", [
    (200, 4, 16.0, False),   # vectorised path (N >= 20 B), few repeats
    (40, 10, 1e4, True),     # vectorised path forced, heavy repeats and row continuation
    (60, 6, 16.0, False),    # successive rounds (N < 20 B)
])
def test_inclusion_frequencies_match_successive_sampling(monkeypatch, n, b, s_e, force_vectorised):
    if force_vectorised:
        monkeypatch.setattr(drawing, "SUCCESSIVE_RATIO", 0)
    Y = _labels(n)
    s = AdaptiveBatchSampler(Y, b, selection_pressure=s_e, warmup_epochs=0, seed=5, score="loss")
    losses = torch.linspace(0.0, 2.0, n, dtype=torch.float64) ** 2
    s.update(torch.arange(n), losses)
    p = s.probabilities()
    counts = torch.zeros(n, dtype=torch.float64)
    n_batches = 0
    for _ in range(3000 // len(s) + 1):
        for batch in s:
            assert len(set(batch)) == b
            counts += torch.bincount(torch.tensor(batch), minlength=n).double()
            n_batches += 1
    torch.testing.assert_close(s.probabilities(), p)   # no update: same distribution
    ref = _mc_inclusion(p, b, n_batches, seed=11)
    assert _two_sample_chi2(counts, ref) > 1e-4
    # the statistic has power: uniform sampling is rejected
    uniform = _mc_inclusion(torch.full((n,), 1.0 / n, dtype=torch.float64), b, n_batches, seed=12)
    assert _two_sample_chi2(uniform, ref) < 1e-6


def test_chain_length_one_is_successive_sampling():
    n, b = 120, 6
    Y = _labels(n)
    s = ChainBatchSampler(Y, b, chain_length=1, selection_pressure=16.0, warmup_epochs=0, seed=2, score="loss")
    s.update(torch.arange(n), torch.linspace(0.0, 1.0, n))
    p = s.probabilities()
    counts = torch.zeros(n, dtype=torch.float64)
    nb = 0
    for _ in range(150):
        for batch in s:
            counts += torch.bincount(torch.tensor(batch), minlength=n).double()
            nb += 1
    assert _two_sample_chi2(counts, _mc_inclusion(p, b, nb, seed=3)) > 1e-4


def _refreshed_sampler(n, b=8, s_e=2.0, seed=0):
    """An adaptive sampler on the slot-table path with its table built from gamma-like losses."""
    s = AdaptiveBatchSampler(np.eye(1, dtype=np.float32).repeat(n, 0), b, selection_pressure=s_e,
                             warmup_epochs=0, seed=seed, score="loss")
    g = torch.Generator().manual_seed(seed)
    s.update(torch.arange(n), torch.distributions.Gamma(2.0, 2.0).sample((n,)).double() * torch.rand(n, generator=g))
    s._drawer.set_weights(s._draw_weights())
    table = s._drawer.table
    assert table._cdf is None and table._index_shift is not None
    return s, table


@pytest.mark.parametrize("n", [3_000, (1 << 17) + 5])
def test_iid_draws_follow_p(n):
    # the in-place rounds, the compaction of the last rejected positions and (at the larger N,
    # where a proposal ties its threshold with probability 2^-13) the tie test together draw from p
    s, table = _refreshed_sampler(n)
    assert table._tie_bits > 0
    p = s.probabilities()
    draws = table.draws(40 * n)
    assert draws.dtype == torch.int32 and int(draws.min()) >= 0 and int(draws.max()) < n
    counts = torch.bincount(draws.long(), minlength=n).double()
    expected = p * counts.sum()
    stat = float(((counts - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(stat, n - 1) > 1e-4
    # the statistic has power: the same number of uniform draws is rejected
    uniform = torch.bincount(torch.randint(0, n, (40 * n,), generator=torch.Generator().manual_seed(1)),
                             minlength=n).double()
    assert stats.chi2.sf(float(((uniform - expected) ** 2 / expected).sum()), n - 1) < 1e-6


def test_inverse_cdf_draws_follow_p():
    # exact ranks at a large s_e: acceptance rate < 1/4, so the draws search the exact int64
    # cumulative table with an integer uniform
    n = 2_000
    s = AdaptiveBatchSampler(np.eye(1, dtype=np.float32).repeat(n, 0), 8, selection_pressure=1e3,
                             quantize=False, warmup_epochs=0, seed=2, score="loss")
    s.update(torch.arange(n), torch.rand(n, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    s._refresh_draw()
    table = s._drawer.table
    assert table._cdf is not None and table._cdf.dtype == torch.int64
    p = s.probabilities()
    draws = table.draws(200 * n)
    counts = torch.bincount(draws.long(), minlength=n).double()
    expected = p * counts.sum()
    assert stats.chi2.sf(float(((counts - expected) ** 2 / expected).sum()), n - 1) > 1e-4
    shifted = torch.roll(expected, 1)                     # power: a slightly different p is rejected
    assert stats.chi2.sf(float(((counts - shifted) ** 2 / shifted).sum()), n - 1) < 1e-6


def test_iid_draws_keep_proposals_accepted_on_a_tie(monkeypatch):
    # Crafted proposals in both in-place rounds, ties decided by a patched tie test. Round 1:
    # accepted, rejected and ties; round 2 (every position rejected in round 1): ties only. Tie
    # winners stay listed as rejected (they are redrawn) and must get their value back, a round-1
    # winner its round-1 value.
    _, s = _refreshed_sampler(5_000)
    shift, mask = s._index_shift, (1 << s._index_shift) - 1
    count = 4_000
    g = torch.Generator().manual_seed(2)
    slot = torch.randint(0, 5_000, (count,), generator=g, dtype=torch.int32)
    thr = s._accept.index_select(0, slot) & mask
    kind = torch.arange(count) % 4                       # 0 accept, 1 reject, 2 tie won, 3 tie lost
    kind[(kind == 1) & (thr == mask)] = 3                # no uniform above the largest threshold
    kind[(kind == 0) & (thr == 0)] = 3
    u = torch.where(kind == 0, thr - 1, torch.where(kind == 1, torch.full_like(thr, mask), thr))
    assert all(int((kind == k).sum()) > 500 for k in range(4))
    pending = (kind != 0).nonzero().view(-1)             # round 1's rejected list (winners kept in it)
    slot2 = torch.randint(0, 5_000, (pending.numel(),), generator=g, dtype=torch.int32)
    u2 = s._accept.index_select(0, slot2) & mask         # every round-2 proposal ties
    won2 = torch.arange(pending.numel()) % 2 == 0
    crafted = {"r": (slot << shift) | u, "retry_r": (slot2 << shift) | u2}
    real_random31 = slot_table.SlotTable._random31
    monkeypatch.setattr(slot_table.SlotTable, "_random31",
                        lambda self, k, name: crafted.pop(name) if name in crafted else real_random31(self, k, name))
    decided = []

    def tie_accepted(self, slot_, tie):
        decided.append(tie)
        return (kind.index_select(0, tie) == 2) if len(decided) == 1 else won2.index_select(0, tie)

    monkeypatch.setattr(slot_table.SlotTable, "_tie_accepted", tie_accepted)
    monkeypatch.setattr(slot_table, "COMPACT_BELOW", 0)   # second round in place as well
    out = s.draws(count)
    assert len(decided) >= 2 and set(kind.index_select(0, decided[0]).tolist()) == {2, 3}
    assert decided[1].numel() == pending.numel()
    sample = s._accept.index_select(0, slot) >> shift    # the sample a slot proposes
    kept = (kind == 0) | (kind == 2)
    assert torch.equal(out[kept], sample[kept])
    sample2 = s._accept.index_select(0, slot2) >> shift
    kept2 = won2 & (kind.index_select(0, pending) != 2)
    assert int(kept2.sum()) > 500
    assert torch.equal(out[pending[kept2]], sample2[kept2])
    # the round-2 ties that lost were redrawn independently (not all their round-2 values)
    lost2 = ~won2 & (kind.index_select(0, pending) != 2)
    assert not torch.equal(out[pending[lost2]], sample2[lost2])
    assert int(out.min()) >= 0 and int(out.max()) < 5_000


@pytest.mark.parametrize("rows,b,n,dtype", [(500, 16, 1_000, torch.int32), (300, 2, 50, torch.int32),
                                            (40, 300, 100_000, torch.int32), (200, 8, 10**6, torch.int64)])
def test_rows_with_repeat_matches_brute_force(rows, b, n, dtype):
    g = torch.Generator().manual_seed(rows + b)
    draws = torch.randint(0, n, (rows, b), generator=g).to(dtype)
    # force repeats in some rows, and equal low bits without a repeat (hash collisions) in others
    draws[::7, 1] = draws[::7, 0]
    if b > 2 and n > 4096:
        draws[1::5, 2] = (draws[1::5, 0] + 4096) % n
    expected = [r for r in range(rows) if draws[r].unique().numel() < b]
    got = dedup.rows_with_repeat(draws, n)
    assert got.tolist() == expected and len(expected) > 0


def _minority_problem(n: int = 400, seed: int = 0):
    """Features, labels and the rows of a minority label: label 0 on all, 1 on half, 2 on every tenth."""
    X = np.random.default_rng(seed).normal(size=(n, 3))
    Y = np.zeros((n, 3), dtype=np.float32)
    Y[:, 0] = 1
    Y[: n // 2, 1] = 1
    minority = np.arange(0, n, 10)
    Y[minority, 2] = 1
    return X, Y, minority


def test_the_default_score_weights_the_loss_so_minority_samples_lead_at_equal_loss():
    # the test below gives its minority samples a larger loss too, so it cannot tell whether the
    # imbalance weights count at all: here every loss is equal, so only w can favour them
    X, Y, minority = _minority_problem(seed=1)
    n = len(Y)
    losses = torch.full((n,), 0.5, dtype=torch.float64)
    s = AdaptiveBatchSampler(Y, 20, features=X, selection_pressure=16.0, warmup_epochs=0, seed=0)
    s.update(torch.arange(n), losses)
    w = imbalance_weights(X, Y, k=s.k_neighbors).to(torch.float64)
    torch.testing.assert_close(s.scores(), w * losses)       # w . L, w checked against brute force above
    assert w[minority].mean() > w[np.setdiff1d(np.arange(n), minority)].mean()
    expected = selection_probabilities(w * losses, selection_pressure=16.0)
    torch.testing.assert_close(s.probabilities(), expected)  # before the epoch's refresh
    next(iter(s))
    torch.testing.assert_close(s.probabilities(), expected)  # the refresh the draws use
    others = np.setdiff1d(np.arange(n), minority)
    assert expected[minority].min() >= expected[others].max() and expected[minority].mean() > expected[others].mean()


def test_hard_minority_samples_selected_more_often():
    X, Y, minority = _minority_problem(seed=0)  # 40 samples carry the minority label 2
    n = len(Y)
    losses = torch.full((n,), 0.2, dtype=torch.float64)
    losses[minority] = 0.8                      # and they are hard
    counts = {}
    for name, make in (("random", lambda: RandomBatchSampler(n, 20, seed=0)),
                       ("adaptive", lambda: AdaptiveBatchSampler(Y, 20, features=X, selection_pressure=16.0,
                                                                 warmup_epochs=0, seed=0))):
        s = make()
        s.update(torch.arange(n), losses)
        c = np.zeros(n)
        for _ in range(30):
            for batch in s:
                c[batch] += 1
        counts[name] = c
    share = {k: v[minority].sum() / v.sum() for k, v in counts.items()}
    assert share["random"] == pytest.approx(0.1)
    assert share["adaptive"] > 0.2


def _correlated_labels(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    q = 8
    Y = np.zeros((n, q), dtype=np.float32)
    # label pairs (0,1), (2,3), (4,5), (6,7) co-occur strongly; odd labels are rare
    for j in range(0, q, 2):
        base = rng.random(n) < [0.4, 0.2, 0.1, 0.05][j // 2]
        Y[:, j] = base
        Y[:, j + 1] = base & (rng.random(n) < 0.3)
    Y[:q] = np.eye(q)
    return Y


def _pair_count(Y, batches):
    """Co-occurrences within batches: sum over batches of the off-diagonal entries of Y_b^T Y_b."""
    total = 0
    for b in batches:
        c = Y[b].T @ Y[b]
        total += float(np.triu(c, 1).sum())
    return total


def test_chain_batches_have_more_co_occurring_pairs():
    Y = _correlated_labels()
    n = len(Y)
    losses = torch.rand(n, generator=torch.Generator().manual_seed(0))
    res = {}
    for name, cls in (("adaptive", AdaptiveBatchSampler), ("chain", ChainBatchSampler)):
        s = cls(Y, 32, warmup_epochs=0, seed=1)
        s.update(torch.arange(n), losses)
        batches = [b for _ in range(3) for b in s]
        res[name] = _pair_count(Y, batches)
    assert res["chain"] > 1.2 * res["adaptive"]


@pytest.mark.parametrize("make", SAMPLERS + [lambda Y, **kw: AdaptiveBatchSampler(Y, 16, refresh_every=3, **kw)])
def test_same_seed_same_batches_and_resume(make):
    Y = _labels()
    n = len(Y)
    losses = torch.rand(n, generator=torch.Generator().manual_seed(4))

    def train(s, epochs, stop_after=None):
        out = []
        for _ in range(epochs):
            for i, batch in enumerate(s):
                out.append(batch)
                idx = torch.tensor(batch)
                s.update(idx, losses[idx] * (1 + len(out) % 3))
                if stop_after is not None and len(out) == stop_after:
                    return out
        return out

    a = train(make(Y, warmup_epochs=1, seed=9), 4)
    b = train(make(Y, warmup_epochs=1, seed=9), 4)
    assert a == b
    assert a != train(make(Y, warmup_epochs=1, seed=10), 4)
    # state_dict taken mid-epoch (epoch 2, batch 5) and between epochs
    for stop in (len(a) // 4 * 2 + 5, len(a) // 2):
        s1 = make(Y, warmup_epochs=1, seed=9)
        first = train(s1, 4, stop_after=stop)
        state = s1.state_dict()
        s2 = make(Y, warmup_epochs=1, seed=0)
        s2.load_state_dict(state)
        rest = []
        for _ in range(4):
            for batch in s2:
                rest.append(batch)
                idx = torch.tensor(batch)
                s2.update(idx, losses[idx] * (1 + (len(first) + len(rest)) % 3))
            if len(first) + len(rest) >= len(a):
                break
        assert first + rest == a


def test_set_epoch_and_auto_advance():
    Y = _labels()
    s = AdaptiveBatchSampler(Y, 16, warmup_epochs=3)
    assert s.epoch == 0 and s.in_warmup
    list(s)
    assert s.epoch == 0
    list(s)
    assert s.epoch == 1
    s.set_epoch(5)
    assert s.epoch == 5 and not s.in_warmup
    list(s)
    assert s.epoch == 5
    list(s)
    assert s.epoch == 6
    p = s.probabilities()
    assert math.isclose(float(p.sum()), 1.0) and torch.allclose(p, torch.full_like(p, 1 / len(Y)))
    s.update(torch.arange(len(Y)), torch.arange(len(Y), dtype=torch.float64))
    p = s.probabilities()
    assert p[-1] > p[0] and math.isclose(float(p.sum()), 1.0)


def test_dataloader_integration():
    Y = _labels()
    X = torch.randn(len(Y), 5)
    for s in (RandomBatchSampler(len(Y), 16), AdaptiveBatchSampler(Y, 16, warmup_epochs=0),
              ChainBatchSampler(Y, 16, warmup_epochs=0)):
        loader = DataLoader(TensorDataset(X, torch.tensor(Y), torch.arange(len(Y))), batch_sampler=s)
        n_batches = 0
        for xb, yb, idx in loader:
            assert xb.shape[0] == yb.shape[0] == idx.shape[0]
            torch.testing.assert_close(xb, X[idx])
            s.update(idx, torch.rand(len(idx)))
            n_batches += 1
        assert n_batches == len(s)


def test_docstring_training_loop_runs():
    torch.manual_seed(0)
    Y_train = torch.tensor(_labels(200))
    X_train = torch.randn(200, 5)
    model = torch.nn.Linear(5, Y_train.shape[1])
    import torch.nn.functional as F
    sampler = AdaptiveBatchSampler(Y_train, batch_size=32, selection_pressure=2.0, features=X_train,
                                   warmup_epochs=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for idx in sampler:
            logits = model(X_train[idx])
            per_sample = F.binary_cross_entropy_with_logits(logits, Y_train[idx], reduction="none").mean(1)
            opt.zero_grad()
            per_sample.mean().backward()
            opt.step()
            sampler.update(idx, per_sample.detach())
    assert torch.all(sampler.loss_table > 0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=301), "larger than the 300 samples"),
    (dict(selection_pressure=1.0), "selection_pressure"),
    (dict(score="hard"), "score must be one of"),
    (dict(features=np.zeros((299, 2))), "features have 299 rows"),
    (dict(warmup_epochs=-1), "warmup_epochs"),
    (dict(refresh_every=0), "refresh_every"),
    (dict(k_neighbors=0), "k_neighbors"),
])
def test_sampler_bad_arguments(kwargs, match):
    Y = _labels()
    args = dict(batch_size=16)
    args.update(kwargs)
    bs = args.pop("batch_size")
    for cls in (AdaptiveBatchSampler, ChainBatchSampler):
        with pytest.raises(ValueError, match=match):
            cls(Y, bs, **args)


def test_sampler_bad_labels_and_chain_options():
    Y = _labels()
    with pytest.raises(ValueError, match="only 0 and 1"):
        AdaptiveBatchSampler(Y * 3, 16)
    with pytest.raises(ValueError, match="2-D"):
        AdaptiveBatchSampler(Y[:, 0], 16)
    with pytest.raises(ValueError, match="chain_length"):
        ChainBatchSampler(Y, 16, chain_length=0)
    with pytest.raises(ValueError, match="label_choice"):
        ChainBatchSampler(Y, 16, label_choice="max")
    with pytest.raises(ValueError, match="batch_size"):
        RandomBatchSampler(5, 6)


def test_update_validation():
    Y = _labels()
    s = AdaptiveBatchSampler(Y, 16)
    with pytest.raises(ValueError, match=r"NaN or infinite values at sample indices \[7, 9\]"):
        s.update(torch.tensor([3, 7, 9]), torch.tensor([0.1, float("nan"), float("inf")]))
    with pytest.raises(ValueError, match=r"non-negative.*\[9\]"):
        s.update([3, 9], [0.1, -1.0])
    with pytest.raises(ValueError, match=r"out of range \[0, 300\): \[300\]"):
        s.update([3, 300], [0.1, 0.2])
    with pytest.raises(ValueError, match="one value per index"):
        s.update([3, 4], [0.1])
    with pytest.raises(ValueError, match="integer sample indices"):
        s.update(torch.tensor([0.5, 1.0]), [0.1, 0.2])
    with pytest.raises(ValueError, match="does not match"):
        s.load_state_dict(AdaptiveBatchSampler(Y[:100], 16).state_dict())
    assert torch.all(s.loss_table == 0)          # nothing was written by the failed calls


def _seed_label(y, i) -> int:
    """The chain seed's label by the definition (docs/method.md, section 5): sample ``i``'s positive
    label with the largest IRLbl, that is the fewest positives (ties: the smaller index); -1: none."""
    counts = torch.as_tensor(y).sum(dim=0)
    pos = torch.as_tensor(y)[i].nonzero().reshape(-1)
    return int(pos[counts[pos].argmin()]) if pos.numel() else -1


def _chain_reference_batch(s, p, g):
    """One chain batch built step by step from the definition (docs/method.md section 5)."""
    y, a = s.labels, s.correlation.double()
    batch, current, visited, length = [], -1, set(), 0
    while len(batch) < s.batch_size:
        avail = torch.ones(s.n_samples, dtype=torch.bool)
        avail[batch] = False
        w = None
        if current >= 0 and length < s.chain_length:
            row = a[current].clone()
            row[list(visited)] = 0.0
            if float(row.max()) > 0:
                if s.label_choice == "argmax":
                    nxt = int(row.argmax())
                else:
                    nxt = int(torch.multinomial(row, 1, generator=g))
                w = p * (y[:, nxt] & avail)
                if float(w.sum()) > 0:
                    current, length = nxt, length + 1
                    visited.add(nxt)
                else:
                    w = None
        if w is None:                                   # a new seed
            w = p * avail
            current, length = -1, 1
        i = int(torch.multinomial(w, 1, generator=g))
        batch.append(i)
        if current < 0:
            current = _seed_label(y, i)
            visited = {current} if current >= 0 else set()
    return batch


@pytest.mark.parametrize("s_e,label_choice", [(2.0, "argmax"), (2.0, "sample"), (16.0, "argmax"), (16.0, "sample")])
def test_chain_positions_match_reference(s_e, label_choice):
    # per-position inclusion counts of the vectorised sampler against the step-by-step definition,
    # for the rejection draws (s_e = 2) and the inverse-CDF draws (s_e = 16)
    n, b = 40, 8
    Y = _labels(n)
    s = ChainBatchSampler(Y, b, chain_length=3, label_choice=label_choice, selection_pressure=s_e,
                          warmup_epochs=0, seed=4, score="loss")
    s.update(torch.arange(n), torch.linspace(0.0, 1.0, n) ** 2)
    p = s.probabilities()
    got = torch.zeros(b, n, dtype=torch.float64)
    nb = 0
    while nb < 2000:
        for batch in s:
            assert len(set(batch)) == b
            got[torch.arange(b), torch.tensor(batch)] += 1
            nb += 1
    assert s._engine.rejection == (s_e == 2.0)
    g = torch.Generator().manual_seed(9)
    ref = torch.zeros(b, n, dtype=torch.float64)
    for _ in range(nb):
        ref[torch.arange(b), torch.tensor(_chain_reference_batch(s, p, g))] += 1
    assert _two_sample_chi2(got.reshape(-1), ref.reshape(-1)) > 1e-4


# -- the machine-independent weights of the draws (docs/selection.md) -------------------------------
def test_step_weights_are_the_powers_of_the_selection_pressure():
    from mlabs.selection.probabilities import exact_log, step_weights
    for s_e, m in ((2.0, 1), (2.0, 1000), (16.0, 12_345), (1e4, 3)):
        j = torch.arange(m + 1, dtype=torch.float64)
        got = step_weights(j, exact_log(s_e), m)
        want = torch.tensor([math.exp(-math.log(s_e) * k / m) for k in range(m + 1)], dtype=torch.float64)
        assert got[0] == 1.0
        assert torch.allclose(got, want, rtol=1e-13, atol=0)
    # the quantized rule: level N weighs 1, level 0 weighs 1 / s_e
    w = score_weights_of([0.0, 1.0, 2.0, 4.0], 4.0)
    assert w.tolist() == pytest.approx([0.25, 4 ** -0.75, 4 ** -0.5, 1.0], rel=1e-15)


def score_weights_of(scores, s_e, quantize=True):
    from mlabs.selection.probabilities import exact_log, score_weights
    return score_weights(torch.tensor(scores, dtype=torch.float64), exact_log(s_e), quantize)


def test_exact_ranks_give_tied_scores_one_weight():
    w = score_weights_of([3.0, 1.0, 3.0, 0.0], 2.0, quantize=False)
    # descending ranks: the two 3.0 share rank 0.5, then 2, then 3 (of N = 4)
    assert w.tolist() == pytest.approx([2 ** -0.125, 2 ** -0.5, 2 ** -0.125, 2 ** -0.75], rel=1e-15)


def test_exact_sum_does_not_depend_on_the_order():
    from mlabs.selection.probabilities import exact_sum
    g = torch.Generator().manual_seed(0)
    w = torch.rand(100_003, generator=g, dtype=torch.float64) ** 3
    total = exact_sum(w)
    assert total == pytest.approx(math.fsum(w.tolist()), rel=1e-12)
    for seed in range(3):
        perm = torch.randperm(w.numel(), generator=torch.Generator().manual_seed(seed))
        assert exact_sum(w[perm]) == total
    assert exact_sum(torch.zeros(5, dtype=torch.float64)) == 0.0


@pytest.mark.parametrize("make", [
    lambda y: AdaptiveBatchSampler(y, 16, selection_pressure=4.0, warmup_epochs=0, seed=1, score="loss"),
    lambda y: AdaptiveBatchSampler(y, 16, selection_pressure=64.0, quantize=False, warmup_epochs=0, seed=1),
    lambda y: AdaptiveBatchSampler(y, 400, selection_pressure=2.0, warmup_epochs=0, seed=1),    # N < 20 B
    lambda y: ChainBatchSampler(y, 16, selection_pressure=2.0, warmup_epochs=0, seed=1),
    lambda y: ChainBatchSampler(y, 16, selection_pressure=16.0, label_choice="sample", warmup_epochs=0, seed=1),
], ids=["adaptive", "exact-ranks-cdf", "successive", "chain-rejection", "chain-cdf-sample"])
def test_the_draws_use_no_exp_or_log(monkeypatch, make):
    # exp and log of long tensors are the machine-dependent kernels (MKL's vector math), and
    # multinomial and randn draw through them: a refresh and its batches must not call them
    s = make(_labels(5000))
    s.update(torch.arange(5000), torch.rand(5000, generator=torch.Generator().manual_seed(1), dtype=torch.float64))

    def forbidden(*args, **kwargs):
        raise AssertionError("a machine-dependent kernel was called while drawing")

    for name in ("exp", "log", "exp_", "log_"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    for name in ("exp", "log", "multinomial", "randn"):
        monkeypatch.setattr(torch, name, forbidden)
    s.set_epoch(0)
    batches = list(s)
    assert len(batches) == len(s)


def test_successive_rounds_need_b_samples_with_a_weight():
    from mlabs.selection.drawing import BatchDrawer
    drawer = BatchDrawer(10, 4, torch.Generator().manual_seed(0), "cpu")
    w = torch.zeros(10, dtype=torch.float64)
    w[:3] = 1.0                                           # 3 < B = 4 samples can be drawn
    drawer.set_weights(w)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        drawer.batches(2)
    w[3] = 0.5
    drawer.set_weights(w)
    rows = drawer.batches(50)
    assert all(sorted(r) == [0, 1, 2, 3] for r in rows.tolist())
