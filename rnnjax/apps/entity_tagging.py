"""BIO entity tagging (PER/LOC/ORG): unidirectional vs bidirectional LSTM taggers, one model per seed.

The app behind ``experiments/entity_tagging.py``: its :class:`Config`, model, training, evaluation and report.
Every seed of one tagger trains in one ``fit_many`` program on the same corpus and batch order (the seeds differ
in initialisation and in which training words become ``<unk>``).

    outcome = run(Config())                                                  # the whole experiment
    predictions = {name: predict_seeds(make_tagger(config, bi), train_seeds(config, run, train, vocab, bi), test)
                   for name, bi in DIRECTIONS.items()}                      # [seeds, sentences, time] each
    results = evaluate(predictions, corpus)                                  # per seed, intervals, McNemar
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis import plots
from rnnjax.apps.outcome import Outcome, Target, seeds_text
from rnnjax.apps.seeds import with_interval
from rnnjax.core.cells import lstm
from rnnjax.core.unroll import RNN
from rnnjax.data import device_batch_indices, entities
from rnnjax.data.dates import UNK, Vocabulary
from rnnjax.tasks.heads import Tagger, embed, embedding_init
from rnnjax.training import stats
from rnnjax.training.config import RunConfig, RunField, require_positive
from rnnjax.training.optimizers import OptimizerConfig
from rnnjax.training.recipes import PrefixedRun, train_many
from rnnjax.training.runs import Run, markdown_table

DIRECTIONS = {"unidirectional": False, "bidirectional": True}
NUM_SHAPES = 5  # entities.shape ids
TARGET_F1 = 0.98
ITEMS = ("sentence", "ambiguous_word")  # test items judged right or wrong (Wilson, McNemar)
CORPUS_KEYS = ("chance_accuracy", "ambiguous_stderr", "one_tag_per_word_bound", "num_ambiguous")


@dataclasses.dataclass(frozen=True)
class Config:
    """BIO entity tagging (PER/LOC/ORG): unidirectional vs bidirectional taggers over seeds."""

    num_train: int = 8000
    """training sentences."""
    num_test: int = 2000
    """test sentences (their names and places never occur in training)."""
    ambiguous_fraction: float = 0.3
    """share of sentences that open with an ambiguous word ("Teddy bears" / "Teddy Roosevelt")."""
    word_size: int = 48
    """word embedding size."""
    shape_size: int = 8
    """word-shape embedding size (capitalised, digits, ...)."""
    hidden_size: int = 64
    """LSTM units (per direction)."""
    unk_rate: float = 0.25
    """chance that a training word is replaced by <unk>, so unseen names are handled."""
    seeds: int = 3
    """models per tagger, trained at once (initialisation and word dropout differ; >= 2 for an interval)."""
    batch_size: int = 64
    """sentences per step."""
    steps: int = 1500
    """training steps per tagger."""
    optimizer: OptimizerConfig = OptimizerConfig(learning_rate=3e-3, warmup_steps=50, decay="cosine", decay_steps=1500)
    """Adam and its learning-rate schedule."""
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(
            self, "num_train", "num_test", "word_size", "shape_size", "hidden_size", "batch_size", "steps", "seeds"
        )
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 (a seed interval needs two); got {self.seeds}")

    @classmethod
    def quick(cls) -> "Config":
        """A small corpus and model, 2 seeds, 60 steps: seconds."""
        optimizer = OptimizerConfig(learning_rate=1e-2, decay="cosine", decay_steps=60)
        return cls(num_train=600, num_test=200, hidden_size=16, word_size=16, seeds=2, steps=60, optimizer=optimizer,
                   run=RunConfig.quick())  # fmt: skip


PRESETS = {"quick": Config.quick}


def encode(sentences: Sequence[entities.Sentence], vocab: Vocabulary) -> dict[str, np.ndarray]:
    """words, shapes, tags ``[n, T]`` (padded with 0) and lengths ``[n]``."""
    length = max(len(s.tokens) for s in sentences)
    pad = lambda row: row + [0] * (length - len(row))  # noqa: E731
    return {"words": np.stack([vocab.encode(s.tokens, length, eos=False) for s in sentences]),
            "shapes": np.array([pad([entities.shape(t) for t in s.tokens]) for s in sentences], np.int32),
            "tags": np.array([pad([entities.TAG_INDEX[t] for t in s.tags]) for s in sentences], np.int32),
            "lengths": np.array([len(s.tokens) for s in sentences], np.int32)}  # fmt: skip


def make_tagger(config: Config, bidirectional: bool) -> Tagger:
    return Tagger(RNN(lstm(), config.hidden_size, bidirectional=bidirectional), len(entities.TAGS))


def init_params(tagger: Tagger, vocab_size: int, word_size: int, shape_size: int, key: jax.Array) -> dict:
    """Word and shape embeddings (scaled by 0.1) and the tagger."""
    k_words, k_shapes, k_tagger = jax.random.split(key, 3)
    return {"words": embedding_init(k_words, vocab_size, word_size) * 0.1,
            "shapes": embedding_init(k_shapes, NUM_SHAPES, shape_size) * 0.1,
            "tagger": tagger.init(k_tagger, word_size + shape_size)}  # fmt: skip


def features(params: dict, words: jax.Array, shapes: jax.Array) -> jax.Array:
    """Word and word-shape embeddings side by side: [batch, time, word + shape]."""
    return jnp.concatenate([embed(params["words"], words), embed(params["shapes"], shapes)], -1)


def loss_fn(tagger: Tagger, unk_rate: float, params: dict, batch: dict, key: jax.Array):
    """Masked tag cross-entropy with each training word replaced by <unk> with probability ``unk_rate``."""
    words = jnp.where(jax.random.bernoulli(key, unk_rate, batch["words"].shape), UNK, batch["words"])
    return tagger.loss(params["tagger"], features(params, words, batch["shapes"]), batch["tags"],
                       lengths=batch["lengths"]), {}  # fmt: skip


def train_seeds(config: Config, run: Run, train: dict[str, np.ndarray], vocab_size: int, bidirectional: bool):
    """``config.seeds`` taggers in one fit_many program; the stacked params (leaves ``[seeds, ...]``)."""
    name = "bidirectional" if bidirectional else "unidirectional"
    tagger, arrays = make_tagger(config, bidirectional), {k: jnp.asarray(v) for k, v in train.items()}
    data_key = jax.random.key(config.run.seed + 1000)

    def batch_fn(step):  # jittable: the data order is a pure function of (seed, step), shared by the seeds
        rows = device_batch_indices(data_key, step, len(arrays["words"]), config.batch_size)
        return {k: v[rows] for k, v in arrays.items()}

    init = functools.partial(init_params, tagger, vocab_size, config.word_size, config.shape_size)
    states = train_many(functools.partial(loss_fn, tagger, config.unk_rate), init, config.optimizer, batch_fn,
                        config.steps, keys=jax.random.split(jax.random.key(config.run.seed), config.seeds),
                        checkpoint_dir=run.path("checkpoints", name), save_every=max(config.steps // 2, 1),
                        run=PrefixedRun(run, name), description=name, progress=config.run.progress)  # fmt: skip
    return states.params


def predict_seeds(tagger: Tagger, params: dict, data: dict[str, np.ndarray]) -> np.ndarray:
    """Tag ids ``[seeds, sentences, time]`` of every seed's tagger (params leaves ``[seeds, ...]``)."""
    words, shapes, lengths = (jnp.asarray(data[k]) for k in ("words", "shapes", "lengths"))
    one = lambda p: tagger.predict(p["tagger"], features(p, words, shapes), lengths=lengths)  # noqa: E731
    return np.asarray(jax.jit(jax.vmap(one))(params))


