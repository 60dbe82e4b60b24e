"""Weight import from Flax NNX: ``nnx.LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell``, ``SimpleCell``,
and ``nnx.RNN`` / ``nnx.Bidirectional`` built from them.

    cell, params = from_flax_cell(nnx_cell)          # one cell (see rnnjax.interop.flax_linen)
    net, params = from_flax_nnx(nnx.RNN(nnx_cell))   # or nnx.Bidirectional(...)
    outputs = net(params, xs, seq_lengths=lengths)   # NNX's call, as a pure function

NNX kernels follow ``x @ W``. The NNX GRU keeps its only bias on the input side (no ``b_hn``),
so the recurrent bias is imported as zeros. The twins return carries in NNX's layout (LSTM:
``(c, h)``). One difference, by design: with ``seq_lengths`` NNX keeps running the cell over
the padding, so its outputs there are whatever the cell computes; rnnjax's are exactly zero
(valid steps and the final carry agree).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.core.cells import Cell, GRUConvention, LSTMState, Params, gru, lstm, simple_rnn
from rnnjax.core.unroll import rnn
from rnnjax.interop.flax_common import FlaxCellKind, flax_activation, to_flax_carry


def nnx_cell_kind(module: Any) -> FlaxCellKind:
    """The recurrence of an NNX cell; a clear error for any other module."""
    from flax import nnx  # noqa: PLC0415

    kinds = {
        nnx.LSTMCell: FlaxCellKind.LSTM,
        nnx.OptimizedLSTMCell: FlaxCellKind.LSTM,
        nnx.GRUCell: FlaxCellKind.GRU,
        nnx.SimpleCell: FlaxCellKind.SIMPLE,
    }
    for module_type, kind in kinds.items():
        if type(module) is module_type:
            return kind
    allowed = ", ".join(t.__name__ for t in kinds)
    raise TypeError(f"module: expected a flax.nnx {allowed}; got {type(module).__name__}")


def _value(variable: Any) -> jax.Array:
    return jnp.asarray(variable[...])


def _concatenate(module: Any, names: list[str], leaf: str) -> jax.Array:
    return jnp.concatenate([_value(getattr(getattr(module, name), leaf)) for name in names], axis=-1)


def _lstm_params(module: Any) -> Params:
    from flax import nnx  # noqa: PLC0415

    if isinstance(module, nnx.OptimizedLSTMCell):  # fused [i, f, g, o] Linear layers
        return {
            "input_kernel": _value(module.dense_i.kernel),
            "recurrent_kernel": _value(module.dense_h.kernel),
            "bias": _value(module.dense_h.bias),
        }
    return {
        "input_kernel": _concatenate(module, ["ii", "if_", "ig", "io"], "kernel"),
        "recurrent_kernel": _concatenate(module, ["hi", "hf", "hg", "ho"], "kernel"),
        "bias": _concatenate(module, ["hi", "hf", "hg", "ho"], "bias"),
    }


def _gru_params(module: Any) -> Params:
    bias = _value(module.dense_i.bias)
    return {
        "input_kernel": _value(module.dense_i.kernel),
        "recurrent_kernel": _value(module.dense_h.kernel),
        "input_bias": bias,
        "recurrent_bias": jnp.zeros_like(bias),
    }


def from_nnx_cell(module: Any) -> tuple[Cell, Params]:
    """Import one NNX cell (see :func:`rnnjax.interop.from_flax_cell`).

    The params take the cell's computation ``dtype`` when it has one (NNX casts its weights
    to it on every call), else the weights' own dtype.
    """
    kind = nnx_cell_kind(module)
    activation = flax_activation(module, kind)
    if kind is FlaxCellKind.LSTM:
        cell, params = lstm(), _lstm_params(module)
    elif kind is FlaxCellKind.GRU:
        cell, params = gru(GRUConvention.PYTORCH), _gru_params(module)
    else:
        cell = simple_rnn(activation)
        params = {
            "input_kernel": _value(module.dense_i.kernel),
            "recurrent_kernel": _value(module.dense_h.kernel),
            "bias": _value(module.dense_i.bias),
        }
    if module.dtype is not None:
        params = {name: value.astype(module.dtype) for name, value in params.items()}
    return cell, params


def flip_valid(ys: jax.Array, lengths: jax.Array | None, time_major: bool) -> jax.Array:
    """Reverse the valid part of each sequence, padding kept at the end (NNX's ``flip_sequences``)."""
    time_axis = 0 if time_major else ys.ndim - 2
    if lengths is None:
        return jnp.flip(ys, axis=time_axis)
    batch_first = jnp.moveaxis(ys, 0, -2) if time_major else ys  # [*batch, time, features]
    steps = batch_first.shape[-2]
    index = (steps - 1 - jnp.arange(steps) + jnp.asarray(lengths)[..., None]) % steps  # [*batch, time]
    flipped = jnp.take_along_axis(batch_first, index[..., None], axis=-2)
    return jnp.moveaxis(flipped, -2, 0) if time_major else flipped


@dataclasses.dataclass(frozen=True)
class FlaxRNN:
    """A pure-function twin of ``flax.nnx.RNN``; call it as ``net(params, xs, seq_lengths=...)``.

    Attributes:
      cell: the imported cell; ``kind`` its recurrence (LSTM carries are ``(c, h)`` in NNX).
      time_major, return_carry, reverse, keep_order, unroll: NNX's settings, used when the
        call does not override them.
    """

    cell: Cell
    kind: FlaxCellKind
    time_major: bool = False
    return_carry: bool = False
    reverse: bool = False
    keep_order: bool = False
    unroll: int = 1

    def __call__(
        self,
        params: Params,
        xs: jax.Array,
        *,
        initial_carry: Any = None,
        seq_lengths: jax.Array | None = None,
        return_carry: bool | None = None,
        time_major: bool | None = None,
        reverse: bool | None = None,
        keep_order: bool | None = None,
    ) -> Any:
        """As ``nnx.RNN.__call__``: ``outputs``, or ``(carry, outputs)`` with ``return_carry``."""
        time_major = self.time_major if time_major is None else time_major
        reverse = self.reverse if reverse is None else reverse
        keep_order = self.keep_order if keep_order is None else keep_order
        carry = None if initial_carry is None else self._from_flax(initial_carry)
        ys, final = rnn(
            self.cell, params, jnp.asarray(xs), lengths=seq_lengths, initial_carry=carry, reverse=reverse,
            time_major=time_major, unroll=self.unroll,
        )  # fmt: skip
        if reverse and not keep_order:  # NNX returns a reversed run's outputs in processing order
            ys = flip_valid(ys, seq_lengths, time_major)
        if self.return_carry if return_carry is None else return_carry:
            return to_flax_carry(final), ys
        return ys

    def _from_flax(self, carry: Any) -> Any:
        if self.kind is FlaxCellKind.LSTM:
            c, h = carry
            return LSTMState(h=h, c=c)
        return carry


@dataclasses.dataclass(frozen=True)
class FlaxBidirectional:
    """A pure-function twin of ``flax.nnx.Bidirectional`` (concatenated outputs); params are
    ``{"forward": ..., "backward": ...}``; call it as ``net(params, xs, seq_lengths=...)``."""

    forward: FlaxRNN
    backward: FlaxRNN
    time_major: bool = False
    return_carry: bool = False

    def __call__(
        self,
        params: dict[str, Params],
        xs: jax.Array,
        *,
        initial_carry: tuple[Any, Any] | None = None,
        seq_lengths: jax.Array | None = None,
        return_carry: bool | None = None,
        time_major: bool | None = None,
    ) -> Any:
        """As ``nnx.Bidirectional.__call__``: ``outputs`` or ``((carry_forward, carry_backward), outputs)``."""
        time_major = self.time_major if time_major is None else time_major
        forward_carry, backward_carry = (None, None) if initial_carry is None else initial_carry
        common = dict(seq_lengths=seq_lengths, return_carry=True, time_major=time_major)
        carry_forward, forward = self.forward(
            params["forward"], xs, initial_carry=forward_carry, reverse=False, **common
        )
        carry_backward, backward = self.backward(
            params["backward"], xs, initial_carry=backward_carry, reverse=True, keep_order=True, **common
        )
        outputs = jnp.concatenate([forward, backward], axis=-1)
        if self.return_carry if return_carry is None else return_carry:
            return (carry_forward, carry_backward), outputs
        return outputs


def _import_rnn(module: Any, argument: str = "module") -> tuple[FlaxRNN, Params]:
    from flax import nnx  # noqa: PLC0415

    if not isinstance(module, nnx.RNN):
        raise TypeError(f"{argument}: expected a flax.nnx.RNN; got {type(module).__name__}")
    cell, params = from_nnx_cell(module.cell)
    net = FlaxRNN(
        cell=cell, kind=nnx_cell_kind(module.cell), time_major=module.time_major, return_carry=module.return_carry,
        reverse=module.reverse, keep_order=module.keep_order, unroll=module.unroll,
    )  # fmt: skip
    return net, params


def from_flax_nnx(module: Any) -> tuple[FlaxRNN | FlaxBidirectional, Any]:
    """Import a ``flax.nnx.RNN`` or ``flax.nnx.Bidirectional`` built from the NNX cells above.

    Args:
      module: the NNX module; a Bidirectional must use the default ``merge_fn`` (concatenation)
        and ``nnx.RNN`` directions.

    Returns:
      ``(net, params)``: ``net(params, xs, seq_lengths=None, initial_carry=None, ...)`` returns what
      the NNX module returns, carries in NNX's layout.
    """
    from flax import nnx  # noqa: PLC0415
    from flax.nnx.nn import recurrent  # noqa: PLC0415

    if isinstance(module, nnx.RNN):
        return _import_rnn(module)
    if not isinstance(module, nnx.Bidirectional):
        raise TypeError(f"module: expected a flax.nnx.RNN or flax.nnx.Bidirectional; got {type(module).__name__}")
    if module.merge_fn is not recurrent._concatenate:
        raise ValueError(f"module.merge_fn: expected the default (concatenation); got {module.merge_fn!r}")
    forward, forward_params = _import_rnn(module.forward_rnn, "module.forward_rnn")
    backward, backward_params = _import_rnn(module.backward_rnn, "module.backward_rnn")
    net = FlaxBidirectional(forward, backward, time_major=module.time_major, return_carry=module.return_carry)
    return net, {"forward": forward_params, "backward": backward_params}
