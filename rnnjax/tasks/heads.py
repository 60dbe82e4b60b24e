"""Many-to-one and aligned many-to-many heads on top of :class:`rnnjax.core.unroll.RNN`.

API (``xs`` float ``[batch, time, features]``, or int token ids when ``vocab_size`` is set):

    # many-to-one: one vector per sequence, then a dense readout (classes or regression)
    model = ManyToOne(RNN(lstm(), 32), num_outputs=2, pooling="last")
    params = model.init(key, input_size=8)                   # embed size if vocab_size is set
    logits = model.apply(params, xs, lengths=lengths)        # [batch, num_outputs]
    vectors = model.encode(params, xs, lengths=lengths)      # [batch, features]
    loss = cross_entropy(logits, labels)                     # or mse(logits, targets)

    # aligned many-to-many: one tag per step, uni- or bidirectional encoder
    tagger = Tagger(RNN(gru(), 32, bidirectional=True), num_tags=5, vocab_size=1000)
    params = tagger.init(key, input_size=16)
    logits = tagger.apply(params, tokens, lengths=lengths)   # [batch, time, num_tags]
    loss = tagger.loss(params, tokens, tags, lengths=lengths)  # masked per-step cross-entropy

Pooling over valid steps only: LAST (final carry of the top layer, both
directions concatenated), MEAN or MAX of the top layer's outputs.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.checks import arguments
from rnnjax.core.cells import LSTMState
from rnnjax.core.unroll import RNN
from rnnjax.tasks.losses import check_labels, check_lengths, cross_entropy, float_array, length_mask


class Pooling(enum.Enum):
    LAST = "last"
    MEAN = "mean"
    MAX = "max"


# --------------------------------------------------------------------------- small layers


def dense_init(key: jax.Array, input_size: int, output_size: int, dtype: Any = jnp.float32) -> dict[str, jax.Array]:
    """Params of y = x W + b with LeCun-normal W: [input, output] and zero b."""
    input_size = arguments.positive_int("input_size", input_size)
    output_size = arguments.positive_int("output_size", output_size)
    kernel = jax.nn.initializers.lecun_normal()(key, (input_size, output_size), dtype)
    return {"kernel": kernel, "bias": jnp.zeros((output_size,), dtype)}


def dense(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """y = x W + b."""
    x = float_array("x", x)
    if x.ndim < 1:
        raise ValueError(f"x must have shape [..., input]; got {arguments.shape_str(x.shape)}")
    check_readout("params", params, x.shape[-1], None)
    arguments.has_shape("params['bias']", params["bias"], params["kernel"].shape[1:])
    return x @ params["kernel"] + params["bias"]


def embedding_init(key: jax.Array, vocab_size: int, embed_size: int, dtype: Any = jnp.float32) -> jax.Array:
    """Embedding table [vocab, embed] with N(0, 1) entries."""
    vocab_size = arguments.positive_int("vocab_size", vocab_size)
    embed_size = arguments.positive_int("embed_size", embed_size)
    return jax.random.normal(key, (vocab_size, embed_size), dtype)


def embed(table: jax.Array, tokens: jax.Array, argument: str = "tokens") -> jax.Array:
    """table[tokens] for int tokens [...] and table [vocab, embed].

    Ids must lie in [0, vocab): checked when concrete and in :func:`rnnjax.checks.values.checked` mode; traced ids
    outside give NaN rows (id >= vocab) or rows counted from the end (negative ids).
    """
    table = float_array("table", table)
    if table.ndim != 2:
        raise ValueError(f"table must have shape [vocab, embed]; got {arguments.shape_str(table.shape)}")
    tokens = jnp.asarray(tokens)
    check_labels(tokens, table.shape[0], argument=argument)
    return jnp.take(table, tokens, axis=0)


def carry_vector(carry: Any) -> jax.Array:
    """The hidden vector of a carry: ``h`` of an LSTMState, the array itself otherwise."""
    if isinstance(carry, LSTMState):
        return carry.h
    if isinstance(carry, jax.Array) and not jnp.iscomplexobj(carry):
        return carry
    raise ValueError(f"carry must be an LSTMState or a real array; got {type(carry).__name__}")


# --------------------------------------------------------------------------- pooling


def pool(ys: jax.Array, lengths: jax.Array | None, pooling: Pooling | str) -> jax.Array:
    """Pool ``ys: [batch, time, features]`` over valid steps -> [batch, features].

    MEAN and MAX reduce over steps ``t < length`` (zero for an empty sequence); LAST
    reads ``ys[length - 1]`` (zero for an empty sequence; ManyToOne's LAST uses the final carries instead, which
    for a bidirectional encoder also covers the backward direction).

    ``lengths`` must lie in [0, time]: checked when concrete and in :func:`rnnjax.tasks.checked` mode; traced
    lengths outside act as clipped.
    """
    pooling = arguments.as_enum(Pooling, pooling, "pooling")
    ys = float_array("ys", ys)
    if ys.ndim < 2:
        raise ValueError(f"ys must have shape [..., time, features]; got {arguments.shape_str(ys.shape)}")
    if lengths is None:
        lengths = jnp.full(ys.shape[:-2], ys.shape[-2])
    lengths = check_lengths("lengths", lengths, ys.shape[:-2], ys.shape[-2])
    valid = length_mask(lengths, ys.shape[-2])
    if pooling is Pooling.MEAN:
        count = jnp.maximum(valid.sum(-1, keepdims=True), 1)
        return jnp.where(valid[..., None], ys, 0.0).sum(-2) / count
    if pooling is Pooling.MAX:
        pooled = jnp.where(valid[..., None], ys, -jnp.inf).max(-2)
        return jnp.where(jnp.isfinite(pooled), pooled, 0.0)
    if pooling is Pooling.LAST:
        last = jnp.take_along_axis(ys, jnp.maximum(lengths - 1, 0)[..., None, None], axis=-2)[..., 0, :]
        return jnp.where(lengths[..., None] > 0, last, 0.0)
    raise ValueError(f"pooling must be a Pooling; got {pooling!r}")


def last_carry_vector(finals: tuple[tuple[Any, ...], ...]) -> jax.Array:
    """Concatenate the hidden vectors of the top layer's final carries over directions."""
    return jnp.concatenate([carry_vector(carry) for carry in finals[-1]], axis=-1)


