"""The 95% interval of a pooled NMSE against the spread of the estimate over many independent test sets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.probes.statistics import nmse_interval, over_seeds
from rnnjax.probes.training import nmse


def _test_set(key, sequences, length=16):
    """A fixed 'model' (a damped moving average) predicting a noisy target: the error varies between sequences."""
    k_x, k_noise = jax.random.split(key)
    xs = jax.random.normal(k_x, (sequences, length, 1), jnp.float64)
    targets = jnp.cumsum(xs, axis=1) * 0.5
    predictions = 0.8 * targets + 0.3 * jax.random.normal(k_noise, xs.shape, jnp.float64) * jnp.abs(xs)
    return predictions, targets


def test_interval_matches_the_spread_over_repeated_test_sets():
    keys = jax.random.split(jax.random.key(0), 400)
    estimates, lows, highs = jax.vmap(lambda k: jnp.stack(nmse_interval(*_test_set(k, 200))))(keys).T
    half_width = float(jnp.mean(highs - lows)) / 2
    spread = 1.959963984540054 * float(jnp.std(estimates))
    assert half_width == pytest.approx(spread, rel=0.15)
    truth = float(jnp.mean(estimates))  # the population value, up to 1/sqrt(400) of the spread
    coverage = float(jnp.mean((lows <= truth) & (truth <= highs)))
    assert 0.9 <= coverage <= 0.99


def test_interval_of_an_untrained_model_matches_the_spread():
    """NMSE near 1: the delta method's -R * spread term dominates (dropping it widens the interval ~8x)."""

    def untrained(key):
        predictions, targets = _test_set(key, 200)
        return jnp.stack(nmse_interval(predictions - 0.8 * targets, targets))

    estimates, lows, highs = jax.vmap(untrained)(jax.random.split(jax.random.key(2), 400)).T
    assert float(jnp.mean(estimates)) == pytest.approx(1.0, abs=0.1)
    half_width = float(jnp.mean(highs - lows)) / 2
    assert half_width == pytest.approx(1.959963984540054 * float(jnp.std(estimates)), rel=0.3)  # measured: +14%

def test_point_estimate_is_the_pooled_nmse_and_bounds_are_ordered():
    predictions, targets = _test_set(jax.random.key(1), 50)
    value, low, high = nmse_interval(predictions, targets)
    np.testing.assert_allclose(value, nmse(predictions, targets), rtol=1e-12)
    assert 0.0 <= low < value < high


def test_rejects_mismatched_shapes_and_single_sequences():
    with pytest.raises(ValueError, match="predictions, targets"):
        nmse_interval(jnp.zeros((4, 3)), jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="sequence >= 2"):
        nmse_interval(jnp.zeros((1, 3)), jnp.zeros((1, 3)))


@pytest.mark.parametrize("values, median, best, diverged", [
    ([0.3, 0.1, 0.2], 0.2, 0.1, 0),
    ([0.3, float("nan"), 0.1], 0.3, 0.1, 1),  # the diverged seed counts as the worst, it does not drop out
    ([0.1, float("inf"), float("nan")], float("inf"), 0.1, 2),
    ([0.1, 0.3, float("nan"), 0.2], 0.25, 0.1, 1),
    ([0.1, float("nan")], float("inf"), 0.1, 1),
    ([float("nan"), float("-inf")], float("inf"), float("nan"), 2),
    ([0.5, None], 0.5, 0.5, 0),
])  # fmt: skip
def test_over_seeds_ranks_diverged_seeds_worst_and_counts_them(values, median, best, diverged):
    summary = over_seeds(values)
    assert summary.median == pytest.approx(median, nan_ok=True) and summary.diverged == diverged
    assert summary.best == pytest.approx(best, nan_ok=True)
    assert summary.seeds == sum(v is not None for v in values)
    assert (f"{diverged} of {summary.seeds} seeds diverged" in summary.note()) == (diverged > 0)


def test_over_seeds_equals_the_plain_median_without_divergence():
    values = np.random.default_rng(0).uniform(size=(20, 7))
    for row in values:
        assert over_seeds(row).median == pytest.approx(float(np.median(row)))
        assert over_seeds(row[:4]).median == pytest.approx(float(np.median(row[:4])))
    assert over_seeds([]).seeds == 0 and np.isnan(over_seeds([]).median)
