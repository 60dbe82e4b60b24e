"""Autoregressive decoding inside ``lax.scan``: greedy, sampling, beam search.

Every decoder works on a pure ``step_fn(state, tokens) -> (state, logits)``
where ``tokens`` is int ``[batch]``, ``logits`` is ``[batch, vocab]`` and every
leaf of ``state`` has a leading ``[batch]`` axis (carry, encoder memory, ...).
Decoding always runs ``max_length`` steps; after a sequence emits ``end_id`` it
stays finished, its later tokens are ``pad_id`` (default ``end_id``) and add
nothing to its score. ``lengths`` count tokens up to and including ``end_id``.

API:
    out = greedy(step_fn, state, start_tokens, max_length=20, end_id=1)
    out = sample(step_fn, state, start_tokens, key, max_length=20, end_id=1, temperature=0.8, top_k=5)
    out.tokens [batch, max_length], out.lengths [batch], out.log_probs [batch]
    beams = beam_search(step_fn, state, start_tokens, beam_width=4, max_length=20, end_id=1, alpha=0.6)
    beams.tokens [batch, beam, max_length], beams.scores [batch, beam] (best first),
    beams.log_probs, beams.lengths;  score = log p(y) / length ** alpha

Wrap calls in ``jax.jit`` with ``step_fn`` closed over (or ``functools.partial``).
Start tokens must lie in [0, vocab): checked when concrete and in
:func:`rnnjax.checks.values.checked` mode; a traced id outside gives a NaN
embedding (id >= vocab) or one counted from the end (negative id), depending on
``step_fn``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax.checks import arguments
from rnnjax.checks import values as value_checks

StepFn = Callable[[Any, jax.Array], tuple[Any, jax.Array]]


class Decoded(NamedTuple):
    """Greedy or sampled sequences."""

    tokens: jax.Array  # int [batch, max_length]
    lengths: jax.Array  # int [batch], including the end token when emitted
    log_probs: jax.Array  # [batch], sum of log p of the emitted tokens


class Beams(NamedTuple):
    """Beam-search hypotheses, best first along the beam axis."""

    tokens: jax.Array  # int [batch, beam, max_length]
    lengths: jax.Array  # int [batch, beam]
    log_probs: jax.Array  # [batch, beam]
    scores: jax.Array  # [batch, beam], log_probs / lengths ** alpha


class _Setup(NamedTuple):
    start_tokens: jax.Array
    vocab_size: int
    dtype: Any
    pad_id: int


def _check_setup(step_fn: StepFn, state: Any, start_tokens: Any, end_id: Any, pad_id: Any) -> _Setup:
    """Shapes of state, start tokens and step_fn's logits; start tokens, end_id and pad_id as ids."""
    start_tokens = jnp.asarray(start_tokens)
    if start_tokens.ndim != 1 or not jnp.issubdtype(start_tokens.dtype, jnp.integer):
        raise ValueError(
            "start_tokens must be an int array of shape [batch]; "
            f"got shape {arguments.shape_str(start_tokens.shape)}, dtype {start_tokens.dtype}"
        )
    batch = start_tokens.shape[0]
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        if jnp.ndim(leaf) < 1 or jnp.shape(leaf)[0] != batch:
            raise ValueError(
                f"state{jax.tree_util.keystr(path)} must lead with the batch axis {batch} (that of start_tokens); "
                f"got shape {arguments.shape_str(jnp.shape(leaf))}"
            )
    _, logits = jax.eval_shape(step_fn, state, start_tokens)
    if logits.ndim != 2 or logits.shape[0] != batch:
        shape = arguments.shape_str(logits.shape)
        raise ValueError(f"step_fn must return logits of shape [{batch}, vocab]; got {shape}")
    vocab = logits.shape[-1]
    end_id = arguments.integer("end_id", end_id, minimum=0, maximum=vocab - 1)
    pad_id = end_id if pad_id is None else arguments.integer("pad_id", pad_id)
    value_checks.ids_in_range("start_tokens", start_tokens, vocab)
    return _Setup(start_tokens, vocab, logits.dtype, pad_id)


