"""Weight import from Keras 3: ``SimpleRNN``, ``LSTM``, ``GRU`` (``reset_after`` True or False),
``Bidirectional`` and ``keras.Sequential`` stacks of them (optionally behind a ``Masking`` layer).

    net, params = from_keras(layer_or_sequential)
    outputs = net(params, xs, mask=mask)   # what Keras returns for (xs, mask), as a pure function

Keras kernels follow ``x @ W``. Gate orders: LSTM i, f, c, o (rnnjax's i, f, g, o); GRU z, r, h,
permuted here to rnnjax's r, z, n. ``reset_after=True`` is rnnjax's "pytorch" GRU (bias row 0 on
the input side, row 1 on the recurrent side); ``reset_after=False`` is the "cho" GRU, candidate
``tanh(x W_h + b_h + (r * h) U_h)``, with a zero recurrent bias.

Masking follows Keras: a masked step keeps the state; its output is the previous output (the held
``h``; zeros before the first valid step), or zero when the layer has ``zero_output_for_mask``
(``Bidirectional`` sets it on both directions when returning sequences). ``go_backwards`` returns
outputs in processing order, as Keras does. Layers start from zero states. ``keras`` is only
imported when a layer is imported; its weights are read through ``keras.ops.convert_to_numpy``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.core.cells import Activation, Cell, GRUConvention, LSTMState, Params, gru, lstm, simple_rnn
from rnnjax.core.unroll import Merge, merge_directions, rnn
from rnnjax.interop.dtypes import require_x64_for

KERAS_MERGES = {"concat": Merge.CONCAT, "sum": Merge.SUM, "ave": Merge.MEAN, "mul": Merge.MUL}


@dataclasses.dataclass(frozen=True)
class KerasLayer:
    """One Keras recurrent layer: its cell and the call options that shape its outputs."""

    cell: Cell
    go_backwards: bool = False
    return_sequences: bool = False
    return_state: bool = False
    zero_output_for_mask: bool = False

    def __call__(self, params: Params, xs: jax.Array, mask: jax.Array | None) -> tuple[jax.Array, tuple]:
        """``(output, states)`` as Keras computes them; states are ``(h,)`` or ``(h, c)``."""
        ys, final = rnn(self.cell, params, xs, mask=mask, reverse=self.go_backwards)
        if self.go_backwards:  # Keras returns a backward layer's outputs in processing order
            ys = jnp.flip(ys, axis=-2)
            mask = None if mask is None else jnp.flip(mask, axis=-1)
        if mask is not None and not self.zero_output_for_mask:
            ys = hold_masked_outputs(ys, mask)
        output = ys if self.return_sequences else ys[..., -1, :]
        states = (final.h, final.c) if isinstance(final, LSTMState) else (final,)
        return output, states


def hold_masked_outputs(ys: jax.Array, mask: jax.Array) -> jax.Array:
    """y_t = y_s for the last valid s <= t (0 if none): Keras's output at masked steps (``ys`` zero there)."""
    steps = ys.shape[-2]
    last_valid = jax.lax.cummax(jnp.where(mask, jnp.arange(steps), -1), axis=mask.ndim - 1)  # [*batch, time]
    held = jnp.take_along_axis(ys, jnp.maximum(last_valid, 0)[..., None], axis=-2)
    return jnp.where(last_valid[..., None] >= 0, held, jnp.zeros_like(held))


@dataclasses.dataclass(frozen=True)
class KerasBidirectional:
    """``keras.layers.Bidirectional``: params ``{"forward": ..., "backward": ...}``."""

    forward: KerasLayer
    backward: KerasLayer
    merge: Merge = Merge.CONCAT

    @property
    def return_state(self) -> bool:
        return self.forward.return_state

    def __call__(self, params: dict[str, Params], xs: jax.Array, mask: jax.Array | None) -> tuple[jax.Array, tuple]:
        forward, forward_states = self.forward(params["forward"], xs, mask)
        backward, backward_states = self.backward(params["backward"], xs, mask)
        if self.backward.return_sequences:  # back to input order
            backward = jnp.flip(backward, axis=-2)
        return merge_directions(self.merge, forward, backward), (*forward_states, *backward_states)


