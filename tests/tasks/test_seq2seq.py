"""Encoder-decoder: teacher forcing equals step-by-step decoding, masks, beam = greedy at k=1, training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnjax.tasks import toy_tasks
from rnnjax.core.cells import gru, lstm
from rnnjax.tasks.losses import cross_entropy, sequence_mask
from rnnjax.tasks.metrics import token_accuracy
from rnnjax.tasks.seq2seq import Decoder, Seq2Seq
from rnnjax.core.unroll import RNN

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
    logits = model.logits(params, src, src_lengths, targets, target_lengths)
    carry, memory = model.encode(params, src, src_lengths)
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
    assert np.isfinite(float(model.loss(params, src, src_lengths, targets, target_lengths)))


def test_bad_inputs_raise_clear_errors(key):
    with pytest.raises(ValueError, match=r"decoder.hidden_size: expected 8 \(encoder hidden_size 4 x 2 directions\)"):
        Seq2Seq(RNN(gru(), 4, bidirectional=True), Decoder(gru(), VOCAB, 4, 5))
    with pytest.raises(ValueError, match="decoder.cell: expected a carry like the encoder's"):
        Seq2Seq(RNN(gru(), 4), Decoder(lstm(), VOCAB, 4, 5))
    with pytest.raises(ValueError, match=r"decoder.init_size: expected 4 .*got 5"):
        Seq2Seq(RNN(gru(), 4), Decoder(gru(), VOCAB, 4, 5, init_size=5))
    with pytest.raises(ValueError, match=r"end_id must lie in \[0, 7\)"):
        Decoder(gru(), VOCAB, 4, 5, end_id=7)
    with pytest.raises(ValueError, match="attention must be one of"):
        Decoder(gru(), VOCAB, 4, 5, attention="dot")
    model = _model("luong", cell=gru)
    params = model.init(key, 6)
    src, src_lengths, targets, target_lengths = _data(key)
    with pytest.raises(ValueError, match="beam_width must be a Python int >= 1; got 0"):
        model.beam_search(params, src, src_lengths, beam_width=0, max_length=3)
    with pytest.raises(ValueError, match="max_length must be a Python int >= 1; got 0"):
        model.greedy(params, src, src_lengths, max_length=0)
    with pytest.raises(ValueError, match=r"src: ids must lie in \[0, 7\)"):
        model.loss(params, src.at[0, 0].set(9), src_lengths, targets, target_lengths)
    with pytest.raises(ValueError, match=r"targets: ids must lie in \[0, 7\)"):
        model.loss(params, src, src_lengths, targets.at[0, 0].set(9), target_lengths)
    with pytest.raises(ValueError, match="memory_size must be given exactly when attention is used"):
        model.decoder.init(key)


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
