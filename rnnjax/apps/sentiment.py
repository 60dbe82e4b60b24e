"""Sentence polarity: the word-level RNN, its training over seeds, the bag-of-words baseline and the report.

API:
    outcome = run(SentimentConfig())                                 # the whole experiment
    baseline = bag_of_words(data, regularisation=(0.3, 1.0, 3.0))   # logistic regression, C on validation
    model = SentimentModel(RNN(make_cell("lstm"), 64), vocab_size=len(data.vocabulary), embed_size=100)
    best = BestPerSeed(model, data.val, baseline["val_logits"], eval_every=50)  # keeps each seed's best params
    seconds = train_seeds(model, data, baseline, best, config, run)  # fit_many over seeds, validated every 50 steps
    results = evaluate(model, data, baseline, best)
    write_report(run, config, results, len(data.vocabulary))

Embeddings are trained from scratch (no downloaded vectors). With ``hybrid=True`` the baseline's logit enters
the readout as a fixed input with a learned scale (out-of-fold logits on train, so the RNN sees how reliable it
is on sentences the baseline has not fitted).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis import plots
from rnnjax.apps import comparison as compared
from rnnjax.apps import sentiment_pretrain
from rnnjax.apps.comparison import pooled_statement, seed_rows
from rnnjax.apps.outcome import Outcome
from rnnjax.checks import arguments
from rnnjax.core.cells import make_cell
from rnnjax.core.unroll import RNN
from rnnjax.data import device_batch_indices
from rnnjax.data.sentiment import UNKNOWN, Sentiment, Split, load_sentiment, tokenize
from rnnjax.tasks.heads import dense, dense_init, embedding_init, pool
from rnnjax.tasks.losses import cross_entropy, length_mask
from rnnjax.training import loop, optimizers, stats
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.config import RunConfig, RunField, require_positive
from rnnjax.training.recipes import PrefixedRun
from rnnjax.training.runs import Run, markdown_table

SPLITS = ("train", "val", "test")


class SentencePooling(enum.Enum):
    MAX = "max"
    MEAN = "mean"
    ATTENTION = "attention"  # softmax_t(w . tanh(y_t) + b) weights over valid steps


@dataclasses.dataclass(frozen=True)
class SentimentConfig:
    """Word-level RNN over seeds vs bag-of-words logistic regression."""

    cell: str = "lstm"
    """recurrent cell (rnnjax.core.cells.make_cell name)."""
    bidirectional: bool = False
    """read each sentence both ways."""
    embed_size: int = 100
    """word embedding size."""
    hidden_size: int = 64
    """recurrent units (per direction)."""
    pooling: SentencePooling = SentencePooling.MAX
    """how the outputs of the valid steps become one sentence vector."""
    word_dropout: float = 0.0
    """chance that a word of a training sentence is replaced by <unk>."""
    dropout: float = 0.5
    """dropout on the embedded words."""
    hybrid: bool = False
    """add the bag-of-words logit (out of fold on train) to the readout with a learned scale (validation 80.0%, the
    baseline's own; test 77.58% +- 0.16% vs bag of words 77.01%, a tie): off, the RNN must do the work alone."""
    seeds: int = 3
    """models trained at once in one fit_many program (>= 2 for an interval over seeds)."""
    batch_size: int = 64
    """sentences per step."""
    num_steps: int = 600
    """training steps (a multiple of eval_every)."""
    eval_every: int = 50
    """steps between validation accuracies (each seed keeps its best parameters)."""
    optimizer: optimizers.OptimizerConfig = optimizers.OptimizerConfig(
        learning_rate=3e-3, warmup_steps=50, decay="cosine", decay_steps=600, weight_decay=1e-4, name="adamw"
    )
    """AdamW and its learning-rate schedule."""
    pretrain: sentiment_pretrain.PretrainConfig = sentiment_pretrain.PretrainConfig(steps=0, svd_embeddings=True)
    """language-model pretraining (Dai & Le 2015) and PPMI-SVD embeddings, from train + unlabeled snippets."""
    regularisation: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
    """inverse regularisation strengths C of the baseline, chosen on validation."""
    limit: int | None = None
    """use only the first ``limit`` sentences of each split."""
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(self, "embed_size", "hidden_size", "batch_size", "num_steps", "eval_every", "regularisation",
                         "seeds")  # fmt: skip
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 for an interval over seeds; got {self.seeds}")
        if self.num_steps % self.eval_every:
            raise ValueError(f"num_steps must be a multiple of eval_every={self.eval_every}; got {self.num_steps}")

    @classmethod
    def quick(cls) -> "SentimentConfig":
        """Two small BiGRUs on 800 sentences per split, SVD embeddings, 120 steps: seconds."""
        optimizer = optimizers.OptimizerConfig(learning_rate=1e-2, warmup_steps=5, decay="cosine", decay_steps=120)
        pretrain = sentiment_pretrain.PretrainConfig(steps=0, unlabeled=False, svd_embeddings=True)
        return cls(cell="gru", bidirectional=True, embed_size=16, hidden_size=16, num_steps=120, eval_every=30,
                   optimizer=optimizer, pretrain=pretrain, limit=800, regularisation=(1.0,), seeds=2,
                   run=RunConfig.quick())  # fmt: skip


PRESETS = {"quick": SentimentConfig.quick}


def bag_of_words(data: Sentiment, regularisation: tuple[float, ...]) -> dict:
    """Logistic regression on binary uni+bigram counts, C chosen on validation accuracy.

    Returns val/test accuracy, C, test predictions, and decision values (logits) per split: ``train_logits`` out of
    fold (5-fold cross-fitting on train), ``val_logits`` and ``test_logits`` from the model fitted on all of train.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    vectorizer = CountVectorizer(tokenizer=tokenize, token_pattern=None, ngram_range=(1, 2), binary=True)
    train_features = vectorizer.fit_transform(data.train.texts)
    val_features, test_features = (vectorizer.transform(s.texts) for s in (data.val, data.test))
    fitted = [LogisticRegression(C=c, max_iter=2000).fit(train_features, data.train.labels) for c in regularisation]
    val_accuracy = [float((m.predict(val_features) == data.val.labels).mean()) for m in fitted]
    best = int(np.argmax(val_accuracy))
    model = fitted[best]
    out_of_fold = cross_val_predict(LogisticRegression(C=regularisation[best], max_iter=2000), train_features,
                                    data.train.labels, cv=5, method="decision_function")  # fmt: skip
    predictions = model.predict(test_features)
    return {"val_accuracy": val_accuracy[best], "test_accuracy": float((predictions == data.test.labels).mean()),
            "C": regularisation[best], "test_predictions": predictions,
            "train_logits": out_of_fold.astype(np.float32),
            "val_logits": model.decision_function(val_features).astype(np.float32),
            "test_logits": model.decision_function(test_features).astype(np.float32)}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SentimentModel:
    """logits = W pool(RNN(E[tokens])) + b (+ [0, s * baseline logit] when ``hybrid``).

    Attributes:
      encoder: the RNN over embedded words.
      vocab_size, embed_size: the embedding table [vocab, embed], trained from scratch.
      pooling: MAX, MEAN or ATTENTION over valid steps.
      hybrid: add the bag-of-words logit to the positive class with a learned scale s (initially 1).
    """

    encoder: RNN
    vocab_size: int
    embed_size: int
    pooling: SentencePooling = SentencePooling.MAX
    hybrid: bool = False

    def __post_init__(self):
        object.__setattr__(self, "pooling", arguments.as_enum(SentencePooling, self.pooling, "pooling"))
        arguments.positive_int("vocab_size", self.vocab_size)
        arguments.positive_int("embed_size", self.embed_size)

    def init(self, key: jax.Array) -> dict[str, Any]:
        embed_key, encoder_key, readout_key, attention_key = jax.random.split(key, 4)
        encoder = self.encoder.init(encoder_key, self.embed_size, jnp.float32)
        features = self.encoder.output_size(encoder)
        params = {"embedding": 0.1 * embedding_init(embed_key, self.vocab_size, self.embed_size),
                  "encoder": encoder, "readout": dense_init(readout_key, features, 2)}  # fmt: skip
        if self.pooling is SentencePooling.ATTENTION:
            params["attention"] = dense_init(attention_key, features, 1)
        if self.hybrid:
            params["baseline_scale"] = jnp.ones((), jnp.float32)
        return params

    def features(self, params: dict[str, Any], words: jax.Array, lengths: jax.Array) -> jax.Array:
        """The pooled sentence vector [batch, features] of embedded words [batch, time, embed]."""
        outputs, _ = self.encoder.apply(params["encoder"], words, lengths=lengths)
        if self.pooling is not SentencePooling.ATTENTION:
            return pool(outputs, lengths, self.pooling.value)
        scores = dense(params["attention"], jnp.tanh(outputs))[..., 0]
        scores = jnp.where(length_mask(lengths, outputs.shape[1]), scores, -jnp.inf)
        return jnp.einsum("bt,btf->bf", jax.nn.softmax(scores, axis=-1), outputs)

    def logits(self, params, words, lengths, baseline_logits) -> jax.Array:
        """[batch, 2] from embedded words; ``baseline_logits`` [batch] is used only when ``hybrid``."""
        logits = dense(params["readout"], self.features(params, words, lengths))
        if not self.hybrid:
            return logits
        return logits.at[:, 1].add((params["baseline_scale"] * baseline_logits).astype(logits.dtype))

    def predict(self, params, tokens, lengths, baseline_logits) -> jax.Array:
        """Logits [batch, 2] of token ids [batch, time], without dropout."""
        return self.logits(params, params["embedding"][tokens], lengths, baseline_logits)


def sentiment_loss(model: SentimentModel, dropout: tuple[float, float], params, batch, key):
    """Cross-entropy with word dropout (a valid word becomes <unk>) and dropout on the embedded words.

    ``dropout`` is (word dropout, embedding dropout); bind it with functools.partial.
    """
    word_dropout, embed_dropout = dropout
    tokens, lengths, baseline_logits, labels = batch
    word_key, embed_key = jax.random.split(key)
    unknown = jax.random.bernoulli(word_key, word_dropout, tokens.shape) & length_mask(lengths, tokens.shape[1])
    words = params["embedding"][jnp.where(unknown, UNKNOWN, tokens)]
    keep = jax.random.bernoulli(embed_key, 1.0 - embed_dropout, words.shape)
    logits = model.logits(params, jnp.where(keep, words / (1.0 - embed_dropout), 0.0), lengths, baseline_logits)
    return cross_entropy(logits, labels), {"accuracy": jnp.mean(logits.argmax(-1) == labels)}


@functools.partial(jax.jit, static_argnums=0)
def seed_predictions(model: SentimentModel, params, tokens, lengths, baseline_logits) -> jax.Array:
    """Predicted labels [seeds, examples] of stacked params."""
    return jax.vmap(lambda p: model.predict(p, tokens, lengths, baseline_logits).argmax(-1))(params)


class BestPerSeed:
    """``fit_many``'s eval_fn, called every ``eval_every`` steps: validation accuracy per seed; keeps each seed's
    best params and step so far (the first of equal accuracies)."""

    def __init__(self, model: SentimentModel, split: Split, baseline_logits: np.ndarray, eval_every: int):
        self.model, self.labels, self.eval_every = model, split.labels, arguments.positive_int("eval_every", eval_every)
        self.inputs = (jnp.asarray(split.tokens), jnp.asarray(split.lengths), jnp.asarray(baseline_logits))
        self.params, self.accuracy, self.step, self.evaluations = None, None, None, 0

    def __call__(self, params) -> dict[str, float]:
        accuracy = (np.asarray(seed_predictions(self.model, params, *self.inputs)) == self.labels).mean(-1)
        self.evaluations += 1
        if self.params is None:
            self.params, self.accuracy, self.step = params, accuracy, np.full(accuracy.shape, self.eval_every)
        better = accuracy > self.accuracy
        self.params = jax.tree.map(lambda new, old: jnp.where(_leading(better, new), new, old), params, self.params)
        self.accuracy = np.where(better, accuracy, self.accuracy)
        self.step = np.where(better, self.evaluations * self.eval_every, self.step)
        return {"accuracy": float(accuracy.mean()), **{f"accuracy_seed{i}": float(a) for i, a in enumerate(accuracy)}}


def _leading(mask: np.ndarray, like: jax.Array) -> jax.Array:
    """``mask`` [seeds] reshaped to broadcast against ``like`` [seeds, ...]."""
    return jnp.asarray(mask).reshape(mask.shape + (1,) * (like.ndim - 1))


def train_seeds(model: SentimentModel, data: Sentiment, baseline: dict, best: BestPerSeed, config: SentimentConfig,
                run: Run, pretrained: dict | None = None) -> float:  # fmt: skip
    """``config.seeds`` models in one ``fit_many``, validated every ``config.eval_every`` steps; returns seconds.

    The best params per seed are in ``best.params`` afterwards. ``pretrained`` (stacked [seeds, ...] ``embedding`` and
    ``encoder``, :func:`rnnjax.apps.sentiment_pretrain.pretrain`) replaces the random start of those params.
    """
    arrays = (data.train.tokens, data.train.lengths, baseline["train_logits"], data.train.labels)
    tokens, lengths, baseline_logits, labels = (jnp.asarray(a) for a in arrays)
    data_key = jax.random.key(config.run.seed + 1000)

    def batch_fn(step):  # jittable: the data order is a pure function of (seed, step)
        index = device_batch_indices(data_key, step, len(labels), config.batch_size)
        return tokens[index], lengths[index], baseline_logits[index], labels[index]

    loss_fn = functools.partial(sentiment_loss, model, (config.word_dropout, config.dropout))
    optimizer = optimizers.make_optimizer(config.optimizer)
    states = loop.init_many(model.init, optimizer, jax.random.split(jax.random.key(config.run.seed), config.seeds))
    if pretrained is not None:
        states = sentiment_pretrain.with_pretrained(states, pretrained)
    started = time.perf_counter()
    loop.fit_many(loss_fn, optimizer, states, batch_fn, config.num_steps, run=run, eval_fn=best,
                   eval_every=config.eval_every, log_every=config.eval_every, description="sentiment",
                   progress=config.run.progress)  # fmt: skip
    return time.perf_counter() - started


def evaluate(model: SentimentModel, data: Sentiment, baseline: dict, best: BestPerSeed) -> dict:
    """Test accuracy of each seed's best-on-validation params, against the baseline on the same sentences."""
    inputs = (jnp.asarray(data.test.tokens), jnp.asarray(data.test.lengths), jnp.asarray(baseline["test_logits"]))
    right = np.asarray(seed_predictions(model, best.params, *inputs)) == data.test.labels
    comparison = stats.compare_with_baseline(right, baseline["test_predictions"] == data.test.labels)
    hits = int(round(baseline["test_accuracy"] * len(data.test.labels)))
    kept = {k: v for k, v in baseline.items() if not k.endswith(("_logits", "_predictions"))}
    return {
        "test_accuracy": comparison["accuracy"]["mean"],  # single model, mean over seeds
        "val_accuracy_per_seed": best.accuracy.tolist(),
        "best_step_per_seed": best.step.tolist(),
        "val_accuracy": stats.seed_summary(best.accuracy).as_dict(),
        "baseline_bag_of_words": kept | {"test_wilson_95": stats.wilson_interval(hits, len(data.test.labels))},
        "against_baseline": comparison,
        "examples": {name: len(getattr(data, name).labels) for name in SPLITS},
    }


def model_text(config: SentimentConfig) -> str:
    """The model in words: "BiLSTM-64, max pooling, embeddings 100 trained from scratch (word dropout 0.1, ...)"."""
    name = ("Bi" if config.bidirectional else "") + config.cell.upper()
    hybrid = " + bag-of-words logit in the readout" if config.hybrid else ""
    pooling = SentencePooling(config.pooling).value
    pretrain, start = config.pretrain, "trained from scratch"
    text = "the training sentences" + (" and 13,098 unlabeled snippets" if pretrain.unlabeled else "")
    if pretrain.svd_embeddings:
        start = f"started from the PPMI-SVD of {text}"
    if pretrain.steps:
        start += f", embedding and encoder pretrained as a language model for {pretrain.steps} steps on {text}"
    return (f"{name}-{config.hidden_size}, {pooling} pooling, embeddings {config.embed_size} {start} "
            f"(word dropout {config.word_dropout}, dropout {config.dropout}){hybrid}")  # fmt: skip


def write_report(run: Run, config: SentimentConfig, results: dict, vocabulary_size: int) -> None:
    """report.md: the per-seed table against bag of words, the pooled statement, and the validation curves."""
    comparison, baseline = results["against_baseline"], results["baseline_bag_of_words"]
    curves = [f"val/accuracy_seed{i}" for i in range(config.seeds)]
    plots.learning_curves(run, curves, run.plot_path("val_accuracy"), title="validation accuracy per seed")
    plots.learning_curves(run, ["train/loss"], run.plot_path("train_loss"), title="train loss (mean of seeds)")
    table = markdown_table(seed_rows(comparison, results["val_accuracy_per_seed"], "bag of words"))
    low, high = baseline["test_wilson_95"]
    run.write_report(
        f"# Sentiment: movie-review sentence polarity\n\n{results['examples']} sentences (seeded 80/10/10 split), "
        f"vocabulary {vocabulary_size} words from train. {model_text(config)}; {config.seeds} seeds trained at once "
        f"with `fit_many`, each seed's best-on-validation parameters (steps {results['best_step_per_seed']}).\n\n"
        f"Bag-of-words logistic regression (binary uni+bigrams, C = {baseline['C']} on validation): "
        f"{baseline['test_accuracy']:.4f} (95% Wilson {low:.4f}-{high:.4f}).\n\n{table}\n\n"
        f"{pooled_statement(comparison, 'bag-of-words logistic regression')}\n\n"
        "![validation accuracy](plots/val_accuracy.png)\n![train loss](plots/train_loss.png)\n"
    )


def headline(results: dict) -> tuple[str, ...]:
    """The report's opening numbers: each seed's best-on-validation model against bag of words on the test set."""
    return (compared.headline(results["against_baseline"], "bag of words"),)


def limited(data: Sentiment, limit: int | None) -> Sentiment:
    """The first ``limit`` sentences of each split (all of them for None)."""
    if limit is None:
        return data
    splits = zip(SPLITS, data)
    return data._replace(**{name: type(split)(*(field[:limit] for field in split)) for name, split in splits})


def run(config: SentimentConfig) -> Outcome:
    """The baseline, the seeds (from PPMI-SVD or pretrained embeddings), their best-on-validation test accuracy
    against the baseline; results, checkpoint of the best params, plots and report."""
    run = config.run.open("sentiment", config)
    data = limited(load_sentiment(), config.limit)
    baseline = bag_of_words(data, config.regularisation)
    encoder = RNN(make_cell(config.cell), config.hidden_size, bidirectional=config.bidirectional)
    model = SentimentModel(encoder, len(data.vocabulary), config.embed_size, config.pooling, config.hybrid)
    best = BestPerSeed(model, data.val, baseline["val_logits"], config.eval_every)
    keys = jax.random.split(jax.random.key(config.run.seed + 7), config.seeds)
    pretrained, pretrain_seconds = sentiment_pretrain.pretrain(model, data, config.pretrain, keys,
                                                               PrefixedRun(run, "pretrain"), config.run.progress)
    seconds = train_seeds(model, data, baseline, best, config, run, pretrained)
    with Checkpointer(run.checkpoint_dir, save_every=1, keep=1) as checkpointer:
        checkpointer.save(config.num_steps, best.params)  # each seed's best-on-validation params, stacked
    results = evaluate(model, data, baseline, best)
    results |= {"train_seconds_all_seeds": seconds, "pretrain_seconds_all_seeds": pretrain_seconds}
    run.write_results(results)
    write_report(run, config, results, len(data.vocabulary))
    return Outcome(results, headline(results), (), run.directory, config.run.quiet)
