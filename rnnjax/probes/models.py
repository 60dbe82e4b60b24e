"""Models for the probe: any rnnjax cell, uni/bidirectional, depth 1..L, a per-step readout, and an output delay.

A model with delay D reads the input followed by D zero steps and emits y_{t-D} at step t, i.e. its prediction
of y_t is its output at step t + D (:func:`aligned_predictions`). D = 0 is an ordinary causal model; a large D
lets a unidirectional model see the future it needs.

Encoder-decoder models (:class:`Architecture`) read the N inputs with an encoder RNN of width m, pass its last
output h_N (the m-number "semantic vector") through a linear bridge to the initial carry of a decoder RNN of
the same cell, which then writes M outputs without seeing the input; with attention, every decoder step also
reads a Bahdanau context over all encoder outputs (:func:`rnnjax.tasks.seq2seq.attend`).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.checks import arguments
from rnnjax.core.cells import linear_rnn, make_cell
from rnnjax.core.unroll import RNN, Merge, rnn
from rnnjax.tasks.heads import carry_vector
from rnnjax.tasks.seq2seq import Memory, attend

UNROLL = 1  # lax.scan unroll factor: fewer loop iterations, much faster on CPU for small models
LINEAR_CELLS = ("linear", "linear_dense", "linear_diagonal", "linear_complex_diagonal")


class Architecture(enum.Enum):
    """How outputs are produced from inputs."""

    ALIGNED = "aligned"  # one output per input step (with output delay D)
    ENCODER_DECODER = "encoder_decoder"  # input -> width-m vector -> M outputs
    ATTENTION = "attention"  # encoder-decoder whose decoder also attends over all encoder outputs


class Initialisation(enum.Enum):
    """How the nonlinear cells (simple, GRU, LSTM) start; every parameter it does not name starts as the cell's own
    default (orthogonal recurrent kernels, zero biases, LeCun normal readouts). Linear cells keep their own."""

    CELL_DEFAULT = "cell_default"  # LeCun normal input kernel (std ~0.9 for one input feature); LSTM forget bias 1
    PYTORCH = "pytorch"  # input kernel uniform in +-1/sqrt(width) and LSTM forget bias 0, as torch.nn.GRU / LSTM


def input_initializer(initialisation: Initialisation | str, width: int):
    """The input-kernel initialiser of :class:`Initialisation` for cells of hidden size ``width`` (None: the cell's
    own default).

    Examples:
      >>> import jax
      >>> init = input_initializer("pytorch", 16)
      >>> values = init(jax.random.key(0), (1, 48))
      >>> bool(abs(values).max() <= 0.25)
      True
      >>> input_initializer("cell_default", 16) is None
      True
    """
    initialisation = arguments.as_enum(Initialisation, initialisation, "initialisation")
    if initialisation is Initialisation.CELL_DEFAULT:
        return None
    bound = 1.0 / math.sqrt(arguments.positive_int("width", width))

    def uniform(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return uniform


def _cell(name: str, initialisation: Initialisation | str, width: int):
    """make_cell(name) initialised as ``initialisation`` says (linear cells keep their own)."""
    initializer = input_initializer(initialisation, width)
    if initializer is None or name in LINEAR_CELLS:
        return make_cell(name)
    options = {"forget_bias": 0.0} if name == "lstm" else {}  # torch adds no forget-gate offset
    return make_cell(name, input_init=initializer, **options)


class Readout(enum.Enum):
    """Per-step map from the last layer's output to the prediction."""

    NONE = "none"  # linear cells only: the cell's own y = C h + D x is the prediction
    LINEAR = "linear"  # y = h W + b
    MLP = "mlp"  # y = tanh(h W1 + b1) W2 + b2


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model family; ``width`` and ``delay`` are swept by :func:`rnnjax.probes.sweep.sweep`.

    Attributes:
      cell: a :func:`rnnjax.core.cells.make_cell` name ('linear_dense', 'simple_tanh', 'simple_relu', 'gru',
        'lstm', ...).
      width: hidden size of every layer.
      depth: number of stacked layers.
      bidirectional: add a reversed direction per layer (outputs summed for Readout.NONE, else concatenated).
      readout: see :class:`Readout`.
      mlp_width: hidden size of the MLP readout.
      delay: output delay D (the model emits y_{t-D} at step t).
      label: optional display name (defaults to :attr:`name`).
      architecture: aligned, encoder-decoder or encoder-decoder with attention (see :class:`Architecture`);
        encoder-decoders need depth 1, one direction, a linear readout and delay 0.
    """

    cell: str = "gru"
    width: int = 16
    depth: int = 1
    bidirectional: bool = False
    readout: Readout = Readout.LINEAR
    mlp_width: int = 32
    delay: int = 0
    label: str = ""
    architecture: Architecture = Architecture.ALIGNED

    def __post_init__(self):
        object.__setattr__(self, "readout", Readout(self.readout))
        object.__setattr__(self, "architecture", Architecture(self.architecture))
        for argument in ("width", "depth", "mlp_width"):
            arguments.positive_int(argument, getattr(self, argument))
        arguments.nonnegative_int("delay", self.delay)
        if self.readout is Readout.NONE and (self.cell not in LINEAR_CELLS or self.depth != 1):
            raise ValueError(
                f"readout 'none' needs a one-layer linear cell (one of {LINEAR_CELLS}); "
                f"got cell={self.cell!r}, depth={self.depth}"
            )
        make_cell(self.cell)  # validates the name
        if self.architecture is not Architecture.ALIGNED:
            self._check_encoder_decoder()

    def _check_encoder_decoder(self) -> None:
        actual = {name: getattr(self, name) for name in ("depth", "bidirectional", "readout", "delay")}
        expected = {"depth": 1, "bidirectional": False, "readout": Readout.LINEAR, "delay": 0}
        if actual != expected or self.cell == "linear_complex_diagonal":
            raise ValueError(
                f"architecture {self.architecture.value!r} needs {expected} and a real-carry cell; "
                f"got {actual}, cell={self.cell!r}"
            )

    @property
    def name(self) -> str:
        """Family name without width/delay, e.g. 'gru', 'linear_dense+mlp', 'simple_relu-L3', 'gru-bi'."""
        if self.label:
            return self.label
        name = self.cell + ("-bi" if self.bidirectional else "") + (f"-L{self.depth}" if self.depth > 1 else "")
        suffix = {Architecture.ALIGNED: "", Architecture.ENCODER_DECODER: "-encdec", Architecture.ATTENTION: "-attn"}
        return name + ("+mlp" if self.readout is Readout.MLP else "") + suffix[self.architecture]


def network(
    spec: ModelSpec, output_size: int, initialisation: Initialisation | str = Initialisation.CELL_DEFAULT
) -> RNN:
    """The recurrent part: an :class:`rnnjax.core.unroll.RNN` (``initialisation`` only changes its ``init``)."""
    if spec.readout is Readout.NONE:
        kind = "dense" if spec.cell == "linear" else spec.cell.removeprefix("linear_")
        cell, merge = linear_rnn(kind, output_size=output_size), Merge.SUM
    else:
        cell, merge = _cell(spec.cell, initialisation, spec.width), Merge.CONCAT
    return RNN(cell, spec.width, spec.depth, spec.bidirectional, merge)


def init(
    spec: ModelSpec, key: jax.Array, input_size: int, output_size: int, dtype: Any = jnp.float32,
    initialisation: Initialisation | str = Initialisation.CELL_DEFAULT,
) -> dict:  # fmt: skip
    """Parameters {'rnn': ..., 'readout': ...} (readout is empty for Readout.NONE); see :func:`init_encoder_decoder`.

    ``initialisation`` sets the input kernels of nonlinear cells (:class:`Initialisation`); the probe's training
    passes :attr:`rnnjax.probes.training.TrainConfig.initialisation` (PyTorch's by default)."""
    if spec.architecture is not Architecture.ALIGNED:
        return init_encoder_decoder(spec, key, input_size, output_size, dtype, initialisation)
    net = network(spec, output_size, initialisation)
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
    spec: ModelSpec, params: dict, xs: jax.Array, output_size: int, delay: jax.Array | int, max_delay: int,
    output_length: int | None = None,
) -> jax.Array:  # fmt: skip
    """Predictions of y_0..y_{T-1} [batch, T, output]: outputs at steps D..D+T-1 on xs followed by max_delay zeros.

    ``delay`` may be traced (so delays can be vmapped); it must not exceed the static ``max_delay``. For an
    encoder-decoder, the M = ``output_length`` (default T) decoder outputs (delay is ignored: it is 0).
    """
    if spec.architecture is not Architecture.ALIGNED:
        return encoder_decoder_apply(spec, params, xs, output_length or xs.shape[1])
    length = xs.shape[1]
    padded = jnp.pad(xs, ((0, 0), (0, max_delay), (0, 0)))
    outputs = apply(spec, params, padded, output_size)
    return jax.lax.dynamic_slice_in_dim(outputs, jnp.asarray(delay, jnp.int32), length, axis=1)