def check_param_keys(argument: str, params: Any, required: tuple[str, ...]) -> None:
    """``params`` is a dict holding every key of ``required`` (ValueError naming the missing ones)."""
    if not isinstance(params, dict):
        raise TypeError(f"{argument} must be a dict of params; got {type(params).__name__}")
    missing = [key for key in required if key not in params]
    if missing:
        raise ValueError(f"{argument} must hold keys {sorted(required)}; missing {missing}, got {sorted(params)}")


def check_table(argument: str, table: Any, vocab_size: int, embed_size: int | None = None) -> None:
    """An embedding table of shape [vocab_size, embed_size] (any embed size when None)."""
    arguments.has_shape(argument, table, (vocab_size, embed_size))


def check_readout(argument: str, params: Any, input_size: int | None, output_size: int | None) -> None:
    """Dense params mapping ``input_size`` to ``output_size`` (None: any size)."""
    check_param_keys(argument, params, ("kernel", "bias"))
    arguments.has_shape(f"{argument}['kernel']", params["kernel"], (input_size, output_size))
    arguments.has_shape(f"{argument}['bias']", params["bias"], (output_size,))


class TokenInput:
    """Mixin: optional embedding of integer inputs before the encoder."""

    def _check_vocab_size(self) -> None:
        if self.vocab_size is not None:
            arguments.positive_int("vocab_size", self.vocab_size)
        if not isinstance(self.encoder, RNN):
            raise TypeError(f"encoder must be an rnnjax RNN; got {type(self.encoder).__name__}")

    def _check_input_params(self, params: Any, readout: str | None, outputs: int | None) -> None:
        """The keys of ``params`` and the sizes this module declares (vocab_size, readout outputs)."""
        required = ("encoder",) + ((readout,) if readout else ()) + (("embedding",) if self.vocab_size else ())
        check_param_keys("params", params, required)
        if self.vocab_size is not None:
            check_table("params['embedding']", params["embedding"], self.vocab_size)
        if readout:
            check_readout(f"params['{readout}']", params[readout], None, outputs)

    def _encoder_input(self, params: dict[str, Any], xs: jax.Array, argument: str = "xs") -> jax.Array:
        if self.vocab_size is None:
            return xs
        return embed(params["embedding"], xs, argument)

    def _init_input(self, key: jax.Array, input_size: int, dtype: Any) -> dict[str, Any]:
        if self.vocab_size is None:
            return {}
        return {"embedding": embedding_init(key, self.vocab_size, input_size, dtype)}


# --------------------------------------------------------------------------- many-to-one


