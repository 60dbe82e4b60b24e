"""Unrolling through a cell's hand-written VJP rule: :func:`manual_vjp`, :func:`rnn_manual_vjp` and
:func:`manual_unroll` (what ``rnn(..., backward="manual")`` runs).

The rules themselves live with their cells (:mod:`rnnjax.core.cells`), as the cell's ``vjp_rule``
capability; the derivations are in ``docs/bptt.md``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.checks.arguments import shape_str
from rnnjax.core.bptt.scan import mask_outputs
from rnnjax.core.cell import (
    Capability,
    Carry,
    Cell,
    Cotangents,
    Gradients,
    Params,
    RuleInputs,
    ScanOptions,
    VJPRule,
    require,
)
from rnnjax.core.inputs import (
    Prepared,
    check_carry,
    flatten_carry,
    flatten_steps,
    hoist_projection_default,
    prepare,
    restore_layout,
    unflatten_carry,
)

NEEDS_RULE = "backward='manual' (and the hand-written BPTT of rnnjax.core.bptt) needs one; use backward='autodiff'"


def vjp_rule(cell: Cell) -> VJPRule:
    """The cell's hand-written rule; a ValueError naming the cell when it has none (or a stale one)."""
    return require(cell, Capability.VJP_RULE, NEEDS_RULE)


def manual_vjp(
    cell: Cell,
    params: Params,
    xs: jax.Array,
    d_ys: jax.Array,
    *,
    initial_carry: Carry | None = None,
    lengths: jax.Array | None = None,
    d_final_carry: Carry | None = None,
    hoist_projection: bool | None = None,
) -> tuple[Params, jax.Array, Carry]:
    """Hand-derived vector-Jacobian product of ``rnn(cell, params, xs, ...)``: dL/d(params, xs, h_0).

    Runs the rule's forward pass (storing what its backward needs), then one reverse ``lax.scan``
    of the chain rule and a few large matrix products for the weights.

    Args:
      cell: a cell with a ``vjp_rule`` (simple, LSTM, GRU either convention, linear).
      params: its params.
      xs: ``[*batch, time, input]`` (any number of batch dims, including none).
      d_ys: dL/dys, ``[*batch, time, output]``; ignored at invalid steps (those emit a constant 0).
      initial_carry: as in :func:`rnnjax.core.unroll.rnn` (zeros, batched, or one shared ``[hidden]`` carry).
      lengths: int ``[*batch]``; steps ``t >= length`` hold the carry and emit 0.
      d_final_carry: dL/d(final carry), same structure as the carry; zeros by default.
      hoist_projection: as in :func:`rnnjax.core.unroll.rnn`.

    Returns:
      ``(d_params, d_xs, d_initial_carry)``: d_params has the structure of params, d_xs the
      shape of xs, d_initial_carry the shape of the initial carry that was given (batched
      zeros when none was given). Complex carries use JAX's cotangent convention.
    """
    rule = vjp_rule(cell)
    prepared = prepare(cell, params, xs, lengths=lengths, initial_carry=initial_carry)
    expected = (*prepared.batch_shape, prepared.time_steps, cell.output_size(params))
    if getattr(d_ys, "shape", None) != expected:
        got = getattr(d_ys, "shape", type(d_ys).__name__)
        raise ValueError(f"d_ys: expected shape {shape_str(expected)} (the shape of ys); got {got}")
    d_ys_tb = flatten_steps(jnp.asarray(d_ys, xs.dtype), prepared.batch_shape, time_major=False)
    inputs = RuleInputs(params, prepared.xs, prepared.carry, prepared.valid)
    options = ScanOptions(1, hoist_projection_default(hoist_projection))
    forward = rule.forward(inputs, options)
    if d_final_carry is None:
        d_final = jax.tree.map(jnp.zeros_like, forward.final)
    else:
        d_final = check_carry(cell, params, d_final_carry, prepared.batch_shape, "d_final_carry")
        d_final = flatten_carry(d_final, prepared.batch_shape)
    cotangents = Cotangents(mask_outputs(d_ys_tb, prepared.valid), d_final)
    gradients = rule_vjp(rule, inputs, forward.residuals, cotangents, options)
    d_carry0 = unflatten_carry(gradients.carry0, prepared.batch_shape)
    if initial_carry is not None:  # a shared [hidden] carry gets the sum over the batch
        d_carry0 = jax.tree.map(
            lambda d, given: d.reshape(-1, *jnp.shape(given)).sum(0) if jnp.ndim(given) < d.ndim else d,
            d_carry0,
            initial_carry,
        )
    d_xs, _ = restore_layout(prepared, gradients.xs, (), time_major=False)
    return gradients.params, d_xs, d_carry0