def _choose_tokens(step_fn, state, start_tokens, choose, *, max_length, end_id, pad_id) -> Decoded:
    """Shared loop of greedy and sampling: choose(logits, t) -> tokens [batch]."""
    arguments.positive_int("max_length", max_length)
    start_tokens, _, dtype, pad_id = _check_setup(step_fn, state, start_tokens, end_id, pad_id)
    batch = start_tokens.shape[0]

    def body(loop, t):
        state, tokens, done, log_prob = loop
        state, logits = step_fn(state, tokens)
        chosen = choose(logits, t).astype(tokens.dtype)
        token_log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits, -1), chosen[:, None], -1)[:, 0]
        log_prob = log_prob + jnp.where(done, 0.0, token_log_prob)
        emitted = jnp.where(done, pad_id, chosen)
        return (state, chosen, done | (chosen == end_id), log_prob), (emitted, ~done)

    log_prob = jnp.zeros((batch,), dtype)
    init = (state, start_tokens, jnp.zeros((batch,), bool), log_prob)
    (_, _, _, log_prob), (tokens, active) = jax.lax.scan(body, init, jnp.arange(max_length))
    return Decoded(tokens=tokens.T, lengths=active.sum(0), log_probs=log_prob)


def greedy(
    step_fn: StepFn, state: Any, start_tokens: jax.Array, *, max_length: int, end_id: int, pad_id: int | None = None
) -> Decoded:
    """y_t = argmax p(y | y_<t, state) for t < max_length, stopping at ``end_id``."""
    return _choose_tokens(
        step_fn, state, start_tokens, lambda logits, t: logits.argmax(-1),
        max_length=max_length, end_id=end_id, pad_id=pad_id,
    )  # fmt: skip


def sample(
    step_fn: StepFn,
    state: Any,
    start_tokens: jax.Array,
    key: jax.Array,
    *,
    max_length: int,
    end_id: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    pad_id: int | None = None,
) -> Decoded:
    """y_t ~ softmax(logits / temperature) restricted to the ``top_k`` largest logits.

    Reproducible: step t uses ``fold_in(key, t)``. ``log_probs`` are those of the
    model (temperature 1, no top-k), so they are comparable across settings.
    """
    temperature = arguments.positive_float("temperature", temperature)
    if top_k is not None:
        arguments.positive_int("top_k", top_k)

    def choose(logits, t):
        scaled = logits / temperature
        if top_k is not None:
            kth = jax.lax.top_k(scaled, min(top_k, scaled.shape[-1]))[0][..., -1:]
            scaled = jnp.where(scaled >= kth, scaled, -jnp.inf)
        return jax.random.categorical(jax.random.fold_in(key, t), scaled, axis=-1)

    return _choose_tokens(step_fn, state, start_tokens, choose, max_length=max_length, end_id=end_id, pad_id=pad_id)


# --------------------------------------------------------------------------- beam search


class _BeamLoop(NamedTuple):
    state: Any  # leaves [batch * beam, ...]
    last: jax.Array  # [batch, beam] last token of each alive beam
    alive_tokens: jax.Array  # [batch, beam, max_length]
    alive_log_probs: jax.Array  # [batch, beam], -inf for empty slots
    done_tokens: jax.Array  # [batch, beam, max_length]
    done_log_probs: jax.Array  # [batch, beam]
    done_lengths: jax.Array  # [batch, beam]
    done_scores: jax.Array  # [batch, beam], -inf for empty slots


def _gather_beams(tree: Any, indices: jax.Array) -> Any:
    """tree leaves [batch, beam, ...]; indices [batch, n] -> leaves [batch, n, ...]."""
    return jax.tree.map(lambda x: jax.vmap(lambda row, idx: row[idx])(x, indices), tree)


def _merge_finished(loop: _BeamLoop, tokens, log_probs, lengths, scores, beam_width) -> tuple:
    """Keep the beam_width best (by score) of the old finished and the new candidates."""
    all_tokens = jnp.concatenate([loop.done_tokens, tokens], axis=1)
    all_scores = jnp.concatenate([loop.done_scores, scores], axis=1)
    all_log_probs = jnp.concatenate([loop.done_log_probs, log_probs], axis=1)
    all_lengths = jnp.concatenate([loop.done_lengths, lengths], axis=1)
    best_scores, best = jax.lax.top_k(all_scores, beam_width)
    picked = _gather_beams((all_tokens, all_log_probs, all_lengths), best)
    return (*picked, best_scores)


