"""Cells: one step against hand-written maths, dtypes, gradients, initializers."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rnnjax.core.cells import (
    CELL_NAMES,
    LinearInit,
    LSTMState,
    gru,
    linear_eigenvalues,
    linear_rnn,
    lstm,
    make_cell,
    min_gru,
    min_lstm,
    simple_rnn,
)
from rnnjax.core.parallel import parallel_rnn
from rnnjax.core.unroll import rnn

INPUT, HIDDEN = 3, 5


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def reference_step(name, p, carry, x):
    """Each cell's equation written out in plain numpy, gate by gate."""
    p = {k: np.asarray(v) for k, v in p.items()}
    x = np.asarray(x)
    if name.startswith("simple"):
        act = np.tanh if name == "simple_tanh" else (lambda v: np.maximum(v, 0.0))
        h = act(x @ p["input_kernel"] + np.asarray(carry) @ p["recurrent_kernel"] + p["bias"])
        return h, h
    if name == "lstm":
        h, c = np.asarray(carry.h), np.asarray(carry.c)
        W, U, b = (np.split(p[k], 4, axis=-1) for k in ("input_kernel", "recurrent_kernel", "bias"))
        i, f, g, o = (x @ W[k] + h @ U[k] + b[k] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        return LSTMState(h, c), h
    if name.startswith("gru"):
        h = np.asarray(carry)
        names = ("input_kernel", "recurrent_kernel", "input_bias", "recurrent_bias")
        W, U, bi, bh = (np.split(p[k], 3, axis=-1) for k in names)
        r = sigmoid(x @ W[0] + bi[0] + h @ U[0] + bh[0])
        z = sigmoid(x @ W[1] + bi[1] + h @ U[1] + bh[1])
        if name == "gru_pytorch":
            n = np.tanh(x @ W[2] + bi[2] + r * (h @ U[2] + bh[2]))
        else:
            n = np.tanh(x @ W[2] + bi[2] + (r * h) @ U[2] + bh[2])
        h = (1 - z) * n + z * h
        return h, h
    if name == "linear_dense":
        A, B, C = p["A"], p["B"], p["C"]
    elif name == "linear_diagonal":
        A, B, C = np.diag(p["a"]), p["B"], p["C"]
    else:
        A = np.diag(np.exp(-np.exp(p["log_decay"]) + 1j * p["phase"]))
        B, C = p["B"] + 1j * p["B_imag"], p["C"] + 1j * p["C_imag"]
    h = A @ np.asarray(carry) + B @ x
    return h, np.real(C @ h) + p["D"] @ x


def random_params(cell, key, dtype=jnp.float64):
    """Init, then perturb every leaf (zero biases and D would hide mistakes)."""
    params = cell.init(key, INPUT, HIDDEN, dtype)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(params))
    noisy = [value + 0.2 * jax.random.normal(k, value.shape, dtype) for value, k in zip(params.values(), keys)]
    return dict(zip(params, noisy))


