"""The 95% interval of a pooled NMSE against the spread of the estimate over many independent test sets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.probes.statistics import nmse_interval
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
