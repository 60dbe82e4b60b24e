"""Unrolling cells over time with ``jax.lax.scan``.

:func:`rnn` runs one cell over a (possibly padded, possibly multi-batch-dim)
batch of sequences. :class:`RNN` stacks layers, adds bidirectionality, dropout
between layers and learnable initial carries, as a frozen dataclass with pure
``init``/``apply`` methods.

Variable lengths follow one rule: a step that is not valid (``t >= length``, or
``mask[t]`` False) leaves the carry unchanged and emits exactly zero. With
``reverse=True`` the scan walks backwards and still skips invalid steps, so
only the valid part of each sequence is reversed and padding stays at the end;
the final carry is then the carry after position 0.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.core.cells import Cell, Params, _enum

Carry = Any


# --------------------------------------------------------------------------- validation


def _is_concrete(value: Any) -> bool:
    return not isinstance(value, jax.core.Tracer)


def _shape_str(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _validate_inputs(cell: Cell, params: Params, xs: jax.Array, time_major: bool) -> tuple[tuple[int, ...], int]:
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
            f"got xs.shape={_shape_str(xs.shape)} with feature size {xs.shape[-1]}"
        )
    if time_major:
        return tuple(xs.shape[1:-1]), xs.shape[0]
    return tuple(xs.shape[:-2]), xs.shape[-2]


def _validate_lengths(lengths: Any, batch_shape: tuple[int, ...], time_steps: int) -> jax.Array:
    lengths = jnp.asarray(lengths)
    if not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise TypeError(f"lengths must be an integer array; got dtype {lengths.dtype}")
    if lengths.shape != batch_shape:
        raise ValueError(
            f"lengths: expected shape {_shape_str(batch_shape)} (the batch shape of xs); "
            f"got {_shape_str(lengths.shape)}"
        )
    if _is_concrete(lengths) and lengths.size:
        # On the host: a concrete array closed over by a jitted function would trace jnp.min.
        values = np.asarray(lengths)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high > time_steps:
            raise ValueError(
                f"lengths must lie in [0, {time_steps}] (the number of time steps); got values in [{low}, {high}]"
            )
    return lengths


def _validate_steps(name: str, value: Any, batch_shape: tuple[int, ...], time_steps: int) -> jax.Array:
    value = jnp.asarray(value)
    expected = (*batch_shape, time_steps)
    if value.dtype != jnp.bool_:
        raise TypeError(f"{name} must be a boolean array of shape {_shape_str(expected)}; got dtype {value.dtype}")
    if value.shape != expected:
        raise ValueError(
            f"{name}: expected shape {_shape_str(expected)} ([*batch, time]); got {_shape_str(value.shape)}"
        )
    return value


def _validate_carry(cell: Cell, params: Params, carry: Carry, batch_shape: tuple[int, ...]) -> Carry:
    """Accept a carry of batch shape, or an unbatched one (broadcast explicitly)."""
    reference = cell.initial_carry(params, batch_shape)
    single = cell.initial_carry(params, ())
    ref_leaves, ref_tree = jax.tree.flatten(reference)
    try:
        leaves = ref_tree.flatten_up_to(carry)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"initial_carry must have the structure {ref_tree}; got {jax.tree.structure(carry)}"
        ) from error
    out = []
    for leaf, ref, one in zip(leaves, ref_leaves, jax.tree.leaves(single)):
        leaf = jnp.asarray(leaf)
        if leaf.shape == one.shape and batch_shape:
            leaf = jnp.broadcast_to(leaf, ref.shape)
        if leaf.shape != ref.shape:
            raise ValueError(
                f"initial_carry: expected shape {_shape_str(ref.shape)} ([*batch, hidden]) or "
                f"{_shape_str(one.shape)}; got {_shape_str(leaf.shape)}"
            )
        out.append(leaf.astype(ref.dtype))
    return jax.tree.unflatten(ref_tree, out)


class Prepared(NamedTuple):
    """Validated inputs of an unroll, flattened to one batch axis (see :func:`prepare`)."""

    batch_shape: tuple[int, ...]
    time_steps: int
    xs: jax.Array  # [time, batch, input]
    valid: jax.Array | None  # bool [time, batch]
    reset: jax.Array | None  # bool [time, batch], already in processing order
    carry: Carry  # leaves [batch, ...]


def prepare(
    cell: Cell,
    params: Params,
    xs: jax.Array,
    *,
    lengths: jax.Array | None,
    mask: jax.Array | None,
    initial_carry: Carry | None,
    reset: jax.Array | None,
    reverse: bool,
    time_major: bool,
) -> Prepared:
    """Validate the arguments of :func:`rnn` and flatten every batch dim into one.

    Shared by every unroller (sequential and associative scans) so that they apply the
    same rules: a reset on a skipped step does nothing, and with ``reverse`` a reset at
    t ends a segment just after step t.
    """
    if lengths is not None and mask is not None:
        raise ValueError("give either lengths or mask, not both")
    batch_shape, time_steps = _validate_inputs(cell, params, xs, time_major)
    valid = None
    if lengths is not None:
        lengths = _validate_lengths(lengths, batch_shape, time_steps)
        valid = jnp.arange(time_steps) < lengths[..., None]
    if mask is not None:
        valid = _validate_steps("mask", mask, batch_shape, time_steps)
    if reset is not None:
        reset = _validate_steps("reset", reset, batch_shape, time_steps)
        if valid is not None:
            reset = reset & valid  # a reset on a skipped step does nothing
        if reverse:  # reset[t] starts a segment at t: walking backwards, it ends after step t
            reset = jnp.concatenate([reset[..., 1:], jnp.zeros_like(reset[..., :1])], axis=-1)
    if initial_carry is None:
        initial_carry = cell.initial_carry(params, batch_shape)
    else:
        initial_carry = _validate_carry(cell, params, initial_carry, batch_shape)

    batch = math.prod(batch_shape)
    xs_tb = xs if time_major else jnp.moveaxis(xs, -2, 0)  # [time, *batch, input]

    def flat_steps(steps):
        return None if steps is None else jnp.moveaxis(steps, -1, 0).reshape(time_steps, batch)

    return Prepared(
        batch_shape=batch_shape,
        time_steps=time_steps,
        xs=xs_tb.reshape(time_steps, batch, xs.shape[-1]),
        valid=flat_steps(valid),
        reset=flat_steps(reset),
        carry=jax.tree.map(lambda leaf: leaf.reshape(batch, *leaf.shape[len(batch_shape) :]), initial_carry),
    )


def restore_layout(prepared: Prepared, ys: jax.Array, final: Carry, time_major: bool) -> tuple[jax.Array, Carry]:
    """Undo :func:`prepare`'s flattening: ys [time, batch, out] and a [batch, ...] carry."""
    ys = ys.reshape(prepared.time_steps, *prepared.batch_shape, ys.shape[-1])
    if not time_major:
        ys = jnp.moveaxis(ys, 0, -2)
    final = jax.tree.map(lambda leaf: leaf.reshape(*prepared.batch_shape, *leaf.shape[1:]), final)
    return ys, final