# --------------------------------------------------------------------------- encoder-decoder


def init_encoder_decoder(
    spec: ModelSpec, key: jax.Array, input_size: int, output_size: int, dtype=jnp.float32,
    initialisation: Initialisation | str = Initialisation.CELL_DEFAULT,
):  # fmt: skip
    """{'encoder', 'decoder': cell params, 'bridge': one dense map per carry leaf, 'readout', ['attention']}."""
    cell, width = _cell(spec.cell, initialisation, spec.width), spec.width
    keys = iter(jax.random.split(key, 8))
    attention = spec.architecture is Architecture.ATTENTION
    dense = jax.nn.initializers.lecun_normal()
    params = {
        "encoder": cell.init(next(keys), input_size, width, dtype),
        "decoder": cell.init(next(keys), width if attention else 1, width, dtype),
    }
    carry = cell.initial_carry(params["decoder"])
    bridge_keys = iter(jax.random.split(next(keys), len(jax.tree.leaves(carry))))
    params["bridge"] = jax.tree.map(
        lambda leaf: {"w": dense(next(bridge_keys), (width, leaf.shape[-1]), dtype), "b": jnp.zeros_like(leaf)}, carry
    )
    features = 2 * width if attention else width
    params["readout"] = {"w": dense(next(keys), (features, output_size), dtype), "b": jnp.zeros((output_size,), dtype)}
    if attention:
        params["attention"] = {
            "query": dense(next(keys), (width, width), dtype),
            "key": dense(next(keys), (width, width), dtype),
            "score": dense(next(keys), (width, 1), dtype)[:, 0],
        }
    return params


