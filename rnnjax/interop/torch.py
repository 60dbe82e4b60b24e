"""Weight import from PyTorch: ``torch.nn.RNN`` (tanh/relu), ``torch.nn.LSTM`` and ``torch.nn.GRU``.

    net, params = from_torch(module)                 # module: torch.nn.LSTM(...), etc.
    outputs, final_state = net(params, xs, lengths)  # torch's layout, as a pure function

Torch stores kernels as ``[gates * hidden, input]`` for ``W x``; rnnjax uses ``x @ W``,
so kernels are transposed. Gate order is the same (LSTM i, f, g, o; GRU r, z, n).
Torch's two biases ``b_ih + b_hh`` are summed for the simple RNN and the LSTM; the GRU
keeps them apart because ``b_hn`` sits inside the reset gate. ``torch`` is imported
lazily: this module imports without it.
"""


from __future__ import annotations

import dataclasses
import enum
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.checks.arguments import as_enum
from rnnjax.core.cells import Activation, Cell, GRUConvention, LSTMState, Params, gru, lstm, simple_rnn
from rnnjax.core.unroll import RNN, Merge
from rnnjax.interop.dtypes import require_x64_for


class TorchMode(enum.Enum):
    """The recurrence of a torch RNN module (its ``mode`` attribute)."""

    RNN_TANH = "RNN_TANH"
    RNN_RELU = "RNN_RELU"
    LSTM = "LSTM"
    GRU = "GRU"


def _torch_cell(mode: TorchMode) -> Cell:
    if mode is TorchMode.RNN_TANH:
        return simple_rnn(Activation.TANH)
    if mode is TorchMode.RNN_RELU:
        return simple_rnn(Activation.RELU)
    if mode is TorchMode.LSTM:
        return lstm()
    if mode is TorchMode.GRU:
        return gru(GRUConvention.PYTORCH)
    raise ValueError(f"mode must be a TorchMode; got {mode!r}")