@dataclasses.dataclass(frozen=True)
class ManyToOne(TokenInput):
    """Sequence -> vector -> dense readout: logits = W pool(RNN(xs)) + b.

    Attributes:
      encoder: the RNN reading the sequence.
      num_outputs: size of the readout (classes, or regression targets).
      pooling: LAST (final carries), MEAN or MAX over valid steps of the top layer.
      vocab_size: if set, ``xs`` are int token ids embedded to ``input_size``.
    """

    encoder: RNN
    num_outputs: int
    pooling: Pooling | str = Pooling.LAST
    vocab_size: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "pooling", arguments.as_enum(Pooling, self.pooling, "pooling"))
        arguments.positive_int("num_outputs", self.num_outputs)
        self._check_vocab_size()

    def feature_size(self, params: dict[str, Any]) -> int:
        if self.pooling is Pooling.LAST:
            return self.encoder.hidden_size * self.encoder.num_directions
        return self.encoder.output_size(params["encoder"])

    def init(self, key: jax.Array, input_size: int, dtype: Any = jnp.float32) -> dict[str, Any]:
        k_embed, k_encoder, k_readout = jax.random.split(key, 3)
        params = self._init_input(k_embed, input_size, dtype)
        params["encoder"] = self.encoder.init(k_encoder, input_size, dtype)
        params["readout"] = dense_init(k_readout, self.feature_size(params), self.num_outputs, dtype)
        return params

    def encode(self, params, xs, *, lengths=None, dropout_key=None) -> jax.Array:
        """The pooled sequence vector, [batch, features]."""
        self._check_input_params(params, None, None)
        ys, finals = self.encoder.apply(
            params["encoder"], self._encoder_input(params, xs), lengths=lengths, dropout_key=dropout_key
        )
        if self.pooling is Pooling.LAST:
            return last_carry_vector(finals)
        return pool(ys, lengths, self.pooling)

    def apply(self, params, xs, *, lengths=None, dropout_key=None) -> jax.Array:
        """Readout of the pooled vector, [batch, num_outputs]."""
        self._check_input_params(params, "readout", self.num_outputs)
        return dense(params["readout"], self.encode(params, xs, lengths=lengths, dropout_key=dropout_key))


# --------------------------------------------------------------------------- many-to-many (aligned)


@dataclasses.dataclass(frozen=True)
class Tagger(TokenInput):
    """One label per step: logits_t = W y_t + b with y_t the (bi)directional RNN output.

    Attributes:
      encoder: the RNN (use ``bidirectional=True`` to see the right context).
      num_tags: number of tag classes.
      vocab_size: if set, inputs are int token ids embedded to ``input_size``.
    """

    encoder: RNN
    num_tags: int
    vocab_size: int | None = None

    def __post_init__(self):
        arguments.positive_int("num_tags", self.num_tags)
        self._check_vocab_size()

    def init(self, key: jax.Array, input_size: int, dtype: Any = jnp.float32) -> dict[str, Any]:
        k_embed, k_encoder, k_readout = jax.random.split(key, 3)
        params = self._init_input(k_embed, input_size, dtype)
        params["encoder"] = self.encoder.init(k_encoder, input_size, dtype)
        params["readout"] = dense_init(k_readout, self.encoder.output_size(params["encoder"]), self.num_tags, dtype)
        return params

    def apply(self, params, xs, *, lengths=None, dropout_key=None) -> jax.Array:
        """Per-step logits [batch, time, num_tags] (padded steps see zero encoder output)."""
        self._check_input_params(params, "readout", self.num_tags)
        ys, _ = self.encoder.apply(
            params["encoder"], self._encoder_input(params, xs), lengths=lengths, dropout_key=dropout_key
        )
        return dense(params["readout"], ys)

    def loss(self, params, xs, tags, *, lengths=None, dropout_key=None, label_smoothing=0.0) -> jax.Array:
        """Cross-entropy averaged over valid steps; tags at padded steps are ignored."""
        logits = self.apply(params, xs, lengths=lengths, dropout_key=dropout_key)
        mask = None if lengths is None else length_mask(check_lengths("lengths", lengths, logits.shape[:-2],
                                                                      logits.shape[-2]), logits.shape[-2])  # fmt: skip
        return cross_entropy(logits, tags, mask, label_smoothing=label_smoothing)

    def predict(self, params, xs, *, lengths=None) -> jax.Array:
        """Argmax tags [batch, time]; -1 at padded steps."""
        tags = self.apply(params, xs, lengths=lengths).argmax(-1)
        if lengths is None:
            return tags
        lengths = check_lengths("lengths", lengths, tags.shape[:-1], tags.shape[-1])
        return jnp.where(length_mask(lengths, tags.shape[-1]), tags, -1)
