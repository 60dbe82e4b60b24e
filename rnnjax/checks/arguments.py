"""Argument checks shared by every public entry point.

Each check names the argument, the expected value and the actual one, and raises ``ValueError`` (a value out of
range) or ``TypeError`` (a value of the wrong kind). ``bool`` is never accepted where an int or a float is expected.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np

E = TypeVar("E", bound=enum.Enum)


def shape_str(shape: Iterable[int]) -> str:
    """``(2, 3)`` -> ``"[2, 3]"``, the way shapes are written in messages."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def integer(argument: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A Python (or numpy) int in [minimum, maximum]; returns it as a Python int."""
    if not _is_int(value):
        raise TypeError(f"{argument} must be an int; got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{argument} must be >= {minimum}; got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{argument} must be <= {maximum}; got {value!r}")
    return int(value)


def positive_int(argument: str, value: Any) -> int:
    """An int >= 1."""
    return integer(argument, value, minimum=1)


def nonnegative_int(argument: str, value: Any) -> int:
    """An int >= 0."""
    return integer(argument, value, minimum=0)


def real(
    argument: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """A finite real number in [minimum, maximum] (or (minimum, maximum] with ``exclusive_minimum``)."""
    if not _is_real(value):
        raise TypeError(f"{argument} must be a real number; got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{argument} must be finite; got {value!r}")
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        relation = ">" if exclusive_minimum else ">="
        raise ValueError(f"{argument} must be {relation} {minimum}; got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{argument} must be <= {maximum}; got {value!r}")
    return float(value)


def positive_float(argument: str, value: Any) -> float:
    """A finite real number > 0."""
    return real(argument, value, minimum=0.0, exclusive_minimum=True)


def nonnegative_float(argument: str, value: Any) -> float:
    """A finite real number >= 0."""
    return real(argument, value, minimum=0.0)


def probability(argument: str, value: Any, *, allow_one: bool = False) -> float:
    """A rate in [0, 1) (or [0, 1] with ``allow_one``), e.g. a dropout rate."""
    checked = real(argument, value, minimum=0.0)
    if checked > 1.0 or (checked == 1.0 and not allow_one):
        bound = "<= 1" if allow_one else "< 1"
        raise ValueError(f"{argument} must be {bound}; got {value!r}")
    return checked


def as_enum(enum_type: type[E], value: Any, argument: str) -> E:
    """Accept an enum member or its value (e.g. a string); raise a clear error otherwise."""
    if isinstance(value, enum_type):
        return value
    for member in enum_type:
        if value == member.value:
            return member
    allowed = ", ".join(repr(member.value) for member in enum_type)
    raise ValueError(f"{argument} must be one of {allowed}; got {value!r}")


def one_of(argument: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` must be one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{argument} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def has_shape(argument: str, array: Any, expected: tuple[int | None, ...]) -> None:
    """``array.shape`` must match ``expected``, where ``None`` matches any size."""
    shape = tuple(getattr(array, "shape", ()))
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
        wanted = shape_str("?" if e is None else e for e in expected)
        raise ValueError(f"{argument} must have shape {wanted}; got {shape_str(shape)}")


def is_concrete(value: Any) -> bool:
    """True when ``value`` holds data (not a tracer inside ``jit``/``vmap``/``grad``), so it can be checked now."""
    import jax

    return not isinstance(value, jax.core.Tracer)


def plain_name(argument: str, value: Any) -> str:
    """One path component: a non-empty str without '/', '\\' or NUL, and neither '.' nor '..' (so never absolute)."""
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str; got {value!r} ({type(value).__name__})")
    if value in ("", ".", "..") or any(character in value for character in "/\\\x00"):
        raise ValueError(
            f"{argument} must be a plain name (not empty, '.' or '..', without '/', '\\' or NUL); got {value!r}"
        )
    return value
