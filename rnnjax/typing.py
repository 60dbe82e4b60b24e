"""One shape vocabulary for rnnjax: the type names every module uses in its annotations.

Dimension names (jaxtyping strings):

* ``*batch``: any number of leading batch dimensions (none for one example);
* ``time``: time steps; ``feature``: input features; ``output``: output features of a layer;
* ``*positions``: the positions a loss scores (e.g. ``[batch]`` or ``[batch, time]``);
* ``classes``: classes or vocabulary entries; ``batch``, ``label``: sequences and label positions (CTC).

A dimension written ``_name`` is documentation only (not bound across arguments): ``rnn`` takes
``[*batch, time, feature]`` or, with ``time_major=True``, ``[time, *batch, feature]``, so its
layout is not bound. Public functions accept numpy or JAX arrays (:data:`ArrayLike`) and return
JAX arrays.

Public functions marked :func:`shaped` have their annotations checked at every call when
``RNNJAX_CHECK_SHAPES=1``, which ``tests/conftest.py`` sets: so under pytest only. At other times
:func:`shaped` returns the function itself, and annotations are documentation that costs nothing.
The checks hold for tracers too, so ``jit``/``vmap``/``grad`` are unaffected (under ``vmap`` a
function sees one example's shape, which ``*batch`` allows).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, TypeVar

import jax
import jaxtyping
import numpy as np
from jaxtyping import Array, Bool, Float, Integer, PRNGKeyArray

CHECK_SHAPES = "RNNJAX_CHECK_SHAPES"
F = TypeVar("F", bound=Callable[..., Any])


def shaped(function: F) -> F:
    """``function`` with its jaxtyping annotations checked at every call (beartype) when ``RNNJAX_CHECK_SHAPES=1``.

    Decided once, when the module is imported. A call that breaks the annotations is run once more
    unchecked: if the function's own validation rejects it, that clearer error (naming the argument,
    expected and actual) is raised; if the function accepts it, or returns a value that breaks the
    return annotation, the jaxtyping error is raised, because the annotation and the code disagree.
    """
    if os.environ.get(CHECK_SHAPES, "") in ("", "0"):
        return function
    import beartype  # a test dependency (the dev extra), imported only when checking is on

    checked = jaxtyping.jaxtyped(function, typechecker=beartype.beartype)

    @functools.wraps(function)
    def contract(*args: Any, **kwargs: Any) -> Any:
        try:
            return checked(*args, **kwargs)
        except jaxtyping.TypeCheckError as violation:
            function(*args, **kwargs)  # raises the function's own error for input it rejects
            raise violation

    return contract  # type: ignore[return-value]

__all__ = [
    "Array",
    "ArrayLike",
    "Carry",
    "FrameLogits",
    "Labels",
    "LabelSequences",
    "LayoutOutputs",
    "LayoutSequences",
    "LayoutSteps",
    "Lengths",
    "LengthsOut",
    "Logits",
    "Loss",
    "Outputs",
    "Params",
    "PositionMask",
    "PRNGKey",
    "Scalar",
    "SequenceLengths",
    "Sequences",
    "shaped",
    "Targets",
    "TimeMask",
    "Tokens",
    "TokensOut",
]

Params = dict[str, Any]
"""Parameters: a plain dict pytree of arrays (a cell's is flat, e.g. ``{"input_kernel": [I, H], ...}``)."""

Carry = Any
"""A recurrent carry: a pytree whose leaves are ``[*batch, ...]`` arrays (an array, or e.g. ``LSTMState(h, c)``)."""

PRNGKey = PRNGKeyArray
"""A typed key (``jax.random.key``) or a legacy ``uint32[2]`` key."""

ArrayLike = jax.Array | np.ndarray
"""What public functions accept where an array is expected."""

# Sequences, in the batch-major layout every task function uses.
Sequences = Float[ArrayLike, "*batch time feature"]
Outputs = Float[Array, "*batch time output"]
Lengths = Integer[ArrayLike, "*batch"]
TimeMask = Bool[ArrayLike, "*batch time"]
Tokens = Integer[ArrayLike, "*batch time"]
"""Integer ids per step (tokens, frame labels)."""
TokensOut = Integer[Array, "*batch time"]
LengthsOut = Integer[Array, "*batch"]

# Per-position classification: ``*positions`` is e.g. ``[batch]`` (many-to-one) or ``[batch, time]``.
Logits = Float[ArrayLike, "*positions classes"]
Labels = Integer[ArrayLike, "*positions"]
PositionMask = Bool[ArrayLike, "*positions"]
Targets = Float[ArrayLike, "*positions"]
"""Regression values per position (the feature axis, if any, included)."""
Loss = Float[Array, "*_positions"]
"""A reduced loss (a scalar), or one value per position with ``reduction="none"``."""
Scalar = Float[Array, ""]

# CTC: one label sequence per input sequence.
FrameLogits = Float[ArrayLike, "batch time classes"]
LabelSequences = Integer[ArrayLike, "batch label"]
SequenceLengths = Integer[ArrayLike, "batch"]

# Sequences whose layout (batch-major or time-major) is an argument: only the feature axis is bound.
LayoutSequences = Float[ArrayLike, "*_layout feature"]
LayoutOutputs = Float[Array, "*_layout output"]
LayoutSteps = Bool[ArrayLike, "*_layout"]
"""Per-step flags (a mask, resets) in the layout of the sequences they go with."""
