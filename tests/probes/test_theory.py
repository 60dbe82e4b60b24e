"""Theory floors of the probe against brute-force numerical optimisation on tiny cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.probes import targets, theory
from rnnjax.probes.sweep import lbfgs_refine

LENGTH = 10


def _sampled_nmse(predictions, labels):
    return float(np.mean((predictions - labels) ** 2) / np.var(labels))


NON_CAUSAL = [lambda: targets.centred_sum(2), targets.reversal, lambda: targets.anticausal_filter(0.7, 8)]


@pytest.mark.parametrize("make", NON_CAUSAL)
@pytest.mark.parametrize("delay", [0, 1, 3])
def test_causal_floor_matches_least_squares_over_all_causal_linear_predictors(make, delay):
    target = make()
    xs, ys = targets.sample(target, jax.random.key(0), 6000, LENGTH, jnp.float64)
    test_xs, test_ys = targets.sample(target, jax.random.key(1), 6000, LENGTH, jnp.float64)
    xs, ys, test_xs, test_ys = (np.asarray(a)[..., 0] for a in (xs, ys, test_xs, test_ys))
    predictions = np.zeros_like(test_ys)
    for t in range(LENGTH):  # best linear map from the visible inputs x_0..x_{t+delay} to y_t, fitted per step
        visible = min(LENGTH, t + delay + 1)
        weights = np.linalg.lstsq(xs[:, :visible], ys[:, t], rcond=None)[0]
        predictions[:, t] = test_xs[:, :visible] @ weights
    floor = theory.causal_floor(target, LENGTH, delay)
    assert abs(_sampled_nmse(predictions, test_ys) - floor) < 0.02 + 0.05 * floor


def test_causal_floor_is_zero_for_causal_and_many_to_one_targets():
    assert theory.causal_floor(targets.delay(3), LENGTH) == 0.0
    assert theory.causal_floor(targets.as_many_to_one(targets.reversal()), LENGTH) == 0.0
    assert theory.causal_floor(targets.reversal(), LENGTH, delay=LENGTH - 1) == 0.0
    assert theory.causal_floor(targets.reversal(), LENGTH) == 0.5  # half of the outputs lie in the future


def test_kernel_nmse_matches_sampled_error():
    kernel, approximation = targets.bump_kernel(3, 1.0, LENGTH), 0.5 * targets.exponential_kernel(0.6, LENGTH)
    target = targets.kernel_target("bump", kernel)
    model = targets.kernel_target("model", approximation)
    xs, ys = targets.sample(target, jax.random.key(0), 8000, LENGTH, jnp.float64)
    sampled = _sampled_nmse(np.asarray(jax.vmap(model.fn)(xs)), np.asarray(ys))
    assert abs(sampled - theory.kernel_nmse(kernel, approximation, LENGTH)) < 0.03


def _brute_force_width(kernel, width, restarts=24, steps=300):
    """min over random restarts of L-BFGS on (A, B, C, D): kernel a(s) = C A^s B + D [s = 0]."""
    target = jnp.asarray(kernel)
    weights = jnp.arange(LENGTH, 0, -1.0)

    def loss(p):
        powers = jax.lax.scan(lambda v, _: (p["A"] @ v, v), p["B"], None, length=LENGTH)[1]  # [T, m]
        approximation = powers @ p["C"] + p["D"] * (jnp.arange(LENGTH) == 0)
        return jnp.sum(weights * (target - approximation) ** 2) / jnp.sum(weights * target**2)

    def fit(key):
        k_a, k_b, k_c = jax.random.split(key, 3)
        p = {
            "A": 0.5 * jax.random.normal(k_a, (width, width), jnp.float64) / np.sqrt(width),
            "B": jax.random.normal(k_b, (width,), jnp.float64),
            "C": jax.random.normal(k_c, (width,), jnp.float64),
            "D": jnp.zeros((), jnp.float64),
        }
        p, _ = lbfgs_refine(loss, p, steps)
        return loss(p)

    values = jax.jit(jax.vmap(fit))(jax.random.split(jax.random.key(0), restarts))
    return float(jnp.nanmin(values))


@pytest.mark.parametrize("width", [1, 2])
def test_width_bounds_bracket_the_brute_force_optimum(width):
    kernel = targets.bump_kernel(3, 1.0, LENGTH)
    lower, upper = theory.width_bounds(kernel, width, LENGTH)
    best = _brute_force_width(kernel, width)
    assert lower - 1e-9 <= best <= upper + 1e-6, (lower, best, upper)
    assert lower > 0.0  # a bump at lag 3 is not representable at width <= 2


def test_width_bounds_vanish_at_the_state_space_order():
    kernel = targets.oscillator_kernel([0.9, 0.7], [0.5, 1.5], 64)
    assert theory.width_bounds(kernel, 4, 32)[1] < 1e-12
    assert theory.width_bounds(kernel, 3, 32)[0] > 1e-6
    a, b, c = theory.era(kernel, 4)
    np.testing.assert_allclose(theory.realisation_kernel(a, b, c, 64), kernel, atol=1e-8)


def test_wiener_floor_matches_the_best_linear_filter():
    target = targets.wiener(targets.exponential_kernel(0.6, LENGTH))
    xs, ys = targets.sample(target, jax.random.key(0), 8000, LENGTH, jnp.float64)
    test_xs, test_ys = targets.sample(target, jax.random.key(1), 8000, LENGTH, jnp.float64)
    xs, ys, test_xs, test_ys = (np.asarray(a)[..., 0] for a in (xs, ys, test_xs, test_ys))
    fits = [np.linalg.lstsq(xs[:, : t + 1], ys[:, t], rcond=None)[0] for t in range(LENGTH)]
    predictions = np.stack([test_xs[:, : t + 1] @ fits[t] for t in range(LENGTH)], 1)
    floor = theory.wiener_floor(target, LENGTH)
    assert 0.05 < floor < 0.5
    assert abs(_sampled_nmse(predictions, test_ys) - floor) < 0.02


def test_linear_operator_rejects_nonlinear_targets():
    with pytest.raises(ValueError, match="not linear"):
        theory.linear_operator(targets.parity(), LENGTH)
