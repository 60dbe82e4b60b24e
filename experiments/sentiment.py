"""Sentiment, many-to-one: movie-review sentence polarity (vaderSentiment 3.3.2 sdist data).

    python experiments/sentiment.py           # LSTM/GRU x uni/bidirectional + bag-of-words baseline
    python experiments/sentiment.py --quick   # one small model on a slice

Words are embedded (trained from scratch, with dropout on the embedded words), read by the RNN, and
max-pooled over valid steps. The baseline is logistic regression on binary unigram+bigram counts. Each variant
trains ``seeds`` times (initialisation, data order and dropout from the seed); the report gives each variant's test
accuracy as mean, spread and 95% t-interval over seeds, a Wilson interval per run, and an exact McNemar test of each
run of the variant chosen on validation against the baseline on the same test sentences.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis import plots
from rnnjax.core.cells import make_cell
from rnnjax.core.unroll import RNN
from rnnjax.data import batch_indices
from rnnjax.data.sentiment import bag_of_words_baseline, load_sentiment
from rnnjax.tasks.heads import ManyToOne, embedding_init
from rnnjax.tasks.losses import cross_entropy
from rnnjax.training import stats, train
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.config import RunConfig, RunField, cli, require_positive
from rnnjax.training.runs import Run, markdown_table


@dataclasses.dataclass(frozen=True)
class SentimentConfig:
    """Word-level LSTM/GRU (uni/bidirectional) vs bag-of-words logistic regression."""

    variants: tuple[str, ...] = ("lstm", "gru", "lstm_bi", "gru_bi")
    embed_size: int = 100
    hidden_size: int = 64
    pooling: str = "max"
    dropout: float = 0.5
    batch_size: int = 64
    num_steps: int = 600
    eval_every: int = 100
    optimizer: train.OptimizerConfig = train.OptimizerConfig(
        learning_rate=3e-3, warmup_steps=50, decay="cosine", decay_steps=600, weight_decay=1e-4, name="adamw"
    )
    regularisation: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
    limit: int | None = None
    seeds: int = 3  # seeds run + 0, 1, ... per variant
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(self, "embed_size", "hidden_size", "batch_size", "num_steps", "eval_every", "regularisation",
                         "seeds")  # fmt: skip
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 for an interval over seeds; got {self.seeds}")

    @classmethod
    def quick(cls):
        optimizer = train.OptimizerConfig(learning_rate=1e-2, warmup_steps=5, decay="cosine", decay_steps=60)
        return cls(variants=("gru_bi",), embed_size=16, hidden_size=16, num_steps=60, eval_every=30,
                   optimizer=optimizer, limit=800, regularisation=(1.0,), seeds=2, run=RunConfig.quick())  # fmt: skip


def make_model(config, variant: str) -> ManyToOne:
    cell_name, _, direction = variant.partition("_")
    encoder = RNN(make_cell(cell_name), config.hidden_size, bidirectional=direction == "bi")
    return ManyToOne(encoder, num_outputs=2, pooling=config.pooling)


def train_variant(config, variant: str, data, run: Run, seed: int) -> dict:
    """Train one variant with early stopping on validation accuracy; returns its accuracies and test predictions."""
    model = make_model(config, variant)
    key = jax.random.key(seed)
    params = {
        "embedding": embedding_init(jax.random.fold_in(key, 0), len(data.vocabulary), config.embed_size) * 0.1,
        "model": model.init(jax.random.fold_in(key, 1), config.embed_size, jnp.float32),
    }

    def logits_fn(params, tokens, lengths, key=None):
        words = params["embedding"][tokens]
        if key is not None:  # dropout on the embedded words
            keep = jax.random.bernoulli(key, 1.0 - config.dropout, words.shape)
            words = jnp.where(keep, words / (1.0 - config.dropout), 0.0)
        return model.apply(params["model"], words, lengths=lengths)

    def loss_fn(params, batch, key):
        tokens, lengths, labels = batch
        logits = logits_fn(params, tokens, lengths, key)
        accuracy = jnp.mean(logits.argmax(-1) == labels)
        return cross_entropy(logits, labels), {"accuracy": accuracy}

    def batch_fn(step):
        index = batch_indices(seed, step, len(data.train.labels), config.batch_size)
        return data.train.tokens[index], data.train.lengths[index], data.train.labels[index]

    predict = jax.jit(lambda params, tokens, lengths: logits_fn(params, tokens, lengths).argmax(-1))

    def predictions(params, split):
        return np.asarray(train.batched_apply(lambda t, n: predict(params, t, n), (split.tokens, split.lengths), 256))

    def accuracy(params, split):
        return float((predictions(params, split) == split.labels).mean())

    optimizer = train.make_optimizer(config.optimizer)
    checkpointer = Checkpointer(run.checkpoint_dir, save_every=config.eval_every, keep=1,
                                best_metric="val/accuracy", best_mode="max")  # fmt: skip
    started = time.perf_counter()
    state = train.init_state(params, optimizer, jax.random.fold_in(key, 2))
    state = train.fit(state, train.make_train_step(loss_fn, optimizer), batch_fn, config.num_steps, run=run,
                      eval_fn=lambda p: {"accuracy": accuracy(p, data.val)}, eval_every=config.eval_every,
                      checkpointer=checkpointer, description=variant)  # fmt: skip
    seconds = time.perf_counter() - started
    best = checkpointer.restore_best(state)
    test_predictions = predictions(best.params, data.test)
    result = {"seed": seed, "val_accuracy": accuracy(best.params, data.val),
              "test_accuracy": float((test_predictions == data.test.labels).mean()),
              "best_step": checkpointer.best_step(), "train_seconds": seconds, "test_predictions": test_predictions}
    checkpointer.close()
    plots.learning_curves(run, ["train/loss"], run.plot_path("train_loss"), title=f"{variant}: train loss")
    plots.learning_curves(run, ["val/accuracy"], run.plot_path("val_accuracy"), title=f"{variant}: val accuracy")
    return result


def variant_over_seeds(config, variant: str, data, run: Run) -> dict:
    """``config.seeds`` runs of one variant: per-seed results, seed summaries, Wilson intervals."""
    seeds = [train_variant(config, variant, data, run.sub(f"{variant}_seed{seed}"), seed)
             for seed in range(config.run.seed, config.run.seed + config.seeds)]
    for result in seeds:
        result["test_wilson_95"] = stats.wilson_interval(int(round(result["test_accuracy"] * len(data.test.labels))),
                                                         len(data.test.labels))  # fmt: skip
    print(variant, [round(r["test_accuracy"], 4) for r in seeds], flush=True)
    return {"seeds": seeds, **{f"{split}_accuracy": stats.seed_summary([r[f"{split}_accuracy"] for r in seeds]).as_dict()
                               for split in ("val", "test")}}  # fmt: skip


def paired_tests(results: dict, variant: str, labels: np.ndarray) -> list[dict]:
    """Exact McNemar test of each seed of ``variant`` against the bag-of-words baseline on the same test items."""
    baseline_right = results["baseline_bag_of_words"].pop("test_predictions") == labels
    return [stats.mcnemar_from_predictions(seed.pop("test_predictions") == labels, baseline_right).as_dict()
            for seed in results[variant]["seeds"]]


def main(argv: list[str] | None = None) -> dict:
    config = cli(SentimentConfig, argv, presets={"quick": SentimentConfig.quick})
    run = config.run.open("sentiment", config)
    data = load_sentiment()
    if config.limit is not None:
        splits = {n: getattr(data, n) for n in ("train", "val", "test")}
        data = data._replace(**{n: type(s)(*(field[: config.limit] for field in s)) for n, s in splits.items()})
    results = {"baseline_bag_of_words": bag_of_words_baseline(data, config.regularisation)}
    for variant in config.variants:
        results[variant] = variant_over_seeds(config, variant, data, run)
    best = max(config.variants, key=lambda v: results[v]["val_accuracy"]["mean"])  # chosen on validation
    results["best_variant"] = best
    results["test_accuracy"] = results[best]["test_accuracy"]["mean"]
    results["mcnemar_best_vs_bag_of_words"] = paired_tests(results, best, data.test.labels)
    for variant in config.variants:
        for seed in results[variant]["seeds"]:
            seed.pop("test_predictions", None)
    hits = int(round(results["baseline_bag_of_words"]["test_accuracy"] * len(data.test.labels)))
    results["baseline_bag_of_words"]["test_wilson_95"] = stats.wilson_interval(hits, len(data.test.labels))
    results["examples"] = {n: len(getattr(data, n).labels) for n in ("train", "val", "test")}
    run.write_results(results)
    write_report(run, config, results, len(data.vocabulary))
    return results


def write_report(run: Run, config, results: dict, vocabulary_size: int) -> None:
    best = results["best_variant"]
    bars = {"bag_of_words": results["baseline_bag_of_words"]["test_accuracy"]}
    plots.bars(bars | {v: results[v]["test_accuracy"]["mean"] for v in config.variants}, run.plot_path("test_accuracy"),
               ylabel="test accuracy (mean over seeds)")  # fmt: skip
    low, high = results["baseline_bag_of_words"]["test_wilson_95"]
    rows = [{"model": "bag of words", "val accuracy": results["baseline_bag_of_words"]["val_accuracy"],
             "test accuracy": f"{results['baseline_bag_of_words']['test_accuracy']:.4f} (Wilson {low:.4f}-{high:.4f})"}]
    rows += [{"model": v, "val accuracy": results[v]["val_accuracy"]["mean"],
              "test accuracy": summary_text(results[v]["test_accuracy"])} for v in config.variants]  # fmt: skip
    tests = [{"seed": seed["seed"], "test accuracy": seed["test_accuracy"], "only RNN right": m["only_first"],
              "only bag of words right": m["only_second"], "McNemar p": m["p_value"]}
             for seed, m in zip(results[best]["seeds"], results["mcnemar_best_vs_bag_of_words"])]  # fmt: skip
    run.write_report(
        f"# Sentiment: movie-review sentence polarity\n\n{results['examples']} sentences (seeded 80/10/10 split), "
        f"vocabulary {vocabulary_size} words from train. Best-on-validation checkpoint per run; test accuracy as "
        f"mean +- sd over {config.seeds} seeds (95% t-interval).\n\n{markdown_table(rows)}\n\n"
        f"Selected on mean validation accuracy: **{best}**. Paired exact McNemar test of each of its seeds against "
        f"bag-of-words logistic regression on the same {results['examples']['test']} test sentences:\n\n"
        f"{markdown_table(tests)}\n\n![test accuracy](plots/test_accuracy.png)\n"
        + "".join(f"![{v}](./{v}_seed{config.run.seed}/plots/val_accuracy.png)\n" for v in config.variants)
    )
    print(markdown_table(rows), "\n", markdown_table(tests))


def summary_text(summary: dict) -> str:
    return stats.SeedSummary(**{k: v for k, v in summary.items() if k != "count"}).text()


if __name__ == "__main__":
    main(sys.argv[1:])
