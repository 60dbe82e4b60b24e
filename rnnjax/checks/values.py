"""Value checks of inputs (task ids and lengths, the core's lengths): now when concrete, in checked mode when traced.

Shapes, dtypes and Python arguments are checked whenever a task function is called or traced. The values inside
arrays (label and token ids, lengths) can only be read when they are concrete. Inside ``jit``, ``vmap`` or ``grad``
they are tracers: the task functions then run unchecked, with the behaviour each docstring states (lengths act as if
clipped to ``[0, time]``, out-of-range ids give a finite but meaningless result). Checked mode turns those value
checks into ``jax.experimental.checkify`` checks, so a bad value raises even under ``jit``:

    loss = checked(loss_fn)(params, batch)   # jit(checkify(loss_fn)); ValueError naming argument, bound and value

API:
    checked(fn)                                         # fn jitted under checkify; raises on a failed value check
    ids_in_range(argument, ids, upper, mask=None)       # 0 <= ids < upper at mask
    lengths_in_range(argument, lengths, maximum)        # 0 <= lengths <= maximum
    value_absent(argument, ids, value, mask=None, why)  # ids != value at mask
    positions_below(lengths, max_length)                # t < lengths, numpy when concrete
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from rnnjax.checks import arguments

# True only while `checked` traces its function; read by the checks below at trace time, set by nothing else.
_CHECKED_MODE = contextvars.ContextVar("rnnjax_tasks_checked_mode", default=False)


def checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run as ``jit(checkify(fn))``: every value check of the task functions it calls is enforced.

    All arguments of the returned function are traced (bind Python ints such as ``blank_id`` with
    ``functools.partial``). A failed check raises ``checkify.JaxRuntimeError``, a ``ValueError`` whose message names
    the argument, the allowed range and the first offending value. ``fn`` itself must not be a function that was
    jitted and traced before outside checked mode (its cached trace has no checks).
    """
    checkified = jax.jit(checkify.checkify(fn, errors=checkify.user_checks))

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = _CHECKED_MODE.set(True)
        try:
            error, result = checkified(*args, **kwargs)
        finally:
            _CHECKED_MODE.reset(token)
        error.throw()
        return result

    return run


def in_checked_mode() -> bool:
    """True while :func:`checked` is tracing its function."""
    return _CHECKED_MODE.get()


def _concrete(*values: Any) -> bool:
    return all(value is None or arguments.is_concrete(value) for value in values)


def _require(argument: str, rule: str, bad: jax.Array, values: jax.Array) -> None:
    """Raise now (concrete) or in checked mode (traced) if any entry of ``bad`` is True."""
    if np.size(bad) == 0:
        return
    if _concrete(bad, values):
        bad_np = np.asarray(bad)
        if bad_np.any():
            values_np = np.broadcast_to(np.asarray(values), bad_np.shape)[bad_np]
            raise ValueError(
                f"{argument} must be {rule}; got {values_np.flat[0]} ({int(bad_np.sum())} offending value(s), "
                f"spanning [{values_np.min()}, {values_np.max()}])"
            )
    elif in_checked_mode():
        first = jnp.argmax(bad.reshape(-1))
        offending = jnp.broadcast_to(values, bad.shape).reshape(-1)[first]
        checkify.check(~jnp.any(bad), f"{argument} must be {rule}; got {{value}}", value=offending)


def positions_below(lengths: Any, max_length: int) -> Any:
    """mask[..., t] = t < lengths[...]: numpy when ``lengths`` are concrete (so checks can read it inside jit)."""
    if _concrete(lengths):
        return np.arange(max_length) < np.asarray(lengths)[..., None]
    return jnp.arange(max_length) < lengths[..., None]


def ids_in_range(argument: str, ids: Any, upper: int, mask: Any = None) -> None:
    """0 <= ids < upper at the positions where ``mask`` is True (everywhere without a mask)."""
    if _concrete(ids, mask):
        ids, mask = np.asarray(ids), None if mask is None else np.asarray(mask, bool)
    bad = (ids < 0) | (ids >= upper)
    _require(argument, f"ids in [0, {upper}) at valid positions", bad if mask is None else bad & mask, ids)


def lengths_in_range(argument: str, lengths: Any, maximum: int) -> None:
    """0 <= lengths <= maximum."""
    lengths = np.asarray(lengths) if _concrete(lengths) else lengths
    _require(argument, f"in [0, {maximum}]", (lengths < 0) | (lengths > maximum), lengths)


def value_absent(argument: str, ids: Any, value: int, mask: Any = None, *, why: str = "") -> None:
    """ids != value at the positions where ``mask`` is True."""
    if _concrete(ids, mask):
        ids, mask = np.asarray(ids), None if mask is None else np.asarray(mask, bool)
    bad = ids == value
    _require(argument, f"different from {value}{why} at valid positions", bad if mask is None else bad & mask, ids)
