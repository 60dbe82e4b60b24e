"""Data generators of the application experiments: deterministic per seed, documented splits, no leakage."""

import dataclasses

import numpy as np
import pytest

from rnnjax.data import captions, dates, entities, speech

# --------------------------------------------------------------------------- dates


def test_dates_deterministic_and_seed_dependent():
    first = dates.make_date_corpus(3, 200, 50)
    assert first == dates.make_date_corpus(3, 200, 50)
    assert first.test != dates.make_date_corpus(4, 200, 50).test


def test_dates_hold_out_whole_years():
    corpus = dates.make_date_corpus(0, 2000, 300, num_test_years=8)
    assert len(corpus.test_years) == 8
    assert {e.date.year for e in corpus.train}.isdisjoint(corpus.test_years)
    assert {e.date.year for e in corpus.test} <= set(corpus.test_years)
    assert {e.language for e in corpus.train} == set(dates.LANGUAGES)
    assert {e.style for e in corpus.train} == set(dates.STYLES)


def test_dates_wide_training_years_keep_the_held_out_years_and_their_test_set():
    default = dates.make_date_corpus(5, 3000, 200, direction="iso_to_german")
    wide = dates.make_date_corpus(5, 3000, 200, direction="iso_to_german", train_years=(1000, 2999))
    assert wide.test_years == default.test_years and 1950 <= min(wide.test_years) <= max(wide.test_years) <= 2049
    train_years = {e.date.year for e in wide.train}
    assert train_years.isdisjoint(wide.test_years) and min(train_years) < 1100 and max(train_years) > 2900
    digits = {(position, e.source[position]) for e in wide.train for position in range(4)}
    assert {(position, digit) for position in (2, 3) for digit in "0123456789"} <= digits
    assert all(e.target == dates.render(e.date, "de", "long") for e in wide.train[:50])
    with pytest.raises(ValueError, match="train_years"):  # two-digit years need 1950-2049 in the to-ISO direction
        dates.make_date_corpus(0, 10, 5, train_years=(1000, 2999))
    with pytest.raises(TypeError, match="train_years"):
        dates.make_date_corpus(0, 10, 5, direction="iso_to_german", train_years=(1000.0, 2999))


def test_dates_leak_check_fires():
    corpus = dates.make_date_corpus(0, 100, 20)
    leaky = dataclasses.replace(corpus, train=corpus.train + corpus.test[:1])
    with pytest.raises(AssertionError, match="held-out years"):
        dates.assert_no_leakage(leaky)


def test_dates_render_real_locale_rules():
    import datetime

    day = datetime.date(1987, 3, 9)
    assert dates.render(day, "de", "long") == "9. März 1987"
    assert dates.render(day, "en", "short") == "3/9/87"
    assert dates.render(day, "ja", "long") == "1987年3月9日"
    with pytest.raises(ValueError, match="language"):
        dates.render(day, "xx", "long")


def test_dates_targets_and_encoding_round_trip():
    corpus = dates.make_date_corpus(1, 300, 40)
    assert all(e.target == e.date.isoformat() for e in corpus.train)
    source_vocab, target_vocab = dates.vocabularies(corpus)
    arrays = dates.encode_pairs(corpus.test, source_vocab, target_vocab, 40, 12)
    assert [target_vocab.decode(row) for row in arrays["target"]] == [e.target for e in corpus.test]
    assert (arrays["source_lengths"] == [len(e.source) + 1 for e in corpus.test]).all()
    german = dates.make_date_corpus(1, 50, 10, direction="iso_to_german")
    assert all(e.source == e.date.isoformat() and e.target.endswith(str(e.date.year)) for e in german.test)


# --------------------------------------------------------------------------- captions


def test_captions_pools_disjoint_and_deterministic():
    pools, train, test = captions.make_caption_data(0, 100, 30)
    again = captions.make_caption_data(0, 100, 30)
    np.testing.assert_array_equal(train.images, again[1].images)
    np.testing.assert_array_equal(test.tokens, again[2].tokens)
    train_scans = {image.tobytes() for image in pools.train_images}
    assert not any(image.tobytes() in train_scans for image in pools.test_images)
    # every tile of every test strip comes from the test pool, never from the train pool
    test_scans = {image.tobytes() for image in pools.test_images}
    for strip, digits in zip(test.images, test.digits):
        for position in np.flatnonzero(digits >= 0):
            tile = strip[:, 8 * position : 8 * position + 8]
            assert tile.tobytes() in test_scans and tile.tobytes() not in train_scans


