"""Shared test fixtures: a tiny regression problem for the training and checkpoint tests."""

import jax
import jax.numpy as jnp

from rnnjax.core.cells import simple_rnn
from rnnjax.core.unroll import RNN
from rnnjax.training import optimizers
from rnnjax.training.step import make_train_step

NET = RNN(simple_rnn(), 4)
XS = jax.random.normal(jax.random.key(1), (32, 4, 2), jnp.float64)
YS = jnp.sin(XS.sum((1, 2)))


def init_params(key):
    k_rnn, k_head = jax.random.split(key)
    return {"rnn": NET.init(k_rnn, 2, jnp.float64), "head": 0.5 * jax.random.normal(k_head, (4,), jnp.float64)}


def loss_fn(params, batch, key):
    xs, ys = batch
    xs = xs + 0.05 * jax.random.normal(key, xs.shape, xs.dtype)  # uses the per-step key
    hs, _ = NET.apply(params["rnn"], xs)
    loss = jnp.mean((hs[:, -1] @ params["head"] - ys) ** 2)
    return loss, {"mse": loss}


def batch_fn(step):
    index = jax.random.choice(jax.random.fold_in(jax.random.key(2), step), 32, (8,), replace=False)
    return XS[index], YS[index]


CONFIG = optimizers.OptimizerConfig(learning_rate=0.05, warmup_steps=2, decay="cosine", decay_steps=12, clip_norm=1.0)
OPTIMIZER = optimizers.make_optimizer(CONFIG)
STEP = make_train_step(loss_fn, OPTIMIZER)  # shared so that the tests compile it once
