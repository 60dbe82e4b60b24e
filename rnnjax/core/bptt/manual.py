"""Public entry points of the hand-written BPTT: :func:`backward` and :func:`rnn_manual_vjp`."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.core.bptt.gated import LSTM_RULE, gru_rule
from rnnjax.core.bptt.scan import Rule, mask_outputs
from rnnjax.core.bptt.ungated import linear_rule, simple_rule
from rnnjax.core.cells import Activation, Cell, GRUConvention, LinearKind, Params
from rnnjax.core.unroll import _shape_str, _validate_carry, _validate_inputs, _validate_lengths, _validate_steps

Carry = Any

_KERNEL_KEYS = {"input_kernel", "recurrent_kernel", "bias"}
_GRU_KEYS = {"input_kernel", "recurrent_kernel", "input_bias", "recurrent_bias"}
_LINEAR_KEYS = {"B", "C", "D"}

# cell.name -> (hand-derived rule, the parameter keys it expects)
RULES: dict[str, tuple[Rule, set[str]]] = {
    "simple_tanh": (simple_rule(Activation.TANH), _KERNEL_KEYS),
    "simple_relu": (simple_rule(Activation.RELU), _KERNEL_KEYS),
    "lstm": (LSTM_RULE, _KERNEL_KEYS),
    "gru_pytorch": (gru_rule(GRUConvention.PYTORCH), _GRU_KEYS),
    "gru_cho": (gru_rule(GRUConvention.CHO), _GRU_KEYS),
    "linear_dense": (linear_rule(LinearKind.DENSE), _LINEAR_KEYS | {"A"}),
    "linear_diagonal": (linear_rule(LinearKind.DIAGONAL), _LINEAR_KEYS | {"a"}),
    "linear_complex_diagonal": (
        linear_rule(LinearKind.COMPLEX_DIAGONAL),
        _LINEAR_KEYS | {"log_decay", "phase", "B_imag", "C_imag"},
    ),
}


def rule_for(cell: Cell, params: Params) -> Rule:
    """The hand-derived rule of ``cell``; a clear ValueError for cells (or params) it does not know."""
    if cell.name not in RULES:
        raise ValueError(f"cell: no hand-written BPTT for cell {cell.name!r}; supported cells are {sorted(RULES)}")
    rule, keys = RULES[cell.name]
    if not isinstance(params, dict) or set(params) != keys:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params: a {cell.name!r} cell expects keys {sorted(keys)}; got {got}")
    return rule


def prepare_inputs(
    cell: Cell, params: Params, xs: jax.Array, lengths: Any, initial_carry: Carry, mask: Any = None
):  # fmt: skip
    """Validate the inputs like ``rnn`` and bring them to time-major, flat-batch form."""
    if lengths is not None and mask is not None:
        raise ValueError("give either lengths or mask, not both")
    batch_shape, time_steps = _validate_inputs(cell, params, xs, time_major=False)
    batch = math.prod(batch_shape)
    valid = None
    if lengths is not None:
        lengths = _validate_lengths(lengths, batch_shape, time_steps)
        valid = jnp.arange(time_steps)[:, None] < lengths.reshape(1, batch)  # [time, batch]
    if mask is not None:
        valid = _validate_steps("mask", mask, batch_shape, time_steps).reshape(batch, time_steps).T
    if initial_carry is None:
        initial_carry = cell.initial_carry(params, batch_shape)
    else:
        initial_carry = _validate_carry(cell, params, initial_carry, batch_shape)
    carry0 = jax.tree.map(lambda leaf: leaf.reshape(batch, *leaf.shape[len(batch_shape) :]), initial_carry)
    return batch_shape, time_steps, _to_time_major(xs, batch), carry0, valid


def _to_time_major(values: jax.Array, batch: int) -> jax.Array:
    """[*batch, time, n] -> [time, batch, n]."""
    values = jnp.moveaxis(values, -2, 0)
    return values.reshape(values.shape[0], batch, values.shape[-1])


def _to_batch_major(values: jax.Array, batch_shape: tuple[int, ...]) -> jax.Array:
    """[time, batch, n] -> [*batch, time, n]."""
    return jnp.moveaxis(values.reshape(values.shape[0], *batch_shape, values.shape[-1]), 0, -2)


def _unflatten_carry(carry: Carry, batch_shape: tuple[int, ...]) -> Carry:
    return jax.tree.map(lambda leaf: leaf.reshape(*batch_shape, *leaf.shape[1:]), carry)


def backward(
    cell: Cell,
    params: Params,
    xs: jax.Array,
    d_ys: jax.Array,
    *,
    initial_carry: Carry | None = None,
    lengths: jax.Array | None = None,
    d_final_carry: Carry | None = None,
) -> tuple[Params, jax.Array, Carry]:
    """Hand-derived vector-Jacobian product of ``rnn(cell, params, xs, ...)``: dL/d(params, xs, h_0).

    Runs the forward pass (storing what the backward needs), then one reverse
    ``lax.scan`` of the chain rule and a few large matrix products for the weights.

    Args:
      cell: a cell from :mod:`rnnjax.core.cells` (simple, LSTM, GRU either convention, linear).
      params: its params.
      xs: ``[*batch, time, input]`` (any number of batch dims, including none).
      d_ys: dL/dys, ``[*batch, time, output]``; ignored at invalid steps (those emit a constant 0).
      initial_carry: as in :func:`rnnjax.core.unroll.rnn` (zeros, batched, or one shared ``[hidden]`` carry).
      lengths: int ``[*batch]``; steps ``t >= length`` hold the carry and emit 0.
      d_final_carry: dL/d(final carry), same structure as the carry; zeros by default.

    Returns:
      ``(d_params, d_xs, d_initial_carry)``: d_params has the structure of params, d_xs the
      shape of xs, d_initial_carry the shape of the initial carry that was given (batched
      zeros when none was given). Complex carries use JAX's cotangent convention.
    """
    rule = rule_for(cell, params)
    batch_shape, time_steps, xs_tb, carry0, valid = prepare_inputs(cell, params, xs, lengths, initial_carry)
    expected = (*batch_shape, time_steps, cell.output_size(params))
    if getattr(d_ys, "shape", None) != expected:
        got = getattr(d_ys, "shape", type(d_ys).__name__)
        raise ValueError(f"d_ys: expected shape {_shape_str(expected)} (the shape of ys); got {got}")
    batch = xs_tb.shape[1]
    d_ys_tb = mask_outputs(_to_time_major(jnp.asarray(d_ys, xs.dtype), batch), valid)
    _, final, residuals = rule.forward(params, xs_tb, carry0, valid, 1)
    if d_final_carry is None:
        d_final = jax.tree.map(jnp.zeros_like, final)
    else:
        d_final = _validate_carry(cell, params, d_final_carry, batch_shape)
        d_final = jax.tree.map(lambda leaf: leaf.reshape(batch, *leaf.shape[len(batch_shape) :]), d_final)
    d_params, d_xs_tb, d_carry0 = rule.backward(params, xs_tb, carry0, residuals, d_ys_tb, d_final, valid, 1)
    d_carry0 = _unflatten_carry(d_carry0, batch_shape)
    if initial_carry is not None:  # a shared [hidden] carry gets the sum over the batch
        d_carry0 = jax.tree.map(
            lambda d, given: d.reshape(-1, *jnp.shape(given)).sum(0) if jnp.ndim(given) < d.ndim else d,
            d_carry0,
            initial_carry,
        )
    return d_params, _to_batch_major(d_xs_tb, batch_shape), d_carry0


def rnn_manual_vjp(
    cell: Cell,
    params: Params,
    xs: jax.Array,
    *,
    lengths: jax.Array | None = None,
    initial_carry: Carry | None = None,
    unroll: int = 1,
    mask: jax.Array | None = None,
) -> tuple[jax.Array, Carry]:
    """``rnnjax.core.unroll.rnn`` (batch-major) whose gradient is the hand-derived BPTT (a ``jax.custom_vjp``).

    Same arguments, semantics and results as :func:`rnnjax.core.unroll.rnn` with ``time_major=False``
    (``lengths`` or ``mask``; no ``reset``; for ``reverse`` use ``rnn(..., backward="manual")``);
    ``jax.grad`` through it runs :func:`backward`'s reverse scan on the stored forward quantities.
    """
    rule_for(cell, params)
    batch_shape, _, xs_tb, carry0, valid = prepare_inputs(cell, params, xs, lengths, initial_carry, mask)
    ys_tb, final = _manual_rnn(cell.name, unroll, params, xs_tb, carry0, valid)
    return _to_batch_major(ys_tb, batch_shape), _unflatten_carry(final, batch_shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _manual_rnn(name: str, unroll: int, params: Params, xs: jax.Array, carry0: Carry, valid: jax.Array | None):
    """Time-major scan of the named cell; differentiated by its hand-derived rule."""
    ys, final, _ = RULES[name][0].forward(params, xs, carry0, valid, unroll)
    return ys, final


def _manual_rnn_forward(name, unroll, params, xs, carry0, valid):
    ys, final, residuals = RULES[name][0].forward(params, xs, carry0, valid, unroll)
    return (ys, final), (params, xs, carry0, residuals, valid)


def _manual_rnn_backward(name, unroll, saved, cotangents):
    params, xs, carry0, residuals, valid = saved
    d_ys, d_final = cotangents
    d_ys = mask_outputs(d_ys, valid)
    d_params, d_xs, d_carry0 = RULES[name][0].backward(params, xs, carry0, residuals, d_ys, d_final, valid, unroll)
    return d_params, d_xs, d_carry0, None


_manual_rnn.defvjp(_manual_rnn_forward, _manual_rnn_backward)
