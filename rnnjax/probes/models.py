"""Models for the probe: any rnnjax cell, uni/bidirectional, depth 1..L, a per-step readout, and an output delay.

A model with delay D reads the input followed by D zero steps and emits y_{t-D} at step t, i.e. its prediction
of y_t is its output at step t + D (:func:`aligned_predictions`). D = 0 is an ordinary causal model; a large D
lets a unidirectional model see the future it needs.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.core.cells import linear_rnn, make_cell
from rnnjax.core.unroll import RNN, Merge

UNROLL = 1  # lax.scan unroll factor: fewer loop iterations, much faster on CPU for small models
LINEAR_CELLS = ("linear", "linear_dense", "linear_diagonal", "linear_complex_diagonal")


class Readout(enum.Enum):
    """Per-step map from the last layer's output to the prediction."""

    NONE = "none"  # linear cells only: the cell's own y = C h + D x is the prediction
    LINEAR = "linear"  # y = h W + b
    MLP = "mlp"  # y = tanh(h W1 + b1) W2 + b2


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model family; ``width`` and ``delay`` are swept by :func:`rnnjax.probes.sweep.sweep`.

    Attributes:
      cell: a :func:`rnnjax.core.cells.make_cell` name ('linear_dense', 'simple_tanh', 'simple_relu', 'gru', 'lstm', ...).
      width: hidden size of every layer.
      depth: number of stacked layers.
      bidirectional: add a reversed direction per layer (outputs summed for Readout.NONE, else concatenated).
      readout: see :class:`Readout`.
      mlp_width: hidden size of the MLP readout.
      delay: output delay D (the model emits y_{t-D} at step t).
      label: optional display name (defaults to :attr:`name`).
    """

    cell: str = "gru"
    width: int = 16
    depth: int = 1
    bidirectional: bool = False
    readout: Readout = Readout.LINEAR
    mlp_width: int = 32
    delay: int = 0
    label: str = ""

    def __post_init__(self):
        object.__setattr__(self, "readout", Readout(self.readout))
        for argument in ("width", "depth", "mlp_width"):
            value = getattr(self, argument)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{argument} must be a positive int; got {value!r}")
        if not isinstance(self.delay, int) or self.delay < 0:
            raise ValueError(f"delay must be a non-negative int; got {self.delay!r}")
        if self.readout is Readout.NONE and (self.cell not in LINEAR_CELLS or self.depth != 1):
            raise ValueError(
                f"readout 'none' needs a one-layer linear cell (one of {LINEAR_CELLS}); "
                f"got cell={self.cell!r}, depth={self.depth}"
            )
        make_cell(self.cell)  # validates the name

    @property
    def name(self) -> str:
        """Family name without width/delay, e.g. 'gru', 'linear_dense+mlp', 'simple_relu-L3', 'gru-bi'."""
        if self.label:
            return self.label
        name = self.cell + ("-bi" if self.bidirectional else "") + (f"-L{self.depth}" if self.depth > 1 else "")
        return name + ("+mlp" if self.readout is Readout.MLP else "")


def network(spec: ModelSpec, output_size: int) -> RNN:
    """The recurrent part: an :class:`rnnjax.core.unroll.RNN`."""
    if spec.readout is Readout.NONE:
        kind = "dense" if spec.cell == "linear" else spec.cell.removeprefix("linear_")
        cell, merge = linear_rnn(kind, output_size=output_size), Merge.SUM
    else:
        cell, merge = make_cell(spec.cell), Merge.CONCAT
    return RNN(cell, spec.width, spec.depth, spec.bidirectional, merge)


def init(spec: ModelSpec, key: jax.Array, input_size: int, output_size: int, dtype: Any = jnp.float32) -> dict:
    """Parameters {'rnn': ..., 'readout': ...} (readout is empty for Readout.NONE)."""
    net = network(spec, output_size)
    k_rnn, k_1, k_2 = jax.random.split(key, 3)
    params = {"rnn": net.init(k_rnn, input_size, dtype), "readout": {}}
    features = net.output_size(params["rnn"])
    dense = jax.nn.initializers.lecun_normal()
    if spec.readout is Readout.LINEAR:
        params["readout"] = {"w": dense(k_1, (features, output_size), dtype), "b": jnp.zeros((output_size,), dtype)}
    elif spec.readout is Readout.MLP:
        params["readout"] = {
            "w1": dense(k_1, (features, spec.mlp_width), dtype),
            "b1": jnp.zeros((spec.mlp_width,), dtype),
            "w2": dense(k_2, (spec.mlp_width, output_size), dtype) / math.sqrt(2.0),
            "b2": jnp.zeros((output_size,), dtype),
        }
    return params


def apply(spec: ModelSpec, params: dict, xs: jax.Array, output_size: int) -> jax.Array:
    """Per-step outputs [batch, time, output] for inputs [batch, time, input]."""
    hs, _ = network(spec, output_size).apply(params["rnn"], xs, unroll=UNROLL)
    readout = params["readout"]
    if spec.readout is Readout.NONE:
        return hs
    if spec.readout is Readout.LINEAR:
        return hs @ readout["w"] + readout["b"]
    return jnp.tanh(hs @ readout["w1"] + readout["b1"]) @ readout["w2"] + readout["b2"]


def aligned_predictions(
    spec: ModelSpec, params: dict, xs: jax.Array, output_size: int, delay: jax.Array | int, max_delay: int
) -> jax.Array:
    """Predictions of y_0..y_{T-1} [batch, T, output]: outputs at steps D..D+T-1 on xs followed by max_delay zeros.

    ``delay`` may be traced (so delays can be vmapped); it must not exceed the static ``max_delay``.
    """
    length = xs.shape[1]
    padded = jnp.pad(xs, ((0, 0), (0, max_delay), (0, 0)))
    outputs = apply(spec, params, padded, output_size)
    return jax.lax.dynamic_slice_in_dim(outputs, jnp.asarray(delay, jnp.int32), length, axis=1)
