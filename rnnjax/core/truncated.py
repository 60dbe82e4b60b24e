"""Truncated backpropagation through time, TBPTT(k1, k2) (Williams & Peng 1990).

Semantics (``xs: [batch, time, input]``, ``time = n * k1``):

* the sequence is cut into ``n`` chunks of ``k1`` steps; chunk ``j`` covers steps
  ``[j k1, (j+1) k1)`` and has the loss ``L_j = loss_fn(ys[:, chunk j], targets[:, chunk j])``;
* the gradient of ``L_j`` is taken through the last ``k2 >= k1`` steps before the chunk
  end ``s = (j+1) k1`` only: the carry entering step ``max(0, s - k2)`` is a constant
  (``stop_gradient``). Every output of the chunk therefore sees ``k2 - k1`` to ``k2``
  steps of history; nothing before ``s - k2`` contributes to the gradient of ``L_j``;
* all chunks use the same params (one gradient per chunk, returned stacked), so the
  result can be summed into one truncated-gradient update, or used chunk by chunk.

``k1 == k2`` is the common "carry the state, cut the graph at chunk boundaries" scheme;
for a training loop that updates the params after every chunk, use
:func:`chunk_value_and_grad` in a Python loop over the chunks.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from rnnjax.checks.arguments import positive_int
from rnnjax.core.cell import Carry, Cell, Params
from rnnjax.core.inputs import prepare
from rnnjax.core.unroll import rnn

LossFn = Callable[[jax.Array, Any], jax.Array]


def chunk_value_and_grad(
    loss_fn: LossFn,
    cell: Cell,
    params: Params,
    carry: Carry | None,
    xs: jax.Array,
    targets: Any,
    *,
    forward: Callable[..., tuple[jax.Array, Carry]] = rnn,
) -> tuple[tuple[jax.Array, Carry], Params]:
    """One TBPTT(k, k) step: L = loss_fn(ys, targets) over a chunk, with the entering carry a constant.

    Args:
      loss_fn: ``loss_fn(ys [batch, k, out], targets) -> scalar``.
      carry: the carry left by the previous chunk (None: zeros).
      xs: the chunk, ``[batch, k, input]``.
      forward: ``rnn`` or ``rnnjax.core.bptt.rnn_manual_vjp`` (same signature).

    Returns:
      ``((loss, carry_out), grads)``; ``carry_out`` is detached, ready for the next chunk.
    """
    if carry is not None:
        carry = jax.lax.stop_gradient(carry)

    def chunk_loss(p):
        ys, final = forward(cell, p, xs, initial_carry=carry)
        return loss_fn(ys, targets), final

    (loss, final), grads = jax.value_and_grad(chunk_loss, has_aux=True)(params)
    return (loss, jax.lax.stop_gradient(final)), grads


def _check_windows(k1: Any, k2: Any, time_steps: int) -> None:
    k1, k2 = positive_int("k1", k1), positive_int("k2", k2)
    if k2 < k1:
        raise ValueError(f"k2 must be >= k1 (every output needs its own step in the window); got k1={k1}, k2={k2}")
    if time_steps % k1:
        raise ValueError(f"the number of time steps ({time_steps}) must be a multiple of k1={k1}")


def carry_history(cell: Cell, params: Params, xs: jax.Array, carry0: Carry) -> Carry:
    """Carries h_0 .. h_T of ``xs: [batch, time, input]``, leaves ``[time + 1, batch, ...]`` (no lengths)."""
    step = jax.vmap(cell.step, in_axes=(None, 0, 0))

    def body(carry, x_t):
        carry, _ = step(params, carry, x_t)
        return carry, carry

    _, carries = jax.lax.scan(body, carry0, jnp.moveaxis(xs, 1, 0))
    return jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest], axis=0), carry0, carries)


def truncated_bptt_grads(
    loss_fn: LossFn,
    cell: Cell,
    params: Params,
    xs: jax.Array,
    targets: Any,
    k1: int,
    k2: int,
    *,
    initial_carry: Carry | None = None,
    forward: Callable[..., tuple[jax.Array, Carry]] = rnn,
) -> tuple[jax.Array, Params, Carry]:
    """TBPTT(k1, k2) gradients of every chunk loss (semantics in the module docstring).

    Args:
      loss_fn: ``loss_fn(ys [batch, k1, out], targets [batch, k1, ...]) -> scalar``.
      xs: ``[batch, time, input]`` with ``time`` a multiple of ``k1``.
      targets: pytree of ``[batch, time, ...]`` arrays, cut like xs.
      k1: steps per chunk (between updates); k2: steps backpropagated through (``k2 >= k1``).
      initial_carry: carry before step 0 (zeros by default).
      forward: ``rnn`` or ``rnnjax.core.bptt.rnn_manual_vjp``.

    Returns:
      ``(losses [n], grads, final_carry)``: grads has the params structure with a leading
      chunk axis ``[n, ...]``; ``sum(grads)`` is one truncated gradient of ``sum(losses)``.
    """
    prepared = prepare(cell, params, xs, initial_carry=initial_carry)
    if len(prepared.batch_shape) != 1:
        raise ValueError(f"xs must have shape [batch, time, input]; got {xs.shape}")
    time_steps = prepared.time_steps
    _check_windows(k1, k2, time_steps)
    carries = carry_history(cell, params, xs, prepared.carry)
    carries = jax.lax.stop_gradient(carries)
    window = min(k2, time_steps)
    chunk_ends = jnp.arange(1, time_steps // k1 + 1) * k1
    starts = jnp.maximum(chunk_ends - window, 0)  # the window [start, start + window) contains chunk j

    def one_chunk(end, start):
        xs_window = jax.lax.dynamic_slice_in_dim(xs, start, window, axis=1)
        chunk_targets = jax.tree.map(lambda t: jax.lax.dynamic_slice_in_dim(t, end - k1, k1, axis=1), targets)
        carry = jax.tree.map(lambda c: c[start], carries)

        def chunk_loss(p):
            ys, _ = forward(cell, p, xs_window, initial_carry=carry)
            return loss_fn(jax.lax.dynamic_slice_in_dim(ys, end - k1 - start, k1, axis=1), chunk_targets)

        return jax.value_and_grad(chunk_loss)(params)

    losses, grads = jax.vmap(one_chunk)(chunk_ends, starts)
    return losses, grads, jax.tree.map(lambda c: c[-1], carries)