def correct_items(predicted: np.ndarray, sentences: Sequence[entities.Sentence]) -> dict[str, np.ndarray]:
    """Per test item, right or wrong: every tag of each sentence, and the first word of each ambiguous one."""
    right = [all(entities.TAGS[t] == tag for t, tag in zip(row, s.tags)) for row, s in zip(predicted, sentences)]
    first = [entities.TAGS[row[0]] == s.tags[0] for row, s in zip(predicted, sentences) if s.ambiguous]
    return {"sentence": np.array(right, bool), "ambiguous_word": np.array(first, bool)}


def direction_results(predictions: np.ndarray, corpus: entities.EntityCorpus) -> tuple[dict, list[dict]]:
    """One tagger's seeds: (scores per seed, seed summaries and per-seed Wilson intervals; each seed's right items)."""
    scores = [entities.tagging_scores(p, corpus.test, corpus.train) for p in predictions]
    right = [correct_items(p, corpus.test) for p in predictions]
    out = {"per_seed": scores, "f1": stats.seed_summary([s["f1"] for s in scores]).as_dict()}
    for item in ITEMS:
        counts = [(int(r[item].sum()), len(r[item])) for r in right]
        out[f"{item}_accuracy"] = stats.seed_summary([hits / count for hits, count in counts]).as_dict()
        out[f"{item}_wilson"] = [stats.wilson_interval(hits, count) for hits, count in counts]
    return out, right


