"""64 small models trained at once with vmap, against 64 sequential runs of the same step code."""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import optax

from rnnjax.cells import lstm
from rnnjax.train import init_many, init_state, make_train_step, train_step_body
from rnnjax.unroll import rnn

CELL = lstm()


def init_model(key, hidden: int):
    """A probe-sized model: LSTM(1 -> hidden) and a linear readout of the last output."""
    k_cell, k_out = jax.random.split(key)
    return {"cell": CELL.init(k_cell, 1, hidden), "readout": 0.1 * jax.random.normal(k_out, (hidden,))}


def loss_fn(params, batch, key):
    """Regress the running mean of the inputs from the last LSTM output."""
    xs, target = batch
    ys, _ = rnn(CELL, params["cell"], xs)
    prediction = ys[:, -1] @ params["readout"]
    return jnp.mean((prediction - target) ** 2), {}


def make_batch(key, batch: int, time_steps: int):
    xs = jax.random.normal(key, (batch, time_steps, 1))
    return xs, jnp.mean(xs[..., 0], axis=-1)


def many_models(quick: bool, models: int = 64) -> dict:
    """Seconds for ``models`` runs of ``steps`` steps: sequential (jitted step) vs one vmapped step."""
    steps, batch, time_steps, hidden = (3, 8, 10, 8) if quick else (20, 32, 50, 16)
    optimizer = optax.adam(1e-2)
    batches = [make_batch(jax.random.key(100 + s), batch, time_steps) for s in range(steps)]
    keys = jax.random.split(jax.random.key(0), models)
    init = functools.partial(init_model, hidden=hidden)

    step = make_train_step(loss_fn, optimizer)

    @jax.jit
    def init_one(key):  # the same key use as init_many
        init_key, train_key = jax.random.split(key)
        return init_state(init(init_key), optimizer, train_key)

    init_all = jax.jit(lambda keys: init_many(init, optimizer, keys))
    many_step = jax.jit(jax.vmap(functools.partial(train_step_body, loss_fn, optimizer), in_axes=(0, None)))

    def sequential():
        losses = []
        for key in keys:
            state = init_one(key)
            for b in batches:
                state, metrics = step(state, b)
            losses.append(metrics["loss"])
        return jax.block_until_ready(jnp.stack(losses))

    def vmapped():
        states = init_all(keys)
        for b in batches:
            states, metrics = many_step(states, b)
        return jax.block_until_ready(metrics["loss"])

    sequential_losses, vmapped_losses = sequential(), vmapped()  # compile both
    times = {"sequential": [], "vmapped": []}
    for _ in range(3):
        for name, run in (("sequential", sequential), ("vmapped", vmapped)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    best = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
    return {
        "models": models, "steps": steps, "batch": batch, "time": time_steps, "hidden": hidden,
        "sequential_s": best["sequential"], "vmapped_s": best["vmapped"],
        "speedup": best["sequential"] / best["vmapped"],
        "max_loss_difference": float(jnp.max(jnp.abs(sequential_losses - vmapped_losses))),
    }  # fmt: skip
