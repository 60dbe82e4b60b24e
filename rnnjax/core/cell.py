"""The :class:`Cell` type: a recurrent cell as a bundle of pure functions, and its optional capabilities.

A cell handles ONE example and ONE time step (scanning over time and batching over examples
live in :mod:`rnnjax.core.unroll`). Like ``optax.GradientTransformation``, a cell is a
NamedTuple of pure functions:

    params = cell.init(key, input_size, hidden_size)     # plain dict pytree
    carry = cell.initial_carry(params)                   # zeros, [hidden]
    carry, y = cell.step(params, carry, x)               # x: [input]

``step(p, c, x) == recur(p, c, project(p, x))``: ``project`` is the carry-independent affine part
(hoistable out of the time loop), ``recur`` the recurrent part.

A cell also carries what else it can do, as optional fields (never looked up by ``name``):

* ``vjp_rule``: a hand-written forward/backward pass, used by ``rnn(..., backward="manual")``;
* ``linear_form``: ``h' = a h + b`` coefficients, used by :func:`rnnjax.core.parallel.parallel_rnn`;
* ``gates``: named gate activations, used by :func:`rnnjax.analysis.diagnostics.gate_statistics`.

Each capability records the ``project``/``recur``/``step`` functions it was derived for
(``derived_for``). A cell whose functions were changed afterwards (``lstm()._replace(recur=...)``)
no longer matches its capabilities, and :func:`require` refuses them with a clear error instead
of silently using the maths of the original cell. :func:`attach` binds capabilities to a cell's
current functions.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, NamedTuple, Protocol

import jax

from rnnjax.checks.arguments import shape_str
from rnnjax.typing import Carry, Params  # the shared vocabulary (rnnjax/typing.py)

Initializer = Callable[[jax.Array, tuple[int, ...], Any], jax.Array]


class InitFn(Protocol):
    def __call__(self, key: jax.Array, input_size: int, hidden_size: int, dtype: Any = ...) -> Params: ...


class InitialCarryFn(Protocol):
    def __call__(self, params: Params, batch_shape: tuple[int, ...] = ...) -> Carry: ...


ProjectFn = Callable[[Params, jax.Array], Any]
RecurFn = Callable[[Params, Carry, Any], tuple[Carry, jax.Array]]
StepFn = Callable[[Params, Carry, jax.Array], tuple[Carry, jax.Array]]
SizeFn = Callable[[Params], int]


class CellFunctions(NamedTuple):
    """The functions a capability was derived for (compared by identity)."""

    project: ProjectFn
    recur: RecurFn
    step: StepFn


# --------------------------------------------------------------------------- hand-written VJP rules


class ScanOptions(NamedTuple):
    """Static options of a time loop: ``unroll`` for ``lax.scan``; ``hoist_projection``: project every
    step's input before the loop (one large product) instead of inside it."""

    unroll: int = 1
    hoist_projection: bool = False


class RuleInputs(NamedTuple):
    """Inputs of a hand-written rule, time-major with one flat batch axis.

    Attributes:
      params: the cell's params.
      xs: ``[time, batch, input]``, zero at invalid steps.
      carry0: the initial carry, leaves ``[batch, ...]``.
      valid: bool ``[time, batch]``, or None when every step is valid.
    """

    params: Params
    xs: jax.Array
    carry0: Carry
    valid: jax.Array | None


class ForwardPass(NamedTuple):
    """What a rule's forward pass returns: outputs ``[time, batch, out]`` (zero at invalid steps), the
    final carry and the cell's own residuals (a NamedTuple) for the backward pass."""

    ys: jax.Array
    final: Carry
    residuals: Any


class Cotangents(NamedTuple):
    """dL/dys ``[time, batch, out]`` (already zero at invalid steps) and dL/d(final carry)."""

    ys: jax.Array
    final: Carry


class Gradients(NamedTuple):
    """dL/dparams (params structure), dL/dxs ``[time, batch, input]`` and dL/d(initial carry)."""

    params: Params
    xs: jax.Array
    carry0: Carry


class VJPRule(NamedTuple):
    """A hand-derived forward and backward pass of one cell over a whole sequence.

    Attributes:
      forward: ``forward(inputs: RuleInputs, options: ScanOptions) -> ForwardPass``.
      vjp: ``vjp(inputs, residuals, cotangents: Cotangents, options) -> Gradients``.
      derived_for: the cell functions this rule differentiates (set by :func:`attach`).
    """

    forward: Callable[[RuleInputs, ScanOptions], ForwardPass]
    vjp: Callable[[RuleInputs, Any, Cotangents, ScanOptions], Gradients]
    derived_for: CellFunctions | None = None


# --------------------------------------------------------------------------- linear form and gates


class LinearForm(NamedTuple):
    """``recur(p, h, u) == (a * h + b, readout(p, a * h + b, u))`` with (a, b) independent of h.

    Attributes:
      dense: True when ``a`` is a matrix acting as ``a @ h`` ([..., hidden, hidden]).
      coefficients: ``coefficients(params, u) -> (a, b)`` for projected inputs ``u`` with any
        leading dims; ``a`` may broadcast against ``b`` ([..., hidden]).
      readout: ``readout(params, h, u) -> y`` from the new carry.
      derived_for: the cell functions this form describes (set by :func:`attach`).
    """

    dense: bool
    coefficients: Callable[[Params, Any], tuple[jax.Array, jax.Array]]
    readout: Callable[[Params, jax.Array, Any], jax.Array]
    derived_for: CellFunctions | None = None


