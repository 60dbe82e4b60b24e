"""Movie-review sentence polarity from the ``vaderSentiment==3.3.2`` source distribution.

``additional_resources/hutto_ICWSM_2014.tar.gz`` inside the sdist holds
``movieReviewSnippets_GroundTruth.txt``: 10,605 sentences with a mean human rating in [-4, 4].
Label = 1 if the rating is positive, 0 if negative; zero ratings are dropped. The sdist is fetched
once with pip into ``cache_dir("sentiment")``, its sha256 checked, then everything works offline.

    data = load_sentiment()        # Sentiment(train, val, test, vocabulary)
    data.train.tokens              # int32 [examples, max_length], 0 = padding, 1 = unknown word
    data.train.lengths             # int32 [examples]
    data.train.labels              # int32 [examples]
"""

from __future__ import annotations

import collections
import functools
import hashlib
import io
import pathlib
import re
import subprocess
import sys
import tarfile
from typing import NamedTuple

import numpy as np

from rnnjax.data import cache_dir, split_indices

SDIST = "vaderSentiment-3.3.2.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
UNLABELED_MEMBERS = tuple(f"hutto_ICWSM_2014/{name}_GroundTruth.txt"
                          for name in ("amazonReviewSnippets", "nytEditorialSnippets", "tweets"))  # fmt: skip
PAD, UNKNOWN = 0, 1
TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]")


class Split(NamedTuple):
    tokens: np.ndarray  # int32 [examples, max_length]
    lengths: np.ndarray  # int32 [examples]
    labels: np.ndarray  # int32 [examples]
    texts: tuple[str, ...]


class Sentiment(NamedTuple):
    train: Split
    val: Split
    test: Split
    vocabulary: tuple[str, ...]  # index -> word; 0 "<pad>", 1 "<unk>"


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_sdist() -> pathlib.Path:
    """The cached sdist, downloaded with pip the first time; raises if the sha256 differs."""
    folder = cache_dir("sentiment")
    path = folder / SDIST
    if not path.exists():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "vaderSentiment==3.3.2", "-d", str(folder)]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    digest = _sha256(path)
    if digest != SDIST_SHA256:
        raise RuntimeError(f"{path} has sha256 {digest}, expected {SDIST_SHA256}; delete it to fetch again")
    return path


def _rated_rows(member: str) -> tuple[tuple[str, float], ...]:
    """(text, mean rating) of each ``id<TAB>rating<TAB>text`` line of one file of the inner archive."""
    with tarfile.open(fetch_sdist()) as outer:
        inner_bytes = outer.extractfile(INNER).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        text = inner.extractfile(member).read().decode("utf-8", errors="replace")
    rows = []
    for line in text.splitlines():
        parts = line.strip().split("\t")
        if len(parts) == 3:
            rows.append((parts[2], float(parts[1])))
    return tuple(rows)


@functools.lru_cache(maxsize=1)
def load_sentences() -> tuple[tuple[str, float], ...]:
    """All (sentence, mean rating) pairs in file order."""
    return _rated_rows(MEMBER)


@functools.lru_cache(maxsize=1)
def load_unlabeled_texts() -> tuple[str, ...]:
    """The texts of the archive's other snippet sets (3,708 Amazon reviews, 5,190 NYT editorials, 4,200 tweets),
    ratings dropped: unlabeled text for pretraining, never movie sentences."""
    return tuple(text for member in UNLABELED_MEMBERS for text, _ in _rated_rows(member))


def tokenize(text: str) -> list[str]:
    """Lower-cased words (keeping ``n't``-style clitics attached) and ``!``/``?``."""
    return TOKEN.findall(text.lower().replace("''", " "))


def build_vocabulary(texts: list[str], min_count: int) -> tuple[str, ...]:
    """Words seen at least ``min_count`` times, most frequent first, after ``<pad>`` and ``<unk>``."""
    counts = collections.Counter(word for text in texts for word in tokenize(text))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return ("<pad>", "<unk>", *words)


def encode(texts: list[str], vocabulary: tuple[str, ...], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids ``[examples, max_length]`` (truncated, padded with 0) and lengths ``[examples]`` (>= 1)."""
    index = {word: i for i, word in enumerate(vocabulary)}
    tokens = np.zeros((len(texts), max_length), np.int32)
    lengths = np.zeros(len(texts), np.int32)
    for row, text in enumerate(texts):
        ids = [index.get(word, UNKNOWN) for word in tokenize(text)][:max_length] or [UNKNOWN]
        tokens[row, : len(ids)] = ids
        lengths[row] = len(ids)
    return tokens, lengths


def load_sentiment(
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0, min_count: int = 2, max_length: int = 60
) -> Sentiment:
    """Seeded 80/10/10 split of the non-zero-rated sentences; the vocabulary comes from train only."""
    rows = [(text, rating) for text, rating in load_sentences() if rating != 0]
    parts = split_indices(len(rows), fractions, seed)
    vocabulary = build_vocabulary([rows[i][0] for i in parts[0]], min_count)
    splits = []
    for part in parts:
        texts = [rows[i][0] for i in part]
        tokens, lengths = encode(texts, vocabulary, max_length)
        labels = np.array([rows[i][1] > 0 for i in part], np.int32)
        splits.append(Split(tokens, lengths, labels, tuple(texts)))
    return Sentiment(*splits, vocabulary)
