"""Validated, flattened inputs shared by every unroller (sequential scan, hand-written BPTT, associative scan,
truncated BPTT), so that all of them apply the same rules.

:func:`prepare` checks the arguments of :func:`rnnjax.core.unroll.rnn` and brings them to time-major form
with one flat batch axis; :func:`restore_layout` undoes it for the outputs. Inputs at invalid steps
(``t >= length``, or ``mask`` False) are replaced by zeros, so that padding never reaches a cell's
arithmetic: a NaN or inf there changes neither the outputs nor any gradient.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.checks import values as value_checks
from rnnjax.checks.arguments import is_concrete, shape_str
from rnnjax.core.cell import Carry, Cell, Params, check_params


def hoist_projection_default(hoist_projection: bool | None) -> bool:
    """``hoist_projection`` if given; otherwise True except on XLA CPU, where projecting inside the loop
    measured faster (on accelerators one large product before the loop wins; ``benchmarks/README.md``)."""
    if hoist_projection is None:
        return jax.default_backend() != "cpu"
    if not isinstance(hoist_projection, bool):
        raise TypeError(f"hoist_projection must be True, False or None; got {hoist_projection!r}")
    return hoist_projection


def check_xs(cell: Cell, params: Params, xs: Any, time_major: bool) -> tuple[tuple[int, ...], int]:
    """Check xs against the cell; return (batch_shape, time_steps)."""
    if not hasattr(xs, "shape") or xs.ndim < 2:
        raise ValueError(
            "xs must have shape [*batch, time, features] (or [time, *batch, features] with "
            f"time_major=True); got shape {getattr(xs, 'shape', type(xs).__name__)}"
        )
    if not jnp.issubdtype(xs.dtype, jnp.floating):
        raise TypeError(f"xs must be a floating-point array; got dtype {xs.dtype}")
    carry_dtype = jax.tree.leaves(cell.initial_carry(params))[0].dtype
    xs_dtype = jax.dtypes.canonicalize_dtype(xs.dtype)
    if jnp.promote_types(carry_dtype, xs_dtype) != carry_dtype:
        raise TypeError(
            f"xs: expected a dtype no wider than the cell's {jnp.dtype(carry_dtype).name} carry "
            f"(cast xs or the params); got dtype {xs_dtype.name}"
        )
    expected = cell.input_size(params)
    if xs.shape[-1] != expected:
        raise ValueError(
            f"xs: expected feature size {expected} (the cell's input size) in the last axis; "
            f"got xs.shape={shape_str(xs.shape)} with feature size {xs.shape[-1]}"
        )
    if time_major:
        return tuple(xs.shape[1:-1]), xs.shape[0]
    return tuple(xs.shape[:-2]), xs.shape[-2]


def check_lengths(lengths: Any, batch_shape: tuple[int, ...], time_steps: int) -> jax.Array:
    """Integer lengths of the batch shape, in [0, time_steps].

    Checked now when concrete; traced values are checked only inside :func:`rnnjax.checks.values.checked` (elsewhere
    they act as if clipped to [0, time_steps]: steps at or beyond the length are padding either way).
    """
    lengths = jnp.asarray(lengths)
    if not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise TypeError(f"lengths must be an integer array; got dtype {lengths.dtype}")
    if lengths.shape != batch_shape:
        raise ValueError(
            f"lengths: expected shape {shape_str(batch_shape)} (the batch shape of xs); got {shape_str(lengths.shape)}"
        )
    if is_concrete(lengths) and lengths.size:
        # On the host: a concrete array closed over by a jitted function would trace jnp.min.
        values = np.asarray(lengths)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high > time_steps:
            raise ValueError(
                f"lengths must lie in [0, {time_steps}] (the number of time steps); got values in [{low}, {high}]"
            )
    elif lengths.size:
        value_checks.lengths_in_range("lengths", lengths, time_steps)  # a checkify check in checked mode only
    return lengths


def check_steps(argument: str, value: Any, batch_shape: tuple[int, ...], time_steps: int) -> jax.Array:
    """A boolean ``[*batch, time]`` array (a mask or resets)."""
    value = jnp.asarray(value)
    expected = (*batch_shape, time_steps)
    if value.dtype != jnp.bool_:
        raise TypeError(f"{argument} must be a boolean array of shape {shape_str(expected)}; got dtype {value.dtype}")
    if value.shape != expected:
        raise ValueError(
            f"{argument}: expected shape {shape_str(expected)} ([*batch, time]); got {shape_str(value.shape)}"
        )
    return value


def check_carry(
    cell: Cell, params: Params, carry: Carry, batch_shape: tuple[int, ...], argument: str = "initial_carry"
) -> Carry:
    """Accept a carry of batch shape, or an unbatched one (broadcast explicitly); cast to the carry dtype."""
    reference = cell.initial_carry(params, batch_shape)
    single = cell.initial_carry(params, ())
    ref_leaves, ref_tree = jax.tree.flatten(reference)
    try:
        leaves = ref_tree.flatten_up_to(carry)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{argument} must have the structure {ref_tree}; got {jax.tree.structure(carry)}") from error
    out = []
    for leaf, ref, one in zip(leaves, ref_leaves, jax.tree.leaves(single)):
        leaf = jnp.asarray(leaf)
        if leaf.shape == one.shape and batch_shape:
            leaf = jnp.broadcast_to(leaf, ref.shape)
        if leaf.shape != ref.shape:
            raise ValueError(
                f"{argument}: expected shape {shape_str(ref.shape)} ([*batch, hidden]) or "
                f"{shape_str(one.shape)}; got {shape_str(leaf.shape)}"
            )
        out.append(leaf.astype(ref.dtype))
    return jax.tree.unflatten(ref_tree, out)


class Prepared(NamedTuple):
    """Validated inputs of an unroll, flattened to one batch axis (see :func:`prepare`)."""

    batch_shape: tuple[int, ...]
    time_steps: int
    xs: jax.Array  # [time, batch, input], zero at invalid steps
    valid: jax.Array | None  # bool [time, batch]
    reset: jax.Array | None  # bool [time, batch], already in processing order
    carry: Carry  # leaves [batch, ...]


def prepare(
    cell: Cell,
    params: Params,
    xs: jax.Array,
    *,
    lengths: jax.Array | None = None,
    mask: jax.Array | None = None,
    initial_carry: Carry | None = None,
    reset: jax.Array | None = None,
    reverse: bool = False,
    time_major: bool = False,
) -> Prepared:
    """Validate the arguments of :func:`rnnjax.core.unroll.rnn` and flatten every batch dim into one.

    A reset on a skipped step does nothing, and with ``reverse`` a reset at t ends a segment just
    after step t. Inputs at invalid steps become zeros.
    """
    check_params(cell, params)
    if lengths is not None and mask is not None:
        raise ValueError("give either lengths or mask, not both")
    batch_shape, time_steps = check_xs(cell, params, xs, time_major)
    valid = _valid_steps(lengths, mask, batch_shape, time_steps)
    if reset is not None:
        reset = check_steps("reset", reset, batch_shape, time_steps)
        if valid is not None:
            reset = reset & valid  # a reset on a skipped step does nothing
        if reverse:  # reset[t] starts a segment at t: walking backwards, it ends after step t
            reset = jnp.concatenate([reset[..., 1:], jnp.zeros_like(reset[..., :1])], axis=-1)
    if initial_carry is None:
        initial_carry = cell.initial_carry(params, batch_shape)
    else:
        initial_carry = check_carry(cell, params, initial_carry, batch_shape)

    xs_tb = flatten_steps(xs, batch_shape, time_major)
    batch = math.prod(batch_shape)

    def flat_steps(steps):
        return None if steps is None else jnp.moveaxis(steps, -1, 0).reshape(time_steps, batch)

    valid = flat_steps(valid)
    if valid is not None:  # padding must not reach the cell's arithmetic (nor, through it, any gradient)
        xs_tb = jnp.where(valid[..., None], xs_tb, jnp.zeros((), xs_tb.dtype))
    return Prepared(
        batch_shape=batch_shape,
        time_steps=time_steps,
        xs=xs_tb,
        valid=valid,
        reset=flat_steps(reset),
        carry=flatten_carry(initial_carry, batch_shape),
    )


def _valid_steps(lengths, mask, batch_shape: tuple[int, ...], time_steps: int) -> jax.Array | None:
    """bool [*batch, time] from lengths or a mask (None: every step is valid)."""
    if lengths is not None:
        lengths = check_lengths(lengths, batch_shape, time_steps)
        return jnp.arange(time_steps) < lengths[..., None]
    if mask is not None:
        return check_steps("mask", mask, batch_shape, time_steps)
    return None


def flatten_steps(values: jax.Array, batch_shape: tuple[int, ...], time_major: bool) -> jax.Array:
    """``[*batch, time, n]`` (or ``[time, *batch, n]`` when ``time_major``) -> ``[time, batch, n]``."""
    values = values if time_major else jnp.moveaxis(values, -2, 0)
    return values.reshape(values.shape[0], math.prod(batch_shape), values.shape[-1])


def flatten_carry(carry: Carry, batch_shape: tuple[int, ...]) -> Carry:
    """Leaves ``[*batch, ...]`` -> ``[batch, ...]``."""
    batch = math.prod(batch_shape)
    return jax.tree.map(lambda leaf: leaf.reshape(batch, *leaf.shape[len(batch_shape) :]), carry)


def unflatten_carry(carry: Carry, batch_shape: tuple[int, ...]) -> Carry:
    """Leaves ``[batch, ...]`` -> ``[*batch, ...]``."""
    return jax.tree.map(lambda leaf: leaf.reshape(*batch_shape, *leaf.shape[1:]), carry)


def restore_layout(prepared: Prepared, ys: jax.Array, final: Carry, time_major: bool) -> tuple[jax.Array, Carry]:
    """Undo :func:`prepare`'s flattening: ys [time, batch, out] and a [batch, ...] carry."""
    ys = ys.reshape(prepared.time_steps, *prepared.batch_shape, ys.shape[-1])
    if not time_major:
        ys = jnp.moveaxis(ys, 0, -2)
    return ys, unflatten_carry(final, prepared.batch_shape)
