"""NaN or inf in the padded part of xs never reaches a cell's arithmetic: outputs and parameter gradients of a
padded batch equal those of the unpadded sequences, in rnn (autodiff and manual), RNN and parallel_rnn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.core.cells import make_cell, min_lstm
from rnnjax.core.parallel import parallel_rnn
from rnnjax.core.unroll import RNN, rnn

TIME, INPUT, HIDDEN = 6, 2, 3
LENGTHS = (6, 2, 0, 4)
MASK = ((1, 0, 1, 1, 0, 1), (0, 0, 0, 0, 0, 0), (1, 1, 1, 1, 1, 1), (0, 1, 0, 0, 1, 0))


def poisoned(xs: jax.Array, valid: jax.Array) -> jax.Array:
    """xs with NaN at half of the invalid steps and +inf at the others."""
    poison = jnp.where(jnp.arange(xs.shape[1])[None, :, None] % 2 == 0, jnp.nan, jnp.inf)
    return jnp.where(valid[..., None], xs, poison)


def _loss(ys, final, weights):
    return jnp.sum(ys * weights) + sum(jnp.sum(jnp.abs(leaf) ** 2) for leaf in jax.tree.leaves(final))


def _padded_and_unpadded(unroll, params, xs, weights, valid, use_mask):
    """Value and gradient of the loss on the padded batch, and summed over the compacted sequences (each sequence
    alone, all of them in one compiled program)."""
    arrays = {"mask": valid} if use_mask else {"lengths": valid.sum(-1)}

    def padded(p):
        ys, final = unroll(p, poisoned(xs, valid), **arrays)
        return _loss(ys, final, weights), ys

    rows = [np.flatnonzero(np.asarray(row)) for row in valid]  # the valid steps of each sequence, in order

    def unpadded(p):
        alone = [unroll(p, xs[row, steps]) for row, steps in enumerate(rows)]
        losses = [_loss(*alone[row], weights[row, steps]) for row, steps in enumerate(rows)]
        return sum(losses), [ys_row for ys_row, _ in alone]

    (value, ys), grads = jax.jit(jax.value_and_grad(padded, has_aux=True))(params)
    (expected_value, ys_alone), expected_grads = jax.jit(jax.value_and_grad(unpadded, has_aux=True))(params)
    for b, steps in enumerate(rows):
        np.testing.assert_allclose(ys[b, steps], ys_alone[b], rtol=0, atol=1e-12)
        assert float(jnp.abs(jnp.delete(ys[b], steps, axis=0)).max(initial=0.0)) == 0.0
    return (value, grads), (expected_value, expected_grads)


def _assert_same(got, want):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert bool(jnp.all(jnp.isfinite(g)))
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)


def _problem(key, cell, use_mask):
    params = cell.init(key, INPUT, HIDDEN, jnp.float64)
    xs = jax.random.normal(jax.random.fold_in(key, 1), (len(LENGTHS), TIME, INPUT), jnp.float64)
    output = cell.output_size(params) if hasattr(cell, "output_size") else HIDDEN
    weights = jax.random.normal(jax.random.fold_in(key, 2), (len(LENGTHS), TIME, output), jnp.float64)
    if use_mask:
        valid = jnp.asarray(MASK, bool)
    else:
        valid = jnp.arange(TIME) < jnp.asarray(LENGTHS)[:, None]
    return params, xs, weights, valid


@pytest.mark.parametrize("use_mask", [False, True], ids=["lengths", "mask"])
@pytest.mark.parametrize("backward", ["autodiff", "manual"])
@pytest.mark.parametrize("name", ["lstm", "linear_complex_diagonal"])
def test_rnn_ignores_nan_padding(name, backward, use_mask, key):
    cell = make_cell(name)
    params, xs, weights, valid = _problem(key, cell, use_mask)

    def unroll(p, x, **arrays):
        return rnn(cell, p, x, backward=backward, reverse=use_mask, **arrays)

    got, want = _padded_and_unpadded(unroll, params, xs, weights, valid, use_mask)
    _assert_same(got, want)


@pytest.mark.parametrize("name,use_mask", [("min_lstm", False), ("linear_dense", True)])
def test_parallel_rnn_ignores_nan_padding(name, use_mask, key):
    cell = min_lstm() if name == "min_lstm" else make_cell(name)
    params, xs, weights, valid = _problem(key, cell, use_mask)

    def unroll(p, x, **arrays):
        return parallel_rnn(cell, p, x, **arrays)

    got, want = _padded_and_unpadded(unroll, params, xs, weights, valid, use_mask)
    _assert_same(got, want)


@pytest.mark.parametrize("backward", ["autodiff", "manual"])
def test_bidirectional_rnn_network_ignores_nan_padding(backward, key):
    net = RNN(make_cell("gru"), HIDDEN, num_layers=2, bidirectional=True, backward=backward)
    params = net.init(key, INPUT, jnp.float64)
    _, xs, _, valid = _problem(key, make_cell("gru"), use_mask=False)
    weights = jax.random.normal(jax.random.fold_in(key, 3), (len(LENGTHS), TIME, 2 * HIDDEN), jnp.float64)

    def unroll(p, x, **arrays):
        return net.apply(p, x, **arrays)

    got, want = _padded_and_unpadded(unroll, params, xs, weights, valid, use_mask=False)
    _assert_same(got, want)


@pytest.mark.parametrize("name", ["lstm", "linear_diagonal"])
def test_manual_backward_of_zero_steps_is_zero_like_autodiff(name, key):
    cell = make_cell(name)
    params = cell.init(key, INPUT, HIDDEN, jnp.float64)
    carry = jax.tree.map(lambda leaf: leaf + 0.5, cell.initial_carry(params, (2,)))
    xs = jnp.zeros((2, 0, INPUT), jnp.float64)

    def grads(backward):
        def loss(p, c):
            ys, final = rnn(cell, p, xs, initial_carry=c, backward=backward)
            return jnp.sum(ys) + sum(jnp.sum(jnp.abs(leaf) ** 2) for leaf in jax.tree.leaves(final))

        return jax.grad(loss, argnums=(0, 1))(params, carry)

    manual, autodiff = grads("manual"), grads("autodiff")
    assert all(float(jnp.abs(leaf).max()) == 0.0 for leaf in jax.tree.leaves(manual[0]))
    _assert_same(manual, autodiff)
    _assert_same(manual[1], jax.tree.map(lambda leaf: 2 * leaf, carry))  # d|c|^2/dc = 2c
