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
import functools
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.checks.arguments import as_enum, positive_int, probability
from rnnjax.core.bptt import manual_unroll
from rnnjax.core.cell import Carry, Cell, Params, ScanOptions
from rnnjax.core.inputs import hoist_projection_default, prepare, restore_layout
from rnnjax.typing import LayoutOutputs, LayoutSequences, LayoutSteps, Lengths, PRNGKey, shaped


class Backward(enum.Enum):
    """How reverse-mode AD goes through the time loop of :func:`rnn`.

    Examples:
      >>> from rnnjax import Backward
      >>> Backward("manual") is Backward.MANUAL
      True
    """

    AUTODIFF = "autodiff"  # JAX transposes the scan (every transformation works, forward mode included)
    MANUAL = "manual"  # the cell's hand-written vjp_rule (a jax.custom_vjp; no forward mode)


# --------------------------------------------------------------------------- the scan


def _where_tree(condition: jax.Array, new: Carry, old: Carry) -> Carry:
    """Per-example select; `condition` is [batch], leaves are [batch, ...]."""

    def select(a, b):
        return jnp.where(condition.reshape(condition.shape + (1,) * (a.ndim - condition.ndim)), a, b)

    return jax.tree.map(select, new, old)


def scan_time_major(
    cell: Cell,
    params: Params,
    inputs: Any,
    carry: Carry,
    valid: jax.Array | None,
    reset: jax.Array | None,
    *,
    reverse: bool,
    options: ScanOptions,
) -> tuple[jax.Array, Carry]:
    """Scan over axis 0 of ``inputs`` ([time, batch, ...]; already projected when
    ``options.hoist_projection``) from a [batch] carry; a reset goes back to the initial ``carry``."""
    batched_recur = jax.vmap(cell.recur, in_axes=(None, 0, 0))
    reset_carry = carry

    def body(carry, scanned):
        u, valid_t, reset_t = scanned
        if reset_t is not None:
            carry = _where_tree(reset_t, reset_carry, carry)
        if not options.hoist_projection:
            u = cell.project(params, u)
        new_carry, y = batched_recur(params, carry, u)
        if valid_t is not None:
            new_carry = _where_tree(valid_t, new_carry, carry)
            y = jnp.where(valid_t[:, None], y, jnp.zeros_like(y))
        return new_carry, y

    final, ys = jax.lax.scan(body, carry, (inputs, valid, reset), reverse=reverse, unroll=options.unroll)
    return ys, final


@shaped
def rnn(
    cell: Cell,
    params: Params,
    xs: LayoutSequences,
    *,
    lengths: Lengths | None = None,
    mask: LayoutSteps | None = None,
    initial_carry: Carry | None = None,
    reset: LayoutSteps | None = None,
    reverse: bool = False,
    time_major: bool = False,
    unroll: int = 1,
    backward: Backward | str = Backward.AUTODIFF,
    hoist_projection: bool | None = None,
) -> tuple[LayoutOutputs, Carry]:
    """Run ``cell`` over sequences: y_t, h_t = cell(h_{t-1}, x_t) for each valid t.

    Args:
      cell: a :class:`~rnnjax.core.cell.Cell`.
      params: the cell's params (from ``cell.init``).
      xs: ``[*batch, time, input]`` (or ``[time, *batch, input]`` if ``time_major``);
        any number of batch dims, including none. Values at invalid steps are never read
        (NaN padding is harmless).
      lengths: int ``[*batch]``; steps ``t >= length`` are padding. Concrete lengths outside
        ``[0, time]`` raise ValueError; traced ones (inside ``jit``) cannot be checked and act as
        clipped to ``[0, time]`` (wrap the call in ``jax.experimental.checkify`` for your own check).
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
      backward: how reverse-mode AD goes through the loop (:class:`Backward`). ``"autodiff"``
        (default): JAX transposes the scan (every transformation works, forward mode included).
        ``"manual"``: the cell's hand-written ``vjp_rule`` (:mod:`rnnjax.core.bptt`; a
        ``jax.custom_vjp`` whose weight gradients are a few large products after the reverse scan;
        same values to rounding, 1.6-1.9x faster training steps for long sequences with small
        batches on CPU, see ``benchmarks/README.md``). It takes every argument but ``reset``, needs
        a cell with a ``vjp_rule`` (simple, LSTM, GRU, linear), and has no forward-mode AD.
      hoist_projection: project every step's input before the loop in one large product (True)
        or inside the loop (False); None (default): True except on XLA CPU, where projecting
        inside the loop measured faster. A static choice: it fixes the traced program.

    Returns:
      ``(ys, final_carry)``: ys has the layout of xs with the cell's output size,
      exactly zero at invalid steps; final_carry is the carry after the last
      processed valid step of each sequence.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import rnn, simple_rnn
      >>> cell = simple_rnn()
      >>> params = cell.init(jax.random.key(0), 3, 4)  # input_size 3, hidden_size 4
      >>> xs = jnp.ones((2, 5, 3), jnp.float32)  # [batch, time, input]
      >>> ys, h = rnn(cell, params, xs, lengths=jnp.array([5, 2]))
      >>> ys.shape, h.shape  # [batch, time, hidden], [batch, hidden]
      ((2, 5, 4), (2, 4))
      >>> bool((ys[1, 2:] == 0).all())  # steps past a length emit zeros
      True
      >>> bool(jnp.allclose(h[1], ys[1, 1]))  # and leave the carry as it was
      True
    """
    backward = as_enum(Backward, backward, "backward")
    if backward is Backward.MANUAL and reset is not None:
        raise ValueError("backward='manual' does not support reset (use backward='autodiff')")
    arrays = {"lengths": lengths, "mask": mask, "initial_carry": initial_carry, "reset": reset}
    prepared = prepare(cell, params, xs, **arrays, reverse=reverse, time_major=time_major)
    options = ScanOptions(unroll, hoist_projection_default(hoist_projection))
    if backward is Backward.MANUAL:
        ys, final = manual_unroll(cell, params, prepared, reverse=reverse, options=options)
        return restore_layout(prepared, ys, final, time_major)
    inputs = cell.project(params, prepared.xs) if options.hoist_projection else prepared.xs
    ys, final = scan_time_major(
        cell, params, inputs, prepared.carry, prepared.valid, prepared.reset, reverse=reverse, options=options
    )
    return restore_layout(prepared, ys, final, time_major)