# --------------------------------------------------------------------------- the scan


def _where_tree(condition: jax.Array, new: Carry, old: Carry) -> Carry:
    """Per-example select; `condition` is [batch], leaves are [batch, ...]."""

    def select(a, b):
        return jnp.where(condition.reshape(condition.shape + (1,) * (a.ndim - condition.ndim)), a, b)

    return jax.tree.map(select, new, old)


def _scan_time_major(
    cell: Cell,
    params: Params,
    inputs: Any,
    carry: Carry,
    valid: jax.Array | None,
    reset: jax.Array | None,
    reset_carry: Carry,
    reverse: bool,
    unroll: int,
    project: bool = False,
) -> tuple[jax.Array, Carry]:
    """Scan over axis 0 of `inputs` ([time, batch, ...], projected unless `project`) with a [batch] carry."""
    batched_recur = jax.vmap(cell.recur, in_axes=(None, 0, 0))

    def body(carry, scanned):
        u, valid_t, reset_t = scanned
        if reset_t is not None:
            carry = _where_tree(reset_t, reset_carry, carry)
        if project:
            u = cell.project(params, u)
        new_carry, y = batched_recur(params, carry, u)
        if valid_t is not None:
            new_carry = _where_tree(valid_t, new_carry, carry)
            y = jnp.where(valid_t[:, None], y, jnp.zeros_like(y))
        return new_carry, y

    final, ys = jax.lax.scan(body, carry, (inputs, valid, reset), reverse=reverse, unroll=unroll)
    return ys, final


# None: hoist the input projection out of the time loop except on CPU (see rnn); True/False force it.
HOIST_PROJECTION: bool | None = None


def _hoist_projection() -> bool:
    if HOIST_PROJECTION is not None:
        return HOIST_PROJECTION
    return jax.default_backend() != "cpu"


