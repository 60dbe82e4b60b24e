"""rnnjax.apps.sentiment_pretrain: packing, the LM loss vs sentences run alone, PPMI, loading into the classifier."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import sparse

from rnnjax.apps import sentiment, sentiment_pretrain
from rnnjax.core.cells import make_cell
from rnnjax.core.unroll import RNN
from rnnjax.tasks.heads import dense
from rnnjax.training import loop, optimizers

VOCABULARY, EMBED, HIDDEN = 12, 3, 4


def random_sentences(seed: int, count: int = 6, time: int = 7):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, time + 1, count).astype(np.int32)
    tokens = rng.integers(1, VOCABULARY, (count, time)).astype(np.int32)
    return tokens * (np.arange(time)[None] < lengths[:, None]), lengths


def test_pack_sentences_lays_the_valid_tokens_end_to_end():
    tokens, lengths = random_sentences(0)
    packed = sentiment_pretrain.pack_sentences(tokens, lengths, window=5)
    stream = np.concatenate([row[:n] for row, n in zip(packed.tokens, packed.lengths)])
    np.testing.assert_array_equal(stream, np.concatenate([t[:n] for t, n in zip(tokens, lengths)]))
    starts = np.concatenate([row[:n] for row, n in zip(packed.starts, packed.lengths)])
    np.testing.assert_array_equal(np.flatnonzero(starts), np.concatenate([[0], np.cumsum(lengths)[:-1]]))
    assert np.all(packed.lengths[:-1] == 5) and 1 <= packed.lengths[-1] <= 5
    assert not packed.tokens[-1, packed.lengths[-1] :].any() and not packed.starts[-1, packed.lengths[-1] :].any()


def segments(row_tokens, row_starts, length):
    """(begin, end) of each sentence piece in one packed row."""
    begins = [t for t in range(length) if row_starts[t] or t == 0]
    return list(zip(begins, begins[1:] + [length]))


def loss_by_hand(model, params, packed):
    """Each sentence piece run alone (no reset), next-word (and previous-word) cross-entropy summed in Python."""
    total, count = 0.0, 0
    for row_tokens, row_starts, length in zip(*packed):
        for begin, end in segments(row_tokens, row_starts, length):
            piece = jnp.asarray(row_tokens[begin:end])
            outputs, _ = model.encoder.apply(params["encoder"], params["embedding"][piece][None])
            targets = np.where(piece < model.output_words, piece, 1)
            directions = [(outputs[0, :-1, :HIDDEN], targets[1:])]
            if model.encoder.bidirectional:
                directions.append((outputs[0, 1:, HIDDEN:], targets[:-1]))
            for features, wanted in directions:
                log_probs = jax.nn.log_softmax(dense(params["output"], features), -1)
                total -= float(sum(log_probs[t, w] for t, w in enumerate(wanted)))
                count += len(wanted)
    return total / count


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lm_loss_equals_each_sentence_run_alone(bidirectional, key):
    """Resets at sentence starts, masks at boundaries and padding, <unk> for rare targets: against a Python loop.

    Unidirectional: one mean over all next-word targets. Bidirectional: the forward and backward means have the
    same count of targets, so their average is the mean over both.
    """
    model = sentiment_pretrain.LanguageModel(RNN(make_cell("lstm"), HIDDEN, bidirectional=bidirectional),
                                             VOCABULARY, EMBED, output_words=8)  # fmt: skip
    params = model.init(key)
    tokens, lengths = random_sentences(1, count=8)
    packed = sentiment_pretrain.pack_sentences(tokens, lengths, window=6)
    words = params["embedding"][packed.tokens]
    loss = model.loss(params, words, tuple(jnp.asarray(a) for a in packed))
    np.testing.assert_allclose(loss, loss_by_hand(model, params, packed), rtol=1e-5)
    unchanged, _ = sentiment_pretrain.lm_loss(model, 0.0, params, tuple(jnp.asarray(a) for a in packed), key)
    np.testing.assert_allclose(unchanged, loss, rtol=1e-12)  # no dropout: the same loss


def test_ppmi_equals_its_formula_on_a_tiny_corpus():
    tokens = np.array([[2, 3, 4, 1], [3, 4, 0, 0]], np.int32)  # 1 = <unk> is never counted
    counts = sentiment_pretrain.cooccurrence(tokens, np.array([4, 2]), 5, window=1).toarray()
    expected = np.zeros((5, 5))
    for a, b in ((2, 3), (3, 4), (3, 4)):
        expected[a, b] += 1
        expected[b, a] += 1
    np.testing.assert_array_equal(counts, expected)
    total, smoothed = counts.sum(), counts.sum(0) ** 0.75
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log((counts / total) / (counts.sum(1, keepdims=True) / total * smoothed / smoothed.sum()))
    expected_ppmi = np.where(counts > 0, np.maximum(pmi, 0.0), 0.0)
    np.testing.assert_allclose(sentiment_pretrain.ppmi(sparse.csr_matrix(counts)).toarray(), expected_ppmi, rtol=1e-12)


def test_classifier_starts_from_the_language_models_encoder(key):
    """After with_pretrained, each seed's first forward gives the LM encoder's outputs, max-pooled."""
    encoder = RNN(make_cell("gru"), HIDDEN, bidirectional=True)
    classifier = sentiment.SentimentModel(encoder, VOCABULARY, EMBED, "max")
    lm = sentiment_pretrain.LanguageModel(encoder, VOCABULARY, EMBED, output_words=6)
    pretrained = jax.vmap(lm.init)(jax.random.split(jax.random.fold_in(key, 1), 2))
    optimizer = optimizers.make_optimizer(optimizers.OptimizerConfig())
    states = sentiment_pretrain.with_pretrained(loop.init_many(classifier.init, optimizer, jax.random.split(key, 2)),
                                                pretrained)  # fmt: skip
    tokens, lengths = (jnp.asarray(a) for a in random_sentences(2))
    starts = jnp.zeros(tokens.shape, bool).at[:, 0].set(True)
    for seed in range(2):
        params, lm_params = (jax.tree.map(lambda leaf: leaf[seed], p) for p in (states.params, pretrained))
        outputs = lm.outputs(lm_params, lm_params["embedding"][tokens], starts, lengths)
        masked = jnp.where(jnp.arange(tokens.shape[1])[None, :, None] < lengths[:, None, None], outputs, -jnp.inf)
        np.testing.assert_allclose(classifier.features(params, params["embedding"][tokens], lengths),
                                   masked.max(1), rtol=1e-6)  # fmt: skip


def test_with_pretrained_rejects_another_shape(key):
    classifier = sentiment.SentimentModel(RNN(make_cell("lstm"), HIDDEN), VOCABULARY, EMBED)
    optimizer = optimizers.make_optimizer(optimizers.OptimizerConfig())
    states = loop.init_many(classifier.init, optimizer, jax.random.split(key, 2))
    with pytest.raises(ValueError, match=r"pretrained\['embedding'\]"):
        sentiment_pretrain.with_pretrained(states, {"embedding": jnp.zeros((2, VOCABULARY, EMBED + 1))})


def test_language_model_rejects_output_words_beyond_the_vocabulary():
    with pytest.raises(ValueError, match="output_words"):
        sentiment_pretrain.LanguageModel(RNN(make_cell("lstm"), HIDDEN), VOCABULARY, EMBED, VOCABULARY + 1)
