"""JapaneseVowels: nine male speakers saying /ae/, 12 LPC cepstral coefficients per frame, 7-29 frames.

The UCI set as shipped by sktime (``sktime/datasets/data/JapaneseVowels/*.ts``), read by path with a
small ``.ts`` parser (importing sktime itself is not needed). The official split is kept: 270 train
utterances (30 per speaker) and 370 test; ``val_fraction`` of train is held out (seeded, stratified).

    data = load_speakers()         # Speakers(train, val, test, mean, std)
    data.train.frames              # float32 [examples, 29, 12], zero after each length, normalised
    data.train.lengths             # int32 [examples]
    data.train.labels              # int32 [examples], speaker 0..8
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnjax.data import package_dir

NUM_SPEAKERS = 9
NUM_COEFFICIENTS = 12
MAX_FRAMES = 29


class Split(NamedTuple):
    frames: np.ndarray  # float32 [examples, MAX_FRAMES, 12]
    lengths: np.ndarray  # int32 [examples]
    labels: np.ndarray  # int32 [examples]


class Speakers(NamedTuple):
    train: Split
    val: Split
    test: Split
    mean: np.ndarray  # [12], over valid training frames
    std: np.ndarray  # [12]


def parse_ts(text: str) -> tuple[list[np.ndarray], list[str]]:
    """Multivariate ``.ts`` body: one line per series, dimensions separated by ':', label last.

    Returns series as ``[time, dims]`` arrays and their string labels.
    """
    lines = iter(text.splitlines())
    for line in lines:
        if line.strip().lower() == "@data":
            break
    else:
        raise ValueError("not a .ts file: no @data line")
    series, labels = [], []
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        *dims, label = line.strip().split(":")
        values = [np.array([float(v) for v in dim.split(",")]) for dim in dims]
        if len({len(v) for v in values}) != 1:
            raise ValueError(f"dimensions of one series have different lengths: {[len(v) for v in values]}")
        series.append(np.stack(values, axis=1))
        labels.append(label)
    return series, labels


def read_split(name: str) -> tuple[list[np.ndarray], np.ndarray]:
    """``name`` in {"TRAIN", "TEST"}: series ``[time, 12]`` and labels 0..8."""
    path = package_dir("sktime") / "datasets" / "data" / "JapaneseVowels" / f"JapaneseVowels_{name}.ts"
    series, labels = parse_ts(path.read_text())
    return series, np.array([int(label) - 1 for label in labels], np.int32)


def _pad(series: list[np.ndarray], labels: np.ndarray, mean: np.ndarray, std: np.ndarray) -> Split:
    frames = np.zeros((len(series), MAX_FRAMES, NUM_COEFFICIENTS), np.float32)
    lengths = np.array([len(s) for s in series], np.int32)
    for row, values in enumerate(series):
        frames[row, : len(values)] = (values - mean) / std
    return Split(frames, lengths, labels)


def load_speakers(val_fraction: float = 0.1, seed: int = 0) -> Speakers:
    """Official train/test split; a stratified, seeded validation part taken out of train."""
    series, labels = read_split("TRAIN")
    rng = np.random.default_rng(seed)
    val = np.zeros(len(series), bool)
    for speaker in range(NUM_SPEAKERS):
        members = np.flatnonzero(labels == speaker)
        val[rng.choice(members, int(round(val_fraction * len(members))), replace=False)] = True
    train_series = [s for s, v in zip(series, val) if not v]
    stacked = np.concatenate(train_series)
    mean, std = stacked.mean(0), stacked.std(0) + 1e-6
    test_series, test_labels = read_split("TEST")
    return Speakers(
        train=_pad(train_series, labels[~val], mean, std),
        val=_pad([s for s, v in zip(series, val) if v], labels[val], mean, std),
        test=_pad(test_series, test_labels, mean, std),
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
    )