def encode(spec: ModelSpec, params: dict, xs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(encoder outputs [batch, N, m], semantic vector v = h_N [batch, m])."""
    outputs, _ = rnn(make_cell(spec.cell), params["encoder"], xs, unroll=UNROLL)
    return outputs, outputs[:, -1]


def decoder_carry(spec: ModelSpec, params: dict, vector: jax.Array):
    """Initial decoder carry, leaf_i = v W_i + b_i: linear, so a linear cell gives a linear encoder-decoder."""
    is_dense = lambda node: isinstance(node, dict) and set(node) == {"w", "b"}  # noqa: E731
    return jax.tree.map(lambda layer: vector @ layer["w"] + layer["b"], params["bridge"], is_leaf=is_dense)


def encoder_decoder_apply(spec: ModelSpec, params: dict, xs: jax.Array, output_length: int) -> jax.Array:
    """Outputs [batch, M, output] from inputs [batch, N, input]; the decoder never reads xs."""
    outputs, vector = encode(spec, params, xs)
    carry = decoder_carry(spec, params, vector)
    readout = params["readout"]
    if spec.architecture is Architecture.ENCODER_DECODER:
        zeros = jnp.zeros((xs.shape[0], output_length, 1), xs.dtype)
        hs, _ = rnn(make_cell(spec.cell), params["decoder"], zeros, initial_carry=carry, unroll=UNROLL)
        return hs @ readout["w"] + readout["b"]
    memory = Memory(values=outputs, keys=outputs @ params["attention"]["key"], mask=jnp.ones(outputs.shape[:2], bool))
    features = _attention_decoder(spec, params, carry, memory, output_length)
    return features @ readout["w"] + readout["b"]


def _attention_decoder(spec: ModelSpec, params: dict, carry, memory: Memory, output_length: int) -> jax.Array:
    """[h_t; c_t] for t < M [batch, M, 2m]: c_t = Bahdanau context for query h_{t-1}; h_t = cell(h_{t-1}, c_t)."""
    cell, attention = make_cell(spec.cell), params["attention"]
    step = jax.vmap(cell.step, in_axes=(None, 0, 0))  # the cell handles one example

    def body(carry, _):
        query = carry_vector(carry)
        scores = jnp.tanh((query @ attention["query"])[:, None, :] + memory.keys) @ attention["score"]
        context = attend(scores, memory)[0]
        carry, h = step(params["decoder"], carry, context)
        return carry, jnp.concatenate([h, context], -1)

    _, features = jax.lax.scan(body, carry, None, length=output_length, unroll=UNROLL)
    return jnp.moveaxis(features, 0, 1)