def evaluate(predictions: dict[str, np.ndarray], corpus: entities.EntityCorpus) -> dict:
    """Both taggers over seeds, seed i of each paired by an exact McNemar test on the same test items."""
    results, right = {}, {}
    for name in DIRECTIONS:
        results[name], right[name] = direction_results(predictions[name], corpus)
    pairs = list(zip(right["bidirectional"], right["unidirectional"]))
    results["mcnemar_bi_vs_uni"] = {
        item: [stats.mcnemar_from_predictions(bi[item], uni[item]).as_dict() for bi, uni in pairs] for item in ITEMS
    }
    results |= {key: results["unidirectional"]["per_seed"][0][key] for key in CORPUS_KEYS}  # the same for every seed
    results |= {"num_train": len(corpus.train), "num_test": len(corpus.test), "target_f1": TARGET_F1}
    results["target_met"] = all(s["f1"] >= TARGET_F1 for s in results["bidirectional"]["per_seed"])
    # A left-to-right tagger gives every occurrence of a first word the same tag: it cannot pass the bound.
    results["unidirectional_within_bound"] = all(
        s["ambiguous_accuracy"] <= s["one_tag_per_word_bound"] + 1e-12 for s in results["unidirectional"]["per_seed"]
    )
    return results


def plot(run: Run, results: dict) -> None:
    """Per tagger: the seeds' mean (bar) and each seed (dots), on the ambiguous first word and on entity F1."""
    figure = plots.new_figure(figsize=(9, 3.5))
    panels = zip(figure.subplots(1, 2), ("ambiguous_accuracy", "f1"), ("ambiguous first word", "entity F1, all test"))
    for axes, metric, title in panels:
        for x, name in enumerate(DIRECTIONS):
            values = [s[metric] for s in results[name]["per_seed"]]
            axes.bar(x, np.mean(values), color=("tab:orange", "tab:blue")[x], alpha=0.6)
            axes.plot([x] * len(values), values, "k.", label="one seed" if x == 0 else None)
        axes.set(xticks=[0, 1], xticklabels=list(DIRECTIONS), ylim=(0, 1.05), title=title)
    axes = figure.axes[0]
    axes.axhline(results["chance_accuracy"], color="k", ls="--", label="chance (training majority)")
    axes.axhline(results["one_tag_per_word_bound"], color="tab:red", ls=":", label="one tag per word (bound)")
    axes.legend(fontsize=7)
    plots.save_figure(figure, run.plot_path("tagger_comparison"), dpi=120)


def seed_rows(results: dict) -> list[dict]:
    """One table row per tagger and seed: F1, both accuracies with 95% Wilson intervals, McNemar bi vs uni."""
    rows = []
    for name in DIRECTIONS:
        for seed, score in enumerate(results[name]["per_seed"]):
            row = {"tagger": name, "seed": seed, "entity F1": score["f1"]}
            for item, title in zip(ITEMS, ("sentences all right", "ambiguous first word")):
                value = results[name][f"{item}_accuracy"]["values"][seed]
                row[title] = with_interval(value, results[name][f"{item}_wilson"][seed])
            row["McNemar p, bi vs uni (sentences / first word)"] = " / ".join(
                f"{results['mcnemar_bi_vs_uni'][item][seed]['p_value']:.2g}" for item in ITEMS
            )
            rows.append(row)
    return rows


