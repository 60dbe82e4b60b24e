"""Token decoders (one-to-many) and encoder-decoder models with optional attention.

API:
    # one-to-many: a decoder started from a vector (``init_size``) or a zero carry
    decoder = Decoder(gru(), vocab_size=12, hidden_size=64, embed_size=16, start_id=0, end_id=1)
    dparams = decoder.init(key)
    carry = decoder.zero_carry(dparams, batch=4)              # or decoder.carry_from_vector(...)
    loss = decoder.loss(dparams, carry, targets, lengths)       # teacher forcing, masked
    out = decoder.sample(dparams, carry, key=key, max_length=10, temperature=0.7, top_k=3)

    # seq2seq: encoder RNN -> decoder carry (+ attention memory)
    model = Seq2Seq(RNN(gru(), 64), Decoder(gru(), 12, 64, 16, attention="bahdanau"), vocab_size=12)
    params = model.init(key, input_size=16)                     # source embedding size
    loss = model.loss(params, src, src_lengths, targets, target_lengths)
    out = model.greedy(params, src, src_lengths, max_length=10)          # decode.Decoded
    beams = model.beam_search(params, src, src_lengths, beam_width=4, max_length=10, alpha=0.6)

Targets hold the output tokens followed by ``end_id`` (``lengths`` include it);
the decoder input is the target shifted right behind ``start_id``.
Attention: NONE; BAHDANAU (additive, e_j = v . tanh(W_q s_{t-1} + W_k m_j), the
context enters the cell input and the readout); LUONG (general, e_j = h_t W m_j,
h~_t = tanh(W_c [c_t; h_t]), logits from h~_t).

One module past ~400 lines on purpose: :class:`Seq2Seq` is a :class:`Decoder` behind an encoder, and both share
the attention memory, the carry and size checks and the decoding entry points defined here.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax.checks import values as value_checks
from rnnjax.checks.arguments import as_enum, has_shape, integer, positive_int, shape_str
from rnnjax.core.cells import Cell
from rnnjax.core.unroll import RNN, rnn
from rnnjax.tasks import decode
from rnnjax.tasks.heads import (
    TokenInput,
    carry_vector,
    check_param_keys,
    check_readout,
    check_table,
    dense,
    dense_init,
    embed,
    embedding_init,
    last_carry_vector,
)
from rnnjax.tasks.losses import check_labels, check_lengths, cross_entropy, float_array, integer_array, length_mask


class Attention(enum.Enum):
    NONE = "none"
    BAHDANAU = "bahdanau"
    LUONG = "luong"


class Memory(NamedTuple):
    """Encoder outputs prepared for attention (all leaves lead with [batch])."""

    values: jax.Array  # [batch, source, memory_size]
    keys: jax.Array  # [batch, source, attention_size] (projected once)
    mask: jax.Array  # bool [batch, source]


def cell_sizes(argument: str, cell: Cell, params: Any) -> tuple[int, int]:
    """(input_size, hidden_size) of ``params`` read by ``cell``; ValueError if they are not params of that cell."""
    if getattr(cell, "param_keys", None) is not None:
        check_param_keys(argument, params, tuple(sorted(cell.param_keys)))
    try:
        return cell.input_size(params), cell.hidden_size(params)
    except (KeyError, TypeError, IndexError, AttributeError) as error:
        raise ValueError(
            f"{argument} must be params of the {cell.name} cell (from cell.init); reading their sizes failed with "
            f"{type(error).__name__}: {error}"
        ) from None


def batch_size(argument: str, tree: Any) -> int:
    """The common leading (batch) size of the leaves of ``tree``."""
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in jax.tree.leaves(tree)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"{argument} must have leaves with one leading batch axis; got leading sizes {sizes}")
    return sizes.pop()


def attend(scores: jax.Array, memory: Memory) -> tuple[jax.Array, jax.Array]:
    """a = softmax of scores over valid source positions; context = sum_j a_j m_j.

    ``scores`` is [batch, source] (one query) or [batch, time, source] (all steps).
    """
    mask = memory.mask if scores.ndim == 2 else memory.mask[:, None, :]
    scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    weights = jax.nn.softmax(scores, axis=-1) * mask
    pattern = "bs,bsd->bd" if scores.ndim == 2 else "bts,bsd->btd"
    return jnp.einsum(pattern, weights, memory.values), weights


@dataclasses.dataclass(frozen=True)
class Decoder:
    """Autoregressive token decoder: carry_t, h_t = cell(carry_{t-1}, embed(y_{t-1}) [; context]).

    Attributes:
      cell: recurrent cell; its carry is the decoder state.
      vocab_size, hidden_size, embed_size: sizes (Python ints).
      attention: NONE, BAHDANAU or LUONG (needs ``memory_size`` at ``init``).
      attention_size: width of the additive-attention layer (default ``hidden_size``).
      init_size: if set, :meth:`carry_from_vector` maps a [batch, init_size] vector
        (a "semantic vector") to the initial carry through tanh dense layers.
      start_id, end_id: the first decoder input and the stop token.

    Shapes: carries have leaves ``[batch, hidden]``, ``targets`` are int ``[batch, target_time]`` (ending in
    ``end_id``) with ``lengths [batch]``, logits are ``[batch, target_time, vocab]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import gru
      >>> from rnnjax.tasks.seq2seq import Decoder
      >>> decoder = Decoder(gru(), vocab_size=6, hidden_size=8, embed_size=4, start_id=0, end_id=1)
      >>> params = decoder.init(jax.random.key(0))
      >>> carry = decoder.zero_carry(params, batch=2)  # [batch, hidden]
      >>> targets, lengths = jnp.array([[3, 1], [4, 1]]), jnp.array([2, 2])  # [batch, target_time], [batch]
      >>> decoder.loss(params, carry, targets, lengths).shape  # teacher-forced cross-entropy
      ()
      >>> decoder.greedy(params, carry, max_length=4).tokens.shape  # [batch, max_length]
      (2, 4)
    """

    cell: Cell
    vocab_size: int
    hidden_size: int
    embed_size: int
    attention: Attention | str = Attention.NONE
    attention_size: int | None = None
    init_size: int | None = None
    start_id: int = 0
    end_id: int = 1

    def __post_init__(self):
        if not isinstance(self.cell, Cell):
            raise TypeError(f"cell must be an rnnjax Cell; got {type(self.cell).__name__}")
        object.__setattr__(self, "attention", as_enum(Attention, self.attention, "attention"))
        for argument in ("vocab_size", "hidden_size", "embed_size"):
            positive_int(argument, getattr(self, argument))
        for argument in ("attention_size", "init_size"):
            if getattr(self, argument) is not None:
                positive_int(argument, getattr(self, argument))
        for argument in ("start_id", "end_id"):
            integer(f"{argument} (a token id below vocab_size)", getattr(self, argument), minimum=0,
                    maximum=self.vocab_size - 1)  # fmt: skip

    # ----------------------------------------------------------------------- params

    def init(self, key: jax.Array, memory_size: int | None = None, dtype: Any = jnp.float32) -> dict[str, Any]:
        """Params; ``memory_size`` (the encoder output size) is required iff attention is used."""
        if (self.attention is Attention.NONE) != (memory_size is None):
            raise ValueError(
                f"memory_size must be given exactly when attention is used; attention={self.attention.value}, "
                f"memory_size={memory_size!r}"
            )
        if memory_size is not None:
            positive_int("memory_size", memory_size)
        keys = iter(jax.random.split(key, 8))
        hidden, size = self.hidden_size, self.attention_size or self.hidden_size
        cell_input = self.embed_size + (memory_size if self.attention is Attention.BAHDANAU else 0)
        params: dict[str, Any] = {
            "embedding": embedding_init(next(keys), self.vocab_size, self.embed_size, dtype),
            "cell": self.cell.init(next(keys), cell_input, hidden, dtype),
        }
        readout_size = hidden
        if self.attention is Attention.BAHDANAU:
            params["attention"] = {
                "query": dense_init(next(keys), hidden, size, dtype)["kernel"],
                "key": dense_init(next(keys), memory_size, size, dtype),
                "score": dense_init(next(keys), size, 1, dtype)["kernel"][:, 0],
            }
            readout_size = hidden + memory_size
        elif self.attention is Attention.LUONG:
            params["attention"] = {
                "key": dense_init(next(keys), memory_size, hidden, dtype)["kernel"],
                "combine": dense_init(next(keys), hidden + memory_size, hidden, dtype),
            }
        params["readout"] = dense_init(next(keys), readout_size, self.vocab_size, dtype)
        if self.init_size is not None:
            carry = self.cell.initial_carry(params["cell"])
            bridge_keys = jax.random.split(next(keys), len(jax.tree.leaves(carry)))
            leaves = [
                dense_init(k, self.init_size, leaf.shape[-1], dtype)
                for k, leaf in zip(bridge_keys, jax.tree.leaves(carry))
            ]
            params["bridge"] = jax.tree.unflatten(jax.tree.structure(carry), leaves)
        return params

    def check_params(self, params: Any) -> int | None:
        """Raise unless ``params`` have the sizes this Decoder declares; returns their memory_size (or None)."""
        required = ("embedding", "cell", "readout") + (() if self.attention is Attention.NONE else ("attention",))
        check_param_keys("params", params, required + (("bridge",) if self.init_size is not None else ()))
        check_table("params['embedding']", params["embedding"], self.vocab_size, self.embed_size)
        memory_size = self._check_attention_params(params)
        cell_input, cell_hidden = cell_sizes("params['cell']", self.cell, params["cell"])
        expected_input = self.embed_size + (memory_size if self.attention is Attention.BAHDANAU else 0)
        if (cell_input, cell_hidden) != (expected_input, self.hidden_size):
            raise ValueError(
                f"params['cell'] must map input size {expected_input} to hidden size {self.hidden_size} (embed_size "
                f"{self.embed_size}, attention {self.attention.value}); got {cell_input} -> {cell_hidden}"
            )
        readout_input = self.hidden_size + (memory_size if self.attention is Attention.BAHDANAU else 0)
        check_readout("params['readout']", params["readout"], readout_input, self.vocab_size)
        return memory_size

    def _check_attention_params(self, params: dict[str, Any]) -> int | None:
        """Shapes of params['attention']; returns memory_size."""
        if self.attention is Attention.NONE:
            return None
        attention, size = params["attention"], self.attention_size or self.hidden_size
        if self.attention is Attention.BAHDANAU:
            check_param_keys("params['attention']", attention, ("query", "key", "score"))
            has_shape("params['attention']['query']", attention["query"], (self.hidden_size, size))
            check_readout("params['attention']['key']", attention["key"], None, size)
            has_shape("params['attention']['score']", attention["score"], (size,))
            return attention["key"]["kernel"].shape[0]
        check_param_keys("params['attention']", attention, ("key", "combine"))
        has_shape("params['attention']['key']", attention["key"], (None, self.hidden_size))
        memory_size = attention["key"].shape[0]
        check_readout("params['attention']['combine']", attention["combine"], self.hidden_size + memory_size,
                      self.hidden_size)  # fmt: skip
        return memory_size

    def _check_carry(self, carry: Any, batch: int) -> None:
        carry_batch = batch_size("carry", carry)
        if carry_batch != batch:
            raise ValueError(f"carry must have batch size {batch} (that of the tokens); got {carry_batch}")

    def zero_carry(self, params: dict[str, Any], batch: int) -> Any:
        """Zero initial carry with leaves [batch, hidden]."""
        positive_int("batch", batch)
        self.check_params(params)
        return self.cell.initial_carry(params["cell"], (batch,))

    def carry_from_vector(self, params: dict[str, Any], vector: jax.Array) -> Any:
        """carry leaf_i = tanh(vector W_i + b_i) for a [batch, init_size] vector."""
        if self.init_size is None:
            raise ValueError("carry_from_vector needs a Decoder built with init_size; got init_size=None")
        self.check_params(params)
        vector = float_array("vector", vector)
        has_shape("vector", vector, (None, self.init_size))
        carry = self.cell.initial_carry(params["cell"])
        return jax.tree.map(lambda p, _: jnp.tanh(dense(p, vector)), params["bridge"], carry,
                            is_leaf=lambda x: isinstance(x, dict) and "kernel" in x)

    def memory(self, params: dict[str, Any], values: jax.Array, lengths: jax.Array | None = None) -> Memory:
        """Prepare encoder outputs [batch, source, memory_size] for attention.

        ``lengths`` (int [batch], default all) must lie in [0, source]: checked when concrete and in checked mode;
        traced lengths outside act as clipped. A row with length 0 attends to nothing (zero context).
        """
        if self.attention is Attention.NONE:
            raise ValueError("memory is only used with attention; this Decoder has attention='none'")
        memory_size = self.check_params(params)
        values = float_array("values", values)
        has_shape("values", values, (None, None, memory_size))
        key = params["attention"]["key"]
        keys = dense(key, values) if isinstance(key, dict) else values @ key
        if lengths is None:
            mask = jnp.ones(values.shape[:2], bool)
        else:
            mask = length_mask(check_lengths("lengths", lengths, values.shape[:1], values.shape[1]), values.shape[1])
        return Memory(values=values, keys=keys, mask=mask)

    # ----------------------------------------------------------------------- running

    def _check_memory(self, memory: Memory | None, batch: int) -> None:
        if (self.attention is Attention.NONE) != (memory is None):
            raise ValueError(f"memory must be given exactly when attention is used; attention={self.attention.value}")
        if memory is None:
            return
        if not isinstance(memory, Memory):
            raise TypeError(f"memory must be a Memory (from Decoder.memory); got {type(memory).__name__}")
        if memory.values.shape[0] != batch:
            raise ValueError(f"memory must have batch size {batch} (that of the tokens); got {memory.values.shape[0]}")

    def _check_tokens(self, argument: str, tokens: Any, ndim: int, params: Any, carry: Any, memory: Any) -> jax.Array:
        """Int tokens of rank ``ndim`` whose batch agrees with carry and memory, and params of the declared sizes."""
        tokens = integer_array(argument, tokens)
        if tokens.ndim != ndim:
            wanted = "[batch]" if ndim == 1 else "[batch, time]"
            raise ValueError(f"{argument} must have shape {wanted}; got {shape_str(tokens.shape)}")
        self.check_params(params)
        self._check_carry(carry, tokens.shape[0])
        self._check_memory(memory, tokens.shape[0])
        return tokens

    def step(self, params, carry, tokens, memory: Memory | None = None) -> tuple[Any, jax.Array]:
        """One decoding step for a batch: tokens [batch] -> (carry, logits [batch, vocab]).

        Token ids must lie in [0, vocab_size) (checked as :func:`rnnjax.tasks.heads.embed` does).
        """
        tokens = self._check_tokens("tokens", tokens, 1, params, carry, memory)
        x = embed(params["embedding"], tokens)
        step = jax.vmap(self.cell.step, in_axes=(None, 0, 0))
        if self.attention is Attention.BAHDANAU:
            context = self._bahdanau_context(params, carry_vector(carry), memory)
            carry, h = step(params["cell"], carry, jnp.concatenate([x, context], -1))
            return carry, dense(params["readout"], jnp.concatenate([h, context], -1))
        carry, h = step(params["cell"], carry, x)
        return carry, self._readout(params, h, memory)

    def _bahdanau_context(self, params, query: jax.Array, memory: Memory) -> jax.Array:
        attention = params["attention"]
        hidden = jnp.tanh((query @ attention["query"])[:, None, :] + memory.keys)  # [batch, source, size]
        return attend(hidden @ attention["score"], memory)[0]

    def _readout(self, params, h: jax.Array, memory: Memory | None) -> jax.Array:
        """NONE: logits = W h; LUONG: logits = W tanh(W_c [c; h]) with c attended from h."""
        if self.attention is Attention.LUONG:
            scores = jnp.einsum("bh,bsh->bs" if h.ndim == 2 else "bth,bsh->bts", h, memory.keys)
            context = attend(scores, memory)[0]
            h = jnp.tanh(dense(params["attention"]["combine"], jnp.concatenate([context, h], -1)))
        return dense(params["readout"], h)

    def apply(self, params, carry, inputs: jax.Array, memory: Memory | None = None) -> jax.Array:
        """Teacher-forced logits [batch, time, vocab] for given decoder inputs [batch, time]."""
        inputs = self._check_tokens("inputs", inputs, 2, params, carry, memory)
        if self.attention is Attention.BAHDANAU:
            scan_step = lambda carry, tokens: self.step(params, carry, tokens, memory)  # noqa: E731
            _, logits = jax.lax.scan(scan_step, carry, inputs.T)
            return jnp.moveaxis(logits, 0, 1)
        # No feedback through attention: unroll the cell with rnn(), attend all steps at once.
        ys, _ = rnn(self.cell, params["cell"], embed(params["embedding"], inputs, "inputs"), initial_carry=carry)
        return self._readout(params, ys, memory)

    def shift_right(self, targets: jax.Array, lengths: jax.Array) -> jax.Array:
        """Decoder inputs [start, y_0, ..., y_{T-2}]; positions >= length hold end_id."""
        targets, lengths = self.check_targets(targets, lengths)
        inputs = jnp.concatenate([jnp.full_like(targets[:, :1], self.start_id), targets[:, :-1]], axis=1)
        return jnp.where(length_mask(lengths, targets.shape[1]), inputs, self.end_id)

    def check_targets(self, targets: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Validate int targets [batch, time] and lengths [batch]: lengths in [0, time], ids in [0, vocab) where valid.

        Values are checked when concrete and in :func:`rnnjax.checks.values.checked` mode; traced lengths outside
        act as clipped, and traced ids outside give a NaN (id >= vocab) or wrong (negative id) loss.
        """
        targets = integer_array("targets", targets)
        if targets.ndim != 2:
            raise ValueError(f"targets must have shape [batch, time]; got {shape_str(targets.shape)}")
        lengths = check_lengths("lengths", lengths, targets.shape[:1], targets.shape[1])
        check_labels(targets, self.vocab_size, value_checks.positions_below(lengths, targets.shape[1]), "targets")
        return targets, lengths

    def loss(self, params, carry, targets, lengths, memory: Memory | None = None, *, label_smoothing=0.0):
        """Teacher-forced cross-entropy averaged over valid target tokens."""
        targets, lengths = self.check_targets(targets, lengths)
        mask = length_mask(lengths, targets.shape[1])
        logits = self.apply(params, carry, self.shift_right(targets, lengths), memory)
        return cross_entropy(logits, targets, mask, label_smoothing=label_smoothing)

    def step_fn(self, params):
        """A :mod:`rnnjax.tasks.decode` step function on state = (carry, memory)."""

        def step_fn(state, tokens):
            carry, memory = state
            carry, logits = self.step(params, carry, tokens, memory)
            return (carry, memory), logits

        return step_fn

    def _start(self, carry) -> jax.Array:
        return jnp.full(jax.tree.leaves(carry)[0].shape[:1], self.start_id, jnp.int32)

    def greedy(self, params, carry, memory=None, *, max_length: int) -> decode.Decoded:
        return decode.greedy(self.step_fn(params), (carry, memory), self._start(carry), max_length=max_length,
                             end_id=self.end_id)  # fmt: skip

    def sample(self, params, carry, memory=None, *, key, max_length: int, temperature=1.0, top_k=None):
        return decode.sample(self.step_fn(params), (carry, memory), self._start(carry), key, max_length=max_length,
                             end_id=self.end_id, temperature=temperature, top_k=top_k)  # fmt: skip

    def beam_search(self, params, carry, memory=None, *, beam_width: int, max_length: int, alpha=0.0):
        return decode.beam_search(self.step_fn(params), (carry, memory), self._start(carry), beam_width=beam_width,
                                  max_length=max_length, end_id=self.end_id, alpha=alpha)  # fmt: skip