class Squash(enum.Enum):
    """The nonlinearity of a gate, which fixes where it saturates."""

    SIGMOID = "sigmoid"  # saturates at 0 and 1
    TANH = "tanh"  # saturates at -1 and 1


class Gates(NamedTuple):
    """Named gates of a cell.

    Attributes:
      names: ``((gate name, squash), ...)`` in the order of the activations' last axis blocks.
      activations: ``activations(inputs: RuleInputs) -> [time, batch, gates * hidden]``, every gate
        after its nonlinearity at every step (values at invalid steps are unspecified).
      derived_for: the cell functions these gates belong to (set by :func:`attach`).
    """

    names: tuple[tuple[str, Squash], ...]
    activations: Callable[[RuleInputs], jax.Array]
    derived_for: CellFunctions | None = None


# --------------------------------------------------------------------------- the cell


class Cell(NamedTuple):
    """A recurrent cell: a bundle of pure functions and optional capabilities (see module docstring).

    Attributes:
      name: a display name ("simple_tanh", "lstm", "gru_pytorch", ...); nothing dispatches on it.
      init: ``init(key, input_size, hidden_size, dtype=float32) -> params``.
      initial_carry: ``initial_carry(params, batch_shape=()) -> carry`` of zeros.
      project: ``project(params, x) -> u``, the carry-independent affine part.
      recur: ``recur(params, carry, u) -> (carry, y)``.
      step: ``step(params, carry, x) -> (carry, y)``, i.e. recur after project.
      hidden_size, input_size, output_size: ``(params) -> int`` read off parameter shapes.
      param_keys: the keys ``params`` must have (None: not checked).
      vjp_rule, linear_form, gates: optional capabilities (None: the cell does not have it).

    A cell handles one example and one time step: ``x: [input]``, carry leaves ``[hidden]``, ``y: [output]``
    (:func:`rnnjax.rnn` scans it over ``[*batch, time, input]``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import simple_rnn
      >>> cell = simple_rnn()
      >>> params = cell.init(jax.random.key(0), 3, 4)  # input_size 3, hidden_size 4
      >>> carry = cell.initial_carry(params)
      >>> carry, y = cell.step(params, carry, jnp.ones(3, jnp.float32))
      >>> carry.shape, y.shape, cell.hidden_size(params), cell.name
      ((4,), (4,), 4, 'simple_tanh')
    """

    name: str
    init: InitFn
    initial_carry: InitialCarryFn
    project: ProjectFn
    recur: RecurFn
    step: StepFn
    hidden_size: SizeFn
    input_size: SizeFn
    output_size: SizeFn
    param_keys: frozenset[str] | None = None
    vjp_rule: VJPRule | None = None
    linear_form: LinearForm | None = None
    gates: Gates | None = None


class Capability(enum.Enum):
    """The optional capabilities of a cell, by field name."""

    VJP_RULE = "vjp_rule"
    LINEAR_FORM = "linear_form"
    GATES = "gates"


def functions(cell: Cell) -> CellFunctions:
    """The functions that define ``cell``'s maths."""
    return CellFunctions(cell.project, cell.recur, cell.step)


def attach(
    cell: Cell,
    *,
    vjp_rule: VJPRule | None = None,
    linear_form: LinearForm | None = None,
    gates: Gates | None = None,
) -> Cell:
    """``cell`` with the given capabilities, bound to its current ``project``/``recur``/``step``."""
    bound = functions(cell)
    updates = {"vjp_rule": vjp_rule, "linear_form": linear_form, "gates": gates}
    return cell._replace(
        **{field: value._replace(derived_for=bound) for field, value in updates.items() if value is not None}
    )


def require(cell: Cell, capability: Capability, purpose: str) -> Any:
    """The capability of ``cell``; a ValueError naming the cell and the capability when it is missing
    or was derived for other functions than the cell's own (``purpose`` says who needs it)."""
    value = getattr(cell, capability.value)
    if value is None:
        raise ValueError(f"cell {cell.name!r} has no {capability.value} capability; {purpose}")
    if value.derived_for != functions(cell):
        raise ValueError(
            f"cell {cell.name!r}: its {capability.value} was derived for other project/recur/step functions "
            "than the cell's own (the cell was modified, e.g. with _replace); bind one derived for the new "
            f"functions with rnnjax.core.cell.attach; {purpose}"
        )
    return value


def check_params(cell: Cell, params: Any) -> None:
    """``params`` must be a dict with exactly ``cell.param_keys``, each of the shape ``cell.init`` gives for the
    input and hidden sizes read off ``params`` (checked when the cell declares its keys)."""
    if cell.param_keys is None:
        return
    if not isinstance(params, dict) or set(params) != cell.param_keys:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            f"params: a {cell.name!r} cell expects a dict with keys {sorted(cell.param_keys)} "
            f"(from its init); got {got}"
        )
    sizes = (cell.input_size(params), cell.hidden_size(params))
    dtype = jax.tree.leaves(params)[0].dtype
    expected = jax.eval_shape(lambda key: cell.init(key, *sizes, dtype), jax.random.key(0))
    for name in sorted(expected):
        if tuple(params[name].shape) != expected[name].shape:
            raise ValueError(
                f"params: a {cell.name!r} cell with input size {sizes[0]} and hidden size {sizes[1]} expects "
                f"{name} of shape {shape_str(expected[name].shape)} (from its init); "
                f"got {shape_str(params[name].shape)}"
            )
