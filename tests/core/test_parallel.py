"""Associative-scan unrolling agrees with the sequential scan of rnnjax.core.unroll.rnn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.core.cells import LinearKind, linear_rnn, lstm, min_gru, min_lstm
from rnnjax.core.parallel import linear_form, parallel_rnn
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


@pytest.mark.parametrize("name", ["min_gru", "min_lstm"])
def test_linear_form_matches_the_gate_equations(name, key):
    """(a, b) of h' = a h + b against the gates written out in numpy (not the library's coefficient code)."""
    cell = CELLS[name]()
    params = cell.init(key, 3, 4, jnp.float64)
    params = {k: v + 0.3 * jax.random.normal(jax.random.fold_in(key, 1), v.shape) for k, v in params.items()}
    x = np.arange(3.0) / 3
    pre = x @ np.asarray(params["input_kernel"]) + np.asarray(params["bias"])
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    if name == "min_gru":  # h' = (1 - z) h + z c
        z, candidate = sigmoid(pre[:4]), pre[4:]
        expected_a, expected_b = 1 - z, z * candidate
    else:  # h' = f / (f + i) h + i / (f + i) c
        f, i, candidate = sigmoid(pre[:4]), sigmoid(pre[4:8]), pre[8:]
        expected_a, expected_b = f / (f + i), i / (f + i) * candidate
    a, b = linear_form(cell).coefficients(params, cell.project(params, jnp.asarray(x)))
    np.testing.assert_allclose(a, expected_a, rtol=1e-12)
    np.testing.assert_allclose(b, expected_b, rtol=1e-12)


def test_rejects_nonlinear_cell(key):
    cell = lstm()
    params = cell.init(key, 2, 3)
    with pytest.raises(ValueError, match="cell 'lstm' has no linear_form capability; parallel_rnn needs"):
        parallel_rnn(cell, params, jnp.zeros((1, 4, 2)))
    gated = min_gru()
    changed = gated._replace(recur=lambda p, c, u: (c, c))  # not the minGRU maths any more
    with pytest.raises(ValueError, match="cell 'min_gru': its linear_form was derived for other"):
        parallel_rnn(changed, gated.init(key, 2, 3), jnp.zeros((1, 4, 2)))