def rnn(
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
    unroll: int = 1,
    backward: str = "autodiff",
) -> tuple[jax.Array, Carry]:
    """Run ``cell`` over sequences: y_t, h_t = cell(h_{t-1}, x_t) for each valid t.

    Args:
      cell: a :class:`~rnnjax.core.cells.Cell`.
      params: the cell's params (from ``cell.init``).
      xs: ``[*batch, time, input]`` (or ``[time, *batch, input]`` if ``time_major``);
        any number of batch dims, including none.
      lengths: int ``[*batch]``; steps ``t >= length`` are padding.
      mask: bool ``[*batch, time]``; False steps are skipped (carry held, output 0).
        Give ``lengths`` or ``mask``, not both.
      initial_carry: carry with leaves ``[*batch, hidden]`` or ``[hidden]`` (shared);
        zeros by default.
      reset: bool ``[*batch, time]``; True at t starts a new segment at t: the carry
        is set back to the initial carry just before step t (with ``reverse``, just
        after step t), so each segment runs as if alone. Ignored at invalid steps.
      reverse: process each sequence from its last valid step to its first.
      time_major: layout of ``xs`` and of the returned outputs.
      unroll: passed to ``jax.lax.scan``.
      backward: how reverse-mode AD goes through the loop. ``"autodiff"`` (default): JAX
        transposes the scan (every transformation works, forward mode included).
        ``"manual"``: the hand-derived BPTT of :mod:`rnnjax.core.bptt` (a ``jax.custom_vjp`` whose
        weight gradients are a few large products after the reverse scan; same values to
        rounding, 1.6-1.9x faster training steps for long sequences with small batches on
        CPU, see ``benchmarks/README.md``). It takes every argument but ``reset``, supports
        the cells of :data:`rnnjax.core.bptt.RULES`, and has no forward-mode AD.

    Returns:
      ``(ys, final_carry)``: ys has the layout of xs with the cell's output size,
      exactly zero at invalid steps; final_carry is the carry after the last
      processed valid step of each sequence.
    """
    if backward not in ("autodiff", "manual"):
        raise ValueError(f"backward must be 'autodiff' or 'manual'; got {backward!r}")
    prepared = prepare(
        cell, params, xs, lengths=lengths, mask=mask, initial_carry=initial_carry, reset=reset,
        reverse=reverse, time_major=time_major,
    )  # fmt: skip
    if backward == "manual":
        return _rnn_manual(cell, params, xs, lengths, mask, initial_carry, reset, reverse, time_major, unroll)
    # The input projection has no dependence on the carry: on accelerators it is done for all
    # steps at once (one big matmul); on XLA CPU projecting inside the loop measured faster.
    hoist = _hoist_projection()
    inputs = cell.project(params, prepared.xs) if hoist else prepared.xs
    ys, final = _scan_time_major(
        cell, params, inputs, prepared.carry, prepared.valid, prepared.reset, prepared.carry, reverse, unroll,
        not hoist,
    )  # fmt: skip
    return restore_layout(prepared, ys, final, time_major)


def _rnn_manual(cell, params, xs, lengths, mask, initial_carry, reset, reverse, time_major, unroll):
    """``rnn`` through :func:`rnnjax.core.bptt.rnn_manual_vjp` (arguments already validated by ``prepare``).

    ``reverse`` flips the time axis around a forward pass: walking backwards and skipping
    invalid steps is a forward walk over the flipped sequence and flipped validity mask.
    """
    if reset is not None:
        raise ValueError("backward='manual' does not support reset (use backward='autodiff')")
    from rnnjax.core.bptt import rnn_manual_vjp  # rnnjax.core.bptt imports this module

    if time_major:
        xs = jnp.moveaxis(xs, 0, -2)  # lengths and mask are [*batch] and [*batch, time] either way
    if reverse:
        if lengths is not None:
            mask = jnp.arange(xs.shape[-2]) < jnp.asarray(lengths)[..., None]
            lengths = None
        xs = jnp.flip(xs, axis=-2)
        mask = None if mask is None else jnp.flip(mask, axis=-1)
    ys, final = rnn_manual_vjp(
        cell, params, xs, lengths=lengths, mask=mask, initial_carry=initial_carry, unroll=unroll
    )  # fmt: skip
    if reverse:
        ys = jnp.flip(ys, axis=-2)
    return (jnp.moveaxis(ys, -2, 0) if time_major else ys), final


# --------------------------------------------------------------------------- networks


class Merge(enum.Enum):
    """How a bidirectional layer combines its forward and backward outputs."""

    CONCAT = "concat"
    SUM = "sum"
    MEAN = "mean"
    MUL = "mul"


def merge_directions(merge: Merge, forward: jax.Array, backward: jax.Array) -> jax.Array:
    if merge is Merge.CONCAT:
        return jnp.concatenate([forward, backward], axis=-1)
    if merge is Merge.SUM:
        return forward + backward
    if merge is Merge.MEAN:
        return 0.5 * (forward + backward)
    if merge is Merge.MUL:
        return forward * backward
    raise ValueError(f"merge must be a Merge; got {merge!r}")


