"""Theory floors of the probe against brute-force numerical optimisation on tiny cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.probes import targets, theory
from rnnjax.probes.training import lbfgs_refine

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


# --------------------------------------------------------------------------- time-invariant (Toeplitz) floors


def _toeplitz_features(xs, lags):
    """[batch, T, len(lags)]: column l holds x_{t - l} (zero outside 0..T-1)."""
    length = xs.shape[1]
    columns = []
    for lag in lags:
        shifted = np.zeros_like(xs)
        if lag >= 0:
            shifted[:, lag:] = xs[:, : length - lag]
        else:
            shifted[:, : length + lag] = xs[:, -lag:]
        columns.append(shifted)
    return np.stack(columns, -1)


def _sampled_time_invariant_nmse(target, delay, samples=4000):
    """Least squares over ONE kernel a(l) shared by all steps (lags >= -delay, or all), fitted and tested on samples."""
    lags = range(-(LENGTH - 1) if delay is None else -delay, LENGTH)
    fit_xs, fit_ys = targets.sample(target, jax.random.key(0), samples, LENGTH, jnp.float64)
    test_xs, test_ys = targets.sample(target, jax.random.key(1), samples, LENGTH, jnp.float64)
    fit_xs, fit_ys, test_xs, test_ys = (np.asarray(a)[..., 0] for a in (fit_xs, fit_ys, test_xs, test_ys))
    features = _toeplitz_features(fit_xs, lags).reshape(-1, len(lags))
    kernel = np.linalg.lstsq(features, fit_ys.reshape(-1), rcond=None)[0]
    predictions = _toeplitz_features(test_xs, lags) @ kernel
    return _sampled_nmse(predictions, test_ys)


TIME_VARYING = [targets.reversal, lambda: targets.spectral_lowpass("power", 0.5), lambda: targets.centred_sum(2)]


@pytest.mark.parametrize("make", TIME_VARYING)
@pytest.mark.parametrize("delay", [None, 0, 2])
def test_time_invariant_floor_matches_least_squares_over_toeplitz_operators(make, delay):
    target = make()
    floor = theory.time_invariant_floor(target, LENGTH, delay)
    assert abs(_sampled_time_invariant_nmse(target, delay) - floor) < 0.01 + 0.03 * floor


@pytest.mark.parametrize("delay", [None, 0, 3])
def test_time_invariant_floor_is_the_exact_frobenius_projection(delay):
    """Brute force: least squares over the Toeplitz basis matrices (one per allowed lag) in matrix space."""
    operator = theory.linear_operator(targets.spectral_lowpass("geometric", 0.7), LENGTH)[:, 0]
    lags = np.arange(LENGTH)[:, None] - np.arange(LENGTH)[None, :]
    allowed = [lag for lag in range(-(LENGTH - 1), LENGTH) if delay is None or lag >= -delay]
    basis = np.stack([(lags == lag).ravel().astype(float) for lag in allowed], 1)
    coefficients = np.linalg.lstsq(basis, operator.ravel(), rcond=None)[0]
    residual = np.sum((operator.ravel() - basis @ coefficients) ** 2) / np.sum(operator**2)
    expected = theory.toeplitz_floor(operator[:, None, :], delay)
    np.testing.assert_allclose(expected, residual, rtol=1e-10, atol=1e-14)


def test_time_invariant_floor_of_reversal_at_twenty_steps():
    """Each diagonal of the reversal holds one 1 among T - |l| entries: floor = (T - sum_l 1 / (T - |l|)) / T."""
    length = 20
    odd = np.arange(1, length, 2)  # T - |l| over the diagonals that hold a 1, each twice (l and -l)
    bidirectional = (length - 2 * np.sum(1.0 / odd)) / length
    unidirectional = (length - np.sum(1.0 / odd)) / length
    assert theory.time_invariant_floor(targets.reversal(), length, None) == pytest.approx(bidirectional, abs=1e-12)
    assert theory.time_invariant_floor(targets.reversal(), length, 0) == pytest.approx(unidirectional, abs=1e-12)
    assert 0.78 < bidirectional < 0.79 and 0.89 < unidirectional < 0.9
    assert theory.causal_floor(targets.reversal(), length, length - 1) == 0.0  # information is not the limit


def test_time_invariant_floor_vanishes_for_covered_time_invariant_targets():
    assert theory.time_invariant_floor(targets.centred_sum(2), LENGTH, None) < 1e-12
    assert theory.time_invariant_floor(targets.centred_sum(2), LENGTH, 2) < 1e-12
    causal = theory.causal_floor(targets.centred_sum(2), LENGTH, 0)
    assert theory.time_invariant_floor(targets.centred_sum(2), LENGTH, 0) == pytest.approx(causal, abs=1e-12)


# --------------------------------------------------------------------------- rank floor (encoder-decoder)


ENCODER_DECODER = [targets.reversal, lambda: targets.spectral_lowpass("geometric", 0.7),
                   lambda: targets.spectral_lowpass("power", 0.5), lambda: targets.pooling(2)]  # fmt: skip


@pytest.mark.parametrize("make", ENCODER_DECODER)
def test_operator_spectra_are_the_documented_ones(make):
    target = make()
    operator = theory.linear_operator(target, LENGTH)
    assert operator.shape == (target.output_length(LENGTH), 1, LENGTH)
    singular = np.linalg.svd(operator[:, 0], compute_uv=False)
    np.testing.assert_allclose(singular, np.sort(target.singular_values(LENGTH))[::-1], atol=1e-10)


@pytest.mark.parametrize("make", ENCODER_DECODER)
@pytest.mark.parametrize("width", [1, 3])
def test_rank_floor_matches_a_fitted_linear_map_through_a_width_m_vector(make, width):
    """Brute force: L-BFGS from random starts on sampled data over y = D (E x), E: [m, N], then a fresh test set."""
    target = make()
    fit_xs, fit_ys = targets.sample(target, jax.random.key(0), 3000, LENGTH, jnp.float64)
    test_xs, test_ys = targets.sample(target, jax.random.key(1), 3000, LENGTH, jnp.float64)
    outputs = target.output_length(LENGTH)

    def loss(p, xs=fit_xs[..., 0], ys=fit_ys[..., 0]):
        return jnp.mean((xs @ p["E"].T @ p["D"].T - ys) ** 2) / jnp.var(ys)

    def fit(key):
        k_e, k_d = jax.random.split(key)
        start = {"E": jax.random.normal(k_e, (width, LENGTH)), "D": jax.random.normal(k_d, (outputs, width))}
        return lbfgs_refine(loss, start, 200)[0]

    fitted = jax.jit(jax.vmap(fit))(jax.random.split(jax.random.key(2), 4))
    tested = jax.vmap(lambda p: loss(p, test_xs[..., 0], test_ys[..., 0]))(fitted)
    floor = theory.rank_floor(target, LENGTH, width)
    assert abs(float(jnp.min(tested)) - floor) < 0.01 + 0.03 * floor


def test_rank_floor_of_reversal_and_pooling():
    for width in (1, 4, LENGTH):
        assert theory.rank_floor(targets.reversal(), LENGTH, width) == pytest.approx((LENGTH - width) / LENGTH)
    assert theory.rank_floor(targets.pooling(2), LENGTH, LENGTH // 2) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- Wiener floors at any gain


@pytest.mark.parametrize("gain", [1.0, 2.0, 3.0, 5.0, 8.0])
def test_wiener_floors_match_monte_carlo_at_every_gain(gain):
    """Time-varying floor: per-step least squares; time-invariant: one shared kernel; both on 20000 samples."""
    target = targets.wiener(targets.exponential_kernel(0.6, LENGTH), gain=gain)
    fit_xs, fit_ys = targets.sample(target, jax.random.key(0), 20000, LENGTH, jnp.float64)
    test_xs, test_ys = targets.sample(target, jax.random.key(1), 20000, LENGTH, jnp.float64)
    fit_xs, fit_ys, test_xs, test_ys = (np.asarray(a)[..., 0] for a in (fit_xs, fit_ys, test_xs, test_ys))
    fits = [np.linalg.lstsq(fit_xs[:, : t + 1], fit_ys[:, t], rcond=None)[0] for t in range(LENGTH)]
    varying = np.stack([test_xs[:, : t + 1] @ fits[t] for t in range(LENGTH)], 1)
    assert abs(_sampled_nmse(varying, test_ys) - theory.wiener_floor(target, LENGTH)) < 0.01
    lags = range(LENGTH)
    kernel = np.linalg.lstsq(_toeplitz_features(fit_xs, lags).reshape(-1, LENGTH), fit_ys.reshape(-1), rcond=None)[0]
    invariant = _toeplitz_features(test_xs, lags) @ kernel
    assert abs(_sampled_nmse(invariant, test_ys) - theory.wiener_time_invariant_floor(target, LENGTH)) < 0.01
    assert theory.wiener_time_invariant_floor(target, LENGTH) >= theory.wiener_floor(target, LENGTH) - 1e-12


def test_gauss_expectation_is_accurate_where_fixed_quadrature_was_not():
    """E tanh(z)^2 for z ~ N(0, 25) against a dense trapezoid rule on [-12, 12] standard deviations."""
    grid = np.linspace(-12.0, 12.0, 400001)
    reference = np.trapezoid(np.tanh(5.0 * grid) ** 2 * np.exp(-0.5 * grid**2), grid) / np.sqrt(2 * np.pi)
    value, error = theory.gauss_expectation(lambda z: np.tanh(z) ** 2, 25.0)
    assert error <= theory.QUADRATURE_TOLERANCE
    assert abs(value - reference) < 1e-8


def test_monotone_upper_takes_the_best_smaller_width():
    bands = {1: (0.1, 0.5), 2: (0.05, 0.6), 4: (0.0, 0.2)}
    assert theory.monotone_upper(bands) == {1: (0.1, 0.5), 2: (0.05, 0.5), 4: (0.0, 0.2)}


def test_sorting_affine_floor_against_closed_form_and_least_squares_on_samples():
    """n = 2: E max = 1/sqrt(pi), floor (1 - 2/pi) / 2; n = 8: an affine least-squares fit on 2e5 samples."""
    assert theory.normal_order_means(2) == pytest.approx([-1 / np.sqrt(np.pi), 1 / np.sqrt(np.pi)], abs=1e-10)
    assert theory.sorting_affine_floor(2) == pytest.approx((1 - 2 / np.pi) / 2, abs=1e-10)
    means = theory.normal_order_means(8)
    assert np.allclose(means, -means[::-1], atol=1e-10) and np.all(np.diff(means) > 0)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((200_000, 8))
    ys = np.sort(xs, axis=1)
    design = np.c_[xs, np.ones(len(xs))]
    residual = ys - design @ np.linalg.lstsq(design, ys, rcond=None)[0]
    sampled = np.mean(residual**2) / np.var(ys)  # the probe's pooled NMSE
    assert sampled == pytest.approx(theory.sorting_affine_floor(8), rel=0.01)
    assert np.mean(ys, axis=0) == pytest.approx(means, abs=0.01)
    with pytest.raises(ValueError, match="length"):
        theory.sorting_affine_floor(0)
