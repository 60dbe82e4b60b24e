"""rnnjax.checks.arguments: each check's accepted set (its bounds included or not), the type it returns, and
errors that name the argument, the expected value and the actual one (the module's contract)."""

import enum
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.checks import arguments


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _message(check, *args, error=ValueError, **kwargs) -> str:
    with pytest.raises(error) as raised:
        check(*args, **kwargs)
    assert type(raised.value) is error
    return str(raised.value)


def test_shape_str_writes_shapes_as_lists():
    assert arguments.shape_str((2, 3)) == "[2, 3]"
    assert arguments.shape_str(()) == "[]"
    assert arguments.shape_str(iter([7])) == "[7]"


@pytest.mark.parametrize("value", [0, 3, -4, np.int32(5), np.int64(-2), np.uint8(7)])
def test_integer_accepts_python_and_numpy_ints_and_returns_a_python_int(value):
    result = arguments.integer("n", value)
    assert type(result) is int and result == int(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, np.float64(2.0), "3", None, 1j])
def test_integer_refuses_bools_floats_and_other_kinds(value):
    message = _message(arguments.integer, "n", value, error=TypeError)
    assert message == f"n must be an int; got {value!r} ({type(value).__name__})"


@pytest.mark.parametrize("low, high", [(-3, 4), (0, 0), (2, 9)])
def test_integer_bounds_are_inclusive(low, high):
    for value in range(low - 3, high + 4):
        inside = low <= value <= high
        if inside:
            assert arguments.integer("n", value, minimum=low, maximum=high) == value
        else:
            bound = f">= {low}" if value < low else f"<= {high}"
            assert (
                _message(arguments.integer, "n", value, minimum=low, maximum=high) == f"n must be {bound}; got {value}"
            )
    assert arguments.integer("n", low - 10, maximum=high) == low - 10  # each bound alone
    assert arguments.integer("n", high + 10, minimum=low) == high + 10


def test_positive_and_nonnegative_int():
    assert arguments.positive_int("n", 1) == 1 and arguments.nonnegative_int("n", 0) == 0
    assert _message(arguments.positive_int, "steps", 0) == "steps must be >= 1; got 0"
    assert _message(arguments.nonnegative_int, "seed", -1) == "seed must be >= 0; got -1"
    assert _message(arguments.positive_int, "steps", 2.0, error=TypeError).startswith("steps must be an int")
    assert _message(arguments.nonnegative_int, "seed", True, error=TypeError).startswith("seed must be an int")
    assert arguments.positive_int("n", 10**20) == 10**20  # no upper bound


@pytest.mark.parametrize("value", [0, -2, 2.5, np.float32(0.25), np.int64(3), np.float64(-1e300)])
def test_real_accepts_finite_ints_and_floats_and_returns_a_python_float(value):
    result = arguments.real("x", value)
    assert type(result) is float and result == float(value)


@pytest.mark.parametrize("value", [True, np.bool_(False), "1.0", None, 1j, [1.0]])
def test_real_refuses_bools_and_other_kinds(value):
    message = _message(arguments.real, "x", value, error=TypeError)
    assert message == f"x must be a real number; got {value!r} ({type(value).__name__})"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, np.float32("inf")])
def test_real_refuses_non_finite_values(value):
    assert _message(arguments.real, "x", value) == f"x must be finite; got {value!r}"


def test_real_bounds_inclusive_or_exclusive():
    assert arguments.real("x", 0.5, minimum=0.5, maximum=2.0) == 0.5
    assert arguments.real("x", 2.0, minimum=0.5, maximum=2.0) == 2.0
    assert arguments.real("x", 0.6, minimum=0.5, exclusive_minimum=True) == 0.6
    assert _message(arguments.real, "x", 0.5, minimum=0.5, exclusive_minimum=True) == "x must be > 0.5; got 0.5"
    assert _message(arguments.real, "x", 0.4, minimum=0.5) == "x must be >= 0.5; got 0.4"
    assert _message(arguments.real, "x", 2.5, minimum=0.5, maximum=2.0) == "x must be <= 2.0; got 2.5"
    assert arguments.real("x", -1e9, maximum=2.0) == -1e9 and arguments.real("x", 1e9, minimum=0.5) == 1e9


def test_positive_and_nonnegative_float():
    tiny = 5e-324
    assert arguments.positive_float("lr", tiny) == tiny and arguments.positive_float("lr", 3) == 3.0
    assert _message(arguments.positive_float, "lr", 0.0) == "lr must be > 0.0; got 0.0"
    assert _message(arguments.positive_float, "lr", -1) == "lr must be > 0.0; got -1"
    assert arguments.nonnegative_float("decay", 0.0) == 0.0 and arguments.nonnegative_float("decay", 1e9) == 1e9
    assert _message(arguments.nonnegative_float, "decay", -tiny) == f"decay must be >= 0.0; got {-tiny!r}"