def report(results: dict) -> str:
    bi, uni = results["bidirectional"], results["unidirectional"]
    summary = lambda r, key: stats.SeedSummary.from_dict(r[key]).text()  # noqa: E731
    return f"""# Entity tagging: unidirectional vs bidirectional

{results["num_train"]} training and {results["num_test"]} test sentences; test names and places never occur in
training. {results["num_ambiguous"]} test sentences open with an ambiguous word ("Teddy bears" / "Teddy Roosevelt").
{len(bi["per_seed"])} seeds per tagger, all trained at once with `fit_many` (same corpus and batch order; the seeds
differ in initialisation and word dropout). Accuracies with 95% Wilson intervals on the test items.

{markdown_table(seed_rows(results))}

- Entity F1 over seeds: bidirectional {summary(bi, "f1")}; unidirectional {summary(uni, "f1")}.
- Ambiguous first word over seeds: bidirectional {summary(bi, "ambiguous_word_accuracy")}; unidirectional
  {summary(uni, "ambiguous_word_accuracy")}; chance (always the word's training-majority tag)
  {results["chance_accuracy"]:.4f} (standard error {results["ambiguous_stderr"]:.4f}).
- A left-to-right tagger sees only the ambiguous word itself, so it gives every occurrence of a word the same tag;
  the best such tagging reaches {results["one_tag_per_word_bound"]:.4f} on this test set. Every unidirectional seed
  within that bound: {results["unidirectional_within_bound"]}.
- Target bidirectional F1 >= {results["target_f1"]} on every seed: {"met" if results["target_met"] else "NOT met"}.

![comparison](plots/tagger_comparison.png) ![loss](plots/loss.png)
"""


def headline(results: dict) -> tuple[str, ...]:
    """The report's opening numbers in two lines: entity F1 and the ambiguous first word, over seeds."""
    bi, uni = results["bidirectional"], results["unidirectional"]
    return (
        f"entity F1: bidirectional {seeds_text(bi['f1'], percent=True)}; "
        f"unidirectional {seeds_text(uni['f1'], percent=True)}",
        f"ambiguous first word: bidirectional {seeds_text(bi['ambiguous_word_accuracy'], percent=True)}; "
        f"unidirectional {seeds_text(uni['ambiguous_word_accuracy'], percent=True)}; "
        f"chance {100 * results['chance_accuracy']:.1f}%",
    )


def targets(results: dict) -> tuple[Target, ...]:
    """The docstring's target: bidirectional entity F1 >= 98% on every seed."""
    values = [s["f1"] for s in results["bidirectional"]["per_seed"]]
    passed = sum(value >= results["target_f1"] for value in values)
    statement = f"bidirectional entity F1 >= {results['target_f1']:.0%} on every seed ({passed} of {len(values)})"
    return (Target(statement, bool(results["target_met"])),)


def run(config: Config) -> Outcome:
    """Train both taggers over seeds, evaluate them on unseen names, write results, plots and report."""
    run = config.run.open("entity_tagging", config)
    corpus = entities.make_entity_corpus(config.run.seed, config.num_train, config.num_test, config.ambiguous_fraction)
    vocab = Vocabulary([t for s in corpus.train for t in s.tokens])
    train, test = encode(corpus.train, vocab), encode(corpus.test, vocab)
    predictions, seconds = {}, {}
    for name, bidirectional in DIRECTIONS.items():
        started = time.perf_counter()
        params = train_seeds(config, run, train, len(vocab), bidirectional)
        predictions[name] = predict_seeds(make_tagger(config, bidirectional), params, test)
        seconds[name] = time.perf_counter() - started
    results = evaluate(predictions, corpus) | {"seconds_all_seeds": seconds}
    run.write_results(results)
    plot(run, results)
    curves = [f"{name}/train/loss_run{i}" for name in DIRECTIONS for i in range(config.seeds)]
    plots.learning_curves(run, curves, run.plot_path("loss"), title="train loss per tagger and seed", log_y=True)
    run.write_report(report(results))
    return Outcome(results, headline(results), targets(results), run.directory, config.run.quiet)
