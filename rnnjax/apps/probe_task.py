"""The application behind ``experiments/probe_task.py``: probe a task given as an ``.npz`` or one of two demos.

Demos built from data the project ships:

* ``entities``: BIO entity tagging (:mod:`rnnjax.data.entities`), aligned, 7 classes per word. Each word is its
  shape (5 one-hot features) and a fixed random 16-number vector of its lower-cased form, so unseen test names
  are known only by their shape and context. Question: how many words of look-ahead does a unidirectional tagger
  need to match the bidirectional one ("Teddy bears" / "Teddy Roosevelt" is settled by the next word)?
* ``dates``: date translation to ISO (:mod:`rnnjax.data.dates`), different lengths: one-hot characters of the
  rendered date -> 11 ISO characters (10 + <eos>). Question: how small can the vector be before the bottleneck
  binds, and what does attention buy?

Both keep their corpus's own test split (unseen names and places; held-out years): train and validation are
drawn from the corpus's training part, the test part is the corpus's test set.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import pathlib
import zlib

import numpy as np

from rnnjax.apps.outcome import Outcome
from rnnjax.data import dates, entities
from rnnjax.probes import runner, task
from rnnjax.probes.task_data import TaskData, load_task, task_data
from rnnjax.training.config import RunConfig, RunField, require_positive
from rnnjax.training.runs import Run

WORD_VECTOR_SIZE = 16


class Demo(enum.Enum):
    """A task built from the shipped data instead of --data."""

    NONE = "none"
    ENTITIES = "entities"
    DATES = "dates"


@dataclasses.dataclass(frozen=True)
class ProbeTaskConfig:
    """Probe your own sequence task: causal gap, look-ahead, width and bottleneck, against linear floors."""

    data: str | None = None
    """an .npz with inputs, outputs and optionally input_lengths, output_lengths, classes, split (see docs)."""
    demo: Demo = Demo.NONE
    """probe a demo task built from the shipped data instead of --data: entities or dates."""
    demo_size: int = 1000
    """sequences of a demo task (80% from the corpus's training part, 20% its test part)."""
    probe: task.TaskProbeConfig = task.TaskProbeConfig()
    """sizes of the probe: --probe.widths, --probe.max_delay, --probe.seeds, --probe.steps, ..."""
    report_only: bool = False
    """train nothing: rebuild the report from the run's records.jsonl."""
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(self, "demo_size")

    @property
    def name(self) -> str:
        """The run folder name: --run_name, else the demo's or the data file's name."""
        if self.run.run_name:
            return self.run.run_name
        return self.demo.value if self.demo is not Demo.NONE else _stem(self.data)


def _stem(path: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in path.rsplit("/", 1)[-1].removesuffix(".npz"))


QUICK = ProbeTaskConfig(demo=Demo.ENTITIES, demo_size=120, probe=task.TaskProbeConfig.quick(),
                        run=RunConfig.quick())  # fmt: skip
PRESETS = {"quick": QUICK}


# --------------------------------------------------------------------------- demos


def word_features(token: str) -> np.ndarray:
    """[5 + WORD_VECTOR_SIZE]: the word's shape one-hot and a fixed random vector of its lower-cased form."""
    shape = np.eye(5)[entities.shape(token)]
    vector = np.random.default_rng(zlib.crc32(token.lower().encode())).normal(size=WORD_VECTOR_SIZE)
    return np.concatenate([shape, vector / np.sqrt(WORD_VECTOR_SIZE)])


def _train_split(train_count: int, test_count: int, seed: int) -> np.ndarray:
    """0 / 1 for the corpus's training part (a quarter of it validation), 2 for its test part."""
    assignment = np.zeros(train_count, np.int32)
    assignment[np.random.default_rng(seed).permutation(train_count)[: train_count // 4]] = 1
    return np.concatenate([assignment, np.full(test_count, 2, np.int32)])


def entity_task(size: int, seed: int = 0) -> tuple[TaskData, np.ndarray]:
    """(data, split) of the entity-tagging demo: words -> BIO tags, aligned, padded to the longest sentence."""
    corpus = entities.make_entity_corpus(seed, num_train=size - size // 5, num_test=size // 5)
    sentences = corpus.train + corpus.test
    steps = max(len(s.tokens) for s in sentences)
    inputs = np.zeros((len(sentences), steps, 5 + WORD_VECTOR_SIZE))
    labels = np.zeros((len(sentences), steps), np.int32)
    for index, sentence in enumerate(sentences):
        inputs[index, : len(sentence.tokens)] = [word_features(token) for token in sentence.tokens]
        labels[index, : len(sentence.tags)] = [entities.TAG_INDEX[tag] for tag in sentence.tags]
    lengths = np.array([len(s.tokens) for s in sentences], np.int32)
    data = task_data(inputs, labels, input_lengths=lengths, classes=len(entities.TAGS), name="entity tagging")
    return data, _train_split(len(corpus.train), len(corpus.test), seed)


def date_task(size: int, seed: int = 0) -> tuple[TaskData, np.ndarray]:
    """(data, split) of the date demo: one-hot source characters -> the ISO date's characters and <eos>."""
    corpus = dates.make_date_corpus(seed, num_train=size - size // 5, num_test=size // 5)
    source_vocabulary, target_vocabulary = dates.vocabularies(corpus)
    examples = corpus.train + corpus.test
    source_length = max(len(e.source) for e in examples) + 1
    encoded = dates.encode_pairs(examples, source_vocabulary, target_vocabulary, source_length, 11)
    inputs = np.eye(len(source_vocabulary))[encoded["source"]]
    data = task_data(inputs, encoded["target"], input_lengths=encoded["source_lengths"],
                     output_lengths=np.full(len(examples), 11, np.int32), classes=len(target_vocabulary),
                     aligned=False, name="date translation")  # fmt: skip
    return data, _train_split(len(corpus.train), len(corpus.test), seed)


def load(config: ProbeTaskConfig) -> tuple[TaskData, np.ndarray | None]:
    """The task of ``config``: its --data file, or its demo."""
    if (config.data is None) == (config.demo is Demo.NONE):
        raise ValueError(f"give exactly one of --data my_task.npz or --demo entities|dates; got data={config.data!r}, "
                         f"demo={config.demo.value!r}")
    if config.demo is Demo.ENTITIES:
        return entity_task(config.demo_size, config.run.seed)
    if config.demo is Demo.DATES:
        return date_task(config.demo_size, config.run.seed)
    if config.demo is Demo.NONE:
        return load_task(config.data)
    raise ValueError(f"demo must be a Demo; got {config.demo!r}")


def run(config: ProbeTaskConfig) -> Outcome:
    """Check the data, then compute floors, train (or resume; nothing with --report_only) and write the report."""
    data, split = load(config)  # bad input raises here, before any folder is written
    records = pathlib.Path(config.run.runs_root) / "probe_task" / config.name / runner.RECORDS
    if config.report_only and not records.is_file():
        raise FileNotFoundError(f"--report_only needs a started run; {records} does not exist")
    fresh = config.run.fresh and not config.report_only  # --report_only never empties the records it reads
    with Run("probe_task", name=config.name, root=config.run.runs_root, fresh=fresh) as folder:
        result = task.probe(data, folder.directory, config.probe, split, progress=not config.run.quiet,
                            train=not config.report_only)  # fmt: skip
    return outcome(result, config.run.quiet)


def outcome(result: task.TaskResult, quiet: bool) -> Outcome:
    """The shared ending: one headline line per question the report answers, and where the report is."""
    headline = tuple(" ".join(f"{question}: {text}".split()) for question, text in result.answers.items())
    results = json.loads((result.directory / "results.json").read_text())
    return Outcome(results, headline, (), result.directory, quiet)