def test_captions_leak_check_fires():
    pools = captions.split_digits(0)
    leaky = dataclasses.replace(pools, test_images=np.concatenate([pools.test_images, pools.train_images[:1]]))
    with pytest.raises(AssertionError):
        captions.assert_disjoint(leaky)


def test_caption_tokens_match_words():
    _, train, _ = captions.make_caption_data(2, 50, 10)
    assert [captions.decode_tokens(t) for t in train.tokens] == train.captions
    counts = (train.digits >= 0).sum(1)
    assert counts.min() >= 2 and counts.max() <= 4
    assert captions.caption(np.array([3, 1, 4, -1])) == "three one four"


def test_captions_tile_on_device_matches_the_numpy_layout():
    import jax

    pools = captions.split_digits(0)
    tile = jax.jit(captions.tile_on_device, static_argnames="count")
    strips = jax.device_get(tile(jax.random.key(3), pools.train_images, pools.train_labels, count=64))
    digits = strips["digits"]
    np.testing.assert_array_equal(strips["tokens"], captions.caption_tokens(digits))  # words, <eos>, <pad>
    counts = (digits >= 0).sum(1)
    assert counts.min() == 2 and counts.max() == 4 and (digits[:, :2] >= 0).all()  # filled from the left
    for strip, row in zip(strips["images"], digits):
        for position, digit in enumerate(row):
            tile_pixels = strip[:, position * captions.TILE : (position + 1) * captions.TILE]
            if digit < 0:
                assert not tile_pixels.any()
            else:  # a training scan of that digit, in place
                matches = (pools.train_images == tile_pixels).all((1, 2))
                assert matches.any() and (pools.train_labels[matches] == digit).all()
    again = jax.device_get(tile(jax.random.key(3), pools.train_images, pools.train_labels, count=64))
    np.testing.assert_array_equal(again["images"], strips["images"])
    with pytest.raises(ValueError, match="min_digits <= max_digits"):
        captions.tile_on_device(jax.random.key(0), pools.train_images, pools.train_labels, 4, min_digits=3,
                                max_digits=2)


# --------------------------------------------------------------------------- speech


def test_synthesis_depends_on_voice_rate_and_pitch():
    base, rate = speech.synthesize("three one four", "en+m1", 175, 50)
    assert rate > 0 and base.dtype == np.int16 and len(base) > rate * 0.3
    assert len(speech.synthesize("three one four", "en+m1", 225, 50)[0]) < len(base)
    assert not np.array_equal(speech.synthesize("three one four", "en+f4", 175, 50)[0][:2000], base[:2000])
    with pytest.raises(ValueError, match="voice"):
        speech.synthesize("one", "no-such-voice", 175, 50)


