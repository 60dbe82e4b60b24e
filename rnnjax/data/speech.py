"""Spoken digit strings synthesised with eSpeak NG, as log-mel features for CTC.

eSpeak NG comes from the ``espeakng-loader`` wheel (shared library plus voice data); we call
its C API through ctypes. A voice is an English accent plus a voice variant
("en-GB-scotland+f3"); each utterance also draws a speaking rate and a pitch.

Split: whole voice variants are held out. Test utterances use only held-out variants (with
every accent), training utterances only the others, so no test voice (and no test
voice/speed combination) is heard in training. Features are cached on disk under
``$RNNJAX_CACHE`` (default ``~/.cache/rnnjax``) keyed by every generation setting.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import threading

import numpy as np

ACCENTS = ("en", "en-US", "en-029", "en-GB-scotland", "en-GB-x-rp", "en-US-nyc", "en-GB-x-gbclan")
# Voice variants without "breath" noise: eSpeak NG's breath noise differs from run to run.
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f4", "adam", "anika", "belinda", "benjamin",
            "david", "ed", "john", "linda", "max", "paul", "robert", "steph", "travis", "Annie", "aunty", "shelby",
            "steph2", "iven", "quincy", "zac")
RATES = (125, 150, 175, 200, 225)  # words per minute
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
BLANK = 0  # CTC blank; digit d is label d + 1
NUM_LABELS = 11

_AUDIO_OUTPUT_SYNCHRONOUS, _POS_CHARACTER, _RATE, _PITCH = 2, 1, 1, 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _ESpeak:
    """The process-wide eSpeak NG engine (its C state is global, so one instance and a lock)."""

    def __init__(self, library_path: str | None = None):
        import espeakng_loader

        self.lib = ctypes.CDLL(library_path or espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        path = espeakng_loader.get_data_path().encode()
        self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, path, 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed with {self.sample_rate}")
        self.chunks: list[np.ndarray] = []
        self.callback = _CALLBACK(self._collect)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self.callback)
        self.lock = threading.Lock()

    def _collect(self, wave, num_samples, events):
        if num_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wave, shape=(num_samples,)).copy())
        return 0

    def synthesize(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            self.lib.espeak_SetParameter(_RATE, int(rate), 0)
            self.lib.espeak_SetParameter(_PITCH, int(pitch), 0)
            self.chunks = []
            data = text.encode()
            self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
            self.lib.espeak_Synchronize()
            return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)


_ENGINE: _ESpeak | None = None


def synthesize(text: str, voice: str = "en", rate: int = 175, pitch: int = 50) -> tuple[np.ndarray, int]:
    """Speak ``text``: (int16 waveform [samples], sample rate in Hz), on a shared engine.

    The shared engine carries C state from call to call, so repeated calls differ slightly;
    generated splits use a fresh engine each (see :func:`load_split`).
    """
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _ESpeak()
    return _ENGINE.synthesize(text, voice, rate, pitch), _ENGINE.sample_rate


def mel_filterbank(num_mels: int, num_fft: int, sample_rate: int, low_hz: float = 60.0,
                   high_hz: float = 8000.0) -> np.ndarray:
    """Triangular filters evenly spaced on the mel scale m = 2595 log10(1 + f / 700): [fft//2+1, mels]."""
    to_mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)  # noqa: E731
    edges_hz = 700.0 * (10 ** (np.linspace(to_mel(low_hz), to_mel(high_hz), num_mels + 2) / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(num_fft, 1.0 / sample_rate)[:, None]
    lower, centre, upper = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def log_mel(wave: np.ndarray, sample_rate: int, *, num_mels: int = 40, num_fft: int = 512, hop: int = 256,
            stack: int = 3) -> np.ndarray:
    """log(|STFT|^2 @ mel + 1e-6) with a Hann window, normalised per bin, ``stack`` frames concatenated.

    Returns: [frames // stack, num_mels * stack] float32.
    """
    signal = wave.astype(np.float32) / 32768.0
    signal = np.pad(signal, (0, max(0, num_fft - len(signal))))
    num_frames = 1 + (len(signal) - num_fft) // hop
    index = np.arange(num_fft)[None, :] + hop * np.arange(num_frames)[:, None]
    power = np.abs(np.fft.rfft(signal[index] * np.hanning(num_fft), axis=-1)) ** 2
    features = np.log(power @ mel_filterbank(num_mels, num_fft, sample_rate) + 1e-6)
    features = (features - features.mean(0)) / (features.std(0) + 1e-5)
    usable = (num_frames // stack) * stack
    return features[:usable].reshape(num_frames // stack, num_mels * stack).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SpeechSpec:
    """Everything that determines a generated split (and its cache key)."""

    seed: int
    num_utterances: int
    variants: tuple[str, ...]
    accents: tuple[str, ...] = ACCENTS
    rates: tuple[int, ...] = RATES
    min_digits: int = 2
    max_digits: int = 6
    pitch_range: tuple[int, int] = (30, 70)
    num_mels: int = 40
    stack: int = 3


def split_variants(seed: int, num_test_variants: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train variants, test variants): ``num_test_variants`` whole voice variants held out."""
    if not 1 <= num_test_variants < len(VARIANTS):
        raise ValueError(f"num_test_variants must be in [1, {len(VARIANTS) - 1}]; got {num_test_variants}")
    order = np.random.default_rng(seed).permutation(len(VARIANTS))
    test = tuple(sorted(VARIANTS[i] for i in order[:num_test_variants]))
    return tuple(v for v in VARIANTS if v not in test), test


def _fresh_engine(seed: int) -> _ESpeak:
    """An engine with fresh C state: a private copy of the library, and libc's rand() re-seeded.

    eSpeak NG keeps static state (libc ``rand`` and its pitch-flutter phase) from one utterance to
    the next, so the same call gives slightly different audio later in a process. A private copy
    of the shared library (dlopen gives it its own statics) makes each split a pure function of its spec.
    """
    import espeakng_loader

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "libespeak-ng-private.so")
        shutil.copy(espeakng_loader.get_library_path(), path)
        engine = _ESpeak(path)  # the mapping outlives the file
    ctypes.CDLL(None).srand(ctypes.c_uint(seed % 2**32))
    return engine


def _generate(spec: SpeechSpec) -> dict[str, np.ndarray]:
    engine = _fresh_engine(spec.seed)
    rng = np.random.default_rng(spec.seed)
    features, labels, voices, rates = [], [], [], []
    for _ in range(spec.num_utterances):
        digits = rng.integers(10, size=rng.integers(spec.min_digits, spec.max_digits + 1))
        voice = f"{rng.choice(spec.accents)}+{rng.choice(spec.variants)}"
        rate = int(rng.choice(spec.rates))
        pitch = int(rng.integers(spec.pitch_range[0], spec.pitch_range[1] + 1))
        wave = engine.synthesize(" ".join(WORDS[d] for d in digits), voice, rate, pitch)
        features.append(log_mel(wave, engine.sample_rate, num_mels=spec.num_mels, stack=spec.stack))
        labels.append(digits + 1)
        voices.append(voice)
        rates.append(rate)
    return _pad(features, labels, voices, rates)


def _pad(features, labels, voices, rates) -> dict[str, np.ndarray]:
    feature_lengths = np.array([len(f) for f in features], np.int32)
    label_lengths = np.array([len(label) for label in labels], np.int32)
    padded = np.zeros((len(features), feature_lengths.max(), features[0].shape[1]), np.float32)
    padded_labels = np.zeros((len(labels), label_lengths.max()), np.int32)
    for i, (feature, label) in enumerate(zip(features, labels)):
        padded[i, : len(feature)] = feature
        padded_labels[i, : len(label)] = label
    return {"features": padded, "feature_lengths": feature_lengths, "labels": padded_labels,
            "label_lengths": label_lengths, "voices": np.array(voices), "rates": np.array(rates, np.int32)}


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("RNNJAX_CACHE", pathlib.Path.home() / ".cache" / "rnnjax")) / "speech"


def load_split(spec: SpeechSpec) -> dict[str, np.ndarray]:
    """Generate a split, or read it back from the on-disk cache."""
    key = hashlib.sha256(json.dumps(dataclasses.asdict(spec), sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{key}.npz"
    if path.exists():
        with np.load(path) as stored:
            return dict(stored)
    data = _generate(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(temporary, **data)
    temporary.replace(path)
    return data


def make_speech_data(seed: int, num_train: int, num_test: int, *, num_test_variants: int = 5,
                     **spec_options) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(train, test) splits; test voices use held-out variants only (asserted)."""
    train_variants, test_variants = split_variants(seed, num_test_variants)
    train = load_split(SpeechSpec(seed * 2 + 1, num_train, train_variants, **spec_options))
    test = load_split(SpeechSpec(seed * 2 + 2, num_test, test_variants, **spec_options))
    assert_no_leakage(train, test)
    return train, test


def assert_no_leakage(train: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> None:
    """No voice variant, hence no voice/speed combination, is shared by the two splits."""
    variant = lambda voices: {str(v).split("+")[1] for v in voices}  # noqa: E731
    shared = variant(train["voices"]) & variant(test["voices"])
    if shared:
        raise AssertionError(f"voice variants {sorted(shared)} occur in both train and test")


def digits_of(labels: np.ndarray, length: int) -> list[int]:
    """CTC labels back to digits."""
    return [int(label) - 1 for label in np.asarray(labels)[:length]]
