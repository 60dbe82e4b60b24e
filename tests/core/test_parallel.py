"""Associative-scan unrolling agrees with the sequential scan of rnnjax.core.unroll.rnn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.core.cells import LinearKind, linear_rnn, lstm
from rnnjax.core.parallel import min_gru, min_lstm, parallel_rnn, recurrence
from rnnjax.core.unroll import rnn

CELLS = {
    "min_gru": min_gru,
    "min_lstm": min_lstm,
    "linear_dense": lambda: linear_rnn(LinearKind.DENSE),
    "linear_diagonal": lambda: linear_rnn(LinearKind.DIAGONAL),
    "linear_complex_diagonal": lambda: linear_rnn(LinearKind.COMPLEX_DIAGONAL, output_size=3),
}


def _setup(name, key, dtype, batch=3, time=17, features=4, hidden=5):
    cell = CELLS[name]()
    k_params, k_x, k_mask, k_reset, k_carry = jax.random.split(key, 5)
    params = cell.init(k_params, features, hidden, dtype)
    xs = jax.random.normal(k_x, (batch, time, features), dtype)
    mask = jax.random.bernoulli(k_mask, 0.8, (batch, time))
    reset = jax.random.bernoulli(k_reset, 0.1, (batch, time))
    carry = cell.initial_carry(params, (batch,))
    carry = carry + jax.random.normal(k_carry, carry.shape, dtype).astype(carry.dtype)
    return cell, params, xs, mask, reset, carry


def _assert_same(got, want, tol):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=tol, atol=tol)


def _jitted(unroll, cell, params, xs, reverse=False, time_major=False, **arrays):
    def run(params, xs, arrays):
        return unroll(cell, params, xs, reverse=reverse, time_major=time_major, **arrays)

    return jax.jit(run)(params, xs, arrays)


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("reverse", [False, True])
def test_parallel_matches_sequential_with_mask_reset_carry(name, reverse, key):
    cell, params, xs, mask, reset, carry = _setup(name, key, jnp.float64)
    options = dict(mask=mask, reset=reset, initial_carry=carry, reverse=reverse)
    _assert_same(_jitted(parallel_rnn, cell, params, xs, **options), _jitted(rnn, cell, params, xs, **options), 1e-12)


@pytest.mark.parametrize("name", ["min_gru", "linear_complex_diagonal"])
def test_parallel_matches_sequential_lengths_time_major_multibatch(name, key):
    cell, params, xs, _, _, _ = _setup(name, key, jnp.float64, batch=6)
    xs = jnp.moveaxis(xs.reshape(2, 3, *xs.shape[1:]), 2, 0)  # [time, 2, 3, features]
    lengths = jnp.array([[17, 0, 5], [9, 1, 16]])
    for reverse in (False, True):
        options = dict(lengths=lengths, time_major=True, reverse=reverse)
        want = _jitted(rnn, cell, params, xs, **options)
        _assert_same(_jitted(parallel_rnn, cell, params, xs, **options), want, 1e-12)


LONG_CASES = [
    ("min_gru", jnp.float64, 1e-10),
    ("linear_complex_diagonal", jnp.float64, 1e-10),
    ("linear_dense", jnp.float64, 1e-10),
    ("min_lstm", jnp.float32, 2e-4),
    ("linear_diagonal", jnp.float32, 2e-4),
]


@pytest.mark.parametrize("name,dtype,tol", LONG_CASES)
def test_long_sequences(name, dtype, tol, key):
    hidden = 4 if name == "linear_dense" else 8
    cell, params, xs, mask, _, _ = _setup(name, key, dtype, batch=2, time=2048, hidden=hidden)
    got = jax.jit(lambda p, x, m: parallel_rnn(cell, p, x, mask=m))(params, xs, mask)
    _assert_same(got, jax.jit(lambda p, x, m: rnn(cell, p, x, mask=m))(params, xs, mask), tol)


def test_gradients_match_sequential(key):
    cell, params, xs, mask, reset, carry = _setup("min_lstm", key, jnp.float64)

    def loss(unroll, p):
        ys, final = unroll(cell, p, xs, mask=mask, reset=reset, initial_carry=carry)
        return jnp.sum(ys**2) + jnp.sum(jnp.sin(final))

    got = jax.jit(jax.grad(lambda p: loss(parallel_rnn, p)))(params)
    _assert_same(got, jax.jit(jax.grad(lambda p: loss(rnn, p)))(params), 1e-10)


def test_step_is_the_linear_form(key):
    cell = min_lstm()
    params = cell.init(key, 3, 4, jnp.float64)
    x, h = jnp.arange(3.0) / 3, jnp.linspace(-1, 1, 4)
    a, b = recurrence(cell).coefficients(params, cell.project(params, x))
    new, y = cell.step(params, h, x)
    np.testing.assert_allclose(new, a * h + b, rtol=1e-14)
    np.testing.assert_allclose(y, new)
    # minLSTM's normalised gates sum to one: a constant candidate is a fixed point.
    np.testing.assert_allclose(a + b / cell.project(params, x)[8:], 1.0, rtol=1e-12)


def test_rejects_nonlinear_cell(key):
    cell = lstm()
    params = cell.init(key, 2, 3)
    with pytest.raises(ValueError, match="linear recurrence"):
        parallel_rnn(cell, params, jnp.zeros((1, 4, 2)))