def test_log_mel_matches_direct_filterbank():
    wave = (np.random.default_rng(0).normal(size=4096) * 1000).astype(np.int16)
    features = speech.log_mel(wave, 22050, num_mels=20, stack=1)
    frame = wave[256:768].astype(np.float32) / 32768.0 * np.hanning(512)
    direct = np.log(np.abs(np.fft.rfft(frame)) ** 2 @ speech.mel_filterbank(20, 512, 22050) + 1e-6)
    raw = np.log((np.abs(np.fft.rfft(np.stack([wave[i * 256 : i * 256 + 512] / 32768.0 * np.hanning(512)
                                                for i in range(len(features))]), axis=-1)) ** 2)
                 @ speech.mel_filterbank(20, 512, 22050) + 1e-6)
    np.testing.assert_allclose(features[1], (direct - raw.mean(0)) / (raw.std(0) + 1e-5), rtol=1e-3, atol=1e-3)
    assert speech.log_mel(wave, 22050, num_mels=20, stack=3).shape == (len(features) // 3, 60)


def test_speech_splits_hold_out_voices_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNJAX_CACHE", str(tmp_path))
    train, test = speech.make_speech_data(0, 12, 6, num_test_variants=3)
    _, test_variants = speech.split_variants(0, 3)
    assert {v.split("+")[1] for v in test["voices"]} <= set(test_variants)
    assert {v.split("+")[1] for v in train["voices"]}.isdisjoint(test_variants)
    assert len(list((tmp_path / "speech").glob("*.npz"))) == 2
    fresh = speech._generate(speech.SpeechSpec(1, 12, speech.split_variants(0, 3)[0]))  # not from the cache
    for name in train:
        np.testing.assert_array_equal(train[name], fresh[name])
    again, _ = speech.make_speech_data(0, 12, 6, num_test_variants=3)  # read back from the cache
    for name in train:
        np.testing.assert_array_equal(train[name], again[name])
    assert ((train["labels"] >= 1) & (train["labels"] <= 10) | (train["labels"] == 0)).all()
    assert (train["feature_lengths"] >= 2 * train["label_lengths"]).all()
    with pytest.raises(AssertionError, match="voice variants"):
        speech.assert_no_leakage(train, train)


# --------------------------------------------------------------------------- entities


def test_entities_deterministic_disjoint_fillers():
    corpus = entities.make_entity_corpus(0, 400, 200)
    assert corpus == entities.make_entity_corpus(0, 400, 200)
    test_tokens = {t for s in corpus.test for t, tag in zip(s.tokens, s.tags) if tag != "O"}
    train_tokens = {t for s in corpus.train for t, tag in zip(s.tokens, s.tags) if tag != "O"}
    shared = test_tokens & train_tokens
    allowed = set(entities.AMBIGUOUS) | {w for suffix in entities.COMPANY_SUFFIXES for w in suffix}
    assert shared <= allowed, sorted(shared - allowed)[:5]
    assert not {s.tokens for s in corpus.train} & {s.tokens for s in corpus.test}


def test_entities_ambiguous_words_decided_by_the_next_word():
    corpus = entities.make_entity_corpus(1, 3000, 10)
    readings = {}
    for sentence in corpus.train:
        assert len(sentence.tokens) == len(sentence.tags) and sentence.tokens[0][0].isupper()
        if sentence.ambiguous:
            readings.setdefault(sentence.tokens[0], set()).add(sentence.tags[0])
            assert (sentence.tags[0] == "B-PER") == (sentence.tags[1] == "I-PER")
    assert all(len(tags) == 2 for tags in readings.values())
    assert set(readings) == set(entities.AMBIGUOUS)


def test_entity_f1_seqeval_conventions():
    assert entities.spans(["B-PER", "I-PER", "O", "I-LOC", "B-ORG", "I-ORG"]) == {
        ("PER", 0, 2), ("LOC", 3, 4), ("ORG", 4, 6)}
    truth = [["B-PER", "I-PER", "O", "B-LOC"]]
    assert entities.entity_f1(truth, truth)["f1"] == 1.0
    half = entities.entity_f1(truth, [["B-PER", "O", "O", "B-LOC"]])
    assert half == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_tagging_scores_against_hand_counts():
    S = entities.Sentence
    train = [S(("Teddy", "bears"), ("O", "O"), True), S(("Teddy", "Roosevelt"), ("B-PER", "I-PER"), True),
             S(("Teddy", "sleeps"), ("O", "O"), True)]  # fmt: skip
    test = [S(("Teddy", "Roosevelt"), ("B-PER", "I-PER"), True), S(("Teddy", "bears"), ("O", "O"), True)]
    ids = {tag: i for i, tag in enumerate(entities.TAGS)}
    truth = np.array([[ids[t] for t in s.tags] for s in test])
    perfect = entities.tagging_scores(truth, test, train)
    assert perfect["f1"] == 1.0 and perfect["ambiguous_accuracy"] == 1.0
    assert perfect["chance_accuracy"] == pytest.approx(2 / 3)  # "Teddy" is O in 2 of 3 training sentences
    assert perfect["one_tag_per_word_bound"] == 0.5  # one tag for both test "Teddy"s: at best 1 of 2
    all_outside = entities.tagging_scores(np.zeros_like(truth), test, train)
    assert all_outside["f1"] == 0.0 and all_outside["ambiguous_accuracy"] == 0.5
