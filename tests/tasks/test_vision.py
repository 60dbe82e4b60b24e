"""Captioning: CNN semantic vector -> RNN decoder, trained jointly with one Optax optimizer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnjax.core.cells import gru
from rnnjax.tasks import toy_tasks
from rnnjax.tasks.losses import sequence_mask
from rnnjax.tasks.metrics import sequence_accuracy
from rnnjax.tasks.seq2seq import Decoder
from rnnjax.tasks.vision import Captioner, ConvEncoder

START, END, VOCAB = toy_tasks.START, toy_tasks.END, toy_tasks.CAPTION_VOCAB


def _model(feature_size=32):
    decoder = Decoder(gru(), VOCAB, 32, 8, init_size=feature_size, start_id=START, end_id=END)
    return Captioner(ConvEncoder(channels=(8, 16), output_size=feature_size), decoder)


@pytest.fixture(scope="module")
def initial():
    """The model and its seed-0 params, shared by the tests of this module (init is slow on CPU)."""
    model = _model()
    return model, model.init(jax.random.key(0), (12, 12, 1))


def test_shapes_gradients_reach_the_cnn_and_jit_agrees(initial):
    model, params = initial
    images, captions, lengths = toy_tasks.bar_captions(0, batch=4)
    vectors = model.cnn.apply({"params": params["cnn"]}, images)  # the Flax module itself
    np.testing.assert_allclose(model.encode(params, images), vectors, rtol=1e-6)
    bridge = params["decoder"]["bridge"]  # a GRU carry: one tanh dense layer from the semantic vector
    np.testing.assert_allclose(
        model.initial_carry(params, images), np.tanh(vectors @ bridge["kernel"] + bridge["bias"]), rtol=1e-5, atol=1e-6
    )
    loss = model.loss(params, images, captions, lengths)  # eager
    loss_fn = jax.jit(model.loss)
    np.testing.assert_allclose(loss_fn(params, images, captions, lengths), loss, rtol=1e-5)
    grads = jax.jit(jax.grad(model.loss))(params, images, captions, lengths)
    for leaf in jax.tree.leaves(grads["cnn"]):
        assert float(jnp.abs(leaf).sum()) > 0.0
    # Padded caption positions are ignored.
    padded = jnp.where(sequence_mask(lengths, 3), captions, 7)
    np.testing.assert_allclose(loss_fn(params, images, padded, lengths), loss, rtol=1e-5)


def test_bad_configuration_raises_clear_errors(initial):
    with pytest.raises(ValueError, match=r"decoder.init_size: expected 16 \(cnn.output_size\); got 32"):
        Captioner(ConvEncoder(output_size=16), Decoder(gru(), VOCAB, 32, 8, init_size=32))
    with pytest.raises(ValueError, match="decoder.init_size must be set"):
        Captioner(ConvEncoder(output_size=16), Decoder(gru(), VOCAB, 32, 8))
    model, params = initial
    with pytest.raises(ValueError, match=r"images must have shape \[batch, height, width, channels\]"):
        model.encode(params, jnp.zeros((12, 12, 1)))
    images, captions, lengths = toy_tasks.bar_captions(0, batch=2)
    with pytest.raises(ValueError, match=r"targets must be ids in \[0, 9\).*got 9"):
        model.loss(params, images, captions.at[0, 0].set(9), lengths)
    with pytest.raises(ValueError, match="beam_width must be >= 1; got 0"):
        model.beam_search(params, images, beam_width=0, max_length=3)


def test_cnn_and_decoder_learn_captions_jointly(initial):
    """Joint Adam training (one optimizer, one pytree): >= 95% of captions exactly right after
    200 steps (seed 0)."""
    model, params = initial
    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)
    cnn_before = params["cnn"]

    @jax.jit
    def train_step(params, state, batch):
        grads = jax.grad(model.loss)(params, *batch)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for step in range(200):
        params, state = train_step(params, state, toy_tasks.bar_captions(step))
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), cnn_before, params["cnn"])
    assert all(jax.tree.leaves(changed))
    images, captions, lengths = toy_tasks.bar_captions(10**6, batch=256)
    out = jax.jit(lambda p, x: model.greedy(p, x, max_length=3))(params, images)
    assert sequence_accuracy(out.tokens, captions, sequence_mask(lengths, 3)) >= 0.95
