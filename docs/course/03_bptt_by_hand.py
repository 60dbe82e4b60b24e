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
# # 3. Backpropagation through time, by hand
#
# Training needs the gradient of the loss with respect to every weight. For an RNN the weights are reused at every
# time step, so their gradient is a sum over the steps, and the error at a step arrives both from that step's
# output and from every later step through the state. Writing this out once is the best way to see why gradients
# vanish, what truncated BPTT cuts, and why a hand-written backward pass can be faster than autodiff.
#
# We write the backward pass of the simple RNN in plain `jax.numpy`, check it against `jax.grad`, then against
# rnnjax's own hand-written rule (`rnnjax.core.bptt`), which does the same for LSTMs and GRUs.

# %%
import os
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

from rnnjax import lstm, rnn, simple_rnn
from rnnjax.core.bptt import manual_vjp

QUICK = os.environ.get("RNNJAX_COURSE_QUICK") == "1"  # the test suite's short setting
jax.config.update("jax_enable_x64", True)  # float64: hand-written and automatic gradients should agree to ~1e-12

# %% [markdown]
# ## Forward pass
#
# The simple RNN from notebook 1, with a linear readout `V` at every step and a squared error against targets:
#
# $$a_t = x_t W + h_{t-1} U + b,\quad h_t = \tanh(a_t),\quad \hat y_t = h_t V,\quad
#   L = \tfrac12 \sum_t \lVert \hat y_t - y_t \rVert^2$$
#
# The forward pass keeps every `h_t`: the backward pass needs them.

# %%
input_size, hidden_size, output_size, time_steps = 3, 8, 2, 20
keys = jax.random.split(jax.random.key(0), 6)
params = {
    "W": 0.5 * jax.random.normal(keys[0], (input_size, hidden_size), jnp.float64),
    "U": 0.4 * jax.random.normal(keys[1], (hidden_size, hidden_size), jnp.float64),
    "b": 0.1 * jax.random.normal(keys[2], (hidden_size,), jnp.float64),
    "V": 0.5 * jax.random.normal(keys[3], (hidden_size, output_size), jnp.float64),
}
xs = jax.random.normal(keys[4], (time_steps, input_size), jnp.float64)
targets = jax.random.normal(keys[5], (time_steps, output_size), jnp.float64)


def forward(params, xs):
    """All states h_1..h_T (h_0 = 0) and outputs."""

    def step(h, x):
        h = jnp.tanh(x @ params["W"] + h @ params["U"] + params["b"])
        return h, h

    _, hs = jax.lax.scan(step, jnp.zeros(hidden_size, xs.dtype), xs)
    return hs, hs @ params["V"]


def loss(params, xs, targets):
    _, outputs = forward(params, xs)
    return 0.5 * jnp.sum((outputs - targets) ** 2)


print("loss:", float(loss(params, xs, targets)))

# %% [markdown]
# ## Backward pass
#
# Call `g_t = dL/dh_t` the error that reaches the state at step t. It has two sources: the output at step t,
# `(ŷ_t - y_t) V^T`, and the next step, through `h_{t+1} = tanh(h_t U + ...)`. Going backwards from the last step:
#
# $$\delta_t = g_t \odot (1 - h_t^2), \qquad g_{t-1} = (\hat y_{t-1} - y_{t-1}) V^\top + \delta_t U^\top$$
#
# `δ_t = dL/da_t` is the error before the tanh (its derivative is `1 - tanh²`). Each weight's gradient is a sum
# over the steps where it was used:
#
# $$\frac{\partial L}{\partial W} = \sum_t x_t^\top \delta_t,\quad
#   \frac{\partial L}{\partial U} = \sum_t h_{t-1}^\top \delta_t,\quad
#   \frac{\partial L}{\partial b} = \sum_t \delta_t,\quad
#   \frac{\partial L}{\partial V} = \sum_t h_t^\top (\hat y_t - y_t)$$
#
# Below it is a Python loop from the last step to the first, the most readable form.

# %%
def bptt_by_hand(params, xs, targets):
    hs, outputs = forward(params, xs)
    errors = outputs - targets  # dL/dy_t
    h_previous = jnp.concatenate([jnp.zeros((1, hidden_size)), hs[:-1]])  # h_{t-1} for every t
    grads = {name: jnp.zeros_like(value) for name, value in params.items()}
    delta_next = jnp.zeros(hidden_size)
    signal = []
    for t in reversed(range(time_steps)):
        g = errors[t] @ params["V"].T + delta_next @ params["U"].T  # dL/dh_t
        delta = g * (1 - hs[t] ** 2)  # dL/da_t
        grads["W"] += jnp.outer(xs[t], delta)
        grads["U"] += jnp.outer(h_previous[t], delta)
        grads["b"] += delta
        grads["V"] += jnp.outer(hs[t], errors[t])
        signal.append(jnp.linalg.norm(g))
        delta_next = delta
    return grads, jnp.array(signal[::-1])


by_hand, signal = bptt_by_hand(params, xs, targets)
by_autodiff = jax.grad(loss)(params, xs, targets)
for name in params:
    difference = float(jnp.max(jnp.abs(by_hand[name] - by_autodiff[name])))
    print(f"dL/d{name}: largest difference, by hand vs jax.grad = {difference:.1e}")

