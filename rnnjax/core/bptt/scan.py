"""Shared machinery of the hand-written BPTT rules: masked forward and reverse scans.

Everything here works on time-major, flat-batch arrays: inputs ``[time, batch, ...]``,
carries ``[batch, ...]`` and a validity mask ``valid: bool [time, batch]`` (or None when
every step is valid). An invalid step holds the carry and emits zero (as in
:func:`rnnjax.core.unroll.rnn`), so in the reverse pass it hands the carry cotangent
through unchanged and contributes nothing to any other gradient.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from rnnjax.core.cell import Carry


def where_steps(valid_t: jax.Array, new: Any, old: Any) -> Any:
    """Per-example select over a pytree: ``valid_t`` is [batch], leaves are [batch, ...]."""

    def select(a, b):
        return jnp.where(valid_t.reshape(valid_t.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(select, new, old)


def forward_scan(
    step: Callable[[Carry, Any], tuple[Carry, Any]],
    carry0: Carry,
    inputs: Any,
    valid: jax.Array | None,
    unroll: int,
) -> tuple[Carry, Carry, Any]:
    """Scan ``step(carry, input_t) -> (carry, extra_t)`` over time, holding the carry at invalid steps.

    Returns:
      ``(final, carries, extras)``: ``carries[t]`` is the (held) carry after step t.
    """

    def body(carry, scanned):
        inputs_t, valid_t = scanned
        new, extra = step(carry, inputs_t)
        if valid_t is not None:
            new = where_steps(valid_t, new, carry)
        return new, (new, extra)

    final, (carries, extras) = jax.lax.scan(body, carry0, (inputs, valid), unroll=unroll)
    return final, carries, extras


def reverse_scan(
    step_back: Callable[[Carry, Any], tuple[Carry, Any]],
    d_final: Carry,
    scanned: Any,
    valid: jax.Array | None,
    unroll: int,
) -> tuple[Carry, Any]:
    """Reverse scan ``step_back(d_carry_t, scanned_t) -> (d_carry_{t-1}, emitted_t)``.

    At invalid steps the carry cotangent passes through and ``emitted_t`` is zero.
    Returns ``(d_carry0, emitted)`` with ``emitted`` stacked over time.
    """

    def body(d_carry, inputs):
        scanned_t, valid_t = inputs
        d_prev, emitted = step_back(d_carry, scanned_t)
        if valid_t is not None:
            d_prev = where_steps(valid_t, d_prev, d_carry)
            emitted = where_steps(valid_t, emitted, jax.tree.map(jnp.zeros_like, emitted))
        return d_prev, emitted

    return jax.lax.scan(body, d_final, (scanned, valid), reverse=True, unroll=unroll)


def previous(carries: Carry, carry0: Carry) -> Carry:
    """The carry entering each step: ``[carry0, carries[0], ..., carries[T-2]]``."""
    return jax.tree.map(lambda c, c0: jnp.concatenate([c0[None], c[:-1]], axis=0), carries, carry0)


def contract(a: jax.Array, b: jax.Array) -> jax.Array:
    """sum_{t,b} a[t,b,:]^T b[t,b,:]: one [m, T*B] @ [T*B, n] matrix product."""
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


def mask_outputs(ys: jax.Array, valid: jax.Array | None) -> jax.Array:
    """Zero ``ys: [time, batch, out]`` at invalid steps."""
    if valid is None:
        return ys
    return jnp.where(valid[..., None], ys, jnp.zeros_like(ys))


def sum_steps(values: jax.Array) -> jax.Array:
    """Sum ``[time, batch, n]`` over time and batch (a bias gradient)."""
    return values.sum(axis=(0, 1))


def input_projection(
    xs: jax.Array, kernel: jax.Array, bias: jax.Array, hoist: bool
) -> tuple[Any, Callable[[Any], jax.Array]]:
    """``(scanned, project)`` so that ``project(scanned[t]) == xs[t] @ kernel + bias`` inside the loop.

    ``hoist`` (``ScanOptions.hoist_projection``, chosen like :func:`rnnjax.core.unroll.rnn` does):
    project all steps at once before the loop (one large product), or each step inside the loop,
    which measured faster on XLA CPU (see ``benchmarks/README.md``).
    """
    if hoist:
        return xs @ kernel + bias, lambda u: u
    return xs, lambda x: x @ kernel + bias


def materialized_transpose(kernel: jax.Array) -> jax.Array:
    """``kernel.T`` as an array of its own for products inside the reverse scan.

    Without the barrier XLA folds the transpose into each per-step product (a contraction
    over the kernel's last dimension), which ran 1.2x (B=32, H=256) to 1.6x (B=8, H=128)
    slower on XLA CPU than a product with the transposed copy made once before the loop.
    """
    return jax.lax.optimization_barrier(kernel.T)
