"""What the cell families share: default initialisers, per-gate kernels, zero carries and :func:`build_cell`.

Kernels follow the ``x @ W`` convention: an input kernel has shape ``[input, gates * hidden]`` and a
recurrent kernel ``[hidden, gates * hidden]``. Gate order follows PyTorch (LSTM: i, f, g, o; GRU:
r, z, n) so weights import without permutation.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.checks.arguments import positive_int
from rnnjax.core.cell import (
    Cell,
    Gates,
    InitFn,
    InitialCarryFn,
    Initializer,
    LinearForm,
    Params,
    ProjectFn,
    RecurFn,
    SizeFn,
    VJPRule,
    attach,
)


def default_input_init() -> Initializer:
    """Scaled input kernel: truncated normal with variance 1 / fan_in (LeCun)."""
    return jax.nn.initializers.lecun_normal()


def default_recurrent_init() -> Initializer:
    """Orthogonal recurrent kernel, applied per gate block."""
    return jax.nn.initializers.orthogonal()


def check_sizes(input_size: Any, hidden_size: Any) -> tuple[int, int]:
    """Both sizes must be positive ints (not bool)."""
    return positive_int("input_size", input_size), positive_int("hidden_size", hidden_size)


def gate_blocks(init: Initializer, key: jax.Array, hidden_size: int, gates: int, dtype: Any) -> jax.Array:
    """A [hidden, gates*hidden] recurrent kernel made of `gates` independently initialised blocks."""
    keys = jax.random.split(key, gates)
    return jnp.concatenate([init(k, (hidden_size, hidden_size), dtype) for k in keys], axis=1)


def zeros_carry(params: Params, batch_shape: tuple[int, ...] = ()) -> jax.Array:
    """A zero carry ``[*batch, hidden]`` for cells with a ``recurrent_kernel`` ``[hidden, ...]``."""
    kernel = params["recurrent_kernel"]
    return jnp.zeros((*tuple(batch_shape), kernel.shape[0]), kernel.dtype)


def kernel_projection(bias_key: str) -> ProjectFn:
    """``project(params, x) = x @ params["input_kernel"] + params[bias_key]``."""

    def project(params, x):
        return x @ params["input_kernel"] + params[bias_key]

    return project


def recurrent_hidden_size(params: Params) -> int:
    return params["recurrent_kernel"].shape[0]


def kernel_input_size(params: Params) -> int:
    return params["input_kernel"].shape[0]


def build_cell(
    name: str,
    init: InitFn,
    project: ProjectFn,
    recur: RecurFn,
    initial_carry: InitialCarryFn = zeros_carry,
    *,
    param_keys: frozenset[str],
    hidden_size: SizeFn = recurrent_hidden_size,
    input_size: SizeFn = kernel_input_size,
    output_size: SizeFn | None = None,
    vjp_rule: VJPRule | None = None,
    linear_form: LinearForm | None = None,
    gates: Gates | None = None,
) -> Cell:
    """A :class:`Cell` with ``step = recur after project`` and the given capabilities bound to it."""

    def step(params, carry, x):
        return recur(params, carry, project(params, x))

    cell = Cell(
        name=name,
        init=init,
        initial_carry=initial_carry,
        project=project,
        recur=recur,
        step=step,
        hidden_size=hidden_size,
        input_size=input_size,
        output_size=output_size or hidden_size,
        param_keys=param_keys,
    )
    return attach(cell, vjp_rule=vjp_rule, linear_form=linear_form, gates=gates)


def rule_sigmoid(x: jax.Array) -> jax.Array:
    """sigma(x) for the forward pass of a hand-written rule (never differentiated: the rule's backward uses
    sigma' = s (1 - s) from the stored value). On XLA CPU (1 + tanh(x / 2)) / 2, a vectorised tanh where
    ``jax.nn.sigmoid`` is an exponential and a divide (``benchmarks/README.md``); elsewhere ``jax.nn.sigmoid``."""
    if jax.default_backend() == "cpu":
        return 0.5 * jnp.tanh(0.5 * x) + 0.5
    return jax.nn.sigmoid(x)