@dataclasses.dataclass(frozen=True)
class RNN:
    """A stacked, optionally bidirectional RNN built from one cell.

    ``params = net.init(key, input_size)`` and
    ``ys, final = net.apply(params, xs, lengths=...)`` where ``final`` is a tuple
    over layers of tuples over directions (forward, then backward) of carries.

    Attributes:
      cell: the cell used in every layer and direction.
      hidden_size: hidden size of every layer.
      num_layers: number of stacked layers.
      bidirectional: run a second, reversed cell per layer and merge outputs.
      merge: how directions are merged (CONCAT doubles the feature size).
      dropout: dropout rate applied to the outputs of every layer but the last
        (only when ``apply`` gets a ``dropout_key``).
      learn_initial_carry: keep a trainable initial carry per layer and direction.
      backward: "autodiff" or "manual", passed to :func:`rnn` for every layer and direction.
    """

    cell: Cell
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    merge: Merge | str = Merge.CONCAT
    dropout: float = 0.0
    learn_initial_carry: bool = False
    backward: str = "autodiff"

    def __post_init__(self):
        object.__setattr__(self, "merge", _enum(Merge, self.merge, "merge"))
        if self.backward not in ("autodiff", "manual"):
            raise ValueError(f"backward must be 'autodiff' or 'manual'; got {self.backward!r}")
        if not isinstance(self.hidden_size, int) or isinstance(self.hidden_size, bool) or self.hidden_size < 1:
            raise ValueError(f"hidden_size must be a positive Python int; got {self.hidden_size!r}")
        if not isinstance(self.num_layers, int) or self.num_layers < 1:
            raise ValueError(f"num_layers must be a positive int; got {self.num_layers!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {self.dropout!r}")

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def init(self, key: jax.Array, input_size: int, dtype: Any = jnp.float32) -> dict[str, Any]:
        layers, carries = [], []
        size = input_size
        for layer_key in jax.random.split(key, self.num_layers):
            directions = [
                self.cell.init(k, size, self.hidden_size, dtype)
                for k in jax.random.split(layer_key, self.num_directions)
            ]
            layers.append(tuple(directions))
            carries.append(tuple(self.cell.initial_carry(p) for p in directions))
            out = self.cell.output_size(directions[0])
            size = 2 * out if self.bidirectional and self.merge is Merge.CONCAT else out
        params: dict[str, Any] = {"layers": tuple(layers)}
        if self.learn_initial_carry:
            params["initial_carry"] = tuple(carries)
        return params

    def output_size(self, params: dict[str, Any]) -> int:
        out = self.cell.output_size(params["layers"][-1][0])
        return 2 * out if self.bidirectional and self.merge is Merge.CONCAT else out

    def apply(
        self,
        params: dict[str, Any],
        xs: jax.Array,
        *,
        lengths: jax.Array | None = None,
        mask: jax.Array | None = None,
        initial_carry: tuple[tuple[Carry, ...], ...] | None = None,
        reset: jax.Array | None = None,
        dropout_key: jax.Array | None = None,
        time_major: bool = False,
        unroll: int = 1,
    ) -> tuple[jax.Array, tuple[tuple[Carry, ...], ...]]:
        """Run all layers; see :func:`rnn` for the meaning of the keyword arguments."""
        if initial_carry is None and self.learn_initial_carry:
            initial_carry = params["initial_carry"]
        if initial_carry is not None and len(initial_carry) != self.num_layers:
            raise ValueError(
                f"initial_carry must have one entry per layer ({self.num_layers}); got {len(initial_carry)}"
            )
        finals = []
        for index, layer in enumerate(params["layers"]):
            outputs, carries = [], []
            for direction, cell_params in enumerate(layer):
                carry = None if initial_carry is None else initial_carry[index][direction]
                ys, final = rnn(
                    self.cell, cell_params, xs, lengths=lengths, mask=mask, initial_carry=carry,
                    reset=reset, reverse=direction == 1, time_major=time_major, unroll=unroll,
                    backward=self.backward,
                )  # fmt: skip
                outputs.append(ys)
                carries.append(final)
            xs = merge_directions(self.merge, *outputs) if self.bidirectional else outputs[0]
            finals.append(tuple(carries))
            if dropout_key is not None and self.dropout > 0 and index < self.num_layers - 1:
                keep = jax.random.bernoulli(jax.random.fold_in(dropout_key, index), 1.0 - self.dropout, xs.shape)
                xs = jnp.where(keep, xs / (1.0 - self.dropout), 0.0).astype(xs.dtype)
        return xs, tuple(finals)
