"""Weights from other libraries, and rnnjax inside Flax NNX.

One module per source; every import returns pure functions and a params pytree, and is tested
for parity with the source's own outputs (1e-9 in float64, 1e-5 where the source is float32 only):

* :mod:`rnnjax.interop.torch`: ``from_torch`` (``torch.nn.RNN/LSTM/GRU``).
* :mod:`rnnjax.interop.flax_linen`: ``from_flax_cell`` (linen cells; NNX cells too), ``from_flax_carry``.
* :mod:`rnnjax.interop.flax_nnx`: ``from_flax_nnx`` (``nnx.RNN`` / ``nnx.Bidirectional``).
* :mod:`rnnjax.interop.equinox`: ``from_equinox`` (``eqx.nn.LSTMCell`` / ``GRUCell``).
* :mod:`rnnjax.interop.keras`: ``from_keras`` (Keras 3 ``SimpleRNN``/``LSTM``/``GRU``,
  ``Bidirectional``, ``Sequential`` stacks, masking).
* :mod:`rnnjax.interop.nnx_module`: ``RNNLayer``, an ``nnx.Module`` holding an rnnjax ``RNN``
  (loaded on first use: it needs ``flax``).

The optional libraries (torch, equinox, keras) are imported only when their import is called.
"""

from rnnjax.interop.equinox import from_equinox
from rnnjax.interop.flax_common import FlaxCellKind, to_flax_carry
from rnnjax.interop.flax_linen import from_flax_carry, from_flax_cell
from rnnjax.interop.flax_nnx import FlaxBidirectional, FlaxRNN, from_flax_nnx
from rnnjax.interop.keras import KerasBidirectional, KerasLayer, KerasRNN, from_keras
from rnnjax.interop.torch import TorchMode, TorchRNN, from_torch


def __getattr__(name: str):
    if name == "RNNLayer":
        from rnnjax.interop.nnx_module import RNNLayer  # noqa: PLC0415 - imports flax.nnx

        return RNNLayer
    raise AttributeError(f"module 'rnnjax.interop' has no attribute {name!r}")


__all__ = [
    "FlaxBidirectional",
    "FlaxCellKind",
    "FlaxRNN",
    "KerasBidirectional",
    "KerasLayer",
    "KerasRNN",
    "RNNLayer",
    "TorchMode",
    "TorchRNN",
    "from_equinox",
    "from_flax_carry",
    "from_flax_cell",
    "from_flax_nnx",
    "from_keras",
    "from_torch",
    "to_flax_carry",
]
