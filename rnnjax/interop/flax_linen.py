"""Weight import from ``flax.linen`` cells: ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell``, ``SimpleCell``.

    cell, params = from_flax_cell(flax_cell, variables)
    carry, y = cell.step(params, from_flax_carry(flax_cell, flax_carry), x)

Flax kernels already follow ``x @ W``; the per-gate ``Dense`` layers are concatenated in
rnnjax's gate order (LSTM i, f, g, o; GRU r, z, n). Flax NNX cells (``flax.nnx.LSTMCell``, ...)
are accepted too: :func:`from_flax_cell` hands them to :mod:`rnnjax.interop.flax_nnx`.
"""

from __future__ import annotations

import enum
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.core.cells import Activation, Cell, GRUConvention, LSTMState, Params, gru, lstm, simple_rnn


class FlaxCellKind(enum.Enum):
    """The recurrence of a Flax cell (linen or NNX)."""

    LSTM = "lstm"
    GRU = "gru"
    SIMPLE = "simple"


def _linen_kind(module: Any) -> FlaxCellKind:
    from flax import linen  # noqa: PLC0415

    kinds = {
        linen.LSTMCell: FlaxCellKind.LSTM,
        linen.OptimizedLSTMCell: FlaxCellKind.LSTM,
        linen.GRUCell: FlaxCellKind.GRU,
        linen.SimpleCell: FlaxCellKind.SIMPLE,
    }
    for module_type, kind in kinds.items():
        if type(module) is module_type:
            return kind
    allowed = ", ".join(t.__name__ for t in kinds)
    raise TypeError(f"module: expected a flax.linen {allowed}; got {type(module).__name__}")


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


def _is_nnx(module: Any) -> bool:
    from flax import nnx  # noqa: PLC0415

    return isinstance(module, nnx.Module)


def from_flax_cell(module: Any, variables: Any = None) -> tuple[Cell, Params]:
    """Import a Flax ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell`` or ``SimpleCell`` (linen or NNX).

    Args:
      module: the flax cell (its ``gate_fn``/``activation_fn`` must be the defaults;
        SimpleCell may use relu). A ``flax.nnx`` cell carries its own weights.
      variables: for a linen cell, what ``module.init`` returned (``{"params": ...}``) or the
        params dict; ignored (may be omitted) for an NNX cell.

    Returns:
      ``(cell, params)``; convert a flax carry with :func:`from_flax_carry`.
    """
    if _is_nnx(module):
        from rnnjax.interop.flax_nnx import from_nnx_cell  # noqa: PLC0415 - flax_nnx imports this module

        return from_nnx_cell(module)
    kind = _linen_kind(module)
    activation = flax_activation(module, kind)
    if variables is None:
        raise ValueError("variables: expected the linen cell's variables ({'params': ...}); got None")
    params = variables["params"] if "params" in variables else variables
    if kind is FlaxCellKind.LSTM:
        return lstm(), _linen_lstm_params(params)
    if kind is FlaxCellKind.GRU:
        return gru(GRUConvention.PYTORCH), _linen_gru_params(params)
    simple = {
        "input_kernel": jnp.asarray(params["i"]["kernel"]),
        "recurrent_kernel": jnp.asarray(params["h"]["kernel"]),
        "bias": jnp.asarray(params["i"]["bias"]),
    }
    return simple_rnn(activation), simple


def _concatenate(params: Any, names: list[str], leaf: str) -> jax.Array:
    return jnp.concatenate([jnp.asarray(params[name][leaf]) for name in names], axis=-1)


def _linen_lstm_params(params: Any) -> Params:
    """linen LSTM (and OptimizedLSTMCell, same names): ii..io kernels, hi..ho kernels with the biases."""
    return {
        "input_kernel": _concatenate(params, ["ii", "if", "ig", "io"], "kernel"),
        "recurrent_kernel": _concatenate(params, ["hi", "hf", "hg", "ho"], "kernel"),
        "bias": _concatenate(params, ["hi", "hf", "hg", "ho"], "bias"),
    }


def _linen_gru_params(params: Any) -> Params:
    """linen GRU: ir/iz/in with biases, hr/hz without, hn with a bias inside the reset gate."""
    hn_bias = jnp.asarray(params["hn"]["bias"])
    zeros = jnp.zeros_like(hn_bias)
    return {
        "input_kernel": _concatenate(params, ["ir", "iz", "in"], "kernel"),
        "recurrent_kernel": _concatenate(params, ["hr", "hz", "hn"], "kernel"),
        "input_bias": _concatenate(params, ["ir", "iz", "in"], "bias"),
        "recurrent_bias": jnp.concatenate([zeros, zeros, hn_bias]),
    }


def from_flax_carry(module: Any, carry: Any) -> Any:
    """A flax cell carry as an rnnjax carry: flax LSTM carries are ``(c, h)``; rnnjax uses ``LSTMState(h, c)``."""
    if _is_nnx(module):
        from rnnjax.interop.flax_nnx import nnx_cell_kind  # noqa: PLC0415

        kind = nnx_cell_kind(module)
    else:
        kind = _linen_kind(module)
    if kind is FlaxCellKind.LSTM:
        c, h = carry
        return LSTMState(h=h, c=c)
    return carry


def to_flax_carry(carry: Any) -> Any:
    """An rnnjax carry in flax's layout: ``LSTMState(h, c)`` becomes ``(c, h)``; other carries are unchanged."""
    if isinstance(carry, LSTMState):
        return carry.c, carry.h
    return carry