def test_probability_is_in_zero_one_with_one_only_when_allowed():
    below_one = math.nextafter(1.0, 0.0)
    for allow_one in (False, True):
        assert arguments.probability("p", 0, allow_one=allow_one) == 0.0
        assert arguments.probability("p", below_one, allow_one=allow_one) == below_one
        bound = "<= 1" if allow_one else "< 1"
        assert _message(arguments.probability, "p", 1.5, allow_one=allow_one) == f"p must be {bound}; got 1.5"
        assert _message(arguments.probability, "p", -0.1, allow_one=allow_one) == "p must be >= 0.0; got -0.1"
    assert arguments.probability("p", 1.0, allow_one=True) == 1.0
    assert type(arguments.probability("p", 1, allow_one=True)) is float
    assert _message(arguments.probability, "p", 1.0) == "p must be < 1; got 1.0"
    assert _message(arguments.probability, "p", 1) == "p must be < 1; got 1"


def test_as_enum_takes_members_or_values():
    assert arguments.as_enum(Colour, Colour.BLUE, "colour") is Colour.BLUE
    assert arguments.as_enum(Colour, "red", "colour") is Colour.RED
    assert arguments.as_enum(Colour, "blue", "colour") is Colour.BLUE
    assert _message(arguments.as_enum, Colour, "green", "colour") == "colour must be one of 'red', 'blue'; got 'green'"
    assert _message(arguments.as_enum, Colour, "RED", "colour").startswith("colour must be one of")


def test_one_of_takes_any_iterable_of_allowed_values():
    assert arguments.one_of("mode", "b", ("a", "b")) == "b"
    assert arguments.one_of("mode", 2, (n for n in range(3))) == 2  # a generator, read once
    assert _message(arguments.one_of, "mode", "c", ["a", "b"]) == "mode must be one of 'a', 'b'; got 'c'"
    assert _message(arguments.one_of, "mode", 5, (n for n in range(2))) == "mode must be one of 0, 1; got 5"


def test_has_shape_with_wildcards_and_ranks():
    arguments.has_shape("x", np.zeros((2, 3)), (2, 3))
    arguments.has_shape("x", np.zeros((2, 3)), (None, 3))
    arguments.has_shape("x", np.zeros((2, 3)), (None, None))
    arguments.has_shape("x", 1.0, ())  # no shape: a scalar
    assert _message(arguments.has_shape, "x", np.zeros((2, 3)), (2, 4)) == "x must have shape [2, 4]; got [2, 3]"
    assert _message(arguments.has_shape, "x", np.zeros((2, 3)), (None, 4)) == "x must have shape [?, 4]; got [2, 3]"
    assert _message(arguments.has_shape, "x", np.zeros((5, 3)), (4, None)) == "x must have shape [4, ?]; got [5, 3]"
    assert _message(arguments.has_shape, "x", np.zeros((2, 3)), (2, 3, 1)) == "x must have shape [2, 3, 1]; got [2, 3]"
    assert _message(arguments.has_shape, "x", np.zeros((2, 3, 1)), (2, 3)) == "x must have shape [2, 3]; got [2, 3, 1]"
    assert _message(arguments.has_shape, "x", np.zeros(2), (None, None)) == "x must have shape [?, ?]; got [2]"


def test_is_concrete_is_false_only_for_tracers():
    assert arguments.is_concrete(jnp.ones(2)) and arguments.is_concrete(np.ones(2)) and arguments.is_concrete(3)
    seen = []
    jax.jit(lambda x: seen.append(arguments.is_concrete(x)) or x)(jnp.ones(2))
    jax.grad(lambda x: seen.append(arguments.is_concrete(x)) or x)(1.0)
    assert seen == [False, False]


@pytest.mark.parametrize("value", ["a", "run-1", "a.b", "..a", "a..", ".hidden", " "])
def test_plain_name_accepts_one_path_component(value):
    assert arguments.plain_name("name", value) == value


@pytest.mark.parametrize("value", ["", ".", "..", "a/b", "/a", "a\\b", "a\x00b", "/"])
def test_plain_name_refuses_anything_else(value):
    message = _message(arguments.plain_name, "name", value)
    assert message.startswith("name must be a plain name (not empty, '.' or '..', without '/', '\\' or NUL); got ")
    assert message.endswith(f"got {value!r}")


@pytest.mark.parametrize("value", [None, 3, b"a", ["a"]])
def test_plain_name_refuses_non_strings(value):
    message = _message(arguments.plain_name, "name", value, error=TypeError)
    assert message == f"name must be a str; got {value!r} ({type(value).__name__})"