# %% [markdown]
# The two agree to rounding. `jax.grad` derived the same computation from the forward pass: for a scan, it runs a
# reverse scan of the chain rule, exactly our loop.
#
# ## Where does the gradient of U come from?
#
# `dL/dU` is a sum of one term per step. Each term mixes the error that reached that step (`g_t`) with the state
# before it. The figure shows the size of `g_t` and of each step's contribution to `dL/dU`.

# %%
hs, outputs = forward(params, xs)
h_previous = jnp.concatenate([jnp.zeros((1, hidden_size)), hs[:-1]])
delta = jnp.stack([jnp.zeros(hidden_size)] * time_steps)
delta_next = jnp.zeros(hidden_size)
for t in reversed(range(time_steps)):
    g = (outputs[t] - targets[t]) @ params["V"].T + delta_next @ params["U"].T
    delta_next = g * (1 - hs[t] ** 2)
    delta = delta.at[t].set(delta_next)
contributions = jnp.linalg.norm(h_previous[:, :, None] * delta[:, None, :], axis=(1, 2))

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(signal, marker="o", label="|dL/dh_t| (error reaching step t)")
ax.bar(jnp.arange(time_steps), contributions, alpha=0.4, color="tab:orange", label="|step t's term of dL/dU|")
ax.set(xlabel="time step t", title="Backpropagation through time: one term per step")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## One error from the end, travelling back
#
# To see vanishing gradients directly, put the only error at the last step and follow `|g_t|` backwards. With a
# small recurrent matrix it shrinks at every step; with a large one it grows.

# %%
def signal_from_last_step(U_scale):
    scaled = {**params, "U": U_scale * params["U"]}
    hs, _ = forward(scaled, xs)
    g = jnp.ones(hidden_size)  # dL/dh_T
    norms = [jnp.linalg.norm(g)]
    for t in reversed(range(1, time_steps)):
        g = (g * (1 - hs[t] ** 2)) @ scaled["U"].T  # dL/dh_{t-1}
        norms.append(jnp.linalg.norm(g))
    return jnp.array(norms[::-1])


fig, ax = plt.subplots(figsize=(7, 3))
for scale in (0.5, 1.0, 3.0):
    ax.semilogy(signal_from_last_step(scale), label=f"U x {scale}")
ax.set(xlabel="time step t", ylabel="|dL/dh_t|", title="An error at the last step, carried back")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## rnnjax's hand-written rule
#
# rnnjax ships this derivation for every cell that has one (simple, LSTM, GRU, linear) as the cell's `vjp_rule`.
# `manual_vjp(cell, params, xs, d_ys)` takes `dL/dy_t` for every step and returns the gradients for the params,
# the inputs and the initial state. Our readout `V` is outside the cell, so we pass the error after it.

# %%
cell = simple_rnn("tanh")
cell_params = {"input_kernel": params["W"], "recurrent_kernel": params["U"], "bias": params["b"]}
d_ys = (outputs - targets) @ params["V"].T  # dL/dh_t from the readout alone
d_params, d_xs, d_h0 = manual_vjp(cell, cell_params, xs, d_ys)
print("rnnjax's rule vs ours, dL/dU:", float(jnp.max(jnp.abs(d_params["recurrent_kernel"] - by_hand["U"]))))
print("                       dL/dW:", float(jnp.max(jnp.abs(d_params["input_kernel"] - by_hand["W"]))))

# %% [markdown]
# In a model you do not call `manual_vjp` yourself: `rnn(..., backward="manual")` makes `jax.grad` use the rule.
# The LSTM's rule is the same idea with four gates (its derivation is in the [BPTT guide](../../bptt/)). Its
# advantage is speed: the weight gradients become a few large matrix products after the reverse loop, instead of
# one small product per step.

# %%
lstm_cell = lstm()
lstm_params = lstm_cell.init(jax.random.key(1), input_size, 32, jnp.float64)
batch = jax.random.normal(jax.random.key(2), (16, 100 if QUICK else 200, input_size), jnp.float64)


def sequence_loss(params, backward):
    ys, _ = rnn(lstm_cell, params, batch, backward=backward)
    return jnp.mean(ys**2)


grad_autodiff = jax.jit(jax.grad(lambda p: sequence_loss(p, "autodiff")))
grad_manual = jax.jit(jax.grad(lambda p: sequence_loss(p, "manual")))
a, m = grad_autodiff(lstm_params), grad_manual(lstm_params)
print("LSTM, manual vs autodiff, largest difference:",
      max(float(jnp.max(jnp.abs(a[name] - m[name]))) for name in a))


def median_ms(function, repeats=5 if QUICK else 15):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(lstm_params))
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


print(f"one gradient, median of a few calls: autodiff {median_ms(grad_autodiff):.1f} ms, "
      f"manual {median_ms(grad_manual):.1f} ms (one machine, noisy; see the benchmarks page)")

# %% [markdown]
# ## What to keep
#
# - BPTT is the chain rule run backwards over time: the error at a step comes from its output and from the next
#   step, and every weight's gradient is a sum over steps.
# - The backward recursion multiplies by `diag(1 - h_t²) Uᵀ` once per step: that product is what vanishes or
#   explodes.
# - `jax.grad` derives the same computation; rnnjax's hand-written rules give the same numbers and can be faster.
#
# The full derivation for every cell is the [BPTT guide](../../bptt/).
