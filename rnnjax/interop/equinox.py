"""Weight import from Equinox: ``eqx.nn.LSTMCell`` and ``eqx.nn.GRUCell``.

    cell, params = from_equinox(eqx_cell)
    carry, y = cell.step(params, LSTMState(*eqx_hidden), x)   # Equinox LSTM hidden is (h, c)

Equinox stores kernels as ``[gates * hidden, input]`` for ``W x`` (PyTorch's layout and gate
order: LSTM i, f, g, o; GRU r, z, n); rnnjax uses ``x @ W``, so kernels are transposed. The
Equinox GRU adds ``bias`` on the input side and ``bias_n`` inside the reset gate, which is
rnnjax's "pytorch" GRU with recurrent bias ``[0, 0, bias_n]``. ``equinox`` is imported lazily.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from rnnjax.core.cells import Cell, GRUConvention, Params, gru, lstm


def _kernels(module: Any) -> Params:
    return {
        "input_kernel": jnp.asarray(module.weight_ih).T,
        "recurrent_kernel": jnp.asarray(module.weight_hh).T,
    }


def from_equinox(module: Any) -> tuple[Cell, Params]:
    """Import an ``equinox.nn.LSTMCell`` or ``equinox.nn.GRUCell`` (``use_bias=False``: zero biases).

    Returns:
      ``(cell, params)`` with the module's dtype; the Equinox LSTM carry ``(h, c)`` maps to
      ``LSTMState(h, c)``, the GRU carry is the same array.
    """
    import equinox  # noqa: PLC0415 - optional dependency

    kernels = _kernels(module) if isinstance(module, (equinox.nn.LSTMCell, equinox.nn.GRUCell)) else None
    if isinstance(module, equinox.nn.LSTMCell):
        zeros = jnp.zeros((4 * module.hidden_size,), kernels["input_kernel"].dtype)
        bias = jnp.asarray(module.bias) if module.use_bias else zeros
        return lstm(), {**kernels, "bias": bias}
    if isinstance(module, equinox.nn.GRUCell):
        zeros = jnp.zeros((module.hidden_size,), kernels["input_kernel"].dtype)
        input_bias = jnp.asarray(module.bias) if module.use_bias else jnp.tile(zeros, 3)
        bias_n = jnp.asarray(module.bias_n) if module.use_bias else zeros
        recurrent_bias = jnp.concatenate([zeros, zeros, bias_n])
        return gru(GRUConvention.PYTORCH), {**kernels, "input_bias": input_bias, "recurrent_bias": recurrent_bias}
    raise TypeError(f"module: expected an equinox.nn.LSTMCell or equinox.nn.GRUCell; got {type(module).__name__}")
