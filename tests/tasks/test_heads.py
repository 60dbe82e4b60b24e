"""Many-to-one and tagging heads: pooling and masks, jit/vmap, toy training (parity, next-token tags)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnjax.core.cells import gru, lstm
from rnnjax.core.unroll import RNN, rnn
from rnnjax.tasks import toy_tasks
from rnnjax.tasks.heads import ManyToOne, Tagger, dense, dense_init, embedding_init, pool
from rnnjax.tasks.losses import cross_entropy, sequence_mask
from rnnjax.tasks.metrics import token_accuracy


def _inputs(key, batch=3, time=6, features=4):
    xs = jax.random.normal(key, (batch, time, features), jnp.float64)
    return xs, jnp.array([6, 3, 1])[:batch]


def test_pooling_uses_only_valid_steps(key):
    ys, lengths = _inputs(key)
    ys_np, valid = np.asarray(ys), np.asarray(sequence_mask(lengths, 6))
    for b, n in enumerate(np.asarray(lengths)):
        np.testing.assert_allclose(pool(ys, lengths, "mean")[b], ys_np[b, :n].mean(0), rtol=1e-12)
        np.testing.assert_allclose(pool(ys, lengths, "max")[b], ys_np[b, :n].max(0), rtol=1e-12)
        np.testing.assert_allclose(pool(ys, lengths, "last")[b], ys_np[b, n - 1], rtol=1e-12)
    assert valid.sum() == 10
    empty = jnp.array([0, 2, 6])  # an empty sequence pools to zeros, whatever its padding holds
    for pooling in ("mean", "max", "last"):
        np.testing.assert_array_equal(pool(ys, empty, pooling)[0], np.zeros(4))


@pytest.mark.parametrize(("pooling", "bidirectional"), [("last", True), ("mean", False), ("max", True)])
def test_many_to_one_ignores_padding_and_jit_vmap_agree(key, pooling, bidirectional):
    model = ManyToOne(RNN(lstm(), 5, bidirectional=bidirectional), num_outputs=2, pooling=pooling)
    params = model.init(key, 4, jnp.float64)
    xs, lengths = _inputs(jax.random.fold_in(key, 1))
    apply = jax.jit(lambda x: model.apply(params, x, lengths=lengths))
    out = model.apply(params, xs, lengths=lengths)  # eager
    assert out.shape == (3, 2)
    np.testing.assert_allclose(apply(xs), out, rtol=1e-12)
    valid = sequence_mask(lengths, 6)
    np.testing.assert_allclose(apply(jnp.where(valid[..., None], xs, 1e3)), out, rtol=1e-12)
    grads = jax.jit(jax.grad(lambda x: apply(x).sum()))(xs)
    assert np.all(np.asarray(grads)[~np.asarray(valid)] == 0.0)
    mapped = jax.jit(jax.vmap(lambda x, n: model.apply(params, x[None], lengths=n[None])[0]))(xs, lengths)
    np.testing.assert_allclose(mapped, out, rtol=1e-12)


def test_last_pooling_reads_the_final_carry(key):
    model = ManyToOne(RNN(gru(), 5), num_outputs=3)
    params = model.init(key, 4, jnp.float64)
    xs, lengths = _inputs(jax.random.fold_in(key, 1))
    _, final = rnn(gru(), params["encoder"]["layers"][0][0], xs, lengths=lengths)
    np.testing.assert_allclose(model.encode(params, xs, lengths=lengths), final, rtol=1e-12)
    expected = final @ params["readout"]["kernel"] + params["readout"]["bias"]
    np.testing.assert_allclose(model.apply(params, xs, lengths=lengths), expected, rtol=1e-12)


def test_tagger_loss_masks_padding(key):
    tagger = Tagger(RNN(gru(), 6, bidirectional=True), num_tags=4, vocab_size=7)
    params = tagger.init(key, 3, jnp.float64)
    tokens = jax.random.randint(key, (3, 6), 0, 7)
    lengths = jnp.array([6, 3, 1])
    mask = sequence_mask(lengths, 6)
    tags = jnp.where(mask, tokens % 4, -1)
    logits = tagger.apply(params, tokens, lengths=lengths)
    assert logits.shape == (3, 6, 4)
    loss = cross_entropy(logits, tags, mask)  # eager
    # jit agrees; other padded tokens and tags change nothing; gradients w.r.t. padded logits vanish.
    jitted = jax.jit(lambda x, y: tagger.loss(params, x, y, lengths=lengths))
    np.testing.assert_allclose(jitted(tokens, tags), loss, rtol=1e-12)
    np.testing.assert_allclose(jitted(jnp.where(mask, tokens, 6), jnp.where(mask, tags, 3)), loss, rtol=1e-12)
    logit_grads = jax.grad(lambda z: cross_entropy(z, tags, mask))(logits)
    assert np.all(np.asarray(logit_grads)[~np.asarray(mask)] == 0.0)
    predictions = jax.jit(lambda x: tagger.predict(params, x, lengths=lengths))(tokens)
    np.testing.assert_array_equal(predictions, jnp.where(mask, logits.argmax(-1), -1))


def test_bad_inputs_raise_clear_errors(key):
    tagger = Tagger(RNN(gru(), 4), num_tags=3, vocab_size=5)
    params = tagger.init(key, 2)
    classifier = ManyToOne(RNN(gru(), 4), 2, pooling="mean")
    classifier_params = classifier.init(key, 3)
    ys = jnp.ones((2, 4, 3))
    cases = [
        (ValueError, r"xs must be ids in \[0, 5\).*got 5", lambda: tagger.apply(params, jnp.array([[1, 5]]))),
        (ValueError, r"xs must be ids in \[0, 5\).*got -1", lambda: tagger.apply(params, jnp.array([[-1, 2]]))),
        (ValueError, "pooling must be one of", lambda: ManyToOne(RNN(gru(), 4), 2, pooling="first")),
        (ValueError, "num_outputs must be >= 1; got 0", lambda: ManyToOne(RNN(gru(), 4), 0)),
        (TypeError, "num_tags must be an int; got True", lambda: Tagger(RNN(gru(), 4), True)),
        (ValueError, "vocab_size must be >= 1; got 0", lambda: Tagger(RNN(gru(), 4), 3, vocab_size=0)),
        (TypeError, "encoder must be an rnnjax RNN", lambda: Tagger(gru(), 3)),
        (ValueError, r"params\['embedding'\] must have shape \[5, \?\]; got \[6, 2\]",
         lambda: tagger.apply({**params, "embedding": jnp.ones((6, 2))}, jnp.array([[1, 2]]))),
        (ValueError, r"params\['readout'\]\['kernel'\] must have shape \[\?, 3\]; got \[4, 2\]",
         lambda: tagger.apply({**params, "readout": dense_init(key, 4, 2)}, jnp.array([[1, 2]]))),
        (ValueError, r"params must hold keys \['embedding', 'encoder', 'readout'\]; missing \['readout'\]",
         lambda: tagger.apply({"encoder": params["encoder"], "embedding": params["embedding"]}, jnp.array([[1]]))),
        (ValueError, r"params\['readout'\]\['kernel'\] must have shape \[\?, 2\]; got \[4, 3\]",
         lambda: classifier.apply({**classifier_params, "readout": dense_init(key, 4, 3)}, ys[..., :3])),
        (ValueError, r"lengths must be in \[0, 4\]; got 5", lambda: pool(ys, jnp.array([5, 1]), "mean")),
        (ValueError, r"lengths must have shape \[2\]; got \[3\]", lambda: pool(ys, jnp.array([1, 1, 1]), "max")),
        (TypeError, r"lengths must be an integer array", lambda: pool(ys, jnp.array([1.0, 2.0]), "last")),
        (ValueError, r"lengths must (be|lie) in \[0, 2\]",  # the encoder's own check comes first
         lambda: tagger.loss(params, jnp.array([[1, 2]]), jnp.array([[0, 1]]), lengths=jnp.array([3]))),
        (ValueError, r"labels must be ids in \[0, 3\).*got 3",
         lambda: tagger.loss(params, jnp.array([[1, 2]]), jnp.array([[0, 3]]), lengths=jnp.array([2]))),
        (ValueError, r"x must have last axis 4 \(kernel input size\)|params\['kernel'\] must have shape \[3, \?\]",
         lambda: dense(dense_init(key, 4, 2), jnp.ones((2, 3)))),
        (ValueError, "output_size must be >= 1; got 0", lambda: dense_init(key, 4, 0)),
        (ValueError, "embed_size must be >= 1; got 0", lambda: embedding_init(key, 4, 0)),
    ]
    for error, pattern, call in cases:
        with pytest.raises(error, match=pattern):
            call()


def _train(model, params, batches, loss_fn, steps, learning_rate):
    optimizer = optax.adam(learning_rate)
    state = optimizer.init(params)

    @jax.jit
    def train_step(params, state, batch):
        grads = jax.grad(loss_fn)(params, *batch)
        updates, state = optimizer.update(grads, state)
        return optax.apply_updates(params, updates), state

    for step in range(steps):
        params, state = train_step(params, state, batches(step))
    return params


def test_many_to_one_learns_parity(key):
    """Parity of 1..8 bits with a GRU-32: >= 97% test accuracy after 150 Adam steps (seed 0)."""
    model = ManyToOne(RNN(gru(), 32), num_outputs=2)
    loss_fn = lambda p, xs, n, y: cross_entropy(model.apply(p, xs, lengths=n), y)  # noqa: E731
    params = _train(model, model.init(key, 2), toy_tasks.parity, loss_fn, steps=150, learning_rate=1e-2)
    xs, lengths, labels = toy_tasks.parity(10**6, 512)
    accuracy = (model.apply(params, xs, lengths=lengths).argmax(-1) == labels).mean()
    assert accuracy >= 0.97


def test_bidirectional_tagger_learns_next_token_tags(key):
    """Bidirectional GRU-16 tagger: >= 95% of valid tags right after 150 Adam steps (seed 0)."""
    tagger = Tagger(RNN(gru(), 16, bidirectional=True), num_tags=6, vocab_size=5)
    loss_fn = lambda p, x, n, y: tagger.loss(p, x, y, lengths=n)  # noqa: E731
    params = _train(tagger, tagger.init(key, 8), toy_tasks.next_token_tags, loss_fn, steps=150, learning_rate=1e-2)
    tokens, lengths, tags = toy_tasks.next_token_tags(10**6, 256)
    predictions = tagger.predict(params, tokens, lengths=lengths)
    assert token_accuracy(predictions, tags, sequence_mask(lengths, 10)) >= 0.95
