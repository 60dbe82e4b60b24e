"""Parity with Flax NNX cells, nnx.RNN and nnx.Bidirectional (float64, max abs diff <= 1e-9)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnjax.core.unroll import rnn
from rnnjax.interop import FlaxCellKind, from_flax_carry, from_flax_cell, from_flax_nnx, to_flax_carry
from rnnjax.interop.flax_nnx import flip_valid

TOLERANCE = 1e-9
INPUT, HIDDEN, BATCH, TIME = 3, 4, 3, 6
F64 = dict(param_dtype=jnp.float64, dtype=jnp.float64)
CELLS = {
    "lstm": lambda rngs: nnx.LSTMCell(INPUT, HIDDEN, rngs=rngs, **F64),
    "optimized_lstm": lambda rngs: nnx.OptimizedLSTMCell(INPUT, HIDDEN, rngs=rngs, **F64),
    "gru": lambda rngs: nnx.GRUCell(INPUT, HIDDEN, rngs=rngs, **F64),
    "simple_tanh": lambda rngs: nnx.SimpleCell(INPUT, HIDDEN, rngs=rngs, **F64),
    "simple_relu": lambda rngs: nnx.SimpleCell(INPUT, HIDDEN, activation_fn=nnx.relu, rngs=rngs, **F64),
}


def perturbed(module, seed):
    """NNX init has zero biases: add noise to every Param so that every parameter matters."""
    state = nnx.state(module, nnx.Param)
    leaves, tree = jax.tree.flatten(state)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    nnx.update(module, jax.tree.unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape, x.dtype)
                                                  for x, k in zip(leaves, keys)]))  # fmt: skip
    return module


def make_cell(name, seed=0):
    return perturbed(CELLS[name](nnx.Rngs(seed)), seed + 100)


def batch(seed=1):
    generator = np.random.default_rng(seed)
    xs = jnp.asarray(generator.normal(size=(BATCH, TIME, INPUT)))
    lengths = jnp.asarray([TIME, 2, 4])
    return xs, lengths


def max_diff(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def valid_part(ys, lengths):
    """Outputs at padded steps zeroed (NNX keeps computing there; rnnjax emits zeros)."""
    return jnp.where(jnp.arange(ys.shape[1])[None, :, None] < lengths[:, None, None], ys, 0.0)


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_step_and_scan_match_nnx(name):
    module = make_cell(name)
    cell, params = from_flax_cell(module)
    xs, _ = batch()
    nnx_carry = jax.tree.map(lambda c: c + 0.5, module.initialize_carry((BATCH, INPUT), nnx.Rngs(0)))
    start = carry = from_flax_carry(module, nnx_carry)
    nnx_outputs = []
    for t in range(TIME):
        nnx_carry, expected = module(nnx_carry, xs[:, t])
        carry, y = jax.vmap(cell.step, in_axes=(None, 0, 0))(params, carry, xs[:, t])
        assert max_diff(y, expected) <= TOLERANCE
        nnx_outputs.append(expected)
    assert max_diff(to_flax_carry(carry), nnx_carry) <= TOLERANCE
    ys, _ = rnn(cell, params, xs, initial_carry=start)
    assert max_diff(ys, jnp.stack(nnx_outputs, axis=1)) <= TOLERANCE


@pytest.mark.parametrize(
    "name, reverse, keep_order", [("lstm", False, False), ("gru", True, False), ("optimized_lstm", True, True),
                                  ("simple_tanh", False, False)]
)  # fmt: skip
def test_rnn_matches_nnx_on_padded_batch(name, reverse, keep_order):
    module = nnx.RNN(make_cell(name), return_carry=True, reverse=reverse, keep_order=keep_order)
    net, params = from_flax_nnx(module)
    xs, lengths = batch()
    expected_carry, expected = module(xs, seq_lengths=lengths)
    carry, outputs = jax.jit(net)(params, xs, seq_lengths=lengths)
    # reverse without keep_order: both give outputs in processing order (valid part reversed, padding last)
    assert max_diff(outputs, valid_part(expected, lengths)) <= TOLERANCE
    assert jnp.all(outputs == valid_part(outputs, lengths))  # exactly zero past each length
    assert max_diff(carry, expected_carry) <= TOLERANCE


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_rnn_matches_nnx_time_major_with_initial_carry(name):
    module = nnx.RNN(make_cell(name), time_major=True)
    net, params = from_flax_nnx(module)
    xs, _ = batch()
    xs = jnp.swapaxes(xs, 0, 1)
    initial = jax.tree.map(lambda c: c + 0.3, module.cell.initialize_carry((BATCH, INPUT), nnx.Rngs(0)))
    expected = module(xs, initial_carry=initial)
    assert max_diff(net(params, xs, initial_carry=initial), expected) <= TOLERANCE


@pytest.mark.parametrize("forward_name, backward_name", [("lstm", "lstm"), ("gru", "simple_tanh")])
def test_bidirectional_matches_nnx(forward_name, backward_name):
    module = nnx.Bidirectional(
        nnx.RNN(make_cell(forward_name, 0)), nnx.RNN(make_cell(backward_name, 1)), return_carry=True
    )
    net, params = from_flax_nnx(module)
    xs, lengths = batch(seed=2)
    (expected_forward, expected_backward), expected = module(xs, seq_lengths=lengths)
    (carry_forward, carry_backward), outputs = net(params, xs, seq_lengths=lengths)
    assert outputs.shape == (BATCH, TIME, 2 * HIDDEN)
    assert max_diff(outputs, valid_part(expected, lengths)) <= TOLERANCE
    assert max_diff((carry_forward, carry_backward), (expected_forward, expected_backward)) <= TOLERANCE
    unpadded = module(xs, return_carry=False)
    assert max_diff(net(params, xs, return_carry=False), unpadded) <= TOLERANCE


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 7), st.booleans(), st.integers(0, 2**31 - 1))
def test_flip_valid_matches_nnx_flip_sequences(batch, time, time_major, seed):
    from flax.nnx.nn.recurrent import flip_sequences

    generator = np.random.default_rng(seed)
    xs = jnp.asarray(generator.normal(size=(time, batch, 2) if time_major else (batch, time, 2)))
    lengths = jnp.asarray(generator.integers(0, time + 1, size=batch))
    expected = flip_sequences(xs, lengths, 1, time_major)
    assert jnp.array_equal(flip_valid(xs, lengths, time_major), expected)


def test_float32_cell_dtype_is_kept():
    module = perturbed(nnx.GRUCell(INPUT, HIDDEN, rngs=nnx.Rngs(0)), 5)
    cell, params = from_flax_cell(module)
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    xs = jnp.ones((2, INPUT), jnp.float32)
    carry = module.initialize_carry((2, INPUT), nnx.Rngs(0))
    assert max_diff(jax.vmap(cell.step, in_axes=(None, 0, 0))(params, carry, xs), module(carry, xs)) <= 1e-6


def test_unsupported_nnx_modules_and_options():
    rngs = nnx.Rngs(0)
    with pytest.raises(ValueError, match="module.gate_fn: expected jax.nn.sigmoid"):
        from_flax_cell(nnx.LSTMCell(INPUT, HIDDEN, gate_fn=jax.nn.hard_sigmoid, rngs=rngs))
    with pytest.raises(ValueError, match=r"module.activation_fn: expected one of \['tanh'\]; got .*gelu"):
        from_flax_cell(nnx.GRUCell(INPUT, HIDDEN, activation_fn=jax.nn.gelu, rngs=rngs))
    with pytest.raises(ValueError, match="module.residual: expected False"):
        from_flax_cell(nnx.SimpleCell(INPUT, HIDDEN, residual=True, rngs=rngs))
    with pytest.raises(TypeError, match="module: expected a flax.nnx LSTMCell.*; got Linear"):
        from_flax_cell(nnx.Linear(INPUT, HIDDEN, rngs=rngs))
    with pytest.raises(TypeError, match="module: expected a flax.nnx.RNN or flax.nnx.Bidirectional; got GRUCell"):
        from_flax_nnx(nnx.GRUCell(INPUT, HIDDEN, rngs=rngs))
    merged = nnx.Bidirectional(nnx.RNN(nnx.GRUCell(INPUT, HIDDEN, rngs=rngs)),
                               nnx.RNN(nnx.GRUCell(INPUT, HIDDEN, rngs=rngs)), merge_fn=jnp.add)  # fmt: skip
    with pytest.raises(ValueError, match="module.merge_fn: expected the default"):
        from_flax_nnx(merged)
    assert FlaxCellKind("lstm") is FlaxCellKind.LSTM
