"""rnnjax.apps.sentiment: pooling, the hybrid readout, best-per-seed selection, the loss and the baseline."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.apps import sentiment
from rnnjax.core.cells import make_cell
from rnnjax.core.unroll import RNN
from rnnjax.data.sentiment import Sentiment, Split, encode
from rnnjax.tasks.heads import pool
from rnnjax.tasks.losses import cross_entropy

VOCABULARY = 12


def make_model(pooling="max", hybrid=False, bidirectional=False):
    encoder = RNN(make_cell("lstm"), 4, bidirectional=bidirectional)
    return sentiment.SentimentModel(encoder, VOCABULARY, 3, pooling, hybrid)


def random_batch(seed: int, count: int = 5, time: int = 7):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, time + 1, count).astype(np.int32)
    tokens = rng.integers(2, VOCABULARY, (count, time)).astype(np.int32)
    tokens *= (np.arange(time)[None] < lengths[:, None]).astype(np.int32)
    return jnp.asarray(tokens), jnp.asarray(lengths), jnp.asarray(rng.normal(size=count))


@pytest.mark.parametrize("pooling", ["max", "mean", "attention"])
def test_logits_ignore_tokens_after_each_length(pooling, key):
    model = make_model(pooling, bidirectional=True)
    params = model.init(key)
    tokens, lengths, bow = random_batch(0)
    padded = jnp.where(jnp.arange(tokens.shape[1])[None] < lengths[:, None], tokens, 5)
    np.testing.assert_allclose(model.predict(params, padded, lengths, bow), model.predict(params, tokens, lengths, bow),
                               rtol=1e-5, atol=1e-7)  # fmt: skip


def test_attention_with_constant_scores_is_mean_pooling(key):
    model = make_model("attention")
    params = model.init(key)
    params["attention"] = jax.tree.map(jnp.zeros_like, params["attention"])  # every valid step scores 0
    tokens, lengths, _ = random_batch(1)
    words = params["embedding"][tokens]
    outputs, _ = model.encoder.apply(params["encoder"], words, lengths=lengths)
    np.testing.assert_allclose(model.features(params, words, lengths), pool(outputs, lengths, "mean"), rtol=1e-6)


def test_hybrid_adds_the_scaled_baseline_logit_only_when_asked(key):
    tokens, lengths, bow = random_batch(2)
    plain, hybrid = make_model(), make_model(hybrid=True)
    params = hybrid.init(key)
    params["baseline_scale"] = jnp.asarray(2.5)
    without = plain.predict({k: v for k, v in params.items() if k != "baseline_scale"}, tokens, lengths, bow)
    with_baseline = hybrid.predict(params, tokens, lengths, bow)
    np.testing.assert_allclose(with_baseline[:, 0], without[:, 0])
    np.testing.assert_allclose(with_baseline[:, 1], without[:, 1] + 2.5 * bow, rtol=1e-6)
    np.testing.assert_allclose(plain.predict(params, tokens, lengths, 100 * bow), without)  # ignored when not hybrid


def test_loss_without_dropout_is_cross_entropy_of_predict(key):
    model = make_model("mean")
    params = model.init(key)
    tokens, lengths, bow = random_batch(3)
    labels = jnp.array([0, 1, 1, 0, 1])
    loss, metrics = sentiment.sentiment_loss(model, (0.0, 0.0), params, (tokens, lengths, bow, labels), key)
    logits = model.predict(params, tokens, lengths, bow)
    np.testing.assert_allclose(loss, cross_entropy(logits, labels), rtol=1e-6)
    assert metrics["accuracy"] == jnp.mean(logits.argmax(-1) == labels)


def test_best_per_seed_keeps_each_seeds_best_params_and_step(key):
    """A readout of zeros with baseline scale +-1 predicts sign(+-bow): accuracy a or 1 - a, set per seed."""
    model = make_model(hybrid=True)
    tokens, lengths, bow = random_batch(4, count=10)
    labels = np.asarray(bow > 0).astype(np.int32)
    labels[:2] = 1 - labels[:2]  # scale +1 gets 8 of 10 right, scale -1 gets 2
    split = Split(np.asarray(tokens), np.asarray(lengths), labels, ("",) * 10)
    params = jax.vmap(model.init)(jax.random.split(key, 2))
    params["readout"] = jax.tree.map(jnp.zeros_like, params["readout"])
    best = sentiment.BestPerSeed(model, split, np.asarray(bow), eval_every=50)
    for scales in ([1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]):  # seed 0 best at step 50, seed 1 at step 100
        reported = best({**params, "baseline_scale": jnp.asarray(scales)})
    assert reported["accuracy_seed0"] == reported["accuracy_seed1"] == pytest.approx(0.2)
    np.testing.assert_allclose(best.accuracy, [0.8, 0.8])
    np.testing.assert_array_equal(best.step, [50, 100])
    np.testing.assert_array_equal(best.params["baseline_scale"], [1.0, 1.0])


def test_bag_of_words_logits_agree_with_its_predictions():
    texts = [f"{word} film {i}" for i in range(40) for word in ("great", "awful")]
    labels = np.array([1, 0] * 40, np.int32)
    vocabulary = ("<pad>", "<unk>", "great", "awful", "film")
    splits = [Split(*encode(texts[a:b], vocabulary, 6), labels[a:b], tuple(texts[a:b])) for a, b in
              ((0, 60), (60, 70), (70, 80))]  # fmt: skip
    baseline = sentiment.bag_of_words(Sentiment(*splits, vocabulary), (0.1, 1.0))
    assert baseline["test_accuracy"] == 1.0 and baseline["C"] == 0.1  # both perfect on validation: the first wins
    np.testing.assert_array_equal(baseline["test_logits"] > 0, baseline["test_predictions"] == 1)
    assert baseline["train_logits"].shape == (60,) and np.all((baseline["train_logits"] > 0) == (labels[:60] == 1))


def test_model_rejects_unknown_pooling():
    with pytest.raises(ValueError, match="pooling"):
        make_model("median")
