"""Parallel-in-time unrolling of linear recurrences with ``jax.lax.associative_scan``.

A cell whose carry update is linear in the carry, with coefficients that do not
depend on the carry,

    h_t = a_t * h_{t-1} + b_t      (diagonal, real or complex), or
    h_t = A_t h_{t-1} + b_t        (dense),

can be unrolled in O(log T) depth: the pairs (a_t, b_t) compose associatively,
(a_1, b_1) then (a_2, b_2) = (a_2 a_1, a_2 b_1 + b_2). :func:`parallel_rnn` has
the interface of :func:`rnnjax.core.unroll.rnn` (lengths, mask, resets, reverse,
initial carry) and gives the same results up to floating-point reassociation.

Cells with such a form: the three linear cells of :mod:`rnnjax.core.cells` and the
gated linear cells :func:`min_gru` and :func:`min_lstm` defined here (Feng et al.
2024, "Were RNNs All We Needed?"), whose gates read only the input. Their
``step`` is the ordinary sequential path.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax.core.cells import Cell, Params, _check_sizes, _make_cell, default_input_init, linear_eigenvalues
from rnnjax.core.unroll import prepare, restore_layout, rnn


class Recurrence(NamedTuple):
    """Linear form of a cell: ``recur(p, h, u) == (a * h + b, readout(p, a * h + b, u))``.

    Attributes:
      dense: True when ``a`` is a matrix acting as ``a @ h`` ([..., hidden, hidden]).
      coefficients: ``coefficients(params, u) -> (a, b)`` for projected inputs ``u``
        with any leading dims; ``a`` may broadcast against ``b`` ([..., hidden]).
      readout: ``readout(params, h, u) -> y`` from the new carry.
    """

    dense: bool
    coefficients: Callable[[Params, Any], tuple[jax.Array, jax.Array]]
    readout: Callable[[Params, jax.Array, Any], jax.Array]


# --------------------------------------------------------------------------- gated linear cells


def min_gru(*, input_init=None, bias_init=jax.nn.initializers.zeros) -> Cell:
    """minGRU: z = sigmoid(x W_z + b_z), c = x W_h + b_h, h' = (1 - z) * h + z * c, y = h'."""
    input_init = input_init or default_input_init()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        _check_sizes(input_size, hidden_size)
        k_in, k_bias = jax.random.split(key)
        return {
            "input_kernel": input_init(k_in, (input_size, 2 * hidden_size), dtype),
            "bias": bias_init(k_bias, (2 * hidden_size,), dtype),
        }

    def recur(params, carry, u):
        a, b = _min_gru_coefficients(params, u)
        h = a * carry + b
        return h, h

    return _gated_cell("min_gru", init, recur, gates=2)


def min_lstm(*, forget_bias: float = 1.0, input_init=None, bias_init=jax.nn.initializers.zeros) -> Cell:
    """minLSTM: f, i = sigmoid(x W_f + b_f), sigmoid(x W_i + b_i); c = x W_h + b_h;
    h' = f / (f + i) * h + i / (f + i) * c, y = h'."""
    input_init = input_init or default_input_init()

    def init(key, input_size, hidden_size, dtype=jnp.float32):
        _check_sizes(input_size, hidden_size)
        k_in, k_bias = jax.random.split(key)
        bias = bias_init(k_bias, (3 * hidden_size,), dtype)
        return {
            "input_kernel": input_init(k_in, (input_size, 3 * hidden_size), dtype),
            "bias": bias.at[:hidden_size].add(jnp.asarray(forget_bias, dtype)),
        }

    def recur(params, carry, u):
        a, b = _min_lstm_coefficients(params, u)
        h = a * carry + b
        return h, h

    return _gated_cell("min_lstm", init, recur, gates=3)


def _gated_cell(name: str, init, recur, gates: int) -> Cell:
    def project(params, x):
        return x @ params["input_kernel"] + params["bias"]

    def initial_carry(params, batch_shape=()):
        hidden = params["bias"].shape[0] // gates
        return jnp.zeros((*tuple(batch_shape), hidden), params["bias"].dtype)

    return _make_cell(
        name,
        init,
        project,
        recur,
        initial_carry,
        hidden_size=lambda params: params["bias"].shape[0] // gates,
        input_size=lambda params: params["input_kernel"].shape[0],
    )


def _min_gru_coefficients(params, u):
    z_pre, candidate = jnp.split(u, 2, axis=-1)
    z = jax.nn.sigmoid(z_pre)
    return 1.0 - z, z * candidate


def _min_lstm_coefficients(params, u):
    f_pre, i_pre, candidate = jnp.split(u, 3, axis=-1)
    log_f, log_i = jax.nn.log_sigmoid(f_pre), jax.nn.log_sigmoid(i_pre)
    # f / (f + i) = sigmoid(log f - log i), computed without underflow.
    return jax.nn.sigmoid(log_f - log_i), jax.nn.sigmoid(log_i - log_f) * candidate


def _identity_readout(params, h, u):
    return h


# --------------------------------------------------------------------------- linear cells of rnnjax.core.cells


def _linear_coefficients(params, u):
    bx, _ = u
    if "A" in params:
        return params["A"], bx
    return linear_eigenvalues(params), bx


def _linear_readout(params, h, u):
    _, dx = u
    if "C_imag" in params:
        return h.real @ params["C"].T - h.imag @ params["C_imag"].T + dx
    return h @ params["C"].T + dx


_RECURRENCES = {
    "min_gru": Recurrence(False, _min_gru_coefficients, _identity_readout),
    "min_lstm": Recurrence(False, _min_lstm_coefficients, _identity_readout),
    "linear_dense": Recurrence(True, _linear_coefficients, _linear_readout),
    "linear_diagonal": Recurrence(False, _linear_coefficients, _linear_readout),
    "linear_complex_diagonal": Recurrence(False, _linear_coefficients, _linear_readout),
}


def recurrence(cell: Cell) -> Recurrence:
    """The linear form of ``cell``; raises ValueError for cells without one (LSTM, GRU, ...)."""
    if cell.name not in _RECURRENCES:
        raise ValueError(
            f"cell must have a linear recurrence (one of {sorted(_RECURRENCES)}) to be unrolled in "
            f"parallel; got cell {cell.name!r}"
        )
    return _RECURRENCES[cell.name]


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
    form = recurrence(cell)
    prepared = prepare(
        cell, params, xs, lengths=lengths, mask=mask, initial_carry=initial_carry, reset=reset,
        reverse=reverse, time_major=time_major,
    )  # fmt: skip
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