@dataclasses.dataclass(frozen=True)
class TorchRNN:
    """A pure-function twin of a torch RNN module; call it as ``net(params, xs, lengths)``.

    Attributes:
      network: the stacked/bidirectional :class:`~rnnjax.core.unroll.RNN` doing the work.
      mode: which torch recurrence it mirrors.
      input_size: feature size of the inputs.
      batch_first: layout of ``xs`` and of the outputs, as in torch.
    """

    network: RNN
    mode: TorchMode
    input_size: int
    batch_first: bool

    @property
    def num_states(self) -> int:
        return self.network.num_layers * self.network.num_directions

    def __call__(
        self,
        params: dict[str, Any],
        xs: jax.Array,
        lengths: jax.Array | None = None,
        initial_state: Any = None,
    ) -> tuple[jax.Array, Any]:
        """Run the network exactly as the torch module would.

        Args:
          params: from :func:`from_torch`.
          xs: ``[batch, time, input]`` if ``batch_first`` else ``[time, batch, input]``;
            or unbatched ``[time, input]``.
          lengths: int ``[batch]``; plays the role of ``pack_padded_sequence``. Outputs
            keep all ``time`` steps (torch's ``pad_packed_sequence`` trims to
            ``max(lengths)`` unless given ``total_length``); padded steps are zero.
          initial_state: ``h_0`` (or ``(h_0, c_0)`` for LSTM), each
            ``[num_layers * num_directions, batch, hidden]`` (``[.., hidden]`` unbatched).

        Returns:
          ``(outputs, h_n)`` or ``(outputs, (h_n, c_n))`` for LSTM, shaped as torch's.
        """
        xs = jnp.asarray(xs)
        if xs.ndim not in (2, 3):
            raise ValueError(
                "xs: expected [batch, time, input], [time, batch, input] or unbatched [time, input]; "
                f"got shape {tuple(xs.shape)}"
            )
        time_major = xs.ndim == 2 or not self.batch_first
        batch_shape = () if xs.ndim == 2 else (xs.shape[0] if self.batch_first else xs.shape[1],)
        carries = None if initial_state is None else self._split_state(initial_state, batch_shape)
        outputs, finals = self.network.apply(
            params, xs, lengths=lengths, initial_carry=carries, time_major=time_major
        )
        return outputs, self._stack_state(finals)

    def _split_state(self, state: Any, batch_shape: tuple[int, ...]) -> tuple[tuple[Any, ...], ...]:
        """torch ``h_0`` / ``(h_0, c_0)`` -> per-layer, per-direction rnnjax carries."""
        is_lstm = self.mode is TorchMode.LSTM
        if is_lstm and not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise ValueError(f"initial_state: expected a pair (h_0, c_0) for an LSTM; got {type(state).__name__}")
        parts = tuple(jnp.asarray(s) for s in state) if is_lstm else (jnp.asarray(state),)
        expected = (self.num_states, *batch_shape, self.network.hidden_size)
        for name, part in zip(("h_0", "c_0"), parts):
            if part.shape != expected:
                raise ValueError(
                    f"initial_state: expected {name} of shape {list(expected)} "
                    f"([num_layers * num_directions, *batch, hidden]); got {list(part.shape)}"
                )
        directions = self.network.num_directions
        carries = []
        for layer in range(self.network.num_layers):
            rows = range(layer * directions, (layer + 1) * directions)
            if is_lstm:
                carries.append(tuple(LSTMState(h=parts[0][r], c=parts[1][r]) for r in rows))
            else:
                carries.append(tuple(parts[0][r] for r in rows))
        return tuple(carries)

    def _stack_state(self, finals: tuple[tuple[Any, ...], ...]) -> Any:
        """Per-layer, per-direction carries -> torch ``h_n`` / ``(h_n, c_n)``."""
        flat = [carry for layer in finals for carry in layer]
        if self.mode is TorchMode.LSTM:
            return jnp.stack([c.h for c in flat]), jnp.stack([c.c for c in flat])
        return jnp.stack(flat)


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _torch_direction_params(module: Any, mode: TorchMode, suffix: str) -> Params:
    """One layer/direction of torch weights (``suffix`` like ``l0`` or ``l1_reverse``) as cell params."""
    input_kernel = jnp.asarray(_numpy(getattr(module, f"weight_ih_{suffix}")).T)
    recurrent_kernel = jnp.asarray(_numpy(getattr(module, f"weight_hh_{suffix}")).T)
    size = recurrent_kernel.shape[1]
    if module.bias:
        bias_ih = jnp.asarray(_numpy(getattr(module, f"bias_ih_{suffix}")))
        bias_hh = jnp.asarray(_numpy(getattr(module, f"bias_hh_{suffix}")))
    else:
        bias_ih = bias_hh = jnp.zeros((size,), input_kernel.dtype)
    params = {"input_kernel": input_kernel, "recurrent_kernel": recurrent_kernel}
    if mode is TorchMode.GRU:
        return {**params, "input_bias": bias_ih, "recurrent_bias": bias_hh}
    return {**params, "bias": bias_ih + bias_hh}


def from_torch(module: Any) -> tuple[TorchRNN, dict[str, Any]]:
    """Import a ``torch.nn.RNN`` (tanh/relu), ``torch.nn.LSTM`` or ``torch.nn.GRU``.

    ``num_layers``, ``bidirectional``, ``batch_first`` and ``bias`` are honoured. The
    module's ``dropout`` (between layers, training only) is ignored: the returned
    network is the module in ``eval()`` mode. With ``bias=False`` the biases are
    imported as zeros. ``proj_size > 0`` is not supported.

    Args:
      module: the torch module; its parameters' dtype is kept (use ``module.double()``
        for float64).

    Returns:
      ``(net, params)``: ``net(params, xs, lengths=None, initial_state=None)`` returns
      ``(outputs, final_state)`` exactly as the torch module lays them out.
    """
    import torch  # noqa: PLC0415 - optional dependency

    if not isinstance(module, torch.nn.RNNBase):
        raise TypeError(f"module: expected a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU; got {type(module).__name__}")
    mode = as_enum(TorchMode, module.mode, "module.mode")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"module.proj_size: expected 0 (LSTM projections are not supported); got {module.proj_size}")
    require_x64_for("module", (str(value.dtype).removeprefix("torch.") for value in module.parameters()))
    network = RNN(
        cell=_torch_cell(mode),
        hidden_size=module.hidden_size,
        num_layers=module.num_layers,
        bidirectional=module.bidirectional,
        merge=Merge.CONCAT,
    )
    suffixes = ("", "_reverse") if module.bidirectional else ("",)
    layers = tuple(
        tuple(_torch_direction_params(module, mode, f"l{layer}{suffix}") for suffix in suffixes)
        for layer in range(module.num_layers)
    )
    net = TorchRNN(network=network, mode=mode, input_size=module.input_size, batch_first=module.batch_first)
    return net, {"layers": layers}