# --------------------------------------------------------------------------- networks


class Merge(enum.Enum):
    """How a bidirectional layer combines its forward and backward outputs.

    Examples:
      >>> from rnnjax import Merge
      >>> Merge("sum") is Merge.SUM
      True
    """

    CONCAT = "concat"
    SUM = "sum"
    MEAN = "mean"
    MUL = "mul"


def merge_directions(merge: Merge, forward: jax.Array, backward: jax.Array) -> jax.Array:
    """Combine the two directions' outputs of a bidirectional layer.

    Args:
      merge: a :class:`Merge` (not its string value).
      forward: ``[..., features]`` outputs of the forward direction.
      backward: ``[..., features]`` outputs of the backward direction (same shape).

    Returns:
      ``[..., 2 * features]`` for CONCAT (forward first); ``[..., features]`` for SUM, MEAN (their half-sum) and
      MUL (elementwise product).

    Examples:
      >>> import jax.numpy as jnp
      >>> from rnnjax import Merge, merge_directions
      >>> forward, backward = jnp.ones((2, 3)), 3 * jnp.ones((2, 3))  # [batch, features]
      >>> merge_directions(Merge.CONCAT, forward, backward).shape
      (2, 6)
      >>> merge_directions(Merge.MEAN, forward, backward)[0].tolist()
      [2.0, 2.0, 2.0]
    """
    if merge is Merge.CONCAT:
        return jnp.concatenate([forward, backward], axis=-1)
    if merge is Merge.SUM:
        return forward + backward
    if merge is Merge.MEAN:
        return 0.5 * (forward + backward)
    if merge is Merge.MUL:
        return forward * backward
    raise ValueError(f"merge must be a Merge; got {merge!r}")