@dataclasses.dataclass(frozen=True)
class KerasRNN:
    """A pure-function twin of a Keras recurrent layer or stack; call it as ``net(params, xs, mask=None)``.

    Attributes:
      layers: the recurrent layers in order; ``params`` is a tuple with one entry per layer.
      mask_value: the ``Masking`` layer's value when the stack starts with one (the mask is then
        ``any(xs != mask_value, axis=-1)``).
    """

    layers: tuple[KerasLayer | KerasBidirectional, ...]
    mask_value: float | None = None

    def __call__(self, params: tuple[Any, ...], xs: jax.Array, mask: jax.Array | None = None) -> Any:
        """Keras's output for ``xs`` ``[batch, time, features]`` and ``mask`` bool ``[batch, time]``:
        the last layer's output, or ``(output, *states)`` for a single layer with ``return_state``."""
        xs = jnp.asarray(xs)
        if self.mask_value is not None:
            if mask is not None:
                raise ValueError("mask: expected None (the Masking layer computes the mask from xs); got an array")
            mask = jnp.any(xs != self.mask_value, axis=-1)
        mask = None if mask is None else jnp.asarray(mask, bool)
        states: tuple = ()
        for layer, layer_params in zip(self.layers, params):
            xs, states = layer(layer_params, xs, mask)
        return (xs, *states) if self.layers[-1].return_state else xs


# --------------------------------------------------------------------------- reading Keras layers


def _array(variable: Any) -> jax.Array:
    import keras  # noqa: PLC0415

    value = keras.ops.convert_to_numpy(variable.value)
    require_x64_for(f"module variable {getattr(variable, 'path', variable)!r}", [value.dtype])
    return jnp.asarray(value)


def _gru_blocks(array: jax.Array) -> jax.Array:
    """Keras GRU gate blocks [z, r, h] along the last axis -> rnnjax's [r, z, n]."""
    z, r, h = jnp.split(array, 3, axis=-1)
    return jnp.concatenate([r, z, h], axis=-1)


def _check_options(layer: Any, argument: str, ignore_dropout: bool) -> None:
    """Options rnnjax cannot reproduce raise an error that names them."""
    cell = layer.cell
    for option, value in (("stateful", layer.stateful), ("unroll", layer.unroll)):
        if value:
            raise ValueError(f"{argument}.{option}: expected False (not supported by the import); got {value!r}")
    if not ignore_dropout:
        for option in ("dropout", "recurrent_dropout"):
            if getattr(cell, option):
                raise ValueError(
                    f"{argument}.{option}: expected 0 (training-time dropout is not imported; pass "
                    f"ignore_dropout=True for the layer at inference); got {getattr(cell, option)!r}"
                )
    if not layer.built:
        raise ValueError(f"{argument}: expected a built layer (call it once, or build it); got an unbuilt layer")


def _activation_name(cell: Any, argument: str, option: str, allowed: tuple[str, ...]) -> str:
    """The name of ``cell.<option>`` among Keras's ``allowed`` activations, else a clear error."""
    import keras  # noqa: PLC0415

    function = getattr(cell, option)
    for name in allowed:
        if function is keras.activations.get(name):
            return name
    got = getattr(function, "__name__", function)
    raise ValueError(f"{argument}.{option}: expected one of {list(allowed)}; got {got!r}")


def _import_cell(layer: Any, argument: str) -> tuple[Cell, Params]:
    import keras  # noqa: PLC0415

    cell = layer.cell
    kernel, recurrent = _array(cell.kernel), _array(cell.recurrent_kernel)
    gates = kernel.shape[-1] // cell.units
    bias = _array(cell.bias) if cell.use_bias else None
    if isinstance(layer, keras.layers.SimpleRNN):
        activation = Activation(_activation_name(cell, argument, "activation", ("tanh", "relu")))
        zeros = jnp.zeros((cell.units,), kernel.dtype)
        return simple_rnn(activation), {"input_kernel": kernel, "recurrent_kernel": recurrent,
                                        "bias": zeros if bias is None else bias}  # fmt: skip
    _activation_name(cell, argument, "activation", ("tanh",))
    _activation_name(cell, argument, "recurrent_activation", ("sigmoid",))
    zeros = jnp.zeros((gates * cell.units,), kernel.dtype)
    if isinstance(layer, keras.layers.LSTM):
        return lstm(), {"input_kernel": kernel, "recurrent_kernel": recurrent, "bias": zeros if bias is None else bias}
    params = {"input_kernel": _gru_blocks(kernel), "recurrent_kernel": _gru_blocks(recurrent)}
    if cell.reset_after:
        input_bias, recurrent_bias = (zeros, zeros) if bias is None else (bias[0], bias[1])
        params.update(input_bias=_gru_blocks(input_bias), recurrent_bias=_gru_blocks(recurrent_bias))
        return gru(GRUConvention.PYTORCH), params
    params.update(input_bias=zeros if bias is None else _gru_blocks(bias), recurrent_bias=zeros)
    return gru(GRUConvention.CHO), params


