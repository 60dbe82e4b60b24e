"""rnnjax inside Flax NNX: :class:`RNNLayer`, an ``nnx.Module`` holding an rnnjax ``RNN``.

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.rnn = RNNLayer(RNN(lstm(), 64, backward="manual"), input_size=8, rngs=rngs)
            self.head = nnx.Linear(64, 1, rngs=rngs)

        def __call__(self, xs, lengths):
            ys, _ = self.rnn(xs, lengths=lengths)   # exact padding, hand-written BPTT, resets, ...
            return self.head(ys[:, -1])

The params are the rnnjax params pytree with every leaf an ``nnx.Param``, so ``nnx.Optimizer``,
``nnx.state(model, nnx.Param)``, ``nnx.jit`` and checkpointing see them like any NNX weight;
``layer.values()`` gives the plain pytree back (e.g. for :func:`rnnjax.core.unroll.rnn` or Orbax).
Imports ``flax.nnx`` (the ``interop`` extra).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from rnnjax.checks.arguments import positive_int
from rnnjax.core.unroll import RNN


def _is_variable(value: Any) -> bool:
    return isinstance(value, nnx.Variable)


class RNNLayer(nnx.Module):
    """An rnnjax :class:`~rnnjax.core.unroll.RNN` as an NNX layer.

    Args:
      network: the rnnjax network (kept as a static attribute).
      input_size: feature size of the inputs (with ``rngs``: params from ``network.init``).
      rngs: ``nnx.Rngs``; ``rngs.params()`` seeds the initialisation.
      dtype: dtype of the initial params.
      params: existing params instead (e.g. from :func:`rnnjax.interop.from_torch`); then
        ``input_size`` and ``rngs`` are not needed.
    """

    def __init__(
        self,
        network: RNN,
        input_size: int | None = None,
        *,
        rngs: nnx.Rngs | None = None,
        dtype: Any = jnp.float32,
        params: Any = None,
    ):
        if not isinstance(network, RNN):
            raise TypeError(f"network: expected an rnnjax.core.unroll.RNN; got {type(network).__name__}")
        if params is None:
            if rngs is None:
                raise ValueError("rngs: expected nnx.Rngs to initialise the params (or pass params=); got None")
            params = network.init(rngs.params(), positive_int("input_size", input_size), dtype)
        self.network = network
        self.params = nnx.data(jax.tree.map(nnx.Param, params))

    def values(self) -> Any:
        """The params as a plain pytree of arrays (rnnjax's layout)."""
        return jax.tree.map(lambda variable: variable[...], self.params, is_leaf=_is_variable)

    def __call__(self, xs: jax.Array, *, rngs: nnx.Rngs | None = None, **options: Any) -> tuple[jax.Array, Any]:
        """``network.apply(params, xs, **options)``: ``(ys, final_carries)``.

        ``options`` are :meth:`RNN.apply`'s (``lengths``, ``mask``, ``reset``, ``initial_carry``,
        ``time_major``, ...); with ``rngs`` and a network that has dropout, ``rngs.dropout()``
        becomes the ``dropout_key``.
        """
        if rngs is not None and self.network.dropout > 0 and "dropout_key" not in options:
            options["dropout_key"] = rngs.dropout()
        return self.network.apply(self.values(), xs, **options)