def _beam_step(step_fn, loop: _BeamLoop, t, *, beam_width, end_id, alpha) -> _BeamLoop:
    batch = loop.last.shape[0]
    state, logits = step_fn(loop.state, loop.last.reshape(-1))
    vocab = logits.shape[-1]
    log_probs = jax.nn.log_softmax(logits, -1).reshape(batch, beam_width, vocab)
    candidates = (loop.alive_log_probs[..., None] + log_probs).reshape(batch, beam_width * vocab)
    top_log_probs, top = jax.lax.top_k(candidates, min(2 * beam_width, beam_width * vocab))
    source, token = top // vocab, (top % vocab).astype(loop.last.dtype)
    tokens = _gather_beams(loop.alive_tokens, source).at[:, :, t].set(token)
    is_end = token == end_id
    # As in fairseq: ending candidates ranked among the beam_width best join the finished
    # set (scored with length normalisation); so beam_width=1 reproduces greedy decoding.
    in_beam = jnp.arange(top.shape[1]) < beam_width
    length = jnp.asarray(t + 1, top_log_probs.dtype)
    end_scores = jnp.where(is_end & in_beam, top_log_probs / length**alpha, -jnp.inf)
    end_lengths = jnp.broadcast_to((t + 1).astype(jnp.int32), token.shape)
    done = _merge_finished(loop, tokens, top_log_probs, end_lengths, end_scores, beam_width)
    # The best non-ending candidates stay alive.
    alive_log_probs, keep = jax.lax.top_k(jnp.where(is_end, -jnp.inf, top_log_probs), beam_width)
    alive_source = jnp.take_along_axis(source, keep, axis=1)
    state = jax.tree.map(lambda x: x.reshape(batch, beam_width, *x.shape[1:]), state)
    state = jax.tree.map(lambda x: x.reshape(batch * beam_width, *x.shape[2:]), _gather_beams(state, alive_source))
    return _BeamLoop(
        state=state,
        last=jnp.take_along_axis(token, keep, axis=1),
        alive_tokens=_gather_beams(tokens, keep),
        alive_log_probs=alive_log_probs,
        done_tokens=done[0],
        done_log_probs=done[1],
        done_lengths=done[2],
        done_scores=done[3],
    )


def beam_search(
    step_fn: StepFn,
    state: Any,
    start_tokens: jax.Array,
    *,
    beam_width: int,
    max_length: int,
    end_id: int,
    alpha: float = 0.0,
    pad_id: int | None = None,
) -> Beams:
    """Batched beam search keeping ``beam_width`` alive and ``beam_width`` finished hypotheses.

    Each step extends every alive beam by every token and ranks the candidates by
    log p; those among the ``beam_width`` best that end in ``end_id`` join the
    finished set (score log p / length ** alpha), and the ``beam_width`` best
    that do not end stay alive (fairseq's rule). Hypotheses still alive after
    ``max_length`` steps count as finished with length ``max_length``. With
    ``beam_width=1`` and ``alpha=0`` the result equals :func:`greedy`.
    """
    arguments.positive_int("beam_width", beam_width)
    arguments.positive_int("max_length", max_length)
    alpha = arguments.real("alpha", alpha)
    start_tokens, _, dtype, pad_id = _check_setup(step_fn, state, start_tokens, end_id, pad_id)
    batch = start_tokens.shape[0]
    tile = lambda x: jnp.repeat(x, beam_width, axis=0)  # noqa: E731 - [batch, ...] -> [batch * beam, ...]
    empty = jnp.full((batch, beam_width), -jnp.inf, dtype)
    loop = _BeamLoop(
        state=jax.tree.map(tile, state),
        last=jnp.repeat(start_tokens[:, None], beam_width, axis=1),
        alive_tokens=jnp.full((batch, beam_width, max_length), pad_id, start_tokens.dtype),
        alive_log_probs=empty.at[:, 0].set(0.0),  # one live beam at first: no duplicates
        done_tokens=jnp.full((batch, beam_width, max_length), pad_id, start_tokens.dtype),
        done_log_probs=empty,
        done_lengths=jnp.zeros((batch, beam_width), jnp.int32),
        done_scores=empty,
    )
    loop, _ = jax.lax.scan(
        lambda loop, t: (_beam_step(step_fn, loop, t, beam_width=beam_width, end_id=end_id, alpha=alpha), None),
        loop,
        jnp.arange(max_length),
    )
    alive_scores = loop.alive_log_probs / jnp.asarray(max_length, dtype) ** alpha
    lengths = jnp.full((batch, beam_width), max_length, jnp.int32)
    tokens, log_probs, lengths, scores = _merge_finished(
        loop, loop.alive_tokens, loop.alive_log_probs, lengths, alive_scores, beam_width
    )
    return Beams(tokens=tokens, lengths=lengths, log_probs=log_probs, scores=scores)
