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
# # 2. LSTM, GRU and what their gates do to gradients
#
# A network learns by following the gradient of its loss. In an RNN the loss at the end of a sequence depends on
# the first input only through every state in between, so its gradient with respect to the early states is a
# product of one factor per time step (the chain rule). If those factors are mostly below one, the product
# shrinks exponentially and the network cannot learn to remember the start: the *vanishing gradient*. Above one,
# it *explodes*.
#
# The LSTM and the GRU add *gates*: numbers between 0 and 1, computed from the input and the state, that decide
# how much of the old state to keep. A gate near 1 passes the state, and its gradient, through a step almost
# unchanged. This notebook writes an LSTM step by hand, then measures how far a gradient travels back in time
# through a simple RNN, an LSTM and a GRU, and trains them on a task that needs a long memory.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import optax

from rnnjax import gru, lstm, simple_rnn
from rnnjax.analysis.diagnostics import classifier_loss, gate_statistics, gradient_flow_curves, init_classifier
from rnnjax.tasks.toy_tasks import first_bit_task

QUICK = os.environ.get("RNNJAX_COURSE_QUICK") == "1"  # the test suite's short setting

# %% [markdown]
# ## The LSTM step, by hand
#
# The LSTM carries two vectors: `h` (its output) and `c` (the *cell state*, its memory). One matrix product gives
# four blocks: the input gate `i`, the forget gate `f`, the candidate `g` and the output gate `o`:
#
# $$z = x W + h U + b,\quad i, f, o = \sigma(z_i), \sigma(z_f), \sigma(z_o),\quad g = \tanh(z_g)$$
# $$c' = f \odot c + i \odot g, \qquad h' = o \odot \tanh(c')$$
#
# The key line is `c' = f * c + ...`: the memory is *multiplied by the forget gate* and nothing else on its way
# from one step to the next. rnnjax's LSTM keeps its carry as a named pair `LSTMState(h, c)`.

# %%
input_size, hidden_size = 3, 4
cell = lstm()
params = cell.init(jax.random.key(0), input_size, hidden_size)
print({name: value.shape for name, value in params.items()})  # the four gates side by side: 4 * hidden


def lstm_step_by_hand(params, state, x):
    z = x @ params["input_kernel"] + state.h @ params["recurrent_kernel"] + params["bias"]
    z_i, z_f, z_g, z_o = jnp.split(z, 4)
    i, f, o = jax.nn.sigmoid(z_i), jax.nn.sigmoid(z_f), jax.nn.sigmoid(z_o)
    c = f * state.c + i * jnp.tanh(z_g)
    h = o * jnp.tanh(c)
    return state._replace(h=h, c=c), h


state = cell.initial_carry(params)
x = jax.random.normal(jax.random.key(1), (input_size,))
for _ in range(3):  # three steps, from the same state each way
    ours, _ = lstm_step_by_hand(params, state, x)
    theirs, _ = cell.step(params, state, x)
    state = theirs
print("hand-written step equals rnnjax's:", jnp.allclose(ours.h, theirs.h, atol=1e-6),
      jnp.allclose(ours.c, theirs.c, atol=1e-6))

# %% [markdown]
# The GRU does the same with one vector: an *update gate* `z` mixes the old state with a candidate,
# `h' = (1 - z) * n + z * h`. When `z` is near 1 the state is copied forward.
#
# ## How far back does a gradient reach?
#
# The task: the first input of a sequence is +1 or -1, every later input is noise, and the network must say at
# the last step which sign came first. To learn it, the gradient of the answer must reach the first step.
# `gradient_flow_curves` measures, for a cell with a logistic readout, the size of
# d(answer)/d(h_t) at every step t, averaged over a batch. We compare four cells at initialisation: a tanh RNN,
# the same RNN with its recurrent matrix doubled, an LSTM with forget-gate bias 1 and with bias 3 (a larger bias
# starts the forget gate closer to 1), and a GRU.

# %%
time_steps, hidden = (30, 16) if QUICK else (60, 16)
xs, labels = first_bit_task(jax.random.key(2), 64, time_steps)
print("inputs:", xs.shape, " labels:", labels[:8])


def doubled(params):
    return {**params, "cell": {**params["cell"], "recurrent_kernel": 2 * params["cell"]["recurrent_kernel"]}}


