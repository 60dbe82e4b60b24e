"""The entity-tagging app: encoding, per-item scoring, the uni/bi comparison and the report on synthetic taggers."""

import jax
import numpy as np
import pytest

from rnnjax.apps import entity_tagging as app
from rnnjax.data import entities
from rnnjax.data.dates import Vocabulary

CORPUS = entities.make_entity_corpus(0, 300, 120)
VOCAB = Vocabulary([t for s in CORPUS.train for t in s.tokens])
TEST = app.encode(CORPUS.test, VOCAB)


def truth(sentences=CORPUS.test) -> np.ndarray:
    return TEST["tags"].copy() if sentences is CORPUS.test else app.encode(sentences, VOCAB)["tags"]


def one_tag_per_word(sentences=CORPUS.test) -> np.ndarray:
    """The best left-to-right tagger: the true tags, except each ambiguous first word gets its test-majority tag."""
    tags, first = truth(sentences), {}
    for s in sentences:
        if s.ambiguous:
            first.setdefault(s.tokens[0], []).append(entities.TAG_INDEX[s.tags[0]])
    for row, s in zip(tags, sentences):
        if s.ambiguous:
            row[0] = np.bincount(first[s.tokens[0]]).argmax()
    return tags


def test_encode_round_trips_tags_and_pads_with_zeros():
    for row, shapes, length, s in zip(TEST["tags"], TEST["shapes"], TEST["lengths"], CORPUS.test):
        assert length == len(s.tokens) and tuple(entities.TAGS[t] for t in row[:length]) == s.tags
        assert list(shapes[:length]) == [entities.shape(t) for t in s.tokens] and not row[length:].any()
    assert VOCAB.decode(TEST["words"][0], separator=" ").split()[:2] == [
        t if t in VOCAB.index else "<unk>" for t in CORPUS.test[0].tokens[:2]
    ]


def test_correct_items_agree_with_tagging_scores():
    guesses = np.where(np.random.default_rng(0).random(TEST["tags"].shape) < 0.1, 0, TEST["tags"])
    right = app.correct_items(guesses, CORPUS.test)
    scores = entities.tagging_scores(guesses, CORPUS.test, CORPUS.train)
    assert right["ambiguous_word"].mean() == pytest.approx(scores["ambiguous_accuracy"])
    assert len(right["ambiguous_word"]) == scores["num_ambiguous"]
    changed = (guesses != TEST["tags"]) & (np.arange(guesses.shape[1]) < TEST["lengths"][:, None])
    np.testing.assert_array_equal(right["sentence"], ~changed.any(1))
    assert app.correct_items(truth(), CORPUS.test)["sentence"].all()


def test_evaluate_pairs_each_seed_and_keeps_the_unidirectional_bound():
    perfect, best_uni = truth(), one_tag_per_word()
    worse = np.where(np.arange(perfect.shape[1]) == 1, 0, best_uni)  # second tag always O: loses PER spans
    results = app.evaluate({"bidirectional": np.stack([perfect, perfect]),
                            "unidirectional": np.stack([best_uni, worse])}, CORPUS)  # fmt: skip
    bound = results["one_tag_per_word_bound"]
    assert results["unidirectional"]["ambiguous_word_accuracy"]["values"][0] == pytest.approx(bound)
    assert results["unidirectional_within_bound"] and results["target_met"]
    assert results["bidirectional"]["f1"]["values"] == [1.0, 1.0]
    wrong_first = int((best_uni[:, 0] != perfect[:, 0]).sum())  # only the ambiguous first words differ
    assert results["mcnemar_bi_vs_uni"]["ambiguous_word"][0]["only_first"] == wrong_first > 0
    assert results["mcnemar_bi_vs_uni"]["ambiguous_word"][0]["only_second"] == 0
    low, high = results["bidirectional"]["sentence_wilson"][0]
    assert high == 1.0 and 0.95 < low < 1.0  # Wilson on len(test) sentences, all right
    assert not app.evaluate({"bidirectional": np.stack([perfect, worse]),
                             "unidirectional": np.stack([worse, worse])}, CORPUS)["target_met"]  # fmt: skip


def test_unidirectional_bound_violation_is_flagged():
    perfect = truth()  # a "unidirectional" tagger that resolves every ambiguous word: impossible, so flagged
    results = app.evaluate(
        {"bidirectional": np.stack([perfect] * 2), "unidirectional": np.stack([perfect] * 2)}, CORPUS
    )
    assert not results["unidirectional_within_bound"]


def test_predict_seeds_equals_each_seed_alone(key):
    tagger = app.make_tagger(app.Config(hidden_size=4), bidirectional=True)
    seeds = [app.init_params(tagger, len(VOCAB), 5, 3, k) for k in jax.random.split(key, 2)]
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *seeds)
    together = app.predict_seeds(tagger, stacked, TEST)
    for index, params in enumerate(seeds):
        alone = app.predict_seeds(tagger, jax.tree.map(lambda leaf: leaf[None], params), TEST)[0]
        np.testing.assert_array_equal(together[index], alone)


def test_report_names_every_seed_and_the_verdicts():
    taggers = {"bidirectional": np.stack([truth()] * 3), "unidirectional": np.stack([one_tag_per_word()] * 3)}
    results = app.evaluate(taggers, CORPUS)
    text = app.report(results)
    assert text.count("| bidirectional |") == 3 and text.count("| unidirectional |") == 3
    assert "on every seed: met" in text and "within that bound: True" in text and "3 seeds" in text


def test_headline_and_target_follow_the_seeds():
    taggers = {"bidirectional": np.stack([truth()] * 3), "unidirectional": np.stack([one_tag_per_word()] * 3)}
    results = app.evaluate(taggers, CORPUS)
    f1, first_word = app.headline(results)
    assert f1.startswith("entity F1: bidirectional 100.0% +- 0.0% (95% CI 100.0-100.0, 3 seeds); unidirectional ")
    assert f"chance {100 * results['chance_accuracy']:.1f}%" in first_word
    (target,) = app.targets(results)
    assert target.met and target.statement.endswith("on every seed (3 of 3)")
    taggers["bidirectional"] = np.stack([truth(), one_tag_per_word(), truth()])
    (target,) = app.targets(app.evaluate(taggers, CORPUS))  # the one-tag-per-word tagger misses 98% F1
    assert not target.met and target.statement.endswith("on every seed (2 of 3)")
