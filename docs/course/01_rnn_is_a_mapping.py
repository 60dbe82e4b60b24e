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
# # 1. An RNN is a mapping
#
# A neural network is a function: numbers go in, numbers come out. A recurrent network is a function whose input
# is a *sequence* of vectors (a list whose order matters, such as hourly weather readings or the words of a
# sentence) and whose output is another sequence, or a single vector.
#
# In this notebook we write the simplest recurrent cell by hand, run it over a sequence with a Python loop, and
# then replace the loop with three JAX tools: `jax.lax.scan` (a loop the compiler understands), `jax.vmap` (run
# the same function on a whole batch) and `jax.jit` (compile it). At each step we check that rnnjax computes the
# same numbers.
#
# You need to know Python and a little linear algebra (a matrix times a vector). JAX's `jax.numpy`, imported as
# `jnp`, works like NumPy: the same functions, on arrays that may live on a CPU, GPU or TPU.

# %%
import os
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

import rnnjax
from rnnjax import rnn, simple_rnn

QUICK = os.environ.get("RNNJAX_COURSE_QUICK") == "1"  # the test suite's short setting
jnp.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## The simple RNN cell
#
# The cell keeps a hidden state `h`, a vector of `hidden_size` numbers. At every time step it reads one input
# vector `x_t` and updates its state:
#
# $$h_t = \tanh(x_t W + h_{t-1} U + b)$$
#
# `W` maps the input to the hidden size, `U` maps the previous state to the new one, and `b` is a bias. The output
# at step t is the state itself. The same `W`, `U`, `b` are used at every step: that is what lets one network
# read sequences of any length.
#
# JAX needs an explicit random *key* to draw random numbers; `jax.random.split` turns one key into several
# independent ones.

# %%
input_size, hidden_size, time_steps = 3, 5, 12
key_w, key_u, key_x = jax.random.split(jax.random.key(0), 3)
W = 0.5 * jax.random.normal(key_w, (input_size, hidden_size))
U = 0.5 * jax.random.normal(key_u, (hidden_size, hidden_size))
b = jnp.zeros(hidden_size)


def cell_step(h, x):
    """One time step: the new state from the previous state and one input vector."""
    return jnp.tanh(x @ W + h @ U + b)


xs = jax.random.normal(key_x, (time_steps, input_size))  # one sequence: 12 vectors of 3 numbers
h = jnp.zeros(hidden_size)
states = []
for x in xs:  # the plain Python loop
    h = cell_step(h, x)
    states.append(h)
states_loop = jnp.stack(states)
print("states:", states_loop.shape)  # [time, hidden]

# %% [markdown]
# Every row of `states_loop` is the state after one more input. Drawn as an image (time left to right, one row per
# hidden unit) it shows how the state moves as the sequence is read.

