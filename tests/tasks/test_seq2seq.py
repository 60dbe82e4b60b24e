"""Encoder-decoder: teacher forcing equals step-by-step decoding, masks, beam = greedy at k=1, training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnjax.core.cells import gru, lstm, simple_rnn
from rnnjax.core.unroll import RNN
from rnnjax.tasks import toy_tasks
from rnnjax.tasks.losses import cross_entropy, sequence_mask
from rnnjax.tasks.metrics import token_accuracy
from rnnjax.tasks.seq2seq import Decoder, Memory, Seq2Seq, attend

START, END, VOCAB = 0, 1, 7


def _model(attention, cell=lstm, vocab_size=VOCAB, bidirectional=True):
    encoder = RNN(cell(), 4, bidirectional=bidirectional)
    decoder = Decoder(cell(), VOCAB, 8 if bidirectional else 4, 5, attention=attention, start_id=START, end_id=END)
    return Seq2Seq(encoder, decoder, vocab_size=vocab_size)


def _data(key):
    k_src, k_tgt = jax.random.split(key)
    src = jax.random.randint(k_src, (3, 5), 2, VOCAB)
    src_lengths = jnp.array([5, 2, 3])
    targets = jax.random.randint(k_tgt, (3, 4), 2, VOCAB)
    target_lengths = jnp.array([4, 1, 3])
    targets = jnp.where(jnp.arange(4) == target_lengths[:, None] - 1, END, targets)
    return src, src_lengths, jnp.where(sequence_mask(target_lengths, 4), targets, -1), target_lengths


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong"])
def test_teacher_forcing_equals_stepwise_decoding_and_beam_one_equals_greedy(key, attention):
    model = _model(attention)
    params = model.init(key, 6, jnp.float64)
    src, src_lengths, targets, target_lengths = _data(jax.random.fold_in(key, 1))

    def teacher_forced(p):  # one compiled program, not hundreds of eager operations
        return model.logits(p, src, src_lengths, targets, target_lengths), model.encode(p, src, src_lengths)

    logits, (carry, memory) = jax.jit(teacher_forced)(params)
    inputs = model.decoder.shift_right(targets, target_lengths)
    step = jax.jit(lambda carry, tokens: model.decoder.step(params["decoder"], carry, tokens, memory))
    for t in range(targets.shape[1]):
        carry, step_logits = step(carry, inputs[:, t])
        np.testing.assert_allclose(logits[:, t], step_logits, rtol=1e-10, atol=1e-12)
    loss = jax.jit(model.loss)(params, src, src_lengths, targets, target_lengths)
    np.testing.assert_allclose(loss, cross_entropy(logits, targets, sequence_mask(target_lengths, 4)), rtol=1e-12)
    greedy = jax.jit(lambda p: model.greedy(p, src, src_lengths, max_length=6))(params)
    beams = jax.jit(lambda p: model.beam_search(p, src, src_lengths, beam_width=1, max_length=6))(params)
    np.testing.assert_array_equal(beams.tokens[:, 0], greedy.tokens)
    np.testing.assert_allclose(beams.log_probs[:, 0], greedy.log_probs, rtol=1e-10)


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_padding_is_ignored_and_jit_vmap_agree(key, attention):
    model = _model(attention, cell=gru, vocab_size=None)  # float features as source
    params = model.init(key, 3, jnp.float64)
    _, src_lengths, targets, target_lengths = _data(jax.random.fold_in(key, 1))
    src = jax.random.normal(jax.random.fold_in(key, 2), (3, 5, 3), jnp.float64)
    loss_fn = jax.jit(lambda p, s, t: model.loss(p, s, src_lengths, t, target_lengths))
    loss = model.loss(params, src, src_lengths, targets, target_lengths)  # eager
    np.testing.assert_allclose(loss_fn(params, src, targets), loss, rtol=1e-12)
    source_valid, target_valid = sequence_mask(src_lengths, 5), sequence_mask(target_lengths, 4)
    noisy_src = jnp.where(source_valid[..., None], src, 1e3)
    np.testing.assert_allclose(loss_fn(params, noisy_src, jnp.where(target_valid, targets, 5)), loss, rtol=1e-12)
    src_grads = jax.jit(jax.grad(loss_fn, argnums=1))(params, src, targets)
    assert np.all(np.asarray(src_grads)[~np.asarray(source_valid)] == 0.0)
    assert np.all(np.abs(np.asarray(src_grads)[np.asarray(source_valid)]).sum(-1) > 0)
    single = lambda s, n: model.greedy(params, s[None], n[None], max_length=5).tokens[0]  # noqa: E731
    batched = jax.jit(lambda s, n: model.greedy(params, s, n, max_length=5).tokens)(src, src_lengths)
    np.testing.assert_array_equal(jax.jit(jax.vmap(single))(src, src_lengths), batched)


def test_bridge_connects_different_cells_and_sizes(key):
    model = Seq2Seq(RNN(gru(), 4, bidirectional=True), Decoder(lstm(), VOCAB, 6, 5, init_size=8), vocab_size=VOCAB)
    params = model.init(key, 3, jnp.float64)
    src, src_lengths, targets, target_lengths = _data(key)
    carry, memory = model.encode(params, src, src_lengths)
    assert carry.h.shape == (3, 6) and carry.c.shape == (3, 6) and memory is None
    _, finals = model.encoder.apply(params["encoder"], params["embedding"][src], lengths=src_lengths)
    vector = jnp.concatenate(finals[-1], -1)
    bridge = params["decoder"]["bridge"]
    np.testing.assert_allclose(carry.h, jnp.tanh(vector @ bridge.h["kernel"] + bridge.h["bias"]), rtol=1e-12)
    np.testing.assert_allclose(carry.c, jnp.tanh(vector @ bridge.c["kernel"] + bridge.c["bias"]), rtol=1e-12)
    # The loss is the masked cross-entropy of the decoder started from that carry (numpy log-softmax).
    inputs = model.decoder.shift_right(targets, target_lengths)
    logits = np.asarray(model.decoder.apply(params["decoder"], carry, inputs))
    log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    valid = np.arange(4) < np.asarray(target_lengths)[:, None]
    picked = np.take_along_axis(log_probs, np.where(valid, targets, 0)[..., None], -1)[..., 0]
    expected = -picked[valid].mean()
    np.testing.assert_allclose(model.loss(params, src, src_lengths, targets, target_lengths), expected, rtol=1e-12)


def test_bad_inputs_raise_clear_errors(key):
    with pytest.raises(ValueError, match=r"decoder.hidden_size: expected 8 \(encoder hidden_size 4 x 2 directions\)"):
        Seq2Seq(RNN(gru(), 4, bidirectional=True), Decoder(gru(), VOCAB, 4, 5))
    with pytest.raises(ValueError, match="decoder.cell: expected a carry like the encoder's"):
        Seq2Seq(RNN(gru(), 4), Decoder(lstm(), VOCAB, 4, 5))
    with pytest.raises(ValueError, match=r"decoder.init_size: expected 4 .*got 5"):
        Seq2Seq(RNN(gru(), 4), Decoder(gru(), VOCAB, 4, 5, init_size=5))
    model = _model("luong", cell=gru)
    params = model.init(key, 6)
    decoder, decoder_params = model.decoder, params["decoder"]
    src, src_lengths, targets, target_lengths = _data(key)
    carry, memory = model.encode(params, src, src_lengths)
    other = Decoder(gru(), VOCAB + 1, 8, 5, attention="luong").init(key, memory_size=8)
    cases = [
        (ValueError, r"end_id .*must be <= 6; got 7", lambda: Decoder(gru(), VOCAB, 4, 5, end_id=7)),
        (ValueError, r"start_id .*must be >= 0; got -1", lambda: Decoder(gru(), VOCAB, 4, 5, start_id=-1)),
        (ValueError, "attention must be one of", lambda: Decoder(gru(), VOCAB, 4, 5, attention="dot")),
        (TypeError, "hidden_size must be an int; got 4.0", lambda: Decoder(gru(), VOCAB, 4.0, 5)),
        (TypeError, "cell must be an rnnjax Cell", lambda: Decoder("gru", VOCAB, 4, 5)),
        (TypeError, "decoder must be a Decoder", lambda: Seq2Seq(RNN(gru(), 4), gru())),
        (ValueError, "memory_size must be given exactly when attention is used", lambda: decoder.init(key)),
        (ValueError, "memory_size must be >= 1; got 0", lambda: decoder.init(key, memory_size=0)),
        (ValueError, "beam_width must be >= 1; got 0",
         lambda: model.beam_search(params, src, src_lengths, beam_width=0, max_length=3)),
        (ValueError, "max_length must be >= 1; got 0", lambda: model.greedy(params, src, src_lengths, max_length=0)),
        (ValueError, r"src must be ids in \[0, 7\).*got 9",
         lambda: model.loss(params, src.at[0, 0].set(9), src_lengths, targets, target_lengths)),
        (ValueError, r"targets must be ids in \[0, 7\).*got 9",
         lambda: model.loss(params, src, src_lengths, targets.at[0, 0].set(9), target_lengths)),
        (ValueError, r"lengths must be in \[0, 4\]; got 5",
         lambda: model.loss(params, src, src_lengths, targets, target_lengths.at[0].set(5))),
        (ValueError, r"lengths must be in \[0, 4\]; got -1",
         lambda: decoder.shift_right(targets, target_lengths.at[0].set(-1))),
        (ValueError, r"lengths must have shape \[3\]; got \[2\]",
         lambda: model.loss(params, src, src_lengths, targets, target_lengths[:2])),
        (ValueError, r"params\['embedding'\] must have shape \[7, 5\]; got \[8, 5\]",
         lambda: decoder.step(other, carry, targets[:, 0], memory)),
        (ValueError, r"params\['cell'\] must map input size 5 to hidden size 8.*got 5 -> 4",
         lambda: decoder.step({**decoder_params, "cell": gru().init(key, 5, 4)}, carry, src[:, 0], memory)),
        (ValueError, r"params\['cell'\] must (hold keys|be params of the)",
         lambda: decoder.step({**decoder_params, "cell": {"kernel": 1}}, carry, src[:, 0], memory)),
        (ValueError, r"params must hold keys .*missing \['attention'\]",
         lambda: decoder.step({k: v for k, v in decoder_params.items() if k != "attention"}, carry, src[:, 0], memory)),
        (ValueError, r"tokens must be ids in \[0, 7\).*got 7",
         lambda: decoder.step(decoder_params, carry, src[:, 0].at[0].set(7), memory)),
        (ValueError, r"tokens must have shape \[batch\]", lambda: decoder.step(decoder_params, carry, src, memory)),
        (ValueError, r"carry must have batch size 2 \(that of the tokens\); got 3",
         lambda: decoder.step(decoder_params, carry, src[:2, 0], memory)),
        (ValueError, r"memory must have batch size 2 \(that of the tokens\); got 3",
         lambda: decoder.step(decoder_params, jax.tree.map(lambda x: x[:2], carry), src[:2, 0], memory)),
        (ValueError, "memory must be given exactly when attention is used",
         lambda: decoder.step(decoder_params, carry, src[:, 0])),
        (ValueError, r"values must have shape \[\?, \?, 8\]; got \[3, 5, 4\]",
         lambda: decoder.memory(decoder_params, jnp.ones((3, 5, 4)))),
        (ValueError, r"lengths must be in \[0, 5\]; got 6",
         lambda: decoder.memory(decoder_params, jnp.ones((3, 5, 8)), jnp.array([6, 1, 1]))),
        (ValueError, "carry_from_vector needs a Decoder built with init_size",
         lambda: decoder.carry_from_vector(decoder_params, jnp.ones((3, 8)))),
        (ValueError, "batch must be >= 1; got 0", lambda: decoder.zero_carry(decoder_params, 0)),
    ]
    for error, pattern, call in cases:
        with pytest.raises(error, match=pattern):
            call()


def test_attention_seq2seq_learns_to_reverse(key):
    """GRU-32 encoder-decoder with Bahdanau attention: >= 95% target tokens right (greedy and beam 3)
    after 300 Adam steps (seed 0)."""
    model = Seq2Seq(RNN(gru(), 32), Decoder(gru(), VOCAB, 32, 16, attention="bahdanau"), vocab_size=VOCAB)
    params = model.init(key, 16)
    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)

    @jax.jit
    def train_step(params, state, batch):
        grads = jax.grad(model.loss)(params, *batch)
        updates, state = optimizer.update(grads, state)
        return optax.apply_updates(params, updates), state

    for step in range(300):
        params, state = train_step(params, state, toy_tasks.copy_or_reverse(step, reverse=True))
    src, src_lengths, targets, target_lengths = toy_tasks.copy_or_reverse(10**6, 256, reverse=True)
    mask = sequence_mask(target_lengths, 7)
    greedy = jax.jit(lambda s, n: model.greedy(params, s, n, max_length=7))(src, src_lengths)
    assert token_accuracy(greedy.tokens, targets, mask) >= 0.95
    beams = jax.jit(lambda s, n: model.beam_search(params, s, n, beam_width=3, max_length=7))(src, src_lengths)
    assert token_accuracy(beams.tokens[:, 0], targets, mask) >= 0.95


def test_decoder_alone_generates_from_a_start_token(key):
    """One-to-many from a start token: sampling is reproducible, top_k=1 is greedy, and the
    reported log-probabilities equal those of teacher forcing on the sampled tokens."""
    decoder = Decoder(gru(), VOCAB, 6, 5, start_id=START, end_id=END)
    params = decoder.init(key, dtype=jnp.float64)
    carry = decoder.zero_carry(params, 64)
    run = jax.jit(lambda k, top_k: decoder.sample(params, carry, key=k, max_length=6, top_k=top_k), static_argnums=1)
    first = run(key, None)
    np.testing.assert_array_equal(run(key, None).tokens, first.tokens)
    assert not np.array_equal(run(jax.random.key(1), None).tokens, first.tokens)
    greedy = jax.jit(lambda: decoder.greedy(params, carry, max_length=6))()
    np.testing.assert_array_equal(run(key, 1).tokens, greedy.tokens)
    logits = decoder.apply(params, carry, decoder.shift_right(first.tokens, first.lengths))
    token_log_probs = jnp.take_along_axis(jax.nn.log_softmax(logits), first.tokens[..., None], -1)[..., 0]
    forced = jnp.where(sequence_mask(first.lengths, 6), token_log_probs, 0.0).sum(-1)
    np.testing.assert_allclose(first.log_probs, forced, rtol=1e-10)
    assert 1 < len(set(np.asarray(first.lengths).tolist()))  # some samples end early


# --------------------------------------------------------------------------- attention against numpy


def _masked_softmax(scores, valid):
    """a_j = exp(e_j) / sum_{valid k} exp(e_k) at valid j, 0 elsewhere (numpy; an all-masked row gives zeros)."""
    top = np.max(np.where(valid, scores, -np.inf), axis=-1, keepdims=True)
    weights = np.where(valid, np.exp(scores - np.where(np.isfinite(top), top, 0.0)), 0.0)
    return weights / np.maximum(weights.sum(-1, keepdims=True), 1e-300)


def _numpy_decoder(params, attention, carry, inputs, values, valid):
    """Teacher-forced logits of a simple-tanh-cell Decoder, every equation written out in numpy."""
    p = jax.tree.map(np.asarray, params)
    cell, readout = p["cell"], p["readout"]
    h, logits = np.asarray(carry), []
    for t in range(inputs.shape[1]):
        x = p["embedding"][np.asarray(inputs[:, t])]
        if attention == "bahdanau":  # e_j = v . tanh(W_q s_{t-1} + W_k m_j + b_k); context enters the cell
            a = p["attention"]
            hidden = np.tanh((h @ a["query"])[:, None, :] + values @ a["key"]["kernel"] + a["key"]["bias"])
            context = np.einsum("bs,bsd->bd", _masked_softmax(hidden @ a["score"], valid), values)
            x = np.concatenate([x, context], -1)
        h = np.tanh(x @ cell["input_kernel"] + h @ cell["recurrent_kernel"] + cell["bias"])
        if attention == "bahdanau":
            out = np.concatenate([h, context], -1)
        elif attention == "luong":  # e_j = h_t W m_j; h~ = tanh(W_c [c; h] + b_c)
            a = p["attention"]
            scores = np.einsum("bh,bsh->bs", h, values @ a["key"])
            context = np.einsum("bs,bsd->bd", _masked_softmax(scores, valid), values)
            combined = np.concatenate([context, h], -1)
            out = np.tanh(combined @ a["combine"]["kernel"] + a["combine"]["bias"])
        else:
            out = h
        logits.append(out @ readout["kernel"] + readout["bias"])
    return np.stack(logits, 1)


MEMORY_SHAPES = [  # (batch, source, lengths or None)
    (1, 1, None),
    (1, 4, [2]),
    (3, 5, None),
    (3, 5, [5, 1, 3]),
    (2, 3, [0, 3]),  # an empty memory row: zero context
]


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong"])
@pytest.mark.parametrize(("batch", "source", "lengths"), MEMORY_SHAPES)
def test_decoder_equals_numpy_equations(key, attention, batch, source, lengths):
    """Decoder.apply (teacher forcing) and one Decoder.step against the written-out maths, per attention kind."""
    decoder = Decoder(simple_rnn(), VOCAB, 4, 3, attention=attention, attention_size=5)
    memory_size = None if attention == "none" else 6
    params = decoder.init(key, memory_size, jnp.float64)
    params = jax.tree.map(lambda leaf: leaf + 0.1 * jnp.ones_like(leaf), params)  # non-zero biases
    keys = jax.random.split(jax.random.fold_in(key, batch * 10 + source), 3)
    values = jax.random.normal(keys[0], (batch, source, 6), jnp.float64)
    carry = jax.random.normal(keys[1], (batch, 4), jnp.float64)
    inputs = jax.random.randint(keys[2], (batch, 3), 0, VOCAB)
    valid = np.ones((batch, source), bool) if lengths is None else np.arange(source) < np.array(lengths)[:, None]
    memory = None
    if attention != "none":
        memory = decoder.memory(params, values, None if lengths is None else jnp.array(lengths))
        np.testing.assert_array_equal(memory.mask, valid)
    expected = _numpy_decoder(params, attention, carry, inputs, np.asarray(values), valid)
    np.testing.assert_allclose(decoder.apply(params, carry, inputs, memory), expected, rtol=1e-10, atol=1e-12)
    _, step_logits = decoder.step(params, carry, inputs[:, 0], memory)
    np.testing.assert_allclose(step_logits, expected[:, 0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("batch", "source", "lengths"), MEMORY_SHAPES)
@pytest.mark.parametrize("queries", [None, 3])  # scores [batch, source] or [batch, time, source]
def test_attend_equals_masked_softmax_in_numpy(key, batch, source, lengths, queries):
    valid = np.ones((batch, source), bool) if lengths is None else np.arange(source) < np.array(lengths)[:, None]
    values = jax.random.normal(key, (batch, source, 2), jnp.float64)
    shape = (batch, source) if queries is None else (batch, queries, source)
    scores = 3 * jax.random.normal(jax.random.fold_in(key, 1), shape, jnp.float64)
    memory = Memory(values=values, keys=values, mask=jnp.asarray(valid))
    context, weights = attend(scores, memory)
    expected_weights = _masked_softmax(np.asarray(scores), valid if queries is None else valid[:, None, :])
    pattern = "bs,bsd->bd" if queries is None else "bts,bsd->btd"
    expected_context = np.einsum(pattern, expected_weights, np.asarray(values))
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(context, expected_context, rtol=1e-12, atol=1e-15)