def rule_vjp(rule: VJPRule, inputs: RuleInputs, residuals: Any, cotangents: Cotangents, options: ScanOptions):
    """``rule.vjp``, except that zero time steps give zero gradients (as autodiff does) and pass
    dL/d(final carry) to the initial carry."""
    if inputs.xs.shape[0] == 0:
        return Gradients(jax.tree.map(jnp.zeros_like, inputs.params), jnp.zeros_like(inputs.xs), cotangents.final)
    return rule.vjp(inputs, residuals, cotangents, options)


def manual_unroll(
    cell: Cell, params: Params, prepared: Prepared, *, reverse: bool, options: ScanOptions
) -> tuple[jax.Array, Carry]:
    """The time loop of ``rnn(..., backward="manual")`` on inputs already prepared by
    :func:`rnnjax.core.inputs.prepare` (no resets): ``(ys [time, batch, out], final [batch, ...])``.

    ``reverse`` flips the time axis around a forward pass: walking backwards and skipping invalid
    steps is a forward walk over the flipped sequence and the flipped validity mask.
    """
    rule = vjp_rule(cell)
    if prepared.reset is not None:
        raise ValueError("backward='manual' does not support reset (use backward='autodiff')")
    xs, valid = prepared.xs, prepared.valid
    if reverse:
        xs = jnp.flip(xs, axis=0)
        valid = None if valid is None else jnp.flip(valid, axis=0)
    ys, final = _manual_scan(rule, options, params, xs, prepared.carry, valid)
    return (jnp.flip(ys, axis=0) if reverse else ys), final


def rnn_manual_vjp(
    cell: Cell,
    params: Params,
    xs: jax.Array,
    *,
    lengths: jax.Array | None = None,
    initial_carry: Carry | None = None,
    unroll: int = 1,
    mask: jax.Array | None = None,
    hoist_projection: bool | None = None,
) -> tuple[jax.Array, Carry]:
    """``rnnjax.core.unroll.rnn`` (batch-major) whose gradient is the cell's hand-derived BPTT (a ``jax.custom_vjp``).

    Same arguments, semantics and results as :func:`rnnjax.core.unroll.rnn` with ``time_major=False``
    (``lengths`` or ``mask``; no ``reset``; for ``reverse`` use ``rnn(..., backward="manual")``);
    ``jax.grad`` through it runs the rule's reverse scan on the stored forward quantities.
    """
    vjp_rule(cell)
    prepared = prepare(cell, params, xs, lengths=lengths, mask=mask, initial_carry=initial_carry)
    options = ScanOptions(unroll, hoist_projection_default(hoist_projection))
    ys, final = manual_unroll(cell, params, prepared, reverse=False, options=options)
    return restore_layout(prepared, ys, final, time_major=False)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _manual_scan(rule: VJPRule, options: ScanOptions, params: Params, xs: jax.Array, carry0: Carry, valid):
    """Time-major scan of a cell through its rule's forward pass; differentiated by the rule's vjp."""
    forward = rule.forward(RuleInputs(params, xs, carry0, valid), options)
    return forward.ys, forward.final


def _manual_scan_forward(rule, options, params, xs, carry0, valid):
    inputs = RuleInputs(params, xs, carry0, valid)
    forward = rule.forward(inputs, options)
    return (forward.ys, forward.final), (inputs, forward.residuals)


def _manual_scan_backward(rule, options, saved, cotangents):
    inputs, residuals = saved
    d_ys, d_final = cotangents
    cotangents = Cotangents(mask_outputs(d_ys, inputs.valid), d_final)
    gradients = rule_vjp(rule, inputs, residuals, cotangents, options)
    return gradients.params, gradients.xs, gradients.carry0, None


_manual_scan.defvjp(_manual_scan_forward, _manual_scan_backward)
