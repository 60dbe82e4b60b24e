"""Date-translation corpus: real locale renderings (babel/CLDR) of random dates, paired with ISO dates.

Source strings come from ``babel.dates.format_date`` in German, English and Japanese with
the CLDR styles (full, long, medium, short) and a few custom patterns; the target is the ISO
form ``YYYY-MM-DD``. A second direction renders ISO dates into German long form.

Split: whole calendar years are held out. Test dates are drawn only from the held-out years
and training dates only from the rest, so no test date (and no test year) is seen in training.
Years span 1950-2049, so two-digit years (``yy``) map back to one century without ambiguity.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Sequence

import numpy as np
from babel.dates import format_date

LANGUAGES = ("de", "en", "ja")
STYLES = ("full", "long", "medium", "short", "EEE, d MMM y", "d MMMM yy", "dd/MM/y")
FIRST_YEAR, LAST_YEAR = 1950, 2049

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


class Direction(enum.Enum):
    """Which way a date pair translates."""

    TO_ISO = "to_iso"  # any language/style -> "1987-03-09"
    ISO_TO_GERMAN = "iso_to_german"  # "1987-03-09" -> "9. März 1987"


@dataclasses.dataclass(frozen=True)
class DateExample:
    source: str
    target: str
    language: str
    style: str
    date: datetime.date


@dataclasses.dataclass(frozen=True)
class DateCorpus:
    train: tuple[DateExample, ...]
    test: tuple[DateExample, ...]
    test_years: tuple[int, ...]


class Vocabulary:
    """Character (or word) vocabulary with <pad>=0, <bos>=1, <eos>=2, <unk>=3."""

    def __init__(self, symbols: Sequence[str]):
        self.symbols = SPECIALS + tuple(sorted(set(symbols) - set(SPECIALS)))
        self.index = {symbol: i for i, symbol in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, tokens: Sequence[str], length: int, *, bos: bool = False, eos: bool = True) -> np.ndarray:
        """Token ids, [length], padded with <pad>; raises if the sequence does not fit."""
        ids = [BOS] * bos + [self.index.get(token, UNK) for token in tokens] + [EOS] * eos
        if len(ids) > length:
            raise ValueError(f"sequence of {len(ids)} tokens does not fit length={length}: {tokens!r}")
        return np.asarray(ids + [PAD] * (length - len(ids)), np.int32)

    def decode(self, ids: Sequence[int], separator: str = "") -> str:
        """Inverse of encode: stops at the first <eos>, drops <pad>/<bos>."""
        out = []
        for i in np.asarray(ids).tolist():
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.symbols[i] if 0 <= i < len(self.symbols) else "<unk>")
        return separator.join(out)


def render(date: datetime.date, language: str, style: str) -> str:
    """The date as a locale renders it (CLDR rules via babel)."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}; got {language!r}")
    return format_date(date, format=style, locale=language)


def _random_date(rng: np.random.Generator, years: Sequence[int]) -> datetime.date:
    year = int(rng.choice(years))
    start = datetime.date(year, 1, 1).toordinal()
    days = datetime.date(year, 12, 31).toordinal() - start + 1
    return datetime.date.fromordinal(start + int(rng.integers(days)))


def _example(date: datetime.date, language: str, style: str, direction: Direction) -> DateExample:
    if direction is Direction.TO_ISO:
        return DateExample(render(date, language, style), date.isoformat(), language, style, date)
    if direction is Direction.ISO_TO_GERMAN:
        return DateExample(date.isoformat(), render(date, "de", "long"), "iso", "iso", date)
    raise ValueError(f"direction must be a Direction; got {direction!r}")


def _examples(rng, count, years, languages, styles, direction) -> tuple[DateExample, ...]:
    out = []
    for _ in range(count):
        date = _random_date(rng, years)
        out.append(_example(date, str(rng.choice(languages)), str(rng.choice(styles)), direction))
    return tuple(out)


def make_date_corpus(
    seed: int,
    num_train: int,
    num_test: int,
    *,
    num_test_years: int = 10,
    languages: Sequence[str] = LANGUAGES,
    styles: Sequence[str] = STYLES,
    direction: Direction | str = Direction.TO_ISO,
    train_years: tuple[int, int] = (FIRST_YEAR, LAST_YEAR),
) -> DateCorpus:
    """Random dates; ``num_test_years`` whole years of 1950-2049 (chosen by seed) are test-only.

    Training dates come from the other years of the inclusive range ``train_years`` (1950-2049 by default; a wider
    range such as (1000, 2999) shows ISO -> German every digit in every year position, see
    experiments/translate_dates.py).
    """
    direction = Direction(direction)
    all_years = np.arange(FIRST_YEAR, LAST_YEAR + 1)
    if not 1 <= num_test_years < len(all_years):
        raise ValueError(f"num_test_years must be in [1, {len(all_years) - 1}]; got {num_test_years}")
    _check_train_years(train_years, direction)
    rng = np.random.default_rng(seed)
    test_years = np.sort(rng.choice(all_years, num_test_years, replace=False))
    training_years = np.setdiff1d(np.arange(train_years[0], train_years[1] + 1), test_years)
    train = _examples(rng, num_train, training_years, languages, styles, direction)
    test = _examples(rng, num_test, test_years, languages, styles, direction)
    corpus = DateCorpus(train, test, tuple(int(y) for y in test_years))
    assert_no_leakage(corpus)
    return corpus


def _check_train_years(train_years: tuple[int, int], direction: Direction) -> None:
    """A (first, last) pair of years in 1-9999; inside 1950-2049 for TO_ISO (two-digit years must map back)."""
    if len(train_years) != 2 or not all(isinstance(y, int) and not isinstance(y, bool) for y in train_years):
        raise TypeError(f"train_years must be a (first, last) pair of ints; got {train_years!r}")
    first, last = train_years
    low, high = (FIRST_YEAR, LAST_YEAR) if direction is Direction.TO_ISO else (1, 9999)
    if not low <= first < last <= high:
        raise ValueError(f"train_years must satisfy {low} <= first < last <= {high} for {direction.value}; "
                         f"got {train_years!r}")


def assert_no_leakage(corpus: DateCorpus) -> None:
    """No test year occurs in training, hence no test date or test pair either."""
    train_years = {example.date.year for example in corpus.train}
    leaked = train_years & set(corpus.test_years)
    if leaked:
        raise AssertionError(f"held-out years {sorted(leaked)} occur in the training set")
    if not all(example.date.year in corpus.test_years for example in corpus.test):
        raise AssertionError("a test date lies outside the held-out years")


def encode_pairs(examples: Sequence[DateExample], source_vocab: Vocabulary, target_vocab: Vocabulary,
                 source_length: int, target_length: int) -> dict[str, np.ndarray]:
    """Arrays for seq2seq: source [n, S] (+<eos>), source_lengths [n], target [n, T] (ends in <eos>)."""
    source = np.stack([source_vocab.encode(e.source, source_length) for e in examples])
    target = np.stack([target_vocab.encode(e.target, target_length) for e in examples])
    return {"source": source, "source_lengths": (source != PAD).sum(1).astype(np.int32), "target": target}


def vocabularies(corpus: DateCorpus) -> tuple[Vocabulary, Vocabulary]:
    """Character vocabularies built from the training set only (test characters map to <unk>)."""
    source = Vocabulary([c for example in corpus.train for c in example.source])
    target = Vocabulary([c for example in corpus.train for c in example.target])
    return source, target
