"""Entity-tagging corpus (BIO tags for PER/LOC/ORG) from templates and Faker's real name lists.

Fillers: US first names and surnames (Faker ``en_US``, from US census/SSA lists), German
cities (``de_DE``), countries and US states (``en``/``en_US``); organisations are a surname
plus a company suffix. Every sentence starts with a capital, so capitalisation cannot settle
the first word. Ambiguous sentences open with a word that is a first name, a place or a plain
word depending on the word AFTER it (the tutorial's "Teddy bears on sale!" vs "Teddy Roosevelt
was a great president!"); each ambiguous word takes each of its readings equally often.

Split: the filler pools (names, places) are split before generation, so test entities are
unseen; ambiguous words occur in both splits (they are the point); no test sentence equals a
training sentence (asserted).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from faker.providers.address.de_DE import Provider as GermanAddress
from faker.providers.address.en import Provider as EnglishAddress
from faker.providers.address.en_US import Provider as USAddress
from faker.providers.person.en_US import Provider as USPerson

TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
TAG_INDEX = {tag: i for i, tag in enumerate(TAGS)}
# Ambiguous word -> its readings: "PER" (a surname follows), "LOC" (a verb follows), "O" (a noun follows).
AMBIGUOUS = {
    "Teddy": ("PER", "O"), "Rose": ("PER", "O"), "Holly": ("PER", "O"), "Amber": ("PER", "O"),
    "Daisy": ("PER", "O"), "Crystal": ("PER", "O"), "Summer": ("PER", "O"), "Penny": ("PER", "O"),
    "Jordan": ("PER", "LOC"), "Virginia": ("PER", "LOC"), "Sydney": ("PER", "LOC"), "Victoria": ("PER", "LOC"),
    "Austin": ("PER", "LOC"), "Madison": ("PER", "LOC"), "Savannah": ("PER", "LOC"), "Chelsea": ("PER", "LOC"),
}
NOUNS = ("bears", "lights", "prices", "chains", "petals", "boxes", "cakes", "candles", "shoes", "lamps")
COMPANY_SUFFIXES = (("Inc",), ("LLC",), ("Group",), ("PLC",), ("Ltd",), ("and", "Sons"))
# Templates: tokens, with slots {PER} {LOC} {ORG} {NOUN}.
TEMPLATES = (
    "{PER} visited {LOC} last week .", "{PER} works for {ORG} in {LOC} .", "Yesterday {PER} met {PER} .",
    "{ORG} opened an office in {LOC} .", "The mayor of {LOC} thanked {PER} .", "{PER} was born in {LOC} .",
    "She bought {NOUN} from {ORG} .", "We flew from {LOC} to {LOC} on Monday .", "{ORG} hired {PER} as director .",
    "Cheap {NOUN} are sold in {LOC} .", "According to {PER} , {ORG} is growing .", "{PER} moved to {LOC} .",
)
AMBIGUOUS_TAILS = {
    "PER": ("{SURNAME} was a great president !", "{SURNAME} visited {LOC} .", "{SURNAME} works for {ORG} ."),
    "LOC": ("is a beautiful place .", "has many old {NOUN} .", "lies far from {LOC} ."),
    "O": ("{NOUN} are on sale !", "{NOUN} were sold in {LOC} .", "{NOUN} from {ORG} are cheap ."),
}


@dataclasses.dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    ambiguous: bool  # the first token is an ambiguous word whose tag depends on the next one


@dataclasses.dataclass(frozen=True)
class Fillers:
    first_names: tuple[str, ...]
    surnames: tuple[str, ...]
    places: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class EntityCorpus:
    train: tuple[Sentence, ...]
    test: tuple[Sentence, ...]
    train_fillers: Fillers
    test_fillers: Fillers


def _single_token(names) -> list[str]:
    return sorted({name for name in names if name.isalpha() and name not in AMBIGUOUS})


def split_fillers(seed: int, test_fraction: float = 0.3) -> tuple[Fillers, Fillers]:
    """Disjoint train/test pools of real first names, surnames and places."""
    places = _single_token(GermanAddress.cities) + _single_token(EnglishAddress.countries)
    places += _single_token(USAddress.states)
    places = sorted(set(places))
    surnames = sorted(set(_single_token(USPerson.last_names)) - set(places))
    # A word in two pools (Lee, Tyler: first name and surname) would leak across the split.
    first_names = sorted(set(_single_token(USPerson.first_names)) - set(surnames) - set(places))
    pools = (first_names, surnames, places)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for pool in pools:
        pool = [pool[i] for i in rng.permutation(len(pool))]
        cut = int(round(test_fraction * len(pool)))
        test.append(tuple(pool[:cut]))
        train.append(tuple(pool[cut:]))
    return Fillers(*train), Fillers(*test)


def _entity(kind: str, fillers: Fillers, rng: np.random.Generator) -> tuple[list[str], str]:
    if kind == "PER":
        return [str(rng.choice(fillers.first_names)), str(rng.choice(fillers.surnames))], "PER"
    if kind == "LOC":
        return [str(rng.choice(fillers.places))], "LOC"
    if kind == "ORG":
        suffix = COMPANY_SUFFIXES[rng.integers(len(COMPANY_SUFFIXES))]
        return [str(rng.choice(fillers.surnames)), *suffix], "ORG"
    if kind == "SURNAME":
        return [str(rng.choice(fillers.surnames))], "I-PER"
    if kind == "NOUN":
        return [str(rng.choice(NOUNS))], "O"
    raise ValueError(f"unknown template slot {{{kind}}}")


def _fill(template: str, fillers: Fillers, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    tokens, tags = [], []
    for word in template.split():
        if word.startswith("{") and word.endswith("}"):
            words, label = _entity(word[1:-1], fillers, rng)
            if label in ("O", "I-PER"):
                span_tags = [label] * len(words)
            else:
                span_tags = [f"B-{label}"] + [f"I-{label}"] * (len(words) - 1)
            tokens += words
            tags += span_tags
        else:
            tokens.append(word)
            tags.append("O")
    return tokens, tags


def _ambiguous_sentence(fillers: Fillers, rng: np.random.Generator) -> Sentence:
    words = sorted(AMBIGUOUS)
    word = words[rng.integers(len(words))]
    reading = AMBIGUOUS[word][rng.integers(len(AMBIGUOUS[word]))]
    tails = AMBIGUOUS_TAILS[reading]
    tokens, tags = _fill(tails[rng.integers(len(tails))], fillers, rng)
    first = {"PER": "B-PER", "LOC": "B-LOC", "O": "O"}[reading]
    return Sentence((word, *tokens), (first, *tags), True)


def generate(fillers: Fillers, count: int, seed: int, ambiguous_fraction: float = 0.3) -> tuple[Sentence, ...]:
    """``count`` sentences; a fraction open with an ambiguous word."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        if rng.random() < ambiguous_fraction:
            out.append(_ambiguous_sentence(fillers, rng))
        else:
            tokens, tags = _fill(TEMPLATES[rng.integers(len(TEMPLATES))], fillers, rng)
            out.append(Sentence(tuple(tokens), tuple(tags), False))
    return tuple(out)


