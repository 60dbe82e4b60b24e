"""rnnjax.apps.translate_dates: beam 1 vs greedy, per-seed batches, seeds stacked vs alone, tables, report."""

import datetime

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from experiment_helpers import check_beam_one_against_greedy

from rnnjax.apps import translate_dates as app
from rnnjax.data import dates
from rnnjax.training import stats

SIZES = app.Config(hidden_size=6, embed_size=4, attention="luong")


def example(source, target, language="de", style="short", year=1990):
    return dates.DateExample(source, target, language, style, datetime.date(year, 1, 2))


@pytest.fixture(scope="module")
def tiny():
    """Two seeds' corpora (small), their shared vocabularies, a tiny model and stacked float64 params."""
    corpora = app.make_corpora(app.Config(num_train=120, num_test=12, num_test_years=3),
                               dates.Direction.TO_ISO, [0, 1])
    vocabularies = app.shared_vocabularies(corpora)
    model = app.build(SIZES, *(len(v) for v in vocabularies))
    params = jax.vmap(lambda k: model.init(k, SIZES.embed_size, jnp.float64))(jax.random.split(jax.random.key(2), 2))
    return corpora, vocabularies, model, params


def test_date_translation_beam_width_one_equals_greedy(key):
    corpus = dates.make_date_corpus(0, 200, 32)
    source_vocab, target_vocab = dates.vocabularies(corpus)
    data = dates.encode_pairs(corpus.test, source_vocab, target_vocab, *app.LENGTHS[dates.Direction.TO_ISO])
    model = app.build(app.Config(hidden_size=16, embed_size=8, attention="luong"),
                      len(source_vocab), len(target_vocab))
    params = model.init(key, 8, jnp.float64)
    greedy = model.greedy(params, data["source"], data["source_lengths"], max_length=12)
    beam = model.beam_search(params, data["source"], data["source_lengths"], beam_width=1, max_length=12)
    check_beam_one_against_greedy(greedy, beam)
    assert (np.asarray(greedy.lengths) < 12).any()  # some greedy outputs end early, so ending is exercised


def test_corpora_hold_out_their_own_years_and_share_training_characters(tiny):
    corpora, (source_vocab, target_vocab), _, _ = tiny
    assert corpora[0].test_years != corpora[1].test_years
    for corpus in corpora:  # every training character of every seed has its own id
        assert all(source_vocab.index.get(c, dates.UNK) != dates.UNK for e in corpus.train for c in e.source)
    only_test = dates.DateCorpus((example("1. Jan", "1990-01-02"),), (example("zz", "qq"),), (1991,))
    source, target = app.shared_vocabularies([only_test])
    assert "z" not in source.index and "q" not in target.index  # test sets never add characters


def test_seed_batches_draw_each_seeds_own_documented_rows():
    arrays = {"source": np.arange(2 * 10 * 3).reshape(2, 10, 3), "target": np.arange(20).reshape(2, 10)}
    batches = app.seed_batches(arrays, 4, seeds=[3, 8])
    batch = jax.jit(batches)(jnp.int32(5))
    for index, seed in enumerate([3, 8]):
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), app.DATA_STREAM), 5)
        rows = np.asarray(jax.random.randint(key, (4,), 0, 10))
        np.testing.assert_array_equal(batch["source"][index], arrays["source"][index][rows])
        np.testing.assert_array_equal(batch["target"][index], arrays["target"][index][rows])
    assert not np.array_equal(batch["target"][0] + 10, batch["target"][1])  # the seeds draw different rows


def test_decode_seeds_stacked_equals_each_seed_alone(tiny):
    corpora, vocabularies, model, params = tiny
    test = app.stack_splits(corpora, "test", vocabularies, dates.Direction.TO_ISO)
    for width in (0, 2):
        stacked = app.decode_seeds(model, params, test, vocabularies[1], width, chunk=5)  # chunks of 5, 5, 2
        for index in range(2):
            alone = jax.tree.map(lambda leaf: leaf[index], params)
            source, lengths = test["source"][index], test["source_lengths"][index]
            if width == 0:
                tokens = model.greedy(alone, source, lengths, max_length=12).tokens
            else:
                tokens = model.beam_search(alone, source, lengths, beam_width=width, max_length=12).tokens[:, 0]
            assert stacked[index] == [vocabularies[1].decode(row) for row in np.asarray(tokens)]


def test_accuracy_table_and_character_accuracy_count_by_hand():
    examples = [example("a", "1990-01-02", "de", "short"), example("b", "1991-01-02", "de", "long"),
                example("c", "1992-01-02", "en", "short"), example("d", "1993-01-02", "en", "short")]
    predicted = ["1990-01-02", "1991-01-03", "1992-01-02", "x"]
    table = app.accuracy_table(examples, predicted)
    assert table == {"overall": 0.5, "language=de": 0.5, "language=en": 0.5, "style=long": 0.0, "style=short": 2 / 3,
                     "de|long": 0.0, "de|short": 1.0, "en|short": 0.5}
    assert app.character_accuracy(examples, predicted) == pytest.approx((10 + 9 + 10 + 0) / 40)


def seed_of(seed, greedy_right, beam_right, count=200):
    """A per-seed result on ``count`` synthetic dates with the given numbers of right answers."""
    corpus = dates.DateCorpus((), tuple(example(f"s{i}", f"t{i}") for i in range(count)), (1990,))
    right = [f"t{i}" for i in range(count)]
    decoded = {"greedy": right[:greedy_right] + ["?"] * (count - greedy_right),
               "beam": right[:beam_right] + ["?"] * (count - beam_right)}
    decoded["beam1"] = decoded["greedy"]
    return app.seed_result(seed, corpus, decoded)


def test_summaries_target_and_report_over_seeds():
    per_direction = {"to_iso": [seed_of(0, 200, 200), seed_of(1, 199, 200)],
                     "iso_to_german": [seed_of(0, 200, 199), seed_of(1, 197, 200)]}  # greedy 98.5% on seed 1
    results = {name: app.summarize(seeds) | {"train_seconds_all_seeds": 1.0, "steps": 10}
               for name, seeds in per_direction.items()}
    assert results["iso_to_german"]["greedy_exact_match_min"] == 0.985
    assert results["to_iso"]["beam_exact_match"]["values"] == [1.0, 1.0]
    assert not app.target_met(results, 0.99) and app.target_met(results, 0.98)
    results |= {"target_exact_match": 0.99, "target_met": False}
    text = app.report(app.Config(attention="luong", beam_width=4, seeds=2, num_test=200), results)
    low, high = stats.wilson_interval(197, 200)
    assert f"| iso_to_german | 1 | (1990,) | 0.9850 ({low:.4f}-{high:.4f}) |" in text
    summary = stats.seed_summary([1.0, 0.985]).text()
    assert f"- iso_to_german, greedy: {summary}" in text and "NOT met" in text
    assert "| s199 | ? | t199 |" in text  # a beam error of iso_to_german seed 0
    greedy, beam = app.headline(results)
    assert greedy.startswith("exact match, greedy: to ISO 99.8% +- 0.4% (95% CI ") and "ISO -> German 99.2%" in greedy
    assert beam.startswith("exact match, beam: to ISO 100.0% +- 0.0% (95% CI 100.0-100.0, 2 seeds); ISO -> German")
    (target,) = app.targets(results)
    assert not target.met and target.statement.endswith("greedy and beam (worst seed 98.5%)")
