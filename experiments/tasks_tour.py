"""A tour of the task types of RNNs on seeded toy data, each trained from scratch on CPU.

    python experiments/tasks_tour.py            # full: 400 Adam steps per task, mostly XLA compile time
    python experiments/tasks_tour.py --quick    # 30 steps per task: a smoke test, accuracies are low

many-to-one: parity of 1..8 bits (ManyToOne); many-to-many aligned: next-token tags, uni- vs
bidirectional (Tagger); seq2seq: copy without attention, reverse with Bahdanau attention (greedy and
beam search); CTC: transcribe noisy runs of symbols (greedy collapse and prefix beam search);
one-to-many: caption bar images from a CNN "semantic vector" (Captioner, CNN and RNN trained jointly).
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import time

import jax
import jax.numpy as jnp

from rnnjax.core.cells import gru
from rnnjax.core.unroll import RNN
from rnnjax.tasks import toy_tasks
from rnnjax.tasks.ctc import batch_prefix_beam_search, ctc_loss, greedy_decode
from rnnjax.tasks.heads import ManyToOne, Tagger
from rnnjax.tasks.losses import cross_entropy, sequence_mask
from rnnjax.tasks.metrics import error_rate, sequence_accuracy, token_accuracy, trim
from rnnjax.tasks.seq2seq import Decoder, Seq2Seq
from rnnjax.tasks.vision import Captioner, ConvEncoder
from rnnjax.training import train
from rnnjax.training.config import RunConfig, RunField, cli, require_positive
from rnnjax.training.runs import markdown_table


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
    hidden_size: int = 32
    learning_rate: float = 1e-2
    test_size: int = 512
    beam_width: int = 4
    tasks: tuple[Task, ...] = tuple(Task)
    """the tasks to train (default: all)."""
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(self, "num_steps", "hidden_size", "learning_rate", "test_size", "beam_width")

    @classmethod
    def quick(cls):
        return cls(num_steps=30, hidden_size=16, test_size=64, run=RunConfig.quick())


def fit(config: TourConfig, params, loss_fn, batch_fn):
    """Adam on ``loss_fn(params, *batch)`` for ``config.num_steps`` steps; returns the trained params."""
    optimizer = train.make_optimizer(train.OptimizerConfig(name="adam", learning_rate=config.learning_rate))
    step = train.make_train_step(lambda p, batch, key: (loss_fn(p, *batch), {}), optimizer)
    state = train.init_state(params, optimizer, jax.random.key(config.run.seed))
    return train.fit(state, step, batch_fn, config.num_steps, progress=False).params


def parity(config, key):
    model = ManyToOne(RNN(gru(), config.hidden_size), num_outputs=2)
    loss = lambda p, xs, n, y: cross_entropy(model.apply(p, xs, lengths=n), y)  # noqa: E731
    params = fit(config, model.init(key, 2), loss, toy_tasks.parity)
    xs, lengths, labels = toy_tasks.parity(10**6, config.test_size)
    return {"accuracy": (model.apply(params, xs, lengths=lengths).argmax(-1) == labels).mean()}


def tagging(config, key, bidirectional):
    tagger = Tagger(RNN(gru(), config.hidden_size, bidirectional=bidirectional), num_tags=6, vocab_size=5)
    loss = lambda p, x, n, y: tagger.loss(p, x, y, lengths=n)  # noqa: E731
    params = fit(config, tagger.init(key, 8), loss, toy_tasks.next_token_tags)
    tokens, lengths, tags = toy_tasks.next_token_tags(10**6, config.test_size)
    predictions = tagger.predict(params, tokens, lengths=lengths)
    return {"token accuracy": token_accuracy(predictions, tags, sequence_mask(lengths, tags.shape[1]))}


def seq2seq(config, key, reverse):
    size, vocab = config.hidden_size, toy_tasks.SEQ2SEQ_VOCAB
    attention = "bahdanau" if reverse else "none"
    model = Seq2Seq(RNN(gru(), size), Decoder(gru(), vocab, size, 16, attention=attention), vocab_size=vocab)
    batches = lambda step: toy_tasks.copy_or_reverse(step, reverse=reverse)  # noqa: E731
    params = fit(config, model.init(key, 16), model.loss, batches)
    src, src_lengths, targets, target_lengths = toy_tasks.copy_or_reverse(10**6, config.test_size, reverse=reverse)
    mask, length = sequence_mask(target_lengths, targets.shape[1]), targets.shape[1]
    greedy = jax.jit(lambda s, n: model.greedy(params, s, n, max_length=length))(src, src_lengths)
    search = lambda s, n: model.beam_search(params, s, n, beam_width=config.beam_width, max_length=length)  # noqa: E731
    beams = jax.jit(search)(src, src_lengths)
    return {
        "token accuracy": token_accuracy(greedy.tokens, targets, mask),
        "sequence accuracy": sequence_accuracy(greedy.tokens, targets, mask),
        "sequence accuracy (beam)": sequence_accuracy(beams.tokens[:, 0], targets, mask),
    }


def ctc(config, key):
    model = Tagger(RNN(gru(), config.hidden_size, bidirectional=True), num_tags=4)
    loss = lambda p, x, n, y, m: ctc_loss(model.apply(p, x, lengths=n), n, y, m)  # noqa: E731
    params = fit(config, model.init(key, 4), loss, toy_tasks.ctc_runs)
    frames, frame_lengths, labels, label_lengths = toy_tasks.ctc_runs(10**6, config.test_size)
    logits = model.apply(params, frames, lengths=frame_lengths)
    references = trim(labels, label_lengths)
    beams = batch_prefix_beam_search(logits, frame_lengths, beam_width=config.beam_width)
    return {
        "label error rate": error_rate(references, trim(*greedy_decode(logits, frame_lengths))),
        "label error rate (prefix beam)": error_rate(references, beams),
    }


def captioning(config, key):
    size = config.hidden_size
    decoder = Decoder(gru(), toy_tasks.CAPTION_VOCAB, size, 8, init_size=size)
    model = Captioner(ConvEncoder(channels=(8, 16), output_size=size), decoder)
    params = fit(config, model.init(key, (12, 12, 1)), model.loss, toy_tasks.bar_captions)
    images, captions, lengths = toy_tasks.bar_captions(10**6, config.test_size)
    out = jax.jit(lambda x: model.greedy(params, x, max_length=captions.shape[1]))(images)
    return {"caption accuracy": sequence_accuracy(out.tokens, captions, sequence_mask(lengths, captions.shape[1]))}


TASKS = {  # title and trainer; a task's key is fold_in(seed key, its position here), whichever tasks run
    Task.PARITY: ("many-to-one: parity", parity),
    Task.TAGGING: ("tagging, unidirectional: next token", lambda c, k: tagging(c, k, bidirectional=False)),
    Task.TAGGING_BIDIRECTIONAL: ("tagging, bidirectional: next token", lambda c, k: tagging(c, k, bidirectional=True)),
    Task.COPY: ("seq2seq: copy", lambda c, k: seq2seq(c, k, reverse=False)),
    Task.REVERSE: ("seq2seq + attention: reverse", lambda c, k: seq2seq(c, k, reverse=True)),
    Task.CTC: ("CTC: symbol runs", ctc),
    Task.CAPTIONS: ("one-to-many: captions", captioning),
}


def main(argv: list[str] | None = None) -> list[dict]:
    config = cli(TourConfig, argv, presets={"quick": TourConfig.quick})
    run = config.run.open("tasks_tour", config)
    rows = []
    for index, (which, (name, task)) in enumerate(TASKS.items()):
        if which not in config.tasks:
            continue
        start = time.perf_counter()
        metrics = task(config, jax.random.fold_in(jax.random.key(config.run.seed), index))
        seconds = time.perf_counter() - start
        for metric, value in metrics.items():
            rows.append({"task": name, "metric": metric, "value": float(jnp.asarray(value)), "seconds": seconds})
        print(f"{name}: " + ", ".join(f"{m} {float(jnp.asarray(v)):.3f}" for m, v in metrics.items()), flush=True)
    table = markdown_table(rows, digits=3)
    run.write_results({"rows": rows})
    run.write_report(f"# Task tour ({config.num_steps} Adam steps per task, seed {config.run.seed})\n\n{table}\n")
    print(table)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
