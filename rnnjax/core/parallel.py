"""Parallel-in-time unrolling of linear recurrences with ``jax.lax.associative_scan``.

A cell whose carry update is linear in the carry, with coefficients that do not
depend on the carry,

    h_t = a_t * h_{t-1} + b_t      (diagonal, real or complex), or
    h_t = A_t h_{t-1} + b_t        (dense),

can be unrolled in O(log T) depth: the pairs (a_t, b_t) compose associatively,
(a_1, b_1) then (a_2, b_2) = (a_2 a_1, a_2 b_1 + b_2). :func:`parallel_rnn` has
the interface of :func:`rnnjax.core.unroll.rnn` (lengths, mask, resets, reverse,
initial carry) and gives the same results up to floating-point reassociation.

Cells with such a form carry it as their ``linear_form`` capability: the three linear
cells and the gated linear cells :func:`~rnnjax.core.cells.min_gru` and
:func:`~rnnjax.core.cells.min_lstm` of :mod:`rnnjax.core.cells`. Their ``step`` is the
ordinary sequential path.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.core.cell import Capability, Cell, LinearForm, Params, require
from rnnjax.core.inputs import prepare, restore_layout
from rnnjax.core.unroll import rnn

NEEDS_FORM = (
    "parallel_rnn needs a cell whose update is linear in the carry (linear_rnn, min_gru, min_lstm); "
    "use rnnjax.core.unroll.rnn for the others"
)


def linear_form(cell: Cell) -> LinearForm:
    """The linear form of ``cell``; a ValueError naming the cell for cells without one (LSTM, GRU, ...)."""
    return require(cell, Capability.LINEAR_FORM, NEEDS_FORM)


# --------------------------------------------------------------------------- the associative scan


def _combine_diagonal(earlier, later):
    a1, b1 = earlier
    a2, b2 = later
    return a2 * a1, a2 * b1 + b2


def _combine_dense(earlier, later):
    a1, b1 = earlier
    a2, b2 = later
    return a2 @ a1, jnp.einsum("...ij,...j->...i", a2, b1) + b2


def _apply(dense: bool, a: jax.Array, h: jax.Array) -> jax.Array:
    return jnp.einsum("...ij,...j->...i", a, h) if dense else a * h


def _masked_elements(dense, a, b, h0, valid, reset, reverse):
    """Elements (a_t, b_t) [time, batch, ...] with invalid steps as identities, resets
    and the initial carry folded in, so that the scan of the elements is the carry."""
    hidden = b.shape[-1]
    shape = b.shape[:2] + ((hidden, hidden) if dense else (hidden,))
    identity = jnp.eye(hidden, dtype=b.dtype) if dense else jnp.ones((), b.dtype)
    a = jnp.broadcast_to(a, shape).astype(jnp.result_type(a, b))
    tail = (1, 1) if dense else (1,)
    if valid is not None:
        a = jnp.where(valid.reshape(valid.shape + tail), a, identity)
        b = jnp.where(valid[..., None], b, jnp.zeros((), b.dtype))
    if reset is not None:
        b = jnp.where(reset[..., None], _apply(dense, a, h0) + b, b)
        a = jnp.where(reset.reshape(reset.shape + tail), jnp.zeros((), a.dtype), a)
    first = -1 if reverse else 0
    b = b.at[first].set(_apply(dense, a[first], h0) + b[first])
    a = a.at[first].set(jnp.zeros_like(a[first]))
    return a, b


def parallel_rnn(
    cell: Cell,
    params: Params,
    xs: jax.Array,
    *,
    lengths: jax.Array | None = None,
    mask: jax.Array | None = None,
    initial_carry: Any = None,
    reset: jax.Array | None = None,
    reverse: bool = False,
    time_major: bool = False,
) -> tuple[jax.Array, Any]:
    """:func:`rnnjax.core.unroll.rnn` for cells with a linear recurrence, with O(log T) depth.

    Same arguments and results as :func:`rnnjax.core.unroll.rnn` (``xs``:
    ``[*batch, time, input]``; ys are zero at invalid steps; the final carry is
    the carry after the last processed valid step). Work is O(T) for diagonal
    cells and O(T hidden^3) for the dense linear cell.
    """
    form = linear_form(cell)
    arrays = {"lengths": lengths, "mask": mask, "initial_carry": initial_carry, "reset": reset}
    prepared = prepare(cell, params, xs, **arrays, reverse=reverse, time_major=time_major)
    if prepared.time_steps == 0:
        return rnn(cell, params, xs, initial_carry=initial_carry, time_major=time_major)
    u = cell.project(params, prepared.xs)  # [time, batch, ...]
    valid = prepared.valid
    a, b = form.coefficients(params, u)
    a, b = _masked_elements(form.dense, a, b, prepared.carry, valid, prepared.reset, reverse)
    combine = _combine_dense if form.dense else _combine_diagonal
    _, hs = jax.lax.associative_scan(combine, (a, b), reverse=reverse, axis=0)
    ys = form.readout(params, hs, u)
    if valid is not None:
        ys = jnp.where(valid[..., None], ys, jnp.zeros((), ys.dtype))
    return restore_layout(prepared, ys, hs[0] if reverse else hs[-1], time_major)
