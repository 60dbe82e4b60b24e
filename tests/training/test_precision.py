"""bfloat16 compute with float32 params trains a small task like float32 does."""

import re

import jax
import jax.numpy as jnp
import optax
import pytest

from rnnjax.core.cells import gru
from rnnjax.core.unroll import rnn
from rnnjax.training.precision import cast_floating, mixed_precision
from rnnjax.training.step import init_state, make_train_step

CELL = gru()


def _loss_fn(params, batch, key):
    """Regress the mean of each input sequence from the last GRU output."""
    xs, target = batch
    ys, _ = rnn(CELL, params["cell"], xs)
    prediction = ys[:, -1] @ params["readout"]
    return jnp.mean((prediction - target) ** 2), {"prediction_mean": jnp.mean(prediction)}


def _params(key):
    k_cell, k_out = jax.random.split(key)
    readout = 0.1 * jax.random.normal(k_out, (16,), jnp.float32)
    return {"cell": CELL.init(k_cell, 1, 16, jnp.float32), "readout": readout}


def _batch(step):
    xs = jax.random.normal(jax.random.fold_in(jax.random.key(1), step), (32, 10, 1), jnp.float32)
    return xs, 3.0 * jnp.mean(xs[..., 0], axis=-1)


def _train(loss_fn, steps=150):
    optimizer = optax.adam(1e-2)
    state = init_state(_params(jax.random.key(0)), optimizer, jax.random.key(2))
    step = make_train_step(loss_fn, optimizer)
    losses = []
    for number in range(steps):
        state, metrics = step(state, _batch(number))
        losses.append(float(metrics["loss"]))
    return state, losses, metrics


def test_bf16_compute_trains_with_f32_params():
    state, losses, metrics = _train(mixed_precision(_loss_fn))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state.params))
    assert metrics["loss"].dtype == jnp.float32 and metrics["prediction_mean"].dtype == jnp.float32
    early, late = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert late < 0.1 * early, (early, late)
    _, reference, _ = _train(_loss_fn)
    assert late < 3.0 * sum(reference[-10:]) / 10 + 0.02


def test_compute_really_is_bf16_and_grads_are_f32():
    params, batch = _params(jax.random.key(0)), _batch(0)
    wrapped = mixed_precision(_loss_fn)
    jaxpr = str(jax.make_jaxpr(wrapped)(params, batch, jax.random.key(0)))
    products = re.findall(r"(\w+)\[[\d,]*\] = dot_general", jaxpr)
    assert products and set(products) == {"bf16"}, products  # every matrix product runs in bf16
    grads = jax.grad(lambda p: wrapped(p, batch, jax.random.key(0))[0])(params)
    reference = jax.grad(lambda p: _loss_fn(p, batch, jax.random.key(0))[0])(params)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(reference)):
        assert got.dtype == jnp.float32
        assert float(jnp.max(jnp.abs(got - want))) < 0.05 * float(jnp.max(jnp.abs(want))) + 1e-3


def test_cast_floating_leaves_ints_and_keys_alone():
    tree = {"w": jnp.ones(2, jnp.float32), "n": jnp.arange(3), "k": jax.random.key(0), "s": 1.5}
    cast = cast_floating(tree, jnp.bfloat16)
    assert cast["w"].dtype == jnp.bfloat16 and cast["s"].dtype == jnp.bfloat16
    assert cast["n"].dtype == tree["n"].dtype and cast["k"].dtype == tree["k"].dtype
    with pytest.raises(ValueError, match="compute_dtype"):
        mixed_precision(_loss_fn, compute_dtype=jnp.int32)