def make_entity_corpus(seed: int, num_train: int, num_test: int, ambiguous_fraction: float = 0.3) -> EntityCorpus:
    """Train/test sentences from disjoint filler pools; test sentences seen in training are dropped."""
    train_fillers, test_fillers = split_fillers(seed)
    train = generate(train_fillers, num_train, seed * 2 + 1, ambiguous_fraction)
    seen = {sentence.tokens for sentence in train}
    test = tuple(s for s in generate(test_fillers, num_test, seed * 2 + 2, ambiguous_fraction) if s.tokens not in seen)
    corpus = EntityCorpus(train, test, train_fillers, test_fillers)
    assert_no_leakage(corpus)
    return corpus


def assert_no_leakage(corpus: EntityCorpus) -> None:
    """Filler pools are disjoint and no test sentence occurs in training."""
    for field in dataclasses.fields(Fillers):
        shared = set(getattr(corpus.train_fillers, field.name)) & set(getattr(corpus.test_fillers, field.name))
        if shared:
            raise AssertionError(f"{field.name} shared by train and test: {sorted(shared)[:5]}")
    if {s.tokens for s in corpus.train} & {s.tokens for s in corpus.test}:
        raise AssertionError("a test sentence also occurs in the training set")


# --------------------------------------------------------------------------- metrics


def spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """Entity chunks (type, start, end) as seqeval reads BIO: an I- after O or another type starts one."""
    out, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if kind is not None and (prefix != "I" or label != kind):
            out.add((kind, start, i))
            kind = None
        if prefix == "B" or (prefix == "I" and kind is None):
            start, kind = i, label
    return out


def entity_f1(true_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro-averaged entity precision, recall and F1 over exact (type, start, end) chunks."""
    correct = found = relevant = 0
    for truth, guess in zip(true_tags, predicted_tags, strict=True):
        true_spans, guessed = spans(truth), spans(guess)
        correct += len(true_spans & guessed)
        found += len(guessed)
        relevant += len(true_spans)
    precision = correct / found if found else 0.0
    recall = correct / relevant if relevant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def shape(token: str) -> int:
    """Word shape id: 0 lowercase, 1 Capitalised, 2 UPPER, 3 digit, 4 punctuation/other."""
    if token.isalpha():
        return 1 if token[0].isupper() and not token.isupper() else 2 if token.isupper() else 0
    return 3 if token.isdigit() else 4


def tagging_scores(
    predicted: np.ndarray, sentences: Sequence[Sentence], train_sentences: Sequence[Sentence]
) -> dict[str, float]:
    """Entity F1 overall and on ambiguous sentences; accuracy on the ambiguous first word vs chance.

    ``predicted``: tag ids ``[sentences, time]``; chance is the training-majority tag of each ambiguous word.
    """
    guesses = [[TAGS[t] for t in row[: len(s.tags)]] for row, s in zip(predicted, sentences)]
    truths = [list(s.tags) for s in sentences]
    ambiguous = [i for i, s in enumerate(sentences) if s.ambiguous]
    counts = {}
    for s in train_sentences:
        if s.ambiguous:
            counts.setdefault(s.tokens[0], {}).setdefault(s.tags[0], 0)
            counts[s.tokens[0]][s.tags[0]] += 1
    # Chance: always guess the training-majority tag of the word, the best a left-to-right reader can do.
    chance = np.mean([max(counts[sentences[i].tokens[0]].values()) / sum(counts[sentences[i].tokens[0]].values())
                      for i in ambiguous])
    accuracy = np.mean([guesses[i][0] == truths[i][0] for i in ambiguous])
    # A left-to-right reader tags the first word from that word alone, i.e. one tag per word: at best the
    # test-majority tag of each word. No unidirectional tagger can exceed this bound.
    test_counts = {}
    for i in ambiguous:
        tags = test_counts.setdefault(sentences[i].tokens[0], {})
        tags[truths[i][0]] = tags.get(truths[i][0], 0) + 1
    bound = sum(max(tags.values()) for tags in test_counts.values()) / len(ambiguous)
    return {"f1": entity_f1(truths, guesses)["f1"],
            "ambiguous_f1": entity_f1([truths[i] for i in ambiguous], [guesses[i] for i in ambiguous])["f1"],
            "ambiguous_accuracy": float(accuracy), "chance_accuracy": float(chance),
            "one_tag_per_word_bound": float(bound),
            "ambiguous_stderr": float(math.sqrt(chance * (1 - chance) / len(ambiguous))),
            "num_ambiguous": len(ambiguous)}
