"""What the Flax linen and NNX imports share: the cell kinds, the activation check and the carry layout."""

from __future__ import annotations

import enum
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.core.cells import Activation, LSTMState


class FlaxCellKind(enum.Enum):
    """The recurrence of a Flax cell (linen or NNX)."""

    LSTM = "lstm"
    GRU = "gru"
    SIMPLE = "simple"


def flax_activation(module: Any, kind: FlaxCellKind) -> Activation:
    """The activation of a linen or NNX cell; only the default gate (sigmoid) and activation
    (tanh; relu too for SimpleCell) are importable, and SimpleCell must not be residual."""
    if kind is not FlaxCellKind.SIMPLE and module.gate_fn is not jax.nn.sigmoid:
        raise ValueError(f"module.gate_fn: expected jax.nn.sigmoid; got {module.gate_fn!r}")
    activations = {jnp.tanh: Activation.TANH}
    if kind is FlaxCellKind.SIMPLE:
        activations[jax.nn.relu] = Activation.RELU
        if module.residual:
            raise ValueError("module.residual: expected False (residual SimpleCell is not supported); got True")
    if module.activation_fn not in activations:
        raise ValueError(
            f"module.activation_fn: expected one of {[f.__name__ for f in activations]}; got {module.activation_fn!r}"
        )
    return activations[module.activation_fn]


def to_flax_carry(carry: Any) -> Any:
    """An rnnjax carry in flax's layout: ``LSTMState(h, c)`` becomes ``(c, h)``; other carries are unchanged."""
    if isinstance(carry, LSTMState):
        return carry.c, carry.h
    return carry
