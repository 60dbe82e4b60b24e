"""The speech-recognition app: digit error counts, Wilson intervals, the seed comparison and the report on
synthetic labellings; decoding every seed at once against each seed alone."""

import jax
import numpy as np
import pytest

from rnnjax.apps import speech_ctc as app
from rnnjax.data import speech
from rnnjax.tasks.ctc import batch_prefix_beam_search, greedy_decode
from rnnjax.tasks.metrics import error_rate, trim
from rnnjax.training import stats

REFERENCES = [(1, 2, 3), (4, 5), (6, 7, 8, 9), (10, 1)]


def data(references=REFERENCES, frames=9, features=6):
    rng = np.random.default_rng(0)
    labels = np.zeros((len(references), max(map(len, references))), np.int32)
    for row, reference in zip(labels, references):
        row[: len(reference)] = reference
    return {"features": rng.normal(size=(len(references), frames, features)).astype(np.float32),
            "feature_lengths": np.array([frames, frames - 2, frames, frames - 1], np.int32)[: len(references)],
            "labels": labels, "label_lengths": np.array([len(r) for r in references], np.int32),
            "voices": np.array(["en+m1", "en+f4", "en+m1", "en-US+f4"][: len(references)])}  # fmt: skip


def test_error_counts_match_error_rate_and_count_exact_utterances():
    hypotheses = [(1, 2, 3), (4,), (6, 7, 7, 8, 9), (2, 1)]  # right, one deletion, one insertion, one substitution
    counts = app.error_counts(REFERENCES, hypotheses)
    assert counts == {"errors": 3, "digits": 11, "exact": 1, "utterances": 4}
    assert counts["errors"] / counts["digits"] == error_rate(REFERENCES, hypotheses)
    with pytest.raises(ValueError, match="hypotheses must hold 4 items"):
        app.error_counts(REFERENCES, hypotheses[:3])


def test_rates_carry_wilson_intervals_and_clip_more_errors_than_digits():
    r = app.rates({"errors": 3, "digits": 11, "exact": 1, "utterances": 4})
    assert r["digit_error_wilson"] == stats.wilson_interval(3, 11) and r["exact_match_wilson"] == stats.wilson_interval(
        1, 4
    )
    assert r["digit_error_wilson"][0] < r["digit_error_rate"] < r["digit_error_wilson"][1]
    babbling = app.rates({"errors": 15, "digits": 11, "exact": 0, "utterances": 4})  # insertions beyond the digits
    assert babbling["digit_error_rate"] == 15 / 11 and babbling["digit_error_wilson"] == stats.wilson_interval(11, 11)


def test_evaluate_per_seed_summaries_target_and_beam_vs_greedy():
    perfect, one_off = list(REFERENCES), [*REFERENCES[:3], (10,)]
    decoded = {"greedy": [one_off, one_off], "beam": [perfect, one_off]}
    results = app.evaluate(data(), decoded)
    assert [s["beam"]["digit_error_rate"] for s in results["per_seed"]] == [0.0, 1 / 11]
    assert results["beam_digit_error_rate"] == stats.seed_summary([0.0, 1 / 11]).as_dict()
    assert results["greedy_exact_match"]["values"] == [0.75, 0.75]
    assert results["mcnemar_beam_vs_greedy"][0] == {"only_first": 1, "only_second": 0, "count": 4, "p_value": 1.0}
    assert results["beam_by_voice"][1] == {"en+f4": 0.0, "en+m1": 0.0, "en-US+f4": 0.5}
    assert results["target_met"] is False  # seed 1: 1 of 11 digits wrong, 9.1% > 5%
    assert app.evaluate(data(), {"greedy": [perfect] * 2, "beam": [perfect] * 2})["target_met"] is True
    assert results["target_met_beyond_noise"] is False  # 4 utterances cannot show <= 5% beyond noise


def test_decode_seeds_equals_each_seed_alone(key):
    model = app.make_model(app.Config(hidden_size=4, num_layers=1))
    seeds = [model.init(k, 6) for k in jax.random.split(key, 2)]
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *seeds)
    test = data()
    decoded = app.decode_seeds(model, stacked, test, beam_width=2)
    for index, params in enumerate(seeds):
        logits = model.apply(params, test["features"], lengths=test["feature_lengths"])
        np.testing.assert_allclose(decoded["logits"] if index == 0 else logits, logits, rtol=1e-5, atol=1e-6)
        alone = trim(*greedy_decode(logits, test["feature_lengths"], blank_id=speech.BLANK))
        beam = batch_prefix_beam_search(logits, test["feature_lengths"], beam_width=2, blank_id=speech.BLANK)
        assert decoded["greedy"][index] == alone and decoded["beam"][index] == beam


def test_report_gives_every_seed_with_intervals():
    results = app.evaluate(data(), {"greedy": [list(REFERENCES)] * 3, "beam": [list(REFERENCES)] * 3})
    results |= {"test_variants": ("f4", "m1"), "data_seconds": 1.0, "train_seconds": 2.0, "beam_seconds": 3.0}
    config = app.Config(num_train=10, num_layers=1, hidden_size=4, beam_width=2)
    text = app.report(config, results)
    assert text.count("| 0.00% (0.00-25.88) |") == 6  # per seed: greedy and beam digit errors, 0 of 11 (Wilson)
    assert "3 seeds, each with its own" in text and "every seed: met" in text
    rates, exact = app.headline(results)
    assert rates.startswith("digit error rate: prefix beam 0.0% +- 0.0% (95% CI 0.0-0.0, 3 seeds); greedy 0.0%")
    assert exact == "utterances exactly right (beam): 100.0% +- 0.0% (95% CI 100.0-100.0, 3 seeds)"
    (target,) = app.targets(results)  # 0 errors in 11 digits meets 5%, but not beyond noise (Wilson bound 25.88%)
    assert target.met and target.statement.endswith("on every seed (3 of 3; Wilson upper bound under it on 0)")
    wrong = [list(REFERENCES[:3]) + [(10,)]] + [list(REFERENCES)] * 2  # one missed digit of 11 on seed 0: 9.1%
    (target,) = app.targets(app.evaluate(data(), {"greedy": wrong, "beam": wrong}))
    assert not target.met and "(2 of 3;" in target.statement


def test_bucketed_batches_are_pure_and_padded_to_their_bucket():
    rng = np.random.default_rng(1)
    lengths = rng.integers(5, 80, size=200).astype(np.int32)
    arrays = {"features": rng.normal(size=(200, 80, 3)).astype(np.float32), "feature_lengths": lengths,
              "labels": np.ones((200, 4), np.int32), "label_lengths": np.full(200, 4, np.int32)}  # fmt: skip
    batches = app.bucketed_batches(arrays, 16, (0, 2))
    caps = set()
    for step in range(30):
        batch = batches(step)
        cap = batch["features"].shape[1]
        caps.add(cap)
        assert cap in (24, 40, 56, 72, 80) and (batch["feature_lengths"] <= cap).all()
        assert (batch["feature_lengths"] > max(c for c in (0, 24, 40, 56, 72) if c < cap)).all()  # one bucket
        np.testing.assert_array_equal(batch["features"], batches(step)["features"])  # a pure function of the step
    assert len(caps) > 2
    assert not np.array_equal(app.bucketed_batches(arrays, 16, (0, 3))(0)["features"], batches(0)["features"])