def _import_recurrent(layer: Any, argument: str, ignore_dropout: bool) -> tuple[KerasLayer, Params]:
    import keras  # noqa: PLC0415

    if not isinstance(layer, (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU)):
        raise TypeError(
            f"{argument}: expected a keras.layers SimpleRNN, LSTM, GRU or Bidirectional; got {type(layer).__name__}"
        )
    _check_options(layer, argument, ignore_dropout)
    cell, params = _import_cell(layer, argument)
    imported = KerasLayer(
        cell=cell, go_backwards=layer.go_backwards, return_sequences=layer.return_sequences,
        return_state=layer.return_state, zero_output_for_mask=layer.zero_output_for_mask,
    )  # fmt: skip
    return imported, params


def _import_layer(layer: Any, argument: str, ignore_dropout: bool) -> tuple[KerasLayer | KerasBidirectional, Any]:
    import keras  # noqa: PLC0415

    if not isinstance(layer, keras.layers.Bidirectional):
        return _import_recurrent(layer, argument, ignore_dropout)
    if layer.merge_mode not in KERAS_MERGES:
        raise ValueError(f"{argument}.merge_mode: expected one of {list(KERAS_MERGES)}; got {layer.merge_mode!r}")
    forward, forward_params = _import_recurrent(layer.forward_layer, f"{argument}.forward_layer", ignore_dropout)
    backward, backward_params = _import_recurrent(layer.backward_layer, f"{argument}.backward_layer", ignore_dropout)
    imported = KerasBidirectional(forward=forward, backward=backward, merge=KERAS_MERGES[layer.merge_mode])
    return imported, {"forward": forward_params, "backward": backward_params}


def _sequential_layers(model: Any) -> tuple[float | None, list[Any]]:
    """A Sequential's (mask value of a leading Masking layer, recurrent layers)."""
    import keras  # noqa: PLC0415

    layers = list(model.layers)
    mask_value = None
    if layers and isinstance(layers[0], keras.layers.Masking):
        mask_value = float(layers[0].mask_value)
    first = int(mask_value is not None)
    if len(layers) == first:
        raise ValueError("module: expected a Sequential with at least one recurrent layer; got none")
    for index in range(first, len(layers)):
        if index < len(layers) - 1 and not getattr(layers[index], "return_sequences", True):
            raise ValueError(f"module.layers[{index}].return_sequences: expected True (it feeds a layer); got False")
        if getattr(layers[index], "return_state", False):
            raise ValueError(f"module.layers[{index}].return_state: expected False inside a Sequential; got True")
    return mask_value, layers[first:]


def from_keras(module: Any, *, ignore_dropout: bool = False) -> tuple[KerasRNN, tuple[Any, ...]]:
    """Import a Keras 3 ``SimpleRNN`` (tanh or relu), ``LSTM``, ``GRU``, ``Bidirectional`` or a
    ``keras.Sequential`` of them (optionally starting with ``Masking``).

    Unsupported options raise an error naming them: ``stateful``, ``unroll``, non-default
    activations (``activation`` tanh, relu too for SimpleRNN; ``recurrent_activation`` sigmoid),
    ``merge_mode=None``, any other layer in the stack; ``dropout`` / ``recurrent_dropout`` unless
    ``ignore_dropout`` (the net is then the layer at inference, where both are no-ops).

    Returns:
      ``(net, params)``: ``net(params, xs, mask=None)`` returns what Keras returns, in the layer's
      dtype (use ``dtype="float64"`` layers for float64).
    """
    import keras  # noqa: PLC0415 - optional dependency

    if isinstance(module, keras.Sequential):
        mask_value, layers = _sequential_layers(module)
        names = [f"module.layers[{index + (mask_value is not None)}]" for index in range(len(layers))]
    else:
        mask_value, layers, names = None, [module], ["module"]
    imported = [_import_layer(layer, name, ignore_dropout) for layer, name in zip(layers, names)]
    net = KerasRNN(layers=tuple(layer for layer, _ in imported), mask_value=mask_value)
    return net, tuple(params for _, params in imported)
