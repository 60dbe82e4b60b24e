# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Scaling: many models in one program, and several devices
#
# Research on small RNNs rarely trains one model: it trains the same model with many seeds, learning rates or
# widths. Trained one after another, each small model spends most of its time in Python and in launching tiny
# computations. JAX lets us write the training of *one* model and `vmap` it over a stack of models, so that the
# whole sweep is one compiled program. With several devices (GPUs, TPU cores, or here two simulated CPU devices)
# the stack, or the batch, is split across them.
#
# This notebook trains a sweep of small LSTMs both ways with rnnjax's `fit` and `fit_many`, sweeps the learning
# rate inside one program, then spreads the runs and a batch over two devices with `rnnjax.training.sharding`.

# %%
import os

# Two CPU "devices", so that sharding can be shown on a laptop. This must be set before JAX starts.
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

from rnnjax import RNN, lstm
from rnnjax.tasks.heads import dense, dense_init
from rnnjax.training import loop, optimizers, sharding, step

QUICK = os.environ.get("RNNJAX_COURSE_QUICK") == "1"  # the test suite's short setting
RUNS = 4 if QUICK else 8
STEPS = 30 if QUICK else 100
print("devices:", jax.devices())

# %% [markdown]
# ## One model
#
# The task: a regression that needs memory, `y_t = x_{t-2} + x_{t-5}` (zero before the start), on random
# sequences. `batch_fn(step)` makes the step's batch from a key folded with the step number, so the data is a pure
# function of the step: any run can be replayed exactly. The loss has rnnjax's signature
# `loss_fn(params, batch, key) -> (loss, metrics)`.

# %%
network = RNN(lstm(), hidden_size=16)
DATA_KEY = jax.random.key(42)


def batch_fn(step_number):
    xs = jax.random.normal(jax.random.fold_in(DATA_KEY, step_number), (32, 20, 1))
    shifted = lambda lag: jnp.pad(xs, ((0, 0), (lag, 0), (0, 0)))[:, : xs.shape[1]]
    return xs, shifted(2) + shifted(5)


def init_params(key):
    key_rnn, key_out = jax.random.split(key)
    return {"rnn": network.init(key_rnn, 1), "readout": dense_init(key_out, 16, 1)}


def loss_fn(params, batch, key):
    xs, ys = batch
    hidden, _ = network.apply(params["rnn"], xs)
    loss = jnp.mean((dense(params["readout"], hidden) - ys) ** 2)
    return loss, {}


optimizer = optimizers.make_optimizer(optimizers.OptimizerConfig(learning_rate=1e-2))

# %% [markdown]
# ## A sweep, one run at a time
#
# `fit` trains one model: `step.make_train_step` compiles one update (the same compiled update serves every run
# with the same shapes), and `loop.fit` calls it `STEPS` times from Python.

# %%
def one_state(key):
    """A run's initial state: params from one half of its key, the training key from the other (as init_many)."""
    init_key, train_key = jax.random.split(key)
    return step.init_state(init_params(init_key), optimizer, train_key)


keys = jax.random.split(jax.random.key(0), RUNS)
train_step = step.make_train_step(loss_fn, optimizer)
start = time.perf_counter()
one_by_one = []
for key in keys:
    state = one_state(key)
    one_by_one.append(loop.fit(state, train_step, batch_fn, STEPS, progress=False))
jax.block_until_ready(one_by_one[-1].params)
seconds_loop = time.perf_counter() - start
print(f"{RUNS} runs with fit, one after another: {seconds_loop:.1f} s")

# %% [markdown]
# ## The same sweep as one program
#
# `loop.init_many` stacks the runs' states: every parameter gets a leading axis of size `RUNS`. `loop.fit_many`
# vmaps the update over that axis and scans it over the steps, so the whole sweep is one compiled program and
# Python is not involved between steps.

# %%
start = time.perf_counter()
states = loop.init_many(init_params, optimizer, keys)
states, metrics = loop.fit_many(loss_fn, optimizer, states, batch_fn, STEPS)
jax.block_until_ready(states.params)
seconds_many = time.perf_counter() - start
print(f"{RUNS} runs with fit_many, one program: {seconds_many:.1f} s (compilation included)")

start = time.perf_counter()  # the same sweep again: the program is compiled already
again, _ = loop.fit_many(loss_fn, optimizer, loop.init_many(init_params, optimizer, keys), batch_fn, STEPS)
jax.block_until_ready(again.params)
seconds_warm = time.perf_counter() - start
print(f"the same fit_many again, already compiled: {seconds_warm:.1f} s")
print("the readout's leaves, stacked over runs:", jax.tree.map(jnp.shape, states.params["readout"]))

