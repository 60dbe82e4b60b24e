"""rnnjax.training.stats: t-interval, t quantiles, Wilson, exact McNemar (against scipy.stats); block bootstrap."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from rnnjax.training import stats


@pytest.mark.parametrize("degrees_of_freedom", [1, 2, 4, 9, 30, 200])
@pytest.mark.parametrize("probability", [0.6, 0.9, 0.975, 0.995, 0.1])
def test_student_t_quantile_matches_scipy(probability, degrees_of_freedom):
    expected = scipy_stats.t.ppf(probability, degrees_of_freedom)
    assert stats.student_t_quantile(probability, degrees_of_freedom) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("value", [-3.0, -0.4, 0.0, 0.7, 2.5, 12.0])
def test_student_t_cdf_matches_scipy(value):
    assert stats.student_t_cdf(value, 5) == pytest.approx(scipy_stats.t.cdf(value, 5), abs=1e-12)


@pytest.mark.parametrize("a, b, x", [(0.5, 0.5, 0.3), (2.0, 5.0, 0.9), (15.0, 0.5, 0.97), (1.0, 1.0, 0.25)])
def test_regularized_beta_matches_scipy(a, b, x):
    from scipy import special

    assert stats.regularized_beta(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-10)


@pytest.mark.parametrize("values", [[0.981, 0.985, 0.978], [1.0, 2.0, 4.0, 8.0, 16.0], [0.5, 0.52]])
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_seed_summary_matches_scipy_t_interval(values, confidence):
    summary = stats.seed_summary(values, confidence)
    low, high = scipy_stats.t.interval(confidence, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert summary.mean == pytest.approx(np.mean(values))
    assert summary.standard_deviation == pytest.approx(np.std(values, ddof=1))
    assert (summary.low, summary.high) == pytest.approx((low, high), rel=1e-9)
    assert summary.as_dict()["count"] == len(values)


def test_seed_summary_of_equal_values_is_a_point_and_needs_two_seeds():
    summary = stats.seed_summary([0.99, 0.99, 0.99])
    assert (summary.low, summary.high) == pytest.approx((0.99, 0.99))
    with pytest.raises(ValueError, match="at least 2"):
        stats.seed_summary([0.99])


@pytest.mark.parametrize("hits, count", [(0, 10), (3, 10), (10, 10), (820, 1066), (1046, 1066), (365, 370)])
def test_wilson_interval_matches_scipy(hits, count):
    expected = scipy_stats.binomtest(hits, count).proportion_ci(0.95, method="wilson")
    assert stats.wilson_interval(hits, count) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_wilson_interval_rejects_bad_counts():
    with pytest.raises(ValueError, match="hits"):
        stats.wilson_interval(11, 10)
    with pytest.raises(TypeError, match="count"):
        stats.wilson_interval(1, True)


@pytest.mark.parametrize("only_first, only_second", [(0, 0), (1, 0), (31, 18), (5, 5), (40, 12), (0, 9), (200, 170)])
def test_mcnemar_exact_matches_scipy_binomial_test(only_first, only_second):
    discordant = only_first + only_second
    expected = 1.0 if discordant == 0 else scipy_stats.binomtest(only_first, discordant, 0.5).pvalue
    assert stats.mcnemar_exact(only_first, only_second) == pytest.approx(min(1.0, expected), rel=1e-9)


def test_mcnemar_from_predictions_counts_discordant_items():
    rng = np.random.default_rng(0)
    first, second = rng.random(300) < 0.8, rng.random(300) < 0.7
    comparison = stats.mcnemar_from_predictions(first, second)
    table = np.array([[np.sum(first & second), np.sum(first & ~second)], [np.sum(~first & second), 0]])
    assert (comparison.only_first, comparison.only_second) == (table[0, 1], table[1, 0])
    expected = scipy_stats.binomtest(int(table[0, 1]), int(table[0, 1] + table[1, 0])).pvalue
    assert comparison.p_value == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="second_right"):
        stats.mcnemar_from_predictions(first, second[:10])


def test_compare_with_baseline_counts_each_seed_against_the_same_items():
    labels_right = np.array([[1, 1, 1, 0, 1, 1], [1, 1, 0, 1, 1, 1]], bool)
    baseline = np.array([1, 0, 1, 1, 0, 1], bool)
    result = stats.compare_with_baseline(labels_right, baseline)
    assert result["accuracy"]["values"] == [5 / 6, 5 / 6] and result["baseline_accuracy"] == 4 / 6
    assert [(m["only_first"], m["only_second"]) for m in result["mcnemar_per_seed"]] == [(2, 1), (2, 1)]
    assert result["beats_baseline"] is False  # 2 vs 1 discordant items: p = 1
    assert stats.SeedSummary.from_dict(result["accuracy"]) == stats.seed_summary([5 / 6, 5 / 6])
    strong = stats.compare_with_baseline(np.ones((3, 40), bool), np.arange(40) % 4 != 0)  # 10 items only seeds get
    assert strong["beats_baseline"] and all(m["p_value"] < 0.01 for m in strong["mcnemar_per_seed"])
    with pytest.raises(ValueError, match="baseline_right"):
        stats.compare_with_baseline(labels_right, baseline[:5])


def _ar1(rng, size, phi):
    noise = rng.normal(size=size)
    series = np.empty(size)
    series[0] = noise[0]
    for t in range(1, size):
        series[t] = phi * series[t - 1] + noise[t]
    return series


def test_block_bootstrap_detects_a_shift_and_not_a_zero_mean():
    rng = np.random.default_rng(0)
    shifted = stats.block_bootstrap(rng.normal(-0.5, 1.0, 600), block=1, draws=4000)
    assert shifted["low"] < -0.5 < shifted["high"] < 0 and shifted["p_value"] < 0.001
    balanced = stats.block_bootstrap(np.tile([1.0, -1.0], 300), block=4, draws=4000)  # mean exactly 0
    assert balanced["low"] <= 0 <= balanced["high"] and balanced["p_value"] == 1.0


def test_block_bootstrap_is_shift_equivariant_and_rowwise():
    rng = np.random.default_rng(1)
    series = rng.normal(size=(2, 240))
    both = stats.block_bootstrap(series, block=12, draws=500, seed=3)
    for row in range(2):
        alone = stats.block_bootstrap(series[row], block=12, draws=500, seed=3)
        assert all(np.isclose(both[name][row], alone[name]) for name in ("mean", "low", "high", "p_value"))
    moved = stats.block_bootstrap(series[0] + 2.5, block=12, draws=500, seed=3)
    assert np.isclose(moved["low"], both["low"][0] + 2.5) and np.isclose(moved["high"], both["high"][0] + 2.5)


def test_blocks_widen_the_interval_of_a_correlated_series():
    """AR(1) with phi 0.9: the sd of the mean is ~4.4x the iid one; hourly resampling would hide that."""
    series = _ar1(np.random.default_rng(2), 2000, 0.9)
    width = {b: np.subtract(*[stats.block_bootstrap(series, b, draws=2000)[k] for k in ("high", "low")])
             for b in (1, 50)}  # fmt: skip
    assert width[50] > 2.5 * width[1]


@pytest.mark.parametrize("block", [0, 11])
def test_block_bootstrap_rejects_blocks_outside_the_series(block):
    with pytest.raises(ValueError, match="block"):
        stats.block_bootstrap(np.zeros(10), block)
