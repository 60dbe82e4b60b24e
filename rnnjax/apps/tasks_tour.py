"""A tour of the task types of RNNs on seeded toy data, each trained from scratch (``experiments/tasks_tour.py``).

Each task trains on ``rnnjax.tasks.toy_tasks`` batches (batch ``step`` is seeded by the step) and is tested on the
batch seeded ``TEST_SEED`` (never a training seed).

    outcome = run(TourConfig())         # the whole tour: results, report and the ending
    rows = tour(config)                 # [{"task", "metric", "value", "seconds"}, ...]
    run.write_report(report(config, rows))
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp

from rnnjax.apps.outcome import Outcome
from rnnjax.core.cells import gru
from rnnjax.core.unroll import RNN
from rnnjax.tasks import toy_tasks
from rnnjax.tasks.ctc import batch_prefix_beam_search, ctc_loss, greedy_decode
from rnnjax.tasks.heads import ManyToOne, Tagger
from rnnjax.tasks.losses import cross_entropy, sequence_mask
from rnnjax.tasks.metrics import error_rate, sequence_accuracy, token_accuracy, trim
from rnnjax.tasks.seq2seq import Decoder, Seq2Seq
from rnnjax.tasks.vision import Captioner, ConvEncoder
from rnnjax.training import loop, optimizers
from rnnjax.training.config import RunConfig, RunField, require_positive
from rnnjax.training.runs import markdown_table
from rnnjax.training.step import init_state, make_train_step

TEST_SEED = 10**6


class Task(enum.Enum):
    PARITY = "parity"
    TAGGING = "tagging"
    TAGGING_BIDIRECTIONAL = "tagging_bi"
    COPY = "copy"
    REVERSE = "reverse"
    CTC = "ctc"
    CAPTIONS = "captions"


@dataclasses.dataclass(frozen=True)
class TourConfig:
    """Train every task type on a toy problem and report test accuracies."""

    num_steps: int = 400
    """Adam steps per task."""
    hidden_size: int = 32
    """recurrent units of every model."""
    learning_rate: float = 1e-2
    """Adam learning rate."""
    test_size: int = 512
    """held-out examples per task."""
    beam_width: int = 4
    """beam width of the seq2seq and CTC beam searches."""
    tasks: tuple[Task, ...] = tuple(Task)
    """the tasks to train (default: all)."""
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(self, "num_steps", "hidden_size", "learning_rate", "test_size", "beam_width")

    @classmethod
    def quick(cls) -> "TourConfig":
        """30 steps per task, smaller models: a smoke test, accuracies are low."""
        return cls(num_steps=30, hidden_size=16, test_size=64, run=RunConfig.quick())


PRESETS = {"quick": TourConfig.quick}


def fit(config: TourConfig, params, loss_fn, batch_fn):
    """Adam on ``loss_fn(params, *batch_fn(step))`` for ``config.num_steps`` steps; returns the trained params."""
    optimizer = optimizers.make_optimizer(optimizers.OptimizerConfig(name="adam", learning_rate=config.learning_rate))
    step = make_train_step(lambda p, batch, key: (loss_fn(p, *batch), {}), optimizer)
    state = init_state(params, optimizer, jax.random.key(config.run.seed))
    return loop.fit(state, step, batch_fn, config.num_steps, progress=False).params


def parity(config: TourConfig, key: jax.Array) -> dict:
    """Many-to-one: the parity of 1..8 bits."""
    model = ManyToOne(RNN(gru(), config.hidden_size), num_outputs=2)
    loss = lambda p, xs, n, y: cross_entropy(model.apply(p, xs, lengths=n), y)  # noqa: E731
    params = fit(config, model.init(key, 2), loss, toy_tasks.parity)
    xs, lengths, labels = toy_tasks.parity(TEST_SEED, config.test_size)
    return {"accuracy": (model.apply(params, xs, lengths=lengths).argmax(-1) == labels).mean()}


def tagging(config: TourConfig, key: jax.Array, bidirectional: bool) -> dict:
    """Aligned many-to-many: tag each token with the next one (only a bidirectional tagger can see it)."""
    tagger = Tagger(RNN(gru(), config.hidden_size, bidirectional=bidirectional), num_tags=6, vocab_size=5)
    loss = lambda p, x, n, y: tagger.loss(p, x, y, lengths=n)  # noqa: E731
    params = fit(config, tagger.init(key, 8), loss, toy_tasks.next_token_tags)
    tokens, lengths, tags = toy_tasks.next_token_tags(TEST_SEED, config.test_size)
    predictions = tagger.predict(params, tokens, lengths=lengths)
    return {"token accuracy": token_accuracy(predictions, tags, sequence_mask(lengths, tags.shape[1]))}


def seq2seq(config: TourConfig, key: jax.Array, reverse: bool) -> dict:
    """Copy without attention, or reverse with Bahdanau attention; greedy and beam search."""
    size, vocab = config.hidden_size, toy_tasks.SEQ2SEQ_VOCAB
    attention = "bahdanau" if reverse else "none"
    model = Seq2Seq(RNN(gru(), size), Decoder(gru(), vocab, size, 16, attention=attention), vocab_size=vocab)
    batches = lambda step: toy_tasks.copy_or_reverse(step, reverse=reverse)  # noqa: E731
    params = fit(config, model.init(key, 16), model.loss, batches)
    src, src_lengths, targets, target_lengths = toy_tasks.copy_or_reverse(TEST_SEED, config.test_size, reverse=reverse)
    mask, length = sequence_mask(target_lengths, targets.shape[1]), targets.shape[1]
    greedy = jax.jit(lambda s, n: model.greedy(params, s, n, max_length=length))(src, src_lengths)
    search = lambda s, n: model.beam_search(params, s, n, beam_width=config.beam_width, max_length=length)  # noqa: E731
    beams = jax.jit(search)(src, src_lengths)
    return {
        "token accuracy": token_accuracy(greedy.tokens, targets, mask),
        "sequence accuracy": sequence_accuracy(greedy.tokens, targets, mask),
        "sequence accuracy (beam)": sequence_accuracy(beams.tokens[:, 0], targets, mask),
    }


def ctc(config: TourConfig, key: jax.Array) -> dict:
    """CTC: transcribe noisy runs of symbols (greedy collapse and prefix beam search)."""
    model = Tagger(RNN(gru(), config.hidden_size, bidirectional=True), num_tags=4)
    loss = lambda p, x, n, y, m: ctc_loss(model.apply(p, x, lengths=n), n, y, m)  # noqa: E731
    params = fit(config, model.init(key, 4), loss, toy_tasks.ctc_runs)
    frames, frame_lengths, labels, label_lengths = toy_tasks.ctc_runs(TEST_SEED, config.test_size)
    logits = model.apply(params, frames, lengths=frame_lengths)
    references = trim(labels, label_lengths)
    beams = batch_prefix_beam_search(logits, frame_lengths, beam_width=config.beam_width)
    return {
        "label error rate": error_rate(references, trim(*greedy_decode(logits, frame_lengths))),
        "label error rate (prefix beam)": error_rate(references, beams),
    }


def captioning(config: TourConfig, key: jax.Array) -> dict:
    """One-to-many: caption bar images from a CNN "semantic vector" (CNN and RNN trained jointly)."""
    size = config.hidden_size
    decoder = Decoder(gru(), toy_tasks.CAPTION_VOCAB, size, 8, init_size=size)
    model = Captioner(ConvEncoder(channels=(8, 16), output_size=size), decoder)
    params = fit(config, model.init(key, (12, 12, 1)), model.loss, toy_tasks.bar_captions)
    images, captions, lengths = toy_tasks.bar_captions(TEST_SEED, config.test_size)
    out = jax.jit(lambda x: model.greedy(params, x, max_length=captions.shape[1]))(images)
    return {"caption accuracy": sequence_accuracy(out.tokens, captions, sequence_mask(lengths, captions.shape[1]))}


TASKS: dict[Task, tuple[str, Callable[[TourConfig, jax.Array], dict]]] = {  # title and trainer, in tour order
    Task.PARITY: ("many-to-one: parity", parity),
    Task.TAGGING: ("tagging, unidirectional: next token", lambda c, k: tagging(c, k, bidirectional=False)),
    Task.TAGGING_BIDIRECTIONAL: ("tagging, bidirectional: next token", lambda c, k: tagging(c, k, bidirectional=True)),
    Task.COPY: ("seq2seq: copy", lambda c, k: seq2seq(c, k, reverse=False)),
    Task.REVERSE: ("seq2seq + attention: reverse", lambda c, k: seq2seq(c, k, reverse=True)),
    Task.CTC: ("CTC: symbol runs", ctc),
    Task.CAPTIONS: ("one-to-many: captions", captioning),
}


def task_key(seed: int, task: Task) -> jax.Array:
    """A task's key: ``fold_in(key(seed), its position in TASKS)``, whichever other tasks run."""
    return jax.random.fold_in(jax.random.key(seed), list(TASKS).index(task))


