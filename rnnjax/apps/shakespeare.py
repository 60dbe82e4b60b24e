"""Shakespeare: a character LSTM language model trained over seeds, scored in nats per held-out character.

    outcome = run(ShakespeareConfig())                  # the whole experiment
    corpus = load_shakespeare()
    model = CharModel(len(corpus.alphabet), embed_size=32, hidden_size=256)
    trained = train_seeds(config, model, corpus, run)    # every seed in one fit_many program
    results = evaluate(config, model, corpus, trained)
    write_report(run, config, results)

Training reads random crops of the training plays; each seed draws its own crops from its own key, so seeds
differ in initialisation and data order, and a run is a pure function of (seed, step). Held-out loss runs the
model over contiguous streams of the validation plays, carrying the state across chunks.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis import plots
from rnnjax.apps.outcome import Outcome, Target, seeds_text
from rnnjax.core.cells import lstm
from rnnjax.core.unroll import RNN
from rnnjax.data.shakespeare import Corpus, decode, load_shakespeare
from rnnjax.tasks.heads import dense, dense_init, embedding_init
from rnnjax.tasks.losses import cross_entropy
from rnnjax.training import loop, optimizers, stats
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.config import RunConfig, RunField, require_positive
from rnnjax.training.runs import Run, markdown_table


@dataclasses.dataclass(frozen=True)
class ShakespeareConfig:
    """Character LSTM language model; target held-out loss <= 1.7 nats/char on every seed within the CPU budget."""

    embed_size: int = 32
    """character embedding size."""
    hidden_size: int = 256
    """LSTM units."""
    seq_length: int = 128
    """characters per training crop."""
    batch_size: int = 32
    """crops per step and seed."""
    seeds: int = 3
    """models trained at once in one fit_many program (>= 2 for an interval over seeds)."""
    num_steps: int = 2000
    """training steps, unless the budget ends training first (3 seeds x 2000 steps: ~24 CPU-min; 1900 steps
    reached 1.624 +- 0.009 nats/char on 2026-11-29)."""
    cpu_minutes: float = 30.0
    """CPU-time budget of all seeds together: 15 min on 2 fully used cores."""
    max_wall_minutes: float = 50.0
    """wall-clock cap as well (a shared machine gives fewer CPU-seconds per second)."""
    eval_every: int = 250
    """steps between held-out evaluations (the best one's parameters are kept)."""
    eval_chars: int = 32_768
    """held-out characters of each evaluation during training."""
    final_eval_chars: int = 262_144
    """held-out characters of the final evaluation."""
    optimizer: optimizers.OptimizerConfig = optimizers.OptimizerConfig(
        learning_rate=4e-3, warmup_steps=100, decay="cosine", decay_steps=2000, final_fraction=0.05
    )
    """Adam and its learning-rate schedule."""
    target_nats: float = 1.7
    """the target held-out loss in nats per character, on every seed."""
    temperatures: tuple[float, ...] = (0.5, 0.8, 1.0)
    """sampling temperatures of the report's samples (first seed)."""
    sample_length: int = 400
    """characters per sample."""
    prompt: str = "ROMEO:\n"
    """text each sample starts from."""
    limit: int | None = None
    """use only the first ``limit`` characters of the plays."""
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(
            self, "embed_size", "hidden_size", "seq_length", "batch_size", "seeds", "num_steps", "cpu_minutes",
            "max_wall_minutes", "eval_every", "eval_chars", "final_eval_chars", "target_nats", "temperatures",
            "sample_length",
        )  # fmt: skip

    @classmethod
    def quick(cls) -> "ShakespeareConfig":
        """A small LSTM on 100k characters, 2 seeds, 30 steps: seconds."""
        optimizer = optimizers.OptimizerConfig(learning_rate=1e-2, warmup_steps=5, decay="cosine", decay_steps=30)
        return cls(embed_size=16, hidden_size=32, seq_length=32, batch_size=8, seeds=2, num_steps=30, eval_every=15,
                   eval_chars=4097, final_eval_chars=8193, optimizer=optimizer, sample_length=60,
                   limit=100_000, run=RunConfig.quick())  # fmt: skip


PRESETS = {"quick": ShakespeareConfig.quick}


@dataclasses.dataclass(frozen=True)
class CharModel:
    """logits_t = W LSTM(E[x_<=t]) + b; params {"embedding", "rnn", "readout"}."""

    vocab_size: int
    embed_size: int
    hidden_size: int

    @property
    def rnn(self) -> RNN:
        return RNN(lstm(), self.hidden_size)

    def init(self, key: jax.Array) -> dict:
        k_embed, k_rnn, k_out = jax.random.split(key, 3)
        return {"embedding": embedding_init(k_embed, self.vocab_size, self.embed_size) * 0.1,
                "rnn": self.rnn.init(k_rnn, self.embed_size),
                "readout": dense_init(k_out, self.hidden_size, self.vocab_size)}  # fmt: skip

    def apply(self, params: dict, tokens: jax.Array, carry: Any = None) -> tuple[jax.Array, Any]:
        """tokens int [batch, time] -> (logits [batch, time, vocab], carry)."""
        ys, finals = self.rnn.apply(params["rnn"], params["embedding"][tokens], initial_carry=carry)
        return dense(params["readout"], ys), finals


def random_crops(ids: jax.Array, key: jax.Array, batch_size: int, width: int) -> jax.Array:
    """int [batch_size, width]: crops ids[s : s + width] at uniform starts s drawn from ``key`` (jittable)."""
    starts = jax.random.randint(key, (batch_size,), 0, ids.shape[0] - width + 1)
    return ids[starts[:, None] + jnp.arange(width)]


def make_loss(model: CharModel, batch_size: int, seq_length: int):
    """loss_fn(params, ids, key): next-character cross-entropy on crops that each run draws from its own key."""

    def loss_fn(params, ids, key):
        crops = random_crops(ids, key, batch_size, seq_length + 1)
        logits, _ = model.apply(params, crops[:, :-1])
        return cross_entropy(logits, crops[:, 1:]), {}

    return loss_fn


def stream_loss(model: CharModel, params: dict, ids: np.ndarray, streams: int, chunk: int) -> np.ndarray:
    """Mean nats/char over ``ids`` cut into ``streams`` contiguous rows, the state carried across chunks.

    ``params`` stacked over seeds (leaves [seeds, ...]); returns [seeds].
    """
    usable = (len(ids) - 1) // (streams * chunk) * streams * chunk
    if usable == 0:
        raise ValueError(f"ids must hold more than streams * chunk = {streams * chunk} characters; got {len(ids)}")
    inputs, targets = ids[:usable].reshape(streams, -1), ids[1 : usable + 1].reshape(streams, -1)
    carry, total = None, 0.0
    for begin in range(0, inputs.shape[1], chunk):
        window = slice(begin, begin + chunk)
        loss, carry = _chunk_loss(model, params, inputs[:, window], targets[:, window], carry)
        total = total + np.asarray(loss, np.float64)
    return total / (inputs.shape[1] // chunk)


@functools.partial(jax.jit, static_argnames="model")
def _chunk_loss(model, params, inputs, targets, carry):
    def one(seed_params, seed_carry):  # vmapped over seeds
        logits, finals = model.apply(seed_params, inputs, seed_carry)
        return cross_entropy(logits, targets), finals

    return jax.vmap(one)(params, carry)


def sample(model: CharModel, params: dict, prompt_ids: np.ndarray, key, length: int, temperature: float) -> np.ndarray:
    """One seed's params: prime on the prompt, then x_t ~ softmax(logits / temperature) for ``length`` characters."""
    logits, carry = model.apply(params, jnp.asarray(prompt_ids)[None])

    def one(state, step_key):
        carry, logits = state
        token = jax.random.categorical(step_key, logits / temperature)
        new_logits, carry = model.apply(params, token[:, None], carry)
        return (carry, new_logits[:, -1]), token[0]

    _, tokens = jax.lax.scan(one, (carry, logits[:, -1]), jax.random.split(key, length))
    return np.asarray(tokens)


@dataclasses.dataclass(frozen=True)
class Trained:
    params: dict  # stacked over seeds, from the step with the best mean validation loss
    steps: int
    best_step: int
    minutes: float  # wall, all seeds together
    cpu_minutes: float


def _budget_clock(config: ShakespeareConfig, started: float, started_cpu: float):
    """CPU seconds used, or wall seconds scaled so that ``max_wall_minutes`` also ends training."""

    def clock():
        wall_scaled = (time.perf_counter() - started) * config.cpu_minutes / config.max_wall_minutes
        return max(time.process_time() - started_cpu, wall_scaled)

    return clock


def train_seeds(config: ShakespeareConfig, model: CharModel, corpus: Corpus, run: Run) -> Trained:
    """``config.seeds`` models in one ``fit_many`` program, stopped at ``num_steps`` or the CPU/wall budget."""
    train_ids, val_ids = jnp.asarray(corpus.train), corpus.val[: config.eval_chars]

    def eval_fn(params):  # the mean over seeds picks the checkpoint; each seed is logged too
        losses = stream_loss(model, params, val_ids, 16, 128)
        return {"loss": losses.mean()} | {f"loss_seed_{i}": loss for i, loss in enumerate(losses)}

    optimizer = optimizers.make_optimizer(config.optimizer)
    keys = jax.random.split(jax.random.key(config.run.seed), config.seeds)
    states = loop.init_many(model.init, optimizer, keys)
    checkpointer = Checkpointer(run.checkpoint_dir, save_every=config.eval_every, keep=2, best_metric="val/loss")
    started, started_cpu = time.perf_counter(), time.process_time()
    states, _ = loop.fit_many(
        make_loss(model, config.batch_size, config.seq_length), optimizer, states, lambda step: train_ids,
        config.num_steps, run=run, eval_fn=eval_fn, eval_every=config.eval_every, checkpointer=checkpointer,
        max_seconds=60 * config.cpu_minutes, clock=_budget_clock(config, started, started_cpu),
        progress=config.run.progress,
    )  # fmt: skip
    minutes, cpu_minutes = (time.perf_counter() - started) / 60, (time.process_time() - started_cpu) / 60
    best = checkpointer.restore_best(states)
    best_step = checkpointer.best_step()
    checkpointer.close()
    return Trained(best.params, int(np.asarray(states.step)[0]), best_step, minutes, cpu_minutes)


def evaluate(config: ShakespeareConfig, model: CharModel, corpus: Corpus, trained: Trained) -> dict:
    """Per-seed held-out nats/char with the seed summary, and the first seed's samples."""
    losses = stream_loss(model, trained.params, corpus.val[: config.final_eval_chars], 32, 128)
    first = jax.tree.map(lambda leaf: leaf[0], trained.params)
    prompt = np.array([corpus.alphabet.index(c) for c in config.prompt])
    key = jax.random.fold_in(jax.random.key(config.run.seed), 2)
    samples = {str(t): config.prompt + decode(sample(model, first, prompt, key, config.sample_length, t),
                                              corpus.alphabet) for t in config.temperatures}  # fmt: skip
    summary = stats.seed_summary(losses) if len(losses) > 1 else None
    return {
        "val_nats_per_char": float(losses.mean()),
        "val_bits_per_char": float(losses.mean()) / math.log(2),
        "val_nats_per_char_per_seed": losses.tolist(),
        "val_nats_per_char_summary": None if summary is None else summary.as_dict(),
        "seeds_below_target": int((losses <= config.target_nats).sum()),
        "train_minutes": trained.minutes,
        "train_cpu_minutes": trained.cpu_minutes,
        "steps": trained.steps,
        "best_step": trained.best_step,
        "chars_seen_per_seed": trained.steps * config.batch_size * config.seq_length,
        "val_chars_evaluated": min(config.final_eval_chars, len(corpus.val)),
        "corpus_chars": {"train": len(corpus.train), "val": len(corpus.val), "alphabet": len(corpus.alphabet)},
        "samples": samples,
    }


def report_markdown(config: ShakespeareConfig, results: dict) -> str:
    """report.md: per-seed held-out loss, the seed summary, the time of all seeds together, samples."""
    rows = [{"seed": i, "val nats/char": loss, "val bits/char": loss / math.log(2)}
            for i, loss in enumerate(results["val_nats_per_char_per_seed"])]  # fmt: skip
    summary = results["val_nats_per_char_summary"]
    over_seeds = "one seed" if summary is None else stats.SeedSummary.from_dict(summary).text(3) + " nats/char"
    samples = "\n".join(f"### temperature {t}\n\n```\n{text}\n```\n" for t, text in results["samples"].items())
    return (
        f"# Shakespeare: character-level LSTM\n\nLSTM {config.hidden_size}, embedding {config.embed_size}, crops of "
        f"{config.seq_length}, batch {config.batch_size}; held-out plays, {results['val_chars_evaluated']} "
        f"validation characters. {config.seeds} seeds in one fit_many program: {results['steps']} steps each in "
        f"{results['train_minutes']:.1f} min wall ({results['train_cpu_minutes']:.1f} CPU-min) for all seeds "
        f"together.\n\n{markdown_table(rows)}\n\nOver seeds: {over_seeds}; {results['seeds_below_target']} of "
        f"{config.seeds} seeds at or below the target {config.target_nats} nats/char.\n\n"
        f"![loss](plots/loss.png)\n\n## Samples (seed 0)\n\n{samples}"
    )


def write_report(run: Run, config: ShakespeareConfig, results: dict) -> None:
    seeds = [f"val/loss_seed_{i}" for i in range(config.seeds)]
    plots.learning_curves(run, ["train/loss", *seeds], run.plot_path("loss"), title="nats per character")
    run.write_report(report_markdown(config, results))


def headline(results: dict) -> tuple[str, ...]:
    """The report's opening numbers: held-out nats (and bits) per character over seeds, and the training time."""
    summary = results["val_nats_per_char_summary"]
    over_seeds = f"{results['val_nats_per_char']:.3f} nats/char (one seed)" if summary is None else \
        seeds_text(summary, unit="nats/char")  # fmt: skip
    return (f"held-out loss: {over_seeds}, {results['val_bits_per_char']:.3f} bits/char (mean); "
            f"{results['steps']} steps in {results['train_minutes']:.1f} min wall for all seeds",)


def targets(config: ShakespeareConfig, results: dict) -> tuple[Target, ...]:
    """The config's target: held-out loss <= ``target_nats`` on every seed (training stops at the time budget)."""
    losses = results["val_nats_per_char_per_seed"]
    seeds, passed = len(losses), sum(loss <= config.target_nats for loss in losses)
    statement = (f"held-out loss <= {config.target_nats} nats/char on every seed ({passed} of {seeds}), within "
                 f"{config.cpu_minutes:g} CPU-minutes")  # fmt: skip
    return (Target(statement, passed == seeds),)


def run(config: ShakespeareConfig) -> Outcome:
    """Load the plays, train every seed within the budget, score held-out plays, write results, plots and report."""
    run = config.run.open("shakespeare", config)
    corpus = load_shakespeare(limit=config.limit)
    model = CharModel(len(corpus.alphabet), config.embed_size, config.hidden_size)
    trained = train_seeds(config, model, corpus, run)
    results = evaluate(config, model, corpus, trained)
    run.write_results(results)
    write_report(run, config, results)
    return Outcome(results, headline(results), targets(config, results), run.directory, config.run.quiet)
