"""Parity with Equinox LSTMCell / GRUCell (float64, max abs diff <= 1e-9)."""

import jax
import jax.numpy as jnp
import pytest

from rnnjax.core.cells import LSTMState
from rnnjax.core.unroll import rnn
from rnnjax.interop import from_equinox

eqx = pytest.importorskip("equinox")

TOLERANCE = 1e-9
INPUT, HIDDEN, TIME = 3, 4, 7
MODULES = {
    "lstm": lambda key, bias: eqx.nn.LSTMCell(INPUT, HIDDEN, use_bias=bias, dtype=jnp.float64, key=key),
    "gru": lambda key, bias: eqx.nn.GRUCell(INPUT, HIDDEN, use_bias=bias, dtype=jnp.float64, key=key),
}


def equinox_scan(module, xs, hidden):
    """Equinox's documented usage: a lax.scan over one unbatched sequence."""

    def step(state, x):
        state = module(x, state)
        return state, state[0] if isinstance(state, tuple) else state

    return jax.lax.scan(step, hidden, xs)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", list(MODULES))
def test_sequence_matches_equinox(name, bias):
    module = MODULES[name](jax.random.key(3), bias)
    cell, params = from_equinox(module)
    xs = jax.random.normal(jax.random.key(4), (TIME, INPUT), jnp.float64)
    start = 0.4 * jax.random.normal(jax.random.key(5), (2, HIDDEN), jnp.float64)
    hidden = (start[0], start[1]) if name == "lstm" else start[0]
    final_expected, expected = equinox_scan(module, xs, hidden)
    carry = LSTMState(*hidden) if name == "lstm" else hidden
    ys, final = rnn(cell, params, xs, initial_carry=carry)
    assert float(jnp.max(jnp.abs(ys - expected))) <= TOLERANCE
    for ours, theirs in zip(jax.tree.leaves(final), jax.tree.leaves(final_expected)):
        assert float(jnp.max(jnp.abs(ours - theirs))) <= TOLERANCE


def test_vmapped_padded_batch_matches_per_sequence_equinox():
    """Padding is rnnjax's: a padded row's final carry is Equinox's carry after its own length."""
    module = MODULES["gru"](jax.random.key(6), True)
    cell, params = from_equinox(module)
    xs = jax.random.normal(jax.random.key(7), (3, TIME, INPUT), jnp.float64)
    lengths = jnp.asarray([TIME, 3, 5])
    _, final = rnn(cell, params, xs, lengths=lengths)
    for row, length in enumerate(lengths.tolist()):
        expected, _ = equinox_scan(module, xs[row, :length], jnp.zeros(HIDDEN))
        assert float(jnp.max(jnp.abs(final[row] - expected))) <= TOLERANCE


def test_rejects_other_modules():
    with pytest.raises(TypeError, match="module: expected an equinox.nn.LSTMCell or equinox.nn.GRUCell; got Linear"):
        from_equinox(eqx.nn.Linear(INPUT, HIDDEN, key=jax.random.key(0)))
