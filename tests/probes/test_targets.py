"""Targets of the universal-approximation probe: determinism, causality and the documented properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.probes import targets

ZOO = targets.zoo(support=64)
LENGTH = 24


@pytest.mark.parametrize("name", sorted(ZOO))
def test_deterministic_per_seed(name):
    target = ZOO[name]
    xs, ys = targets.sample(target, jax.random.key(3), 2, LENGTH, jnp.float64)
    xs_again, ys_again = targets.sample(target, jax.random.key(3), 2, LENGTH, jnp.float64)
    other, _ = targets.sample(target, jax.random.key(4), 2, LENGTH, jnp.float64)
    np.testing.assert_array_equal(xs, xs_again)
    np.testing.assert_array_equal(ys, ys_again)
    assert not np.array_equal(xs, other)
    assert ys.shape == (2, LENGTH, target.output_size)
    np.testing.assert_allclose(float(jnp.mean(xs)), 0.0, atol=0.3)  # zero-mean inputs


@pytest.mark.parametrize("name", sorted(ZOO))
def test_causal_targets_ignore_the_future_and_non_causal_ones_do_not(name):
    target = ZOO[name]
    if target.many_to_one:
        pytest.skip("a many-to-one label is a function of the whole sequence: causal by construction")
    xs, _ = targets.sample(target, jax.random.key(0), 1, LENGTH, jnp.float64)
    xs = xs[0]
    future, _ = targets.sample(target, jax.random.key(1), 1, LENGTH, jnp.float64)
    changed = False
    for cut in (0, 5, LENGTH // 2, LENGTH - 2):
        edited = xs.at[cut + 1 :].set(future[0, cut + 1 :])
        before, after = target.fn(xs)[: cut + 1], target.fn(edited)[: cut + 1]
        if target.causal:
            message = f"{name}: y_0..y_{cut} changed with the future"
            np.testing.assert_allclose(before, after, atol=1e-12, err_msg=message)
        changed = changed or not np.allclose(before, after)
    assert changed == (not target.causal), f"{name}: causal={target.causal} but future dependence is {changed}"


def test_many_to_one_counterpart_is_the_last_value():
    base = targets.reversal()
    last = targets.as_many_to_one(base)
    assert last.many_to_one and last.causal and not base.causal
    xs, ys = targets.sample(base, jax.random.key(0), 2, 10, jnp.float64)
    np.testing.assert_array_equal(ys[:, -1], xs[:, 0])  # the last value of the reversal is the first input


def test_kernel_target_matches_the_convolution_sum():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=5)
    xs = rng.normal(size=(12, 1))
    for min_lag in (-3, 0, 2):
        target = targets.kernel_target("k", kernel, min_lag=min_lag)
        expected = [
            sum(kernel[k] * xs[t - min_lag - k, 0] for k in range(5) if 0 <= t - min_lag - k < 12) for t in range(12)
        ]
        np.testing.assert_allclose(target.fn(jnp.asarray(xs))[:, 0], expected, atol=1e-12)
        assert target.causal == (min_lag >= 0) and target.linear



@pytest.mark.parametrize("min_lag", [-3, 0, 2])
def test_kernel_target_toeplitz_product_equals_the_convolution_used_for_long_sequences(monkeypatch, min_lag):
    rng = np.random.default_rng(1)
    kernel, xs = jnp.asarray(rng.normal(size=7)), jnp.asarray(rng.normal(size=(40, 1)))
    as_product = targets.apply_kernel(kernel, min_lag, xs)
    monkeypatch.setattr(targets, "TOEPLITZ_MAX_LENGTH", 39)  # 40 steps now take the convolution path
    np.testing.assert_allclose(targets.apply_kernel(kernel, min_lag, xs), as_product, atol=1e-12)

def test_state_space_orders():
    assert targets.state_space_order(targets.oscillator_kernel([0.9, 0.7], [0.5, 1.5], 256)) == 4
    assert targets.state_space_order(targets.exponential_kernel(0.8, 256)) == 1
    assert targets.state_space_order(targets.delay(5).kernel) == 6
    assert targets.state_space_order(targets.bump_kernel(8, 2.0, 64)) > 8


def test_fading_and_non_fading_memory():
    xs = jnp.where(jax.random.bernoulli(jax.random.key(0), 0.5, (40, 1)), 1.0, -1.0)
    flipped = xs.at[0].multiply(-1.0)
    for target in (ZOO["exponential"], ZOO["wiener"], ZOO["teacher0"]):
        assert target.fading_memory
        assert abs(float(target.fn(xs)[-1, 0] - target.fn(flipped)[-1, 0])) < 1e-2
    for target in (ZOO["parity"], ZOO["counting"]):
        assert not target.fading_memory
        assert abs(float(target.fn(xs)[-1, 0] - target.fn(flipped)[-1, 0])) >= 2.0 - 1e-12


def test_delay_line_outputs_every_lag():
    xs = jnp.arange(1.0, 7.0)[:, None]
    ys = targets.delay_line(2).fn(xs)
    np.testing.assert_array_equal(ys[:, 0], xs[:, 0])
    np.testing.assert_array_equal(ys[:, 2], [0, 0, 1, 2, 3, 4])


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="kernel must be a non-empty 1-D"):
        targets.kernel_target("bad", np.ones((2, 2)))
    with pytest.raises(ValueError, match="length must be >= 1; got 0"):
        targets.sample(ZOO["delay8"], jax.random.key(0), 2, 0)
    with pytest.raises(ValueError, match="output_size must be >= 1; got 0"):
        targets.Target("bad", lambda xs: xs, output_size=0)


def test_encoder_decoder_targets_against_numpy():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(8, 1))
    zoo = targets.encoder_decoder_zoo()
    np.testing.assert_allclose(zoo["pooling2"].fn(jnp.asarray(xs))[:, 0], xs[:, 0].reshape(4, 2).mean(1), atol=1e-12)
    np.testing.assert_allclose(zoo["sorting"].fn(jnp.asarray(xs))[:, 0], np.sort(xs[:, 0]), atol=0)
    np.testing.assert_allclose(zoo["reversal"].fn(jnp.asarray(xs))[:, 0], xs[::-1, 0], atol=0)
    basis = targets.dct_matrix(8)
    np.testing.assert_allclose(basis @ basis.T, np.eye(8), atol=1e-12)
    lowpass = zoo["lowpass_geometric0.7"].fn(jnp.asarray(xs))[:, 0]
    expected = basis.T @ (0.7 ** np.arange(8) * (basis @ xs[:, 0]))
    np.testing.assert_allclose(lowpass, expected, atol=1e-12)


def test_output_lengths():
    pooling = targets.encoder_decoder_zoo()["pooling2"]
    assert pooling.output_length(8) == 4 and not pooling.aligned and targets.reversal().aligned
    _, ys = targets.sample(pooling, jax.random.key(0), 3, 8, jnp.float64)
    assert ys.shape == (3, 4, 1)
    with pytest.raises(ValueError, match="length_ratio"):
        pooling.output_length(7)
    with pytest.raises(ValueError, match="aligned"):
        targets.as_many_to_one(pooling)