# --------------------------------------------------------------------------- encoder-decoder


def _carry_structure(cell: Cell) -> Any:
    return jax.tree.structure(jax.eval_shape(lambda: cell.initial_carry(cell.init(jax.random.key(0), 1, 1))))


@dataclasses.dataclass(frozen=True)
class Seq2Seq(TokenInput):
    """Encoder RNN -> initial decoder carry (+ attention over encoder outputs) -> Decoder.

    Without ``decoder.init_size`` the encoder's final carries (top layer, both
    directions concatenated) are the decoder's initial carry, so the cells must
    have the same carry structure and ``encoder.hidden_size * directions ==
    decoder.hidden_size``. With ``init_size`` a tanh bridge maps the final hidden
    vector of size ``init_size`` to the decoder carry.

    Attributes:
      encoder: the source RNN.
      decoder: the target :class:`Decoder`.
      vocab_size: if set, sources are int token ids embedded to ``input_size``.

    Shapes: ``src`` is ``[batch, src_time, input]`` (int ``[batch, src_time]`` with ``vocab_size``) with
    ``src_lengths [batch]``; ``targets`` int ``[batch, target_time]`` with ``target_lengths [batch]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from rnnjax import RNN, gru
      >>> from rnnjax.tasks.seq2seq import Decoder, Seq2Seq
      >>> decoder = Decoder(gru(), vocab_size=6, hidden_size=8, embed_size=4)
      >>> model = Seq2Seq(RNN(gru(), hidden_size=8), decoder, vocab_size=6)
      >>> params = model.init(jax.random.key(0), input_size=4)  # source embedding size
      >>> src, src_lengths = jnp.array([[2, 3, 4], [5, 2, 0]]), jnp.array([3, 2])  # [batch, src_time], [batch]
      >>> targets, target_lengths = jnp.array([[3, 1], [4, 1]]), jnp.array([2, 2])  # [batch, target_time]
      >>> model.loss(params, src, src_lengths, targets, target_lengths).shape
      ()
      >>> model.greedy(params, src, src_lengths, max_length=5).tokens.shape  # [batch, max_length]
      (2, 5)
    """

    encoder: RNN
    decoder: Decoder
    vocab_size: int | None = None

    def __post_init__(self):
        self._check_vocab_size()
        if not isinstance(self.decoder, Decoder):
            raise TypeError(f"decoder must be a Decoder; got {type(self.decoder).__name__}")
        encoder_size = self.encoder.hidden_size * self.encoder.num_directions
        if self.decoder.init_size is not None:
            if self.decoder.init_size != encoder_size:
                raise ValueError(
                    f"decoder.init_size: expected {encoder_size} (encoder hidden_size x directions); "
                    f"got {self.decoder.init_size}"
                )
            return
        if self.decoder.hidden_size != encoder_size:
            raise ValueError(
                f"decoder.hidden_size: expected {encoder_size} (encoder hidden_size {self.encoder.hidden_size} x "
                f"{self.encoder.num_directions} directions) to take the encoder's final carry; got "
                f"{self.decoder.hidden_size} (or set decoder.init_size={encoder_size} for a bridge)"
            )
        if _carry_structure(self.encoder.cell) != _carry_structure(self.decoder.cell):
            raise ValueError(
                f"decoder.cell: expected a carry like the encoder's ({self.encoder.cell.name}); got "
                f"{self.decoder.cell.name} (or set decoder.init_size={encoder_size} for a bridge)"
            )

    def init(self, key: jax.Array, input_size: int, dtype: Any = jnp.float32) -> dict[str, Any]:
        k_embed, k_encoder, k_decoder = jax.random.split(key, 3)
        params = self._init_input(k_embed, input_size, dtype)
        params["encoder"] = self.encoder.init(k_encoder, input_size, dtype)
        memory_size = None if self.decoder.attention is Attention.NONE else self.encoder.output_size(params["encoder"])
        params["decoder"] = self.decoder.init(k_decoder, memory_size, dtype)
        return params

    def encode(self, params, src, src_lengths=None, *, dropout_key=None) -> tuple[Any, Memory | None]:
        """(initial decoder carry, attention memory or None).

        Args:
          params: from :meth:`init`.
          src: ``[batch, src_time, input]`` features, or int ``[batch, src_time]`` tokens with ``vocab_size``.
          src_lengths: int ``[batch]`` (None: all steps valid).
          dropout_key: enables the encoder's dropout between layers.

        Returns:
          ``(carry, memory)``: the decoder's initial carry (leaves ``[batch, decoder hidden]``) and, with attention,
          a :class:`Memory` over the encoder outputs (``[batch, src_time, ...]``), else None.

        Examples:
          >>> import jax, jax.numpy as jnp
          >>> from rnnjax import RNN, gru
          >>> from rnnjax.tasks.seq2seq import Decoder, Seq2Seq
          >>> decoder = Decoder(gru(), vocab_size=6, hidden_size=8, embed_size=4)
          >>> model = Seq2Seq(RNN(gru(), hidden_size=8), decoder, vocab_size=6)
          >>> params = model.init(jax.random.key(0), input_size=4)  # source embedding size
          >>> src, src_lengths = jnp.array([[2, 3, 4], [5, 2, 0]]), jnp.array([3, 2])  # [batch, src_time], [batch]
          >>> carry, memory = model.encode(params, src, src_lengths)
          >>> carry.shape, memory  # [batch, hidden]; no attention, no memory
          ((2, 8), None)
        """
        self._check_input_params(params, None, None)
        check_param_keys("params", params, ("decoder",))
        self.decoder.check_params(params["decoder"])
        ys, finals = self.encoder.apply(
            params["encoder"], self._encoder_input(params, src, "src"), lengths=src_lengths, dropout_key=dropout_key
        )
        if self.decoder.init_size is not None:
            carry = self.decoder.carry_from_vector(params["decoder"], last_carry_vector(finals))
        else:
            carry = jax.tree.map(lambda *leaves: jnp.concatenate(leaves, -1), *finals[-1])
        memory = None
        if self.decoder.attention is not Attention.NONE:
            memory = self.decoder.memory(params["decoder"], ys, src_lengths)
        return carry, memory

    def logits(self, params, src, src_lengths, targets, target_lengths) -> jax.Array:
        """Teacher-forced logits [batch, target_time, vocab]."""
        carry, memory = self.encode(params, src, src_lengths)
        inputs = self.decoder.shift_right(targets, target_lengths)
        return self.decoder.apply(params["decoder"], carry, inputs, memory)

    def loss(self, params, src, src_lengths, targets, target_lengths, *, dropout_key=None, label_smoothing=0.0):
        """Teacher-forced cross-entropy averaged over valid target tokens.

        ``src [batch, src_time, ...]`` and ``src_lengths [batch]`` as for :meth:`encode`; ``targets`` int
        ``[batch, target_time]`` ending in ``end_id``, ``target_lengths [batch]`` counting it. Returns a scalar ``[]``.

        Examples:
          >>> import jax, jax.numpy as jnp
          >>> from rnnjax import RNN, gru
          >>> from rnnjax.tasks.seq2seq import Decoder, Seq2Seq
          >>> decoder = Decoder(gru(), vocab_size=6, hidden_size=8, embed_size=4)
          >>> model = Seq2Seq(RNN(gru(), hidden_size=8), decoder, vocab_size=6)
          >>> params = model.init(jax.random.key(0), input_size=4)  # source embedding size
          >>> src, src_lengths = jnp.array([[2, 3, 4], [5, 2, 0]]), jnp.array([3, 2])  # [batch, src_time], [batch]
          >>> targets, target_lengths = jnp.array([[3, 1], [4, 1]]), jnp.array([2, 2])
          >>> loss = model.loss(params, src, src_lengths, targets, target_lengths)
          >>> loss.shape, bool(loss > 0)
          ((), True)
        """
        self.decoder.check_targets(targets, target_lengths)  # fail before running the encoder
        carry, memory = self.encode(params, src, src_lengths, dropout_key=dropout_key)
        return self.decoder.loss(params["decoder"], carry, targets, target_lengths, memory,
                                 label_smoothing=label_smoothing)  # fmt: skip

    def greedy(self, params, src, src_lengths=None, *, max_length: int) -> decode.Decoded:
        """Greedy decoding from the encoded ``src`` (shapes as for :meth:`encode`).

        Returns:
          A :class:`~rnnjax.tasks.decode.Decoded`: ``tokens`` int ``[batch, max_length]``, ``lengths [batch]``
          (including the end token when emitted), ``log_probs [batch]``.

        Examples:
          >>> import jax, jax.numpy as jnp
          >>> from rnnjax import RNN, gru
          >>> from rnnjax.tasks.seq2seq import Decoder, Seq2Seq
          >>> decoder = Decoder(gru(), vocab_size=6, hidden_size=8, embed_size=4)
          >>> model = Seq2Seq(RNN(gru(), hidden_size=8), decoder, vocab_size=6)
          >>> params = model.init(jax.random.key(0), input_size=4)  # source embedding size
          >>> src, src_lengths = jnp.array([[2, 3, 4], [5, 2, 0]]), jnp.array([3, 2])  # [batch, src_time], [batch]
          >>> decoded = model.greedy(params, src, src_lengths, max_length=5)
          >>> decoded.tokens.shape, decoded.lengths.shape, decoded.log_probs.shape
          ((2, 5), (2,), (2,))
        """
        positive_int("max_length", max_length)
        carry, memory = self.encode(params, src, src_lengths)
        return self.decoder.greedy(params["decoder"], carry, memory, max_length=max_length)

    def sample(self, params, src, src_lengths=None, *, key, max_length: int, temperature=1.0, top_k=None):
        """Sampling from the encoded ``src`` (shapes as for :meth:`encode`), at ``temperature`` from the ``top_k``
        most probable tokens (None: all); a :class:`~rnnjax.tasks.decode.Decoded` as :meth:`greedy` returns."""
        positive_int("max_length", max_length)
        carry, memory = self.encode(params, src, src_lengths)
        return self.decoder.sample(params["decoder"], carry, memory, key=key, max_length=max_length,
                                   temperature=temperature, top_k=top_k)  # fmt: skip

    def beam_search(self, params, src, src_lengths=None, *, beam_width: int, max_length: int, alpha=0.0):
        """Beam search from the encoded ``src`` (shapes as for :meth:`encode`; :func:`rnnjax.tasks.decode.beam_search`).

        Returns:
          :class:`~rnnjax.tasks.decode.Beams`, best first: ``tokens`` int ``[batch, beam, max_length]``, ``lengths``,
          ``log_probs`` and ``scores`` (log_probs / lengths ** alpha) ``[batch, beam]``.
        """
        positive_int("beam_width", beam_width)
        positive_int("max_length", max_length)
        carry, memory = self.encode(params, src, src_lengths)
        return self.decoder.beam_search(params["decoder"], carry, memory, beam_width=beam_width,
                                        max_length=max_length, alpha=alpha)  # fmt: skip