# %%
fig, ax = plt.subplots(figsize=(7, 2.5))
image = ax.imshow(states_loop.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
ax.set(xlabel="time step t", ylabel="hidden unit", title="h_t of a simple RNN over one sequence")
fig.colorbar(image, ax=ax)
plt.show()

# %% [markdown]
# ## Order matters
#
# A dense layer applied to each vector and then averaged would give the same answer whatever the order of the
# vectors. The RNN does not: reverse the sequence and the final state changes, because each state depends on all
# the inputs before it, in their order.

# %%
def final_state(sequence):
    h = jnp.zeros(hidden_size)
    for x in sequence:
        h = cell_step(h, x)
    return h


print("final state, forward order :", final_state(xs))
print("final state, reversed order:", final_state(xs[::-1]))
print("mean of inputs, either order:", xs.mean(0), xs[::-1].mean(0))

# %% [markdown]
# ## `jax.lax.scan`: the loop as one operation
#
# A Python loop is unrolled into one operation per step when JAX compiles it; a 1,000-step sequence would become
# 1,000 copies. `jax.lax.scan(f, carry, xs)` expresses the loop itself: it calls `f(carry, x)` for each `x` along
# the first axis of `xs`, where `f` returns the next carry and one output. For an RNN the carry is the hidden
# state.

# %%
def scan_body(h, x):
    h = cell_step(h, x)
    return h, h  # (next carry, output at this step)


final, states_scan = jax.lax.scan(scan_body, jnp.zeros(hidden_size), xs)
print("scan equals the loop:", jnp.allclose(states_scan, states_loop, atol=1e-6))

# %% [markdown]
# ## The same cell in rnnjax
#
# rnnjax writes a cell as a bundle of pure functions: `init` makes the parameters, `step` does one time step for
# one example. `rnnjax.rnn` scans a cell over time. We give rnnjax our own `W`, `U`, `b` so that both compute the
# same mapping (rnnjax's names are `input_kernel`, `recurrent_kernel` and `bias`).

# %%
cell = simple_rnn("tanh")
params = cell.init(jax.random.key(1), input_size, hidden_size)
print({name: value.shape for name, value in params.items()})
params = {"input_kernel": W, "recurrent_kernel": U, "bias": b}

ys, h_final = rnn(cell, params, xs)
print("rnnjax equals the hand-written loop:", jnp.allclose(ys, states_loop, atol=1e-6))

# %% [markdown]
# ## `jax.vmap`: a batch without rewriting the function
#
# Real training reads many sequences at once. Instead of adding a batch dimension to every line of `cell_step`,
# `jax.vmap(f)` turns a function of one example into a function of a batch: it maps `f` over the first axis of
# its argument. Here we vmap our scan over 64 sequences and compare with rnnjax, which accepts any number of
# leading batch dimensions.

# %%
batch = jax.random.normal(jax.random.key(2), (64, time_steps, input_size))  # [batch, time, feature]


def run_one(sequence):
    return jax.lax.scan(scan_body, jnp.zeros(hidden_size), sequence)[1]


states_batch = jax.vmap(run_one)(batch)
ys_batch, _ = rnn(cell, params, batch)
print("vmap:", states_batch.shape, " rnnjax:", ys_batch.shape,
      " equal:", jnp.allclose(states_batch, ys_batch, atol=1e-6))

# %% [markdown]
# Sequences in a batch often have different lengths. They are padded to one length, and `lengths` tells rnnjax
# which steps are real: outputs at padded steps are zero and the final state is the one after the last real step.

# %%
lengths = jnp.array([12, 7, 3] + [12] * 61)
ys_padded, finals = rnn(cell, params, batch, lengths=lengths)
print("sequence 1 stops after 7 steps; its final state is its state at t=6:",
      jnp.allclose(finals[1], ys_batch[1, 6], atol=1e-6))
print("outputs after the end are zero:", bool((ys_padded[1, 7:] == 0).all()))

# %% [markdown]
# ## `jax.jit`: compile once, run fast
#
# `jax.jit(f)` traces `f` once for the shapes it is given, compiles it with XLA and reuses the compiled program on
# later calls. The first call pays for the compilation; the following ones are fast.

# %%
def batched_final_states(params, batch):
    return rnn(cell, params, batch)[1]


compiled = jax.jit(batched_final_states)
repeats = 5 if QUICK else 20


def timed(function):
    function(params, batch).block_until_ready()  # JAX runs asynchronously: wait for the result
    start = time.perf_counter()
    for _ in range(repeats):
        function(params, batch).block_until_ready()
    return (time.perf_counter() - start) / repeats * 1e3


start = time.perf_counter()
compiled(params, batch).block_until_ready()
first_call = (time.perf_counter() - start) * 1e3
eager, jitted = timed(batched_final_states), timed(compiled)
print(f"first jitted call (compiles): {first_call:.1f} ms; then eager {eager:.2f} ms vs jitted {jitted:.2f} ms")

fig, ax = plt.subplots(figsize=(5, 2.5))
ax.barh(["eager", "jit (after compiling)"], [eager, jitted], color=["grey", "tab:blue"])
ax.set(xlabel="milliseconds per call (64 sequences of 12 steps)", title="jit removes Python overhead")
plt.show()

# %% [markdown]
# ## The whole network at once
#
# `rnnjax.RNN` stacks layers and can read a sequence in both directions. Its `apply` is a pure function of the
# parameters, so `jax.grad` differentiates a loss through the whole unrolled network (notebook 3 writes that
# gradient by hand).

# %%
net = rnnjax.RNN(simple_rnn(), hidden_size=8, num_layers=2, bidirectional=True)
net_params = net.init(jax.random.key(3), input_size=input_size)
outputs, _ = net.apply(net_params, batch, lengths=lengths)
print("two layers, both directions:", outputs.shape)  # [batch, time, 2 * hidden]

loss = lambda p: jnp.mean(net.apply(p, batch, lengths=lengths)[0] ** 2)
grads = jax.jit(jax.grad(loss))(net_params)
print("a gradient for every parameter:", jax.tree.map(jnp.shape, grads)["layers"][0])

# %% [markdown]
# ## What to keep
#
# - An RNN is a mapping from a sequence of vectors to a sequence of vectors; one cell, reused at every step.
# - `scan` is the loop over time, `vmap` adds the batch, `jit` compiles; rnnjax's `rnn` does all three for any cell.
# - The order of the inputs changes the result; padding with `lengths` keeps sequences of different lengths apart.
#
# Next: [2. LSTM, GRU and their gates](../02_gates_and_gradients/).