cells = {
    "tanh RNN": (simple_rnn(), lambda p: p),
    "tanh RNN, U doubled": (simple_rnn(), doubled),
    "LSTM, forget bias 1": (lstm(forget_bias=1.0), lambda p: p),
    "LSTM, forget bias 3": (lstm(forget_bias=3.0), lambda p: p),
    "GRU": (gru(), lambda p: p),
}
fig, ax = plt.subplots(figsize=(7, 3.5))
for name, (cell, change) in cells.items():
    params = change(init_classifier(cell, jax.random.key(3), 1, hidden))
    curve = gradient_flow_curves(cell, params, xs)["carry_gradient_norm"]
    ax.semilogy(jnp.arange(time_steps), curve, label=name)
    print(f"{name:22s} |d answer/d h_0| / |d answer/d h_T-1| = {float(curve[0] / curve[-1]):.2e}")
ax.set(xlabel="time step t", ylabel="|d answer / d h_t|", title="How much of the gradient reaches each step")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Read the curves from right (the end of the sequence) to left (the first input). The tanh RNN's gradient falls
# by orders of magnitude: it vanishes. Doubling its recurrent matrix makes it grow instead: it explodes. The
# LSTM with a large forget bias keeps most of it, because its memory path multiplies by gates near 1. The GRU
# starts with its update gate near 0.5 (rnnjax's default initialisation has no gate bias), so at first its gradient
# shrinks too: it has to *learn* to open the gate, which training below may or may not achieve in a few hundred
# steps.
#
# ## Training on the long-memory task
#
# Now we train each cell to recall the first bit, with the optimizer library optax (Adam). `jax.value_and_grad`
# returns the loss and its gradient in one call; `jax.jit` compiles the whole update.

# %%
steps = 150 if QUICK else 600


def train(cell, key):
    params = init_classifier(cell, key, 1, hidden)
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(params)

    @jax.jit
    def update(params, opt_state, key):
        xs, labels = first_bit_task(key, 64, time_steps)
        (loss, accuracy), grads = jax.value_and_grad(lambda p: classifier_loss(cell, p, xs, labels), has_aux=True)(
            params
        )
        changes, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, changes), opt_state, accuracy

    accuracies = []
    for step in range(steps):
        params, opt_state, accuracy = update(params, opt_state, jax.random.fold_in(key, step))
        accuracies.append(float(accuracy))
    return params, accuracies


trained = {}
fig, ax = plt.subplots(figsize=(7, 3.5))
for name in ["tanh RNN", "LSTM, forget bias 3", "GRU"]:
    cell = cells[name][0]
    trained[name], accuracies = train(cell, jax.random.key(4))
    smooth = jnp.convolve(jnp.array(accuracies), jnp.ones(10) / 10, mode="valid")
    ax.plot(smooth, label=name)
    print(f"{name:22s} accuracy over the last 20 steps: {sum(accuracies[-20:]) / 20:.2f}")
ax.set(xlabel="training step", ylabel="batch accuracy (smoothed)", ylim=(0.4, 1.02),
       title=f"Recall the first of {time_steps} inputs")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# On a sequence this short the tanh RNN may still get there; make `time_steps` longer and it falls behind first.
# A GRU that stays near 0.5 is the first figure at work: its gradient from the last step to the first was the
# smallest of all at initialisation, so almost no signal about the first input reaches its weights until the update
# gate opens. Training one seed is an illustration, not a measurement: rerun with other keys before drawing a
# conclusion.
#
# ## What the gates learned
#
# `gate_statistics` reports each gate's mean value and how often it is saturated (within 0.05 of 0 or 1) over a
# batch. A forget gate whose mean stays near 1 is the LSTM keeping its memory open.

# %%
for name in ["LSTM, forget bias 3", "GRU"]:
    cell = cells[name][0]
    stats = gate_statistics(cell, trained[name]["cell"], xs)
    print(name)
    for gate, values in stats.items():
        print(f"  {gate:10s} mean {float(values.mean):.2f}   near 0 (or -1): {float(values.saturated_low):.2f}"
              f"   near 1: {float(values.saturated_high):.2f}")

# %% [markdown]
# ## What to keep
#
# - The gradient through T steps is a product of T factors: it vanishes or explodes unless the factors stay near 1.
# - The LSTM's memory `c` passes from step to step multiplied only by the forget gate; a forget bias above 0
#   starts that gate open. The GRU's update gate plays the same role.
# - `rnnjax.analysis.diagnostics` measures the gradient at every step and the saturation of every gate.
#
# Next: [3. Backpropagation through time by hand](../03_bptt_by_hand/).
