"""Known-answer tests of the report's statistics (docs/statistics.md).

Worked example of Demšar (2006, Table 6: AUC of four C4.5 variants on 14 data sets), hand
computations of Holm's correction and of the Nadeau-Bengio statistic, baycomp's own tests as the
reference of the Bayesian ones, and simulated studies with a known effect or none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlabs import report
from mlabs.report.statistics import _wilcoxon, bayes_signed_rank, critical_difference

# Demšar (2006), Table 6: rows = data sets, columns = C4.5, C4.5+m, C4.5+cf, C4.5+m+cf
DEMSAR_AUC = np.array([
    [0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
    [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
    [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
    [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
    [0.972, 0.981, 0.97501, 0.975], [0.957, 0.978, 0.946, 0.970]])
# The table prints 3 decimals; the paper's average ranks (2.893 and 1.964) imply that C4.5+cf is
# ahead of C4.5+m+cf on 'voting', where the printed values tie: 0.97501 restores that order.
DEMSAR_METHODS = ["c45", "c45_m", "c45_cf", "c45_m_cf"]


def frame(values: dict, metric: str = "macro_auc") -> pd.DataFrame:
    """A result frame: ``values[(dataset, model, method)]`` is the list of fold values."""
    rows = [{"dataset": ds, "model": model, "method": method, "fold": f, "seed": 0, "status": "ok",
             "selection_pressure": 2.0, "batch_size": 16, metric: v}
            for (ds, model, method), vals in values.items() for f, v in enumerate(vals)]
    return pd.DataFrame(rows)


# --- Friedman / Nemenyi: Demšar's worked example ---------------------------------------------------

def test_friedman_reproduces_demsar_worked_example():
    results = frame({(f"d{i}", "m", method): [DEMSAR_AUC[i, j]] for i in range(14)
                     for j, method in enumerate(DEMSAR_METHODS)})
    fr = report.friedman_nemenyi(results, "macro_auc", DEMSAR_METHODS)
    # the paper's average ranks (1 = best AUC)
    assert fr.ranks.round(3).tolist() == [3.143, 2.0, 2.893, 1.964]
    # its chi2_F = 9.28 is the formula without the tie correction; scipy's statistic corrects for
    # the tied ranks (mushroom: all four equal), so it is at least as large
    k, n = 4, 14
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(fr.ranks.to_numpy() ** 2) - k * (k + 1) ** 2 / 4)
    assert chi2 == pytest.approx(9.28, abs=0.005)
    assert fr.statistic == pytest.approx(stats.friedmanchisquare(*DEMSAR_AUC.T).statistic)
    assert fr.statistic >= chi2 and fr.p_chi2 < 0.05
    # Iman-Davenport: the paper's F_F = 3.69 from its chi2 = 9.28; here from the tie-corrected chi2
    assert (13 * chi2 / (14 * 3 - chi2)) == pytest.approx(3.69, abs=0.005)
    assert fr.f_statistic == pytest.approx(13 * fr.statistic / (14 * 3 - fr.statistic))
    assert fr.p_value == pytest.approx(stats.f.sf(fr.f_statistic, 3, 39)) and fr.p_value < fr.p_chi2 < 0.05
    # the values docs/statistics.md quotes for the code
    assert (round(fr.statistic, 2), round(fr.f_statistic, 2), round(fr.p_value, 3)) == (10.23, 4.19, 0.012)
    # Nemenyi critical difference: q_0.05 = 2.569 for 4 classifiers, CD = 1.25 for 14 data sets
    assert fr.cd == pytest.approx(1.25, abs=0.005)
    # the pairwise Nemenyi p-values (the diagram's crossbars) from the studentized range of the
    # rank differences, each below 0.05 exactly where the difference exceeds CD (here: none, the
    # largest is c45 vs c45_m_cf, 1.18 < 1.25, p = 0.074)
    ranks = fr.ranks.to_numpy()
    diff = np.abs(ranks[:, None] - ranks[None, :])
    expected = stats.studentized_range.sf(diff / np.sqrt(4 * 5 / (6 * 14)) * np.sqrt(2), 4, np.inf)
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(fr.nemenyi.loc[DEMSAR_METHODS, DEMSAR_METHODS].to_numpy(), expected, atol=1e-6)
    assert ((expected < 0.05) == (diff > fr.cd)).all() and fr.nemenyi.loc["c45", "c45_m_cf"] == pytest.approx(0.074, abs=5e-4)
    assert critical_difference(4, 14) == pytest.approx(2.569 * np.sqrt(4 * 5 / (6 * 14)), abs=1e-3)
    # the paper's conclusion: C4.5+m+cf (rank 1.964) differs from C4.5 (3.143), 1.18 < CD: not
    # significant by Nemenyi at 0.05, as the paper says
    assert fr.ranks["c45"] - fr.ranks["c45_m_cf"] < fr.cd


def test_no_post_hoc_test_unless_the_friedman_test_rejects():
    rng = np.random.default_rng(0)
    values = 0.6 + 0.01 * rng.standard_normal((8, 3))  # no method effect
    results = frame({(f"d{i}", "m", method): [values[i, j]] for i in range(8)
                     for j, method in enumerate(["a", "b", "c"])})
    fr = report.friedman_nemenyi(results, "macro_auc", ["a", "b", "c"])
    assert fr.p_value >= 0.05 and fr.nemenyi is None and np.isnan(fr.cd)
    assert "does not reject" in fr.note and len(fr.ranks) == 3
    # perfect agreement over 8 data sets: F_F is infinite, the exact p is (1/3!)^7, and the
    # post-hoc test runs; with 4 methods on 8 data sets (24^7 arrangements) the p-value is F_F's
    results = frame({(f"d{i}", "m", method): [0.5 + 0.1 * j] for i in range(8) for j, method in enumerate("abc")})
    fr = report.friedman_nemenyi(results, "macro_auc", ["a", "b", "c"])
    assert fr.f_statistic == np.inf and fr.exact and fr.p_value == pytest.approx(6.0 ** -7)
    assert fr.nemenyi is not None
    # two data sets ranking three methods alike (docs/statistics.md): exact 1/6, where the chi-square
    # approximation would give 0.14 and F_F is infinite
    results = frame({(f"d{i}", "m", method): [0.5 + 0.1 * j] for i in range(2) for j, method in enumerate("abc")})
    fr = report.friedman_nemenyi(results, "macro_auc", ["a", "b", "c"])
    assert fr.exact and fr.f_statistic == np.inf and fr.p_value == pytest.approx(1 / 6)
    assert stats.chi2.sf(4.0, 2) == pytest.approx(0.135, abs=0.001)
    values = 0.6 + 0.01 * rng.standard_normal((8, 4)) + 0.01 * np.arange(4)
    results = frame({(f"d{i}", "m", method): [values[i, j]] for i in range(8) for j, method in enumerate("abcd")})
    fr = report.friedman_nemenyi(results, "macro_auc", list("abcd"))
    assert not fr.exact and fr.p_value == pytest.approx(stats.f.sf(fr.f_statistic, 3, 21))


def test_friedman_blocks_compare_the_methods_on_the_same_runs():
    # method c lacks fold 2 on d0 (a failed run): d0's block uses folds 0 and 1 for every method
    values = {(f"d{i}", "m", method): [0.5 + 0.01 * j + 0.1 * f for f in range(3)]
              for i in range(3) for j, method in enumerate("abc")}
    values[("d0", "m", "c")] = values[("d0", "m", "c")][:2]
    fr = report.friedman_nemenyi(frame(values), "macro_auc", list("abc"))
    assert fr.blocks.loc["d0"].tolist() == pytest.approx([0.55, 0.56, 0.57])
    assert fr.blocks.loc["d1"].tolist() == pytest.approx([0.6, 0.61, 0.62])


def test_friedman_with_fewer_than_two_data_sets_says_not_computed():
    results = frame({("d0", "m", method): [0.5 + 0.1 * j] for j, method in enumerate(DEMSAR_METHODS)})
    fr = report.friedman_nemenyi(results, "macro_auc", DEMSAR_METHODS)
    assert np.isnan(fr.p_value) and fr.note.startswith("n = 1 data set: not computed")


# --- Holm --------------------------------------------------------------------------------------------

def test_holm_against_hand_example_and_statsmodels():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, max(1 x 0.04, 0.06)
    p = [0.01, 0.04, 0.03, 0.005]
    assert report.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # NaN (a test not computed) is not in the family
    assert np.isnan(report.holm([0.01, np.nan, 0.04])[1])
    assert report.holm([0.01, np.nan, 0.04])[[0, 2]] == pytest.approx([0.02, 0.04])
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=8)
        assert report.holm(p) == pytest.approx(multipletests(p, method="holm")[1])


def test_add_holm_groups_families_and_names_them():
    table = pd.DataFrame({"metric": ["macro_auc", "macro_f1", "epochs_to_95", "macro_auc"],
                          "method": ["adaptive", "adaptive", "adaptive", "chain"], "baseline": "random",
                          "p_value": [0.01, 0.02, 0.04, 0.01]})
    out = report.add_holm(table, ["method"], scope=lambda r: "across 14 data sets")
    assert out["p_holm"].tolist() == pytest.approx([0.03, 0.04, 0.04, 0.01])
    assert out["family"].iloc[0] == ("Holm over 2 metrics + 1 convergence measure for adaptive vs random, "
                                     "across 14 data sets")


# --- Nadeau-Bengio and the Bayesian correlated t-test -------------------------------------------------

def test_protocol_ratio_and_the_prepared_folds():
    # train on 4 of 5 folds, test on half the fifth: (n/10) / (4n/5) = 1/8
    assert report.protocol_test_train_ratio(5) == 0.125
    fold = np.repeat(np.arange(5), 20)
    part = np.tile(np.r_[np.zeros(10, int), np.ones(10, int)], 5)
    assert report.prepared_test_train_ratio(fold, part) == pytest.approx(10 / 80)
    with pytest.raises(ValueError, match="n_folds"):
        report.protocol_test_train_ratio(1)


def test_corrected_ttest_against_hand_computation():
    gain = [0.01, 0.02, 0.03, 0.04, 0.05]
    # mean 0.03, s^2 = 0.00025, corrected variance (1/5 + 1/8) s^2 = 8.125e-5, t = 0.03 / 0.0090139
    t, p, var = report.corrected_ttest(gain, 0.125)
    assert var == pytest.approx(8.125e-5)
    assert t == pytest.approx(3.32820, abs=1e-5)
    assert p == pytest.approx(2 * stats.t.sf(3.32820, 4), rel=1e-4)
    # uncorrected (ratio 0) is the paired t-test
    assert report.corrected_ttest(gain, 0.0)[1] == pytest.approx(stats.ttest_1samp(gain, 0).pvalue)
    assert np.isnan(report.corrected_ttest([0.1], 0.125)[1])
    # equal differences: no variance; the limit of the test (and the Bayesian test's conclusion)
    assert report.corrected_ttest([0.1, 0.1, 0.1], 0.125)[:2] == (np.inf, 0.0)
    assert report.corrected_ttest([-0.1, -0.1], 0.125)[:2] == (-np.inf, 0.0)
    assert report.corrected_ttest([0.0, 0.0, 0.0], 0.125)[:2] == (0.0, 1.0)


def test_correlated_bayes_is_baycomps_correlated_ttest():
    from baycomp import CorrelatedTTest

    rng = np.random.default_rng(1)
    for shift in (-0.01, 0.0, 0.004, 0.02):
        base = rng.uniform(0.6, 0.8, 10)
        method = base + shift + 0.005 * rng.standard_normal(10)
        # baycomp assumes plain 10-fold CV: n_test / n_train = 1 / 9
        worse, equivalent, better = CorrelatedTTest.probs(base, method, rope=0.005)
        ours = report.correlated_bayes(method - base, 1 / 9, 0.005)
        assert ours == pytest.approx((better, equivalent, worse))
        assert sum(ours) == pytest.approx(1.0)


def test_correlated_bayes_moves_the_right_way():
    rng = np.random.default_rng(2)
    noise = 0.002 * rng.standard_normal(5)
    probs = [report.correlated_bayes(mu + noise, 0.125, 0.005) for mu in (-0.03, -0.01, 0.0, 0.01, 0.03)]
    better = [p[0] for p in probs]
    assert better == sorted(better) and better[-1] > 0.95 and probs[0][2] > 0.95
    assert probs[2][1] > 0.95  # differences of about 0.001 inside a 0.005 rope: practically equivalent


def test_corrected_ttest_has_its_level_on_correlated_folds_and_the_naive_test_does_not():
    # 5 folds whose differences share a component: correlation rho = ratio / (1 + ratio) = 1/9, the
    # correlation Nadeau & Bengio's correction assumes; no effect. The corrected test rejects at its
    # nominal 5 %; the ordinary paired t-test rejects too often.
    rng = np.random.default_rng(3)
    ratio = 0.125
    rho = ratio / (1 + ratio)
    sims = 4000
    d = np.sqrt(rho) * rng.standard_normal((sims, 1)) + np.sqrt(1 - rho) * rng.standard_normal((sims, 5))
    corrected = np.mean([report.corrected_ttest(row, ratio)[1] < 0.05 for row in d])
    naive = np.mean([report.corrected_ttest(row, 0.0)[1] < 0.05 for row in d])
    assert abs(corrected - 0.05) < 0.015
    assert naive > corrected + 0.02
    # a large effect is found
    big = 1.0 + 0.1 * rng.standard_normal(5)
    assert report.corrected_ttest(big, ratio)[1] < 0.001


# --- across data sets: Wilcoxon and the Bayesian signed-rank test --------------------------------------

def test_wilcoxon_over_data_sets_level_and_power():
    rng = np.random.default_rng(4)
    rejections = 0
    for _ in range(1000):
        x = rng.standard_normal(14)
        rejections += _wilcoxon(x, np.zeros(14))[1] < 0.05
    assert rejections / 1000 <= 0.05 + 0.015
    # better on all 14 data sets: the exact two-sided p is 2 / 2^14
    p = _wilcoxon(0.02 + 0.01 * rng.random(14), np.zeros(14))[1]
    assert p == pytest.approx(2 / 2 ** 14)


def test_bayes_signed_rank_is_baycomps_and_moves_the_right_way():
    from baycomp import SignedRankTest

    rng = np.random.default_rng(5)
    base = rng.uniform(0.6, 0.9, 14)
    for shift in (-0.02, 0.0, 0.003, 0.01, 0.03):
        method = base + shift + 0.005 * rng.standard_normal(14)
        worse, equivalent, better = SignedRankTest.probs(base, method, rope=0.005, random_state=0)
        ours = bayes_signed_rank(method, base, "macro_auc")
        assert ours == pytest.approx((better, equivalent, worse))
        assert sum(ours) == pytest.approx(1.0)
        # a lower-is-better metric: the same numbers negated give the same verdict
        assert bayes_signed_rank(-method, -base, "hamming_loss") == pytest.approx(ours)
    assert bayes_signed_rank(base + 0.03, base, "macro_auc")[0] > 0.95
    assert bayes_signed_rank(base - 0.03, base, "macro_auc")[2] > 0.95
    assert bayes_signed_rank(base + 0.001, base, "macro_auc")[1] > 0.95
    assert report.bayes_verdict(pd.Series({"p_better": 0.01, "p_equivalent": 0.97, "p_worse": 0.02})) \
        == "practically equivalent"
    assert report.bayes_verdict(pd.Series({"p_better": 0.6, "p_equivalent": 0.3, "p_worse": 0.1})) == "undecided"


# --- verdicts: unit and n -----------------------------------------------------------------------------

def _two_methods(datasets, folds=5, gain=0.02, models=("m1", "m2"), seed=0):
    rng = np.random.default_rng(seed)
    values = {}
    for i, ds in enumerate(datasets):
        for model in models:
            base = 0.6 + 0.02 * i + 0.01 * rng.standard_normal(folds)
            values[(ds, model, "random")] = list(base)
            values[(ds, model, "adaptive")] = list(base + gain + 0.004 * rng.standard_normal(folds))
    return frame(values)


def test_verdicts_across_fourteen_data_sets_name_unit_and_n():
    results = _two_methods([f"d{i}" for i in range(14)])
    table = report.verdict_table(results, ["random", "adaptive"], metrics=["macro_auc"])
    row = table.iloc[0]
    assert row["level"] == "across data sets" and row["n"] == 14
    assert row["unit"] == "14 data sets (mean of 5 folds and 2 models)"
    assert row["verdict"] == "better" and row["bayes_verdict"] == "better"
    assert row["effect"] == pytest.approx(1.0) and row["p_value"] == pytest.approx(2 / 2 ** 14)
    assert row["effect_measure"] == "rank-biserial r"   # the column that names the kind of ``effect``
    assert row["family"] == "Holm over 1 metric for adaptive vs random, across data sets, pooled over models, " \
                            "over 14 data sets (mean of 5 folds and 2 models)"


def test_verdicts_rest_on_the_holm_adjusted_p_value():
    # six data sets, adaptive ahead on every one on two metrics: each Wilcoxon p = 2 / 2^6 = 0.031,
    # significant alone, but Holm over the family of two gives 0.0625 for both: no verdict
    results = _two_methods([f"d{i}" for i in range(6)])
    results["macro_f1"] = results["macro_auc"] - 0.3
    table = report.verdict_table(results, ["random", "adaptive"], metrics=["macro_auc", "macro_f1"])
    assert table["p_value"].tolist() == pytest.approx([2 / 2 ** 6] * 2)
    assert table["p_holm"].tolist() == pytest.approx([4 / 2 ** 6] * 2)
    assert (table["verdict"] == "no significant difference").all()
    alone = report.verdict_table(results, ["random", "adaptive"], metrics=["macro_auc"])
    assert alone["p_holm"].tolist() == pytest.approx([2 / 2 ** 6]) and alone["verdict"].tolist() == ["better"]


def test_verdicts_within_one_data_set_use_the_correlated_tests():
    results = _two_methods(["emotions"])
    table = report.verdict_table(results, ["random", "adaptive"], metrics=["macro_auc"])
    row = table.iloc[0]
    assert row["level"] == "within data set" and row["n"] == 5
    assert row["unit"] == "5 folds of emotions (mean of 2 models)"
    within = report.within_dataset_table(results, "macro_auc", "random", ["random", "adaptive"])
    pooled = within[within["model"] == report.POOLED].iloc[0]
    r = results.pivot_table(index=["fold", "model"], columns="method", values="macro_auc")
    gain = (r["adaptive"] - r["random"]).groupby("fold").mean().to_numpy()
    assert pooled["t"] == pytest.approx(report.corrected_ttest(gain, 0.125)[0])
    assert row["p_value"] == pytest.approx(pooled["p_value"]) and row["verdict"] == "better"
    assert len(within) == 3  # m1, m2, pooled


def test_seeds_of_one_fold_are_one_resample_in_the_within_data_set_test():
    # two seeds on the same 5 folds: they share training and test data, so the test runs over the
    # 5 folds (each the mean of its seeds), not over 10 runs as if they were independent resamples
    rng = np.random.default_rng(3)
    rows = []
    for fold in range(5):
        for seed in (0, 1):
            for method, shift in (("random", 0.0), ("adaptive", 0.01)):
                rows.append({"dataset": "ds", "model": "m", "method": method, "fold": fold, "seed": seed,
                             "status": "ok", "selection_pressure": 2.0, "batch_size": 16,
                             "macro_auc": 0.6 + shift + 0.01 * rng.standard_normal()})
    results = pd.DataFrame(rows)
    within = report.within_dataset_table(results, "macro_auc", "random", ["random", "adaptive"])
    pooled = within[within["model"] == report.POOLED].iloc[0]
    r = results.pivot_table(index=["fold", "seed"], columns="method", values="macro_auc")
    gain = (r["adaptive"] - r["random"]).groupby(level="fold").mean().to_numpy()
    assert pooled["n"] == 5 and pooled["unit"] == "5 folds of ds (mean of 2 seeds)"
    assert pooled["t"] == pytest.approx(report.corrected_ttest(gain, 0.125)[0])
    # across data sets the unit names folds and seeds apart
    from mlabs.report.statistics import unit_text

    assert unit_text(3, [5], [2], [2]) == "3 data sets (mean of 5 folds, 2 seeds and 2 models)"
    assert unit_text(3, [5], [1], [1]) == "3 data sets (mean of 5 folds and 1 model)"


def test_spearman_p_is_exact_for_few_data_sets():
    from itertools import permutations

    from mlabs.report.characteristics import spearman

    # n = 4, a perfect rank agreement: 2 of the 4! pairings reach |rho| = 1 (scipy's t approximation: ~0)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == (pytest.approx(1.0), pytest.approx(2 / 24))
    assert stats.spearmanr([1, 2, 3, 4], [10, 20, 30, 40]).pvalue < 1e-6
    # against a brute-force count with a tie, n = 6
    x, y = np.array([3.0, 1, 4, 1, 5, 9]), np.array([2.0, 7, 1, 8, 2, 8])
    rho = stats.spearmanr(x, y).statistic
    perms = [stats.spearmanr(x, y[list(p)]).statistic for p in permutations(range(6))]
    assert spearman(x, y)[1] == pytest.approx(np.mean(np.abs(perms) >= abs(rho) - 1e-12))
    # beyond EXACT_SPEARMAN_MAX: scipy's t approximation
    x = np.arange(12.0)
    y = np.array([1.0, 0, 3, 2, 5, 4, 7, 6, 11, 8, 10, 9])
    assert spearman(x, y)[1] == pytest.approx(stats.spearmanr(x, y).pvalue)


# --- the paper's claim: characteristics ----------------------------------------------------------------

def test_label_correlation_strength_hand_example_and_chain_matrix():
    from mlabs.selection.imbalance import label_correlation

    Y = np.array([[1, 1], [1, 0], [1, 0], [0, 1]])
    assert report.label_correlation_strength(Y) == pytest.approx((1 / 3 + 1 / 2) / 2)
    Y = (np.random.default_rng(6).random((200, 6)) < 0.3).astype(int)
    A = label_correlation(Y).numpy()
    assert report.label_correlation_strength(Y) == pytest.approx(A.sum() / (6 * 5))
    # per fold on the training labels only (every other fold), then the mean over folds: the
    # whole-data value (checked by hand above) of each training part; held-out labels would differ
    fold = np.arange(200) % 5
    training = np.mean([report.label_correlation_strength(Y[fold != f]) for f in range(5)])
    held_out = np.mean([report.label_correlation_strength(Y[fold == f]) for f in range(5)])
    assert report.label_correlation_strength(Y, fold) == pytest.approx(training)
    assert abs(training - held_out) > 1e-3
    # a hand example with three folds: training parts {1, 2}, {0, 2}, {0, 1}
    Y = np.array([[1, 1], [1, 0], [1, 0], [0, 1], [1, 1], [0, 1]])
    fold = np.array([0, 0, 1, 1, 2, 2])
    # without fold 0 (rows 2-5): n = (2, 3), C_01 = 1: (1/2 + 1/3) / 2; without fold 1 (rows 0, 1,
    # 4, 5): n = (3, 3), C_01 = 2: 2/3; without fold 2 (rows 0-3): n = (3, 2), C_01 = 1: (1/3 + 1/2) / 2
    assert report.label_correlation_strength(Y, fold) == pytest.approx((5 / 12 + 2 / 3 + 5 / 12) / 3)


def test_characteristic_correlations_rank_and_holm():
    chars = pd.DataFrame({"mean_ir": [1, 2, 3, 4, 5, 6], "labels": [6, 20, 10, 50, 30, 100],
                          "cardinality": [1.2, 3, 2, 1.5, 4, 2.5], "label_correlation": [0.1] * 6},
                         index=pd.Index([f"d{i}" for i in range(6)], name="dataset"))
    diffs = pd.DataFrame({"dataset": list(chars.index) * 2, "method": ["adaptive"] * 6 + ["chain"] * 6,
                          "outcome": "macro_auc", "diff": [0.001, 0.002, 0.004, 0.008, 0.016, 0.032] * 2})
    corr = report.characteristic_correlations(diffs, chars)
    # adaptive: 3 characteristics; chain: 4 (label correlation constant here: not computed)
    assert len(corr) == 7
    row = corr[(corr["method"] == "adaptive") & (corr["characteristic"] == "mean_ir")].iloc[0]
    assert row["rho"] == pytest.approx(1.0) and row["n"] == 6
    computed = corr["p_value"].notna()
    assert computed.sum() == 6 and corr.loc[computed, "p_holm"].tolist() == pytest.approx(
        report.holm(corr.loc[computed, "p_value"]).tolist())
    assert corr["family"].iloc[0] == "Holm over the 6 Spearman correlations computed"
    assert "constant" in corr[corr["characteristic"] == "label_correlation"]["note"].iloc[0]
    fig = report.plot_characteristics(diffs, chars, corr)
    # 2 rows (adaptive, chain) x 4 columns; adaptive has no label-correlation panel
    assert len([ax for ax in fig.axes if ax.axison]) == 7


def test_characteristics_with_fewer_than_four_data_sets_are_not_computed():
    chars = pd.DataFrame({"mean_ir": [1.0, 2.0, 3.0], "labels": [6, 20, 10], "cardinality": [1.0, 2.0, 3.0],
                          "label_correlation": [0.1, 0.2, 0.3]}, index=pd.Index(["a", "b", "c"], name="dataset"))
    diffs = pd.DataFrame({"dataset": ["a", "b", "c"], "method": "adaptive", "outcome": "macro_auc",
                          "diff": [0.0, 0.1, 0.2]})
    corr = report.characteristic_correlations(diffs, chars)
    assert corr["rho"].isna().all() and (corr["note"] == "n = 3 data sets (< 4): not computed").all()
    fig = report.plot_characteristics(diffs, chars, corr)
    assert "Not computed: n = 3 data sets" in " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_dataset_characteristics_reads_the_prepared_statistics_and_training_labels(tmp_path):
    import json

    (tmp_path / "a.json").write_text(json.dumps({"name": "a", "MeanIR": 9.0, "MeanIR'": 2.5, "q'": 6,
                                                 "cardinality'": 1.9}))
    (tmp_path / "b.json").write_text(json.dumps({"name": "b", "MeanIR'": 4.0, "q'": 20, "cardinality'": 3.0}))
    Y = np.array([[1, 1], [1, 0], [1, 0], [0, 1]] * 5)
    fold = np.arange(20) % 5
    chars = report.dataset_characteristics(tmp_path, ["b", "a"], labels={"a": (Y, fold)})
    assert list(chars.index) == ["a", "b"]
    # after preprocessing (the primed keys), not the raw MeanIR
    assert chars.loc["a", ["mean_ir", "labels", "cardinality"]].tolist() == [2.5, 6.0, 1.9]
    assert chars.loc["a", "label_correlation"] == pytest.approx(report.label_correlation_strength(Y, fold))
    assert np.isnan(chars.loc["b", "label_correlation"])  # no prepared labels given


def test_equal_gains_are_constant_not_ranked_by_float_noise():
    # chain is 0.01 worse on every data set: the differences are equal up to float noise
    values = {}
    for i in range(5):
        for method, shift in (("random", 0.0), ("chain", -0.01)):
            values[(f"d{i}", "m", method)] = [0.6 + 0.037 * i + 0.011 * f + shift for f in range(3)]
    diffs = report.dataset_differences(frame(values), ["random", "chain"], outcomes=["macro_auc"])
    chars = pd.DataFrame({"mean_ir": np.arange(5.0), "labels": np.arange(5.0), "cardinality": np.arange(5.0),
                          "label_correlation": np.arange(5.0)}, index=pd.Index(diffs["dataset"], name="dataset"))
    corr = report.characteristic_correlations(diffs, chars)
    assert corr["rho"].isna().all() and (corr["note"] == "constant values: not computed").all()


def test_the_bayesian_signed_rank_prior_decides_with_few_data_sets():
    # why MIN_DATASETS_BAYES is 6: with two data sets the prior's one pseudo-observation is all
    # that stands against a verdict
    assert bayes_signed_rank([0.05, 0.06], [0.0, 0.0], "macro_auc")[0] == pytest.approx(0.964, abs=0.005)
    assert bayes_signed_rank([0.001, 0.002], [0.0, 0.0], "macro_auc")[1] == 1.0