def rows_of(title: str, metrics: dict, seconds: float) -> list[dict]:
    """One row per metric: {"task", "metric", "value" (a float), "seconds" (the task's train and test time)}."""
    return [
        {"task": title, "metric": m, "value": float(jnp.asarray(v)), "seconds": seconds} for m, v in metrics.items()
    ]


def tour(config: TourConfig, on_task: Callable[[list[dict]], None] = lambda rows: None) -> list[dict]:
    """Train and test every task in ``config.tasks`` (in ``TASKS`` order); ``on_task`` sees each task's rows."""
    rows = []
    for task, (title, trainer) in TASKS.items():
        if task in config.tasks:
            started = time.perf_counter()
            metrics = trainer(config, task_key(config.run.seed, task))
            rows += rows_of(title, metrics, time.perf_counter() - started)
            on_task(rows[-len(metrics) :])
    return rows


def report(config: TourConfig, rows: list[dict]) -> str:
    return (
        f"# Task tour ({config.num_steps} Adam steps per task, seed {config.run.seed})\n\n{markdown_table(rows, 3)}\n"
    )


def task_line(rows: list[dict]) -> str:
    """One task's rows in a line: "many-to-one: parity: accuracy 0.984"."""
    return f"{rows[0]['task']}: " + ", ".join(f"{row['metric']} {row['value']:.3f}" for row in rows)


def headline(rows: list[dict]) -> tuple[str, ...]:
    """One line per task with its test metrics (each on ``test_size`` held-out examples, one seed)."""
    tasks = dict.fromkeys(row["task"] for row in rows)
    return tuple(task_line([row for row in rows if row["task"] == task]) for task in tasks)


def print_rows(rows: list[dict]) -> None:
    """Progress: one finished task's test metrics, on stderr."""
    print(task_line(rows), file=sys.stderr, flush=True)


def run(config: TourConfig) -> Outcome:
    """Every task of ``config.tasks`` (a progress line each unless quiet), then results and report."""
    run = config.run.open("tasks_tour", config)
    rows = tour(config, on_task=(lambda rows: None) if config.run.quiet else print_rows)
    run.write_results({"rows": rows})
    run.write_report(report(config, rows))
    return Outcome({"rows": rows}, headline(rows), (), run.directory, config.run.quiet)
