"""Weight import from ``flax.linen`` cells: ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell``, ``SimpleCell``.

    cell, params = from_flax_cell(flax_cell, variables)
    carry, y = cell.step(params, from_flax_carry(flax_cell, flax_carry), x)

Flax kernels already follow ``x @ W``; the per-gate ``Dense`` layers are concatenated in
rnnjax's gate order (LSTM i, f, g, o; GRU r, z, n). Flax NNX cells (``flax.nnx.LSTMCell``, ...)
are accepted too: :func:`from_flax_cell` hands them to :mod:`rnnjax.interop.flax_nnx`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.core.cells import Cell, GRUConvention, LSTMState, Params, gru, lstm, simple_rnn
from rnnjax.interop.flax_common import FlaxCellKind, flax_activation


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
        from rnnjax.interop.flax_nnx import from_nnx_cell  # noqa: PLC0415

        return from_nnx_cell(module)
    kind = _linen_kind(module)
    activation = flax_activation(module, kind)
    if variables is None:
        raise ValueError("variables: expected the linen cell's variables ({'params': ...}); got None")
    params = variables["params"] if "params" in variables else variables
    _check_layout(module, kind, params)
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


SUBMODULES = {
    FlaxCellKind.LSTM: ("ii", "if", "ig", "io", "hi", "hf", "hg", "ho"),
    FlaxCellKind.GRU: ("ir", "iz", "in", "hr", "hz", "hn"),
    FlaxCellKind.SIMPLE: ("i", "h"),
}


def _check_layout(module: Any, kind: FlaxCellKind, params: Any) -> None:
    """The variables of ``module``'s kind and size: every gate's Dense, square recurrent kernels of its features."""
    names = SUBMODULES[kind]
    found = sorted(params) if hasattr(params, "keys") else type(params).__name__
    if not hasattr(params, "keys") or not set(names) <= set(params):
        raise ValueError(
            f"variables: expected the params of a flax.linen {type(module).__name__} (Dense layers {list(names)}); "
            f"got {found} (the variables of another cell?)"
        )
    features = module.features
    for name in names:
        if name.startswith("h") and jnp.shape(params[name].get("kernel")) != (features, features):
            raise ValueError(
                f"variables['params'][{name!r}]['kernel']: expected shape ({features}, {features}) for "
                f"features={features}; got {jnp.shape(params[name].get('kernel'))}"
            )


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