def random_carry(cell, params, key):
    carry = cell.initial_carry(params)
    leaves, tree = jax.tree.flatten(carry)
    keys = jax.random.split(key, len(leaves))
    noisy = [leaf + jax.random.normal(k, leaf.shape, leaf.real.dtype) for leaf, k in zip(leaves, keys)]
    return jax.tree.unflatten(tree, noisy)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_step_matches_reference_maths(name, key):
    cell = make_cell(name)
    params = random_params(cell, key)
    carry = random_carry(cell, params, jax.random.fold_in(key, 2))
    x = jax.random.normal(jax.random.fold_in(key, 3), (INPUT,), jnp.float64)
    new_carry, y = cell.step(params, carry, x)
    expected_carry, expected_y = reference_step(name, params, carry, x)
    np.testing.assert_allclose(y, expected_y, rtol=0, atol=1e-12)
    for ours, theirs in zip(jax.tree.leaves(new_carry), jax.tree.leaves(expected_carry)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert y.shape == (cell.output_size(params),)


@pytest.mark.parametrize("name", CELL_NAMES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_step_dtype_jit_and_batch(name, dtype, key):
    cell = make_cell(name)
    params = cell.init(key, INPUT, HIDDEN, dtype)
    assert cell.input_size(params) == INPUT and cell.hidden_size(params) == HIDDEN
    carry = cell.initial_carry(params, (2,))
    xs = jax.random.normal(jax.random.fold_in(key, 1), (2, INPUT), dtype)
    batched = jax.vmap(cell.step, in_axes=(None, 0, 0))
    eager_carry, eager_y = batched(params, carry, xs)
    jit_carry, jit_y = jax.jit(batched)(params, carry, xs)
    assert eager_y.dtype == dtype and eager_y.shape == (2, cell.output_size(params))
    for leaf, jit_leaf in zip(jax.tree.leaves(eager_carry), jax.tree.leaves(jit_carry)):
        assert leaf.shape == (2, HIDDEN) and leaf.real.dtype == dtype
        np.testing.assert_allclose(leaf, jit_leaf, rtol=1e-5 if dtype == jnp.float32 else 1e-12)
    single_carry, single_y = cell.step(params, jax.tree.map(lambda c: c[1], carry), xs[1])
    np.testing.assert_allclose(single_y, eager_y[1], rtol=1e-5 if dtype == jnp.float32 else 1e-12)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_step_gradients(name, key):
    cell = make_cell(name)
    params = random_params(cell, key)
    carry = random_carry(cell, params, jax.random.fold_in(key, 2))
    x = jax.random.normal(jax.random.fold_in(key, 3), (INPUT,), jnp.float64)

    def output(params, x):
        new_carry, y = cell.step(params, carry, x)
        return y, jax.tree.map(lambda c: c.real, new_carry)

    check_grads(jax.jit(output), (params, x), order=1, modes=("fwd", "rev"))


def test_recurrent_kernels_orthogonal_per_gate_block(key):
    for cell, gates in ((simple_rnn(), 1), (lstm(), 4), (gru(), 3), (gru("cho"), 3)):
        kernel = cell.init(key, INPUT, HIDDEN, jnp.float64)["recurrent_kernel"]
        assert kernel.shape == (HIDDEN, gates * HIDDEN)
        for block in jnp.split(kernel, gates, axis=1):
            np.testing.assert_allclose(block.T @ block, np.eye(HIDDEN), atol=1e-12)
        if gates > 1:  # blocks are drawn independently, not copies of one matrix
            assert not jnp.allclose(kernel[:, :HIDDEN], kernel[:, HIDDEN : 2 * HIDDEN])


def test_input_kernel_is_lecun_scaled(key):
    kernel = lstm().init(key, 400, 50, jnp.float64)["input_kernel"]
    assert abs(float(jnp.var(kernel)) * 400 - 1.0) < 0.05


def test_lstm_forget_bias(key):
    bias = lstm().init(key, INPUT, HIDDEN)["bias"]
    np.testing.assert_array_equal(bias, jnp.concatenate([jnp.zeros(HIDDEN), jnp.ones(HIDDEN), jnp.zeros(2 * HIDDEN)]))
    assert jnp.all(lstm(forget_bias=0.0).init(key, INPUT, HIDDEN)["bias"] == 0.0)
    ones = lstm(bias_init=jax.nn.initializers.ones).init(key, INPUT, HIDDEN)["bias"]
    np.testing.assert_array_equal(ones[HIDDEN : 2 * HIDDEN], 2.0)


def test_initializers_are_overridable(key):
    def scaled_identity(key, shape, dtype):
        return 0.5 * jnp.eye(*shape, dtype=dtype)

    zeros, ones = jax.nn.initializers.zeros, jax.nn.initializers.ones
    options = dict(input_init=zeros, recurrent_init=scaled_identity, bias_init=ones)
    for cell, gates in ((simple_rnn(**options), 1), (gru(**options), 3)):
        params = cell.init(key, INPUT, HIDDEN)
        assert jnp.all(params["input_kernel"] == 0.0)
        np.testing.assert_array_equal(params["recurrent_kernel"], jnp.tile(0.5 * jnp.eye(HIDDEN), (1, gates)))
        assert all(jnp.all(v == 1.0) for k, v in params.items() if "bias" in k)
    linear = linear_rnn("dense", input_init=jax.nn.initializers.zeros, output_init=jax.nn.initializers.ones)
    params = linear.init(key, INPUT, HIDDEN)
    assert jnp.all(params["B"] == 0.0) and jnp.all(params["C"] == 1.0)


@pytest.mark.parametrize("kind", ["dense", "diagonal", "complex_diagonal"])
def test_linear_spectrum_and_output_size(kind, key):
    spectrum = LinearInit(min_radius=0.3, max_radius=0.8)
    cell = linear_rnn(kind, output_size=2, spectrum=spectrum)
    params = cell.init(key, INPUT, 16, jnp.float64)
    assert cell.output_size(params) == 2 and cell.hidden_size(params) == 16
    radii = jnp.abs(linear_eigenvalues(params))
    assert float(radii.max()) <= 0.8 + 1e-12
    if kind == "dense":  # A = Q diag(r): its singular values are the radii r (its column norms)
        singular = jnp.linalg.svd(params["A"], compute_uv=False)
        np.testing.assert_allclose(jnp.sort(singular), jnp.sort(jnp.linalg.norm(params["A"], axis=0)), atol=1e-12)
        assert 0.3 - 1e-12 <= float(singular.min()) and float(singular.max()) <= 0.8 + 1e-12
    else:
        assert float(radii.min()) >= 0.3 - 1e-12
    if kind == "complex_diagonal":
        assert cell.initial_carry(params).dtype == jnp.complex128


def reference_min_gated(name, params, xs, h0):
    """minGRU / minLSTM (Feng et al. 2024, eqs. as in the docstrings) over ONE sequence: numpy, a plain loop.

    minGRU:  z = sigmoid(x W_z + b_z), c = x W_h + b_h, h' = (1 - z) h + z c
    minLSTM: f = sigmoid(x W_f + b_f), i = sigmoid(x W_i + b_i), c = x W_h + b_h, h' = f/(f+i) h + i/(f+i) c
    """
    kernel, bias, h = np.asarray(params["input_kernel"]), np.asarray(params["bias"]), np.asarray(h0)
    hidden = h.shape[-1]
    hs = []
    for x in np.asarray(xs):
        pre = x @ kernel + bias
        if name == "min_gru":
            z, c = sigmoid(pre[:hidden]), pre[hidden:]
            h = (1 - z) * h + z * c
        else:
            f, i, c = sigmoid(pre[:hidden]), sigmoid(pre[hidden : 2 * hidden]), pre[2 * hidden :]
            h = f / (f + i) * h + i / (f + i) * c
        hs.append(h)
    return np.stack(hs), h


@pytest.mark.parametrize("unroll", [rnn, parallel_rnn], ids=["sequential", "associative"])
@pytest.mark.parametrize("name", ["min_gru", "min_lstm"])
def test_min_gated_cells_match_reference_equations(name, unroll, key):
    cell = min_gru() if name == "min_gru" else min_lstm()
    params = random_params(cell, key)
    h0 = random_carry(cell, params, jax.random.fold_in(key, 2))
    xs = jax.random.normal(jax.random.fold_in(key, 3), (9, INPUT), jnp.float64)
    ys, final = unroll(cell, params, xs, initial_carry=h0)
    expected_ys, expected_final = reference_min_gated(name, params, xs, h0)
    np.testing.assert_allclose(ys, expected_ys, rtol=0, atol=1e-12)
    np.testing.assert_allclose(final, expected_final, rtol=0, atol=1e-12)
    assert cell.hidden_size(params) == HIDDEN and cell.input_size(params) == INPUT


def test_min_lstm_forget_bias_is_in_the_forget_block(key):
    bias = min_lstm(forget_bias=2.0).init(key, INPUT, HIDDEN)["bias"]
    np.testing.assert_array_equal(bias, jnp.concatenate([jnp.full(HIDDEN, 2.0), jnp.zeros(2 * HIDDEN)]))


@pytest.mark.parametrize("name", CELL_NAMES)
def test_params_of_another_cell_are_named_not_a_key_error(name, key):
    cell = make_cell(name)
    other = make_cell("gru" if name == "lstm" else "lstm")
    params = other.init(key, INPUT, HIDDEN, jnp.float64)
    expected = sorted(cell.init(key, INPUT, HIDDEN))
    if expected == sorted(params):  # same keys (simple and LSTM): the shapes tell them apart
        message = rf"params: a '{name}' cell with input size {INPUT} and hidden size {HIDDEN} expects bias"
        message += rf" of shape \[{HIDDEN}\] \(from its init\); got \[{4 * HIDDEN}\]"
    else:
        message = re.escape(f"params: a '{name}' cell expects a dict with keys {expected} (from its init); got ")
    with pytest.raises(ValueError, match=message):
        rnn(cell, params, jnp.zeros((2, 4, INPUT)))
