"""rnnjax.training.stats: t-interval, t quantiles, Wilson, exact McNemar (against scipy.stats); block bootstrap."""

import re

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
    assert comparison.count == 300 and comparison.as_dict()["count"] == 300
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


def test_seed_summary_text_shows_each_field_to_the_given_digits():
    summary = stats.seed_summary([1.0, 2.0, 4.0], confidence=0.9)
    pattern = r"(-?\d+\.\d+) \+- (\d+\.\d+) \((\d+)% CI (-?\d+\.\d+)-(\d+\.\d+), (\d+) seeds\)"
    for digits in (2, 4, 6):
        text = summary.text(digits) if digits != 4 else summary.text()  # 4: the default
        mean, deviation, percent, low, high, count = re.fullmatch(pattern, text).groups()
        assert all(len(number.split(".")[1]) == digits for number in (mean, deviation, low, high))
        shown = [float(number) for number in (mean, deviation, low, high)]
        assert shown == pytest.approx(
            [summary.mean, summary.standard_deviation, summary.low, summary.high], abs=0.51 * 10**-digits
        )
        assert (percent, count) == ("90", "3")
    assert "(95% CI" in stats.seed_summary([0.5, 0.52]).text()


def test_compare_with_baseline_counts_truthy_items_as_right_whatever_their_dtype():
    """Correctness given as ints (0 wrong, anything else right) gives the result of the booleans."""
    rng = np.random.default_rng(4)
    seeds, baseline = rng.integers(0, 4, (3, 50)), rng.integers(0, 3, 50) * 2
    expected = stats.compare_with_baseline(seeds != 0, baseline != 0)
    assert stats.compare_with_baseline(seeds, baseline) == expected
    assert stats.compare_with_baseline(seeds.tolist(), baseline.tolist()) == expected
    assert stats.mcnemar_from_predictions(seeds[0], baseline) == stats.mcnemar_from_predictions(
        seeds[0] != 0, baseline != 0
    )
    assert stats.mcnemar_from_predictions(baseline, seeds[1]) == stats.mcnemar_from_predictions(
        baseline != 0, seeds[1] != 0
    )


def test_compare_with_baseline_uses_its_confidence_everywhere_and_names_its_fields():
    rng = np.random.default_rng(5)
    seeds, baseline = rng.random((4, 60)) < 0.8, rng.random(60) < 0.7
    result = stats.compare_with_baseline(seeds, baseline, confidence=0.8)
    assert set(result) == {
        "accuracy",
        "wilson_per_seed",
        "baseline_accuracy",
        "baseline_wilson",
        "mcnemar_per_seed",
        "beats_baseline",
    }
    assert result["accuracy"] == stats.seed_summary(seeds.mean(1), 0.8).as_dict()
    assert result["wilson_per_seed"] == [stats.wilson_interval(int(row.sum()), 60, 0.8) for row in seeds]
    assert result["baseline_wilson"] == stats.wilson_interval(int(baseline.sum()), 60, 0.8)
    assert result["baseline_wilson"] != stats.wilson_interval(int(baseline.sum()), 60)  # 0.8 is not the default


def test_beating_the_baseline_needs_a_p_value_strictly_below_one_minus_the_confidence():
    baseline = np.array([0, 0, 0, 1, 1], bool)  # each seed alone right on 3 items: p = 2 / 2**3 = 0.25
    seeds = np.ones((2, 5), bool)
    assert [m["p_value"] for m in stats.compare_with_baseline(seeds, baseline)["mcnemar_per_seed"]] == [0.25, 0.25]
    assert stats.compare_with_baseline(seeds, baseline, confidence=0.7)["beats_baseline"] is True
    assert stats.compare_with_baseline(seeds, baseline, confidence=0.75)["beats_baseline"] is False  # p == 0.25


def test_shape_errors_name_the_argument_first():
    with pytest.raises(ValueError, match=r"^seed_right must be \[seeds, items\]; got shape \(5,\)"):
        stats.compare_with_baseline(np.ones(5, bool), np.ones(5, bool))
    with pytest.raises(ValueError, match=r"^baseline_right must have shape \[5\]; got \[4\]"):
        stats.compare_with_baseline(np.ones((2, 5), bool), np.ones(4, bool))
    with pytest.raises(ValueError, match=r"^second_right must have shape \[5\]; got \[4\]"):
        stats.mcnemar_from_predictions(np.ones(5, bool), np.ones(4, bool))


@pytest.mark.parametrize("call, error, message", [
    (lambda: stats.wilson_interval(-1, 10), ValueError, "hits must be >= 0; got -1"),
    (lambda: stats.wilson_interval(11, 10), ValueError, "hits must be <= 10; got 11"),
    (lambda: stats.wilson_interval(1.0, 10), TypeError, "hits must be an int"),
    (lambda: stats.wilson_interval(0, 0), ValueError, "count must be >= 1; got 0"),
    (lambda: stats.wilson_interval(1, 10, 1.0), ValueError, "confidence must be < 1; got 1.0"),
    (lambda: stats.wilson_interval(1, 10, -0.5), ValueError, "confidence must be >= 0.0; got -0.5"),
    (lambda: stats.seed_summary([1.0, 2.0], 1.5), ValueError, "confidence must be < 1; got 1.5"),
    (lambda: stats.seed_summary([1.0, 2.0], "0.9"), TypeError, "confidence must be a real number"),
    (lambda: stats.student_t_quantile(1.5, 3), ValueError, "probability must be <= 1.0; got 1.5"),
    (lambda: stats.student_t_quantile(-0.5, 3), ValueError, "probability must be >= 0.0; got -0.5"),
    (lambda: stats.student_t_quantile(1.0, 3), ValueError, "probability must lie strictly inside (0, 1); got 1.0"),
    (lambda: stats.student_t_quantile(0.0, 3), ValueError, "probability must lie strictly inside (0, 1); got 0.0"),
    (lambda: stats.student_t_quantile(0.9, 0), ValueError, "degrees_of_freedom must be > 0.0; got 0"),
    (lambda: stats.mcnemar_exact(-1, 3), ValueError, "only_first must be >= 0; got -1"),
    (lambda: stats.mcnemar_exact(3, -2), ValueError, "only_second must be >= 0; got -2"),
    (lambda: stats.block_bootstrap(np.zeros(10), 0), ValueError, "block must be >= 1; got 0"),
    (lambda: stats.block_bootstrap(np.zeros(10), 11), ValueError, "block must be <= 10; got 11"),
    (lambda: stats.block_bootstrap(np.zeros(10), 2, draws=0), ValueError, "draws must be >= 1; got 0"),
    (lambda: stats.block_bootstrap(np.zeros(10), 2, confidence=1.0), ValueError, "confidence must be < 1; got 1.0"),
])  # fmt: skip
def test_each_bad_argument_is_named_first_in_its_error(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert type(raised.value) is error and str(raised.value).startswith(message)


def test_argument_bounds_are_inclusive_where_documented():
    for count in (1, 7):  # hits 0 and hits == count are allowed, and mirror each other
        low, high = stats.wilson_interval(0, count)
        assert low == 0.0 and (1 - high, 1.0) == pytest.approx(stats.wilson_interval(count, count))
    assert stats.wilson_interval(5, 10, 0.0) == pytest.approx((0.5, 0.5))  # confidence 0: the point estimate
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.block_bootstrap(np.arange(10.0), 10, draws=1)["mean"] == 4.5  # one block of the whole series