difference = max(
    float(jnp.max(jnp.abs(a - b[i])))
    for i, run in enumerate(one_by_one)
    for a, b in zip(jax.tree.leaves(run.params), jax.tree.leaves(states.params))
)
print(f"largest difference between the two ways: {difference:.1e} (float32 rounding)")

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].bar(["fit, one by one", "fit_many", "fit_many again"], [seconds_loop, seconds_many, seconds_warm],
            color=["tab:grey", "tab:blue", "tab:cyan"])
axes[0].set(ylabel="seconds (this machine)", title=f"{RUNS} LSTMs, {STEPS} steps each")
axes[1].semilogy(metrics["loss"].T, alpha=0.7)
axes[1].set(xlabel="step", ylabel="training loss", title="every run's loss, from fit_many")
plt.show()

# %% [markdown]
# With so few steps, compiling the scanned program can cost as much as it saves: the first `fit_many` call may be
# no faster than the loop. The gain shows once the program is compiled (the second call, or a longer run) and
# grows with the number of small models; for models whose single step is already compute-bound there is little
# to gain, since the arithmetic stays the same. The [benchmarks](../../guides/benchmarks/) give measured numbers
# with their dates (64 tiny LSTMs: 16x warm, 0.94x with compilation).
#
# ## A learning-rate sweep inside the program
#
# `make_sweep_optimizer` keeps the learning rate in the optimizer's state, so each run of the stack can have its
# own value while the program stays one.

# %%
rates = jnp.geomspace(1e-3, 1e-1, RUNS)
sweep_optimizer = optimizers.make_sweep_optimizer(optimizers.OptimizerConfig(learning_rate=1e-2))
states = loop.init_many(init_params, sweep_optimizer, jnp.stack([jax.random.key(0)] * RUNS),
                        hparams={"learning_rate": rates})
states, metrics = loop.fit_many(loss_fn, sweep_optimizer, states, batch_fn, STEPS)
final_loss = metrics["loss"][:, -5:].mean(1)

fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog(rates, final_loss, "o-")
ax.set(xlabel="learning rate", ylabel="loss over the last 5 steps", title="One program, one learning rate per run")
plt.show()

# %% [markdown]
# ## Spreading the runs over devices
#
# A *mesh* names the devices' axes. `sharding.shard_runs` places each device's share of the stacked runs on that
# device; `fit_many` then trains each share where it lives, with no communication (the runs are independent).
# The results equal the single-device ones.

# %%
mesh = sharding.device_mesh(("models",))
states = loop.init_many(init_params, optimizer, keys)
states = sharding.shard_runs(states, mesh)
leaf = states.params["readout"][next(iter(states.params["readout"]))]
print("runs per device:", {str(shard.device): shard.data.shape[0] for shard in leaf.addressable_shards})
sharded, _ = loop.fit_many(loss_fn, optimizer, states, batch_fn, STEPS)
single, _ = loop.fit_many(loss_fn, optimizer, loop.init_many(init_params, optimizer, keys), batch_fn, STEPS)
print("sharded equals single-device:", all(
    bool(jnp.allclose(a, b, atol=1e-5)) for a, b in zip(jax.tree.leaves(sharded.params), jax.tree.leaves(single.params))
))

# %% [markdown]
# ## Splitting one batch over devices
#
# For one large model the other way round is useful: every device holds a copy of the parameters and takes a
# slice of each batch (*data parallelism*). `sharding.data_parallel` compiles the same train step with those
# placements, and XLA adds the sum of the gradients across devices.

# %%
data_mesh = sharding.device_mesh()
parallel_step = sharding.data_parallel(step.make_train_step(loss_fn, optimizer), data_mesh)
state = sharding.replicate(one_state(keys[0]), data_mesh)
state = loop.fit(state, parallel_step, sharding.shard_batches(batch_fn, data_mesh), STEPS, progress=False)
reference = one_by_one[0].params
print("data-parallel equals one device:", all(
    bool(jnp.allclose(a, b, atol=1e-5)) for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(reference))
))

# %% [markdown]
# ## What to keep
#
# - Write the training of one model; `init_many` + `fit_many` train a stack of them as one compiled program
#   (seeds, learning rates, any per-run value).
# - `sharding.shard_runs` spreads a sweep over devices; `sharding.data_parallel` spreads a batch. Both give the
#   single-device numbers.
# - Many hosts, parallel-in-time scans and mixed precision are in the [scaling guide](../../scaling/).
