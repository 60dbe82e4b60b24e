"""One shape vocabulary for rnnjax: the type names every module uses in its annotations.

Dimension names (jaxtyping strings):

* ``*batch``: any number of leading batch dimensions (none for one example);
* ``time``: time steps; ``feature``: input features; ``output``: output features of a layer;
* ``classes``: classes or vocabulary entries; ``label``: label positions (CTC targets).

A dimension written ``_name`` is documentation only (not bound across arguments): ``rnn`` takes
``[*batch, time, feature]`` or, with ``time_major=True``, ``[time, *batch, feature]``, so its
layout is not bound. Public functions accept numpy or JAX arrays (:data:`ArrayLike`) and return
JAX arrays.

The annotations are checked at run time only under pytest (``tests/conftest.py`` installs
jaxtyping's import hook with beartype for the modules listed there); at other times they are
documentation and cost nothing. They hold for tracers too, so ``jit``/``vmap``/``grad`` are
unaffected (under ``vmap`` a function sees one example's shape, which ``*batch`` allows).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jaxtyping import Array, Bool, Float, Inexact, Integer, PRNGKeyArray

__all__ = [
    "Array",
    "ArrayLike",
    "Carry",
    "LayoutSequences",
    "LayoutOutputs",
    "Lengths",
    "Logits",
    "Labels",
    "Mask",
    "Outputs",
    "Params",
    "PRNGKey",
    "Scalar",
    "Sequences",
    "TimeMask",
    "Values",
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
Logits = Float[ArrayLike, "*batch time classes"]
Labels = Integer[ArrayLike, "*batch time"]
TimeMask = Bool[ArrayLike, "*batch time"]
Lengths = Integer[ArrayLike, "*batch"]
Mask = Bool[ArrayLike, "..."]
"""A validity mask shaped like the values it selects."""
Values = Inexact[Array, "..."]
"""Per-position values (a loss with ``reduction="none"``), shaped like its inputs' leading dims."""
Scalar = Float[Array, ""]

# Sequences whose layout (batch-major or time-major) is an argument: only the feature axis is bound.
LayoutSequences = Float[ArrayLike, "*_layout feature"]
LayoutOutputs = Float[Array, "*_layout output"]