def _flat_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """'path' -> shape of every leaf (lists and tuples alike: '[0]')."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {jax.tree_util.keystr(path): tuple(jnp.shape(leaf)) for path, leaf in leaves}


def _shapes_of_init(net: "RNN", input_size: int) -> dict[str, tuple[int, ...]]:
    return _flat_shapes(jax.eval_shape(lambda key: net.init(key, input_size), jax.random.key(0)))


_cached_shapes = functools.lru_cache(maxsize=64)(_shapes_of_init)


def _param_shapes(net: "RNN", input_size: int) -> dict[str, tuple[int, ...]]:
    """The leaf shapes of ``net.init(key, input_size)`` (computed abstractly, cached per network)."""
    try:
        return _cached_shapes(net, input_size)
    except TypeError:  # an unhashable cell: compute without the cache
        return _shapes_of_init(net, input_size)


def _only_input_size_differs(net: "RNN", input_size: int, given: dict[str, tuple[int, ...]]) -> bool:
    """Whether ``given`` matches ``net`` in every leaf whose shape does not follow the input size."""
    expected, other = _param_shapes(net, input_size), _param_shapes(net, input_size + 1)
    fixed = [path for path, shape in expected.items() if other.get(path) == shape]
    return set(given) == set(expected) and all(given[path] == expected[path] for path in fixed)


def _first_difference(expected: dict[str, tuple[int, ...]], given: dict[str, tuple[int, ...]]) -> str:
    """The first leaf where two flat shape maps differ, as 'params<path>: expected E, got G'."""
    for path in [*expected, *given]:
        if expected.get(path) != given.get(path):
            return f"params{path}: expected {expected.get(path, '(absent)')}, got {given.get(path, '(absent)')}"
    return "none"


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
      backward: :class:`Backward` ("autodiff" or "manual"), passed to :func:`rnn` for every layer and direction.
      hoist_projection: passed to :func:`rnn` (None: its per-backend default).

    ``xs`` is ``[*batch, time, input]``; ``ys`` is ``[*batch, time, output]`` with ``output`` the cell's output
    size (``hidden_size`` but for a :func:`~rnnjax.core.cells.linear_rnn` with its own ``output_size``), doubled when
    bidirectional with CONCAT.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import RNN, lstm
      >>> net = RNN(lstm(), hidden_size=4, num_layers=2, bidirectional=True)
      >>> params = net.init(jax.random.key(0), 3)  # input_size 3
      >>> xs = jnp.ones((2, 5, 3), jnp.float32)  # [batch, time, input]
      >>> ys, finals = net.apply(params, xs, lengths=jnp.array([5, 3]))
      >>> ys.shape  # [batch, time, 2 * hidden]: directions concatenated
      (2, 5, 8)
      >>> len(finals), len(finals[0]), finals[0][1].h.shape  # layers, directions, [batch, hidden]
      (2, 2, (2, 4))
    """

    cell: Cell
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    merge: Merge | str = Merge.CONCAT
    dropout: float = 0.0
    learn_initial_carry: bool = False
    backward: Backward | str = Backward.AUTODIFF
    hoist_projection: bool | None = None

    def __post_init__(self):
        object.__setattr__(self, "merge", as_enum(Merge, self.merge, "merge"))
        object.__setattr__(self, "backward", as_enum(Backward, self.backward, "backward"))
        positive_int("hidden_size", self.hidden_size)
        positive_int("num_layers", self.num_layers)
        probability("dropout", self.dropout)

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

    def check_params(self, params: Params, input_size: int) -> None:
        """Raise ValueError unless ``params`` has the layers, directions and shapes ``init`` gives this network."""
        expected, given = _param_shapes(self, int(input_size)), _flat_shapes(params)
        if given == expected or _only_input_size_differs(self, int(input_size), given):
            return  # (another input size: the first layer's xs check names xs and its feature size)
        layers = params.get("layers") if isinstance(params, dict) else None
        counts = None if layers is None else [len(layer) for layer in layers]
        shape = f"{len(counts)} layer(s) of {counts} direction(s)" if counts is not None else "no 'layers'"
        first = _first_difference(expected, given)
        raise ValueError(
            f"params do not match this RNN (num_layers={self.num_layers}, directions={self.num_directions}, "
            f"hidden_size={self.hidden_size}, input size {input_size}): expected {self.num_layers} layer(s) of "
            f"{self.num_directions} direction(s), got {shape}; first difference: {first}"
        )

    def output_size(self, params: dict[str, Any]) -> int:
        out = self.cell.output_size(params["layers"][-1][0])
        return 2 * out if self.bidirectional and self.merge is Merge.CONCAT else out

    @shaped
    def apply(
        self,
        params: Params,
        xs: LayoutSequences,
        *,
        lengths: Lengths | None = None,
        mask: LayoutSteps | None = None,
        initial_carry: tuple[tuple[Carry, ...], ...] | None = None,
        reset: LayoutSteps | None = None,
        dropout_key: PRNGKey | None = None,
        time_major: bool = False,
        unroll: int = 1,
    ) -> tuple[LayoutOutputs, tuple[tuple[Carry, ...], ...]]:
        """Run all layers; see :func:`rnn` for the meaning of the keyword arguments.

        ``params`` must come from ``init`` of a network of this shape (:meth:`check_params`)."""
        self.check_params(params, jnp.shape(xs)[-1])
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
                    self.cell,
                    cell_params,
                    xs,
                    lengths=lengths,
                    mask=mask,
                    initial_carry=carry,
                    reset=reset,
                    reverse=direction == 1,
                    time_major=time_major,
                    unroll=unroll,
                    backward=self.backward,
                    hoist_projection=self.hoist_projection,
                )
                outputs.append(ys)
                carries.append(final)
            xs = merge_directions(self.merge, *outputs) if self.bidirectional else outputs[0]
            finals.append(tuple(carries))
            if dropout_key is not None and self.dropout > 0 and index < self.num_layers - 1:
                keep = jax.random.bernoulli(jax.random.fold_in(dropout_key, index), 1.0 - self.dropout, xs.shape)
                xs = jnp.where(keep, xs / (1.0 - self.dropout), 0.0).astype(xs.dtype)
        return xs, tuple(finals)
