"""Pretraining the sentiment RNN on text alone (no labels, no downloaded vectors), then fine-tuning it.

Two ways of starting the classifier somewhere better than at random, both from the training sentences (labels
unused) and the archive's unlabeled snippets (Amazon reviews, NYT editorials, tweets):

    packed = pack_sentences(tokens, lengths, window=40)            # sentences packed into rows, starts marked
    table = ppmi_embeddings(tokens, lengths, vocab_size, 100)      # SVD of the PPMI co-occurrence matrix
    lm = LanguageModel(RNN(make_cell("lstm"), 64), vocab_size, 100, output_words=4000)
    params = pretrain_seeds(lm, packed, config, keys, table)      # next-word LM per seed (Dai & Le 2015, LM-LSTM)
    states = with_pretrained(states, params)                      # the classifier's embedding and encoder

A bidirectional encoder is pretrained as two language models (Peters et al. 2018): the forward half of each output
predicts the next word, the backward half the previous word, through one shared output layer.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.checks import arguments
from rnnjax.core.unroll import RNN
from rnnjax.data import device_batch_indices
from rnnjax.data.sentiment import UNKNOWN, Sentiment, encode, load_unlabeled_texts
from rnnjax.tasks.heads import dense, dense_init, embedding_init
from rnnjax.tasks.losses import cross_entropy, length_mask
from rnnjax.training import loop, optimizers
from rnnjax.training.step import TrainState


class PackedText(NamedTuple):
    """Sentences laid end to end in rows of ``window`` tokens."""

    tokens: np.ndarray  # int32 [rows, window], 0 after each row's length
    starts: np.ndarray  # bool [rows, window], True where a sentence begins
    lengths: np.ndarray  # int32 [rows]; only the last row is shorter than window


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Language-model pretraining of the classifier's embedding and encoder (0 steps: none)."""

    steps: int = 0
    """language-model training steps (0: no LM pretraining)."""
    batch_size: int = 64
    """packed rows per step."""
    window: int = 40
    """tokens per packed row."""
    output_words: int = 4000
    """the LM predicts the most frequent words; rarer ones are its <unk>."""
    unlabeled: bool = True
    """add the archive's Amazon, NYT and tweet snippets to the training sentences."""
    svd_embeddings: bool = False
    """start the embedding from the PPMI-SVD of the same text (also without LM steps)."""
    dropout: float = 0.2
    """dropout on the embedded words."""
    learning_rate: float = 3e-3
    """peak AdamW learning rate (warmup, then cosine decay over the steps)."""


def pack_sentences(tokens: np.ndarray, lengths: np.ndarray, window: int) -> PackedText:
    """The valid tokens of each row of ``tokens`` [sentences, time], concatenated and cut into rows of ``window``."""
    arguments.positive_int("window", window)
    if tokens.ndim != 2 or lengths.shape != tokens.shape[:1]:
        raise ValueError(f"tokens must be [sentences, time] with lengths [sentences]; got {tokens.shape}, "
                         f"{lengths.shape}")  # fmt: skip
    valid = np.arange(tokens.shape[1])[None] < lengths[:, None]
    stream = tokens[valid]
    starts = np.zeros(len(stream), bool)
    starts[np.concatenate([[0], np.cumsum(lengths)[:-1]])] = True
    rows = -(-len(stream) // window)
    padded, padded_starts = np.zeros(rows * window, np.int32), np.zeros(rows * window, bool)
    padded[: len(stream)], padded_starts[: len(stream)] = stream, starts
    row_lengths = np.minimum(window, len(stream) - window * np.arange(rows)).astype(np.int32)
    return PackedText(padded.reshape(rows, window), padded_starts.reshape(rows, window), row_lengths)


def cooccurrence(tokens: np.ndarray, lengths: np.ndarray, vocab_size: int, window: int):
    """Symmetric counts [vocab, vocab] (scipy CSR) of word pairs at most ``window`` apart in one sentence,
    <pad> and <unk> left out."""
    from scipy import sparse

    valid = (np.arange(tokens.shape[1])[None] < lengths[:, None]) & (tokens > UNKNOWN)
    rows, cols = [], []
    for offset in range(1, window + 1):
        pair = valid[:, :-offset] & valid[:, offset:]
        rows.append(tokens[:, :-offset][pair])
        cols.append(tokens[:, offset:][pair])
    rows, cols = np.concatenate(rows + cols), np.concatenate(cols + rows)
    return sparse.coo_matrix((np.ones(len(rows), np.float64), (rows, cols)), (vocab_size, vocab_size)).tocsr()


def ppmi(counts, smoothing: float = 0.75):
    """max(0, log p(w, c) / (p(w) p_a(c))) with context counts raised to ``smoothing`` (Levy et al. 2015)."""
    counts = counts.tocoo()
    words = np.asarray(counts.sum(1)).ravel()  # p(w) = words / total
    contexts = np.asarray(counts.sum(0)).ravel() ** smoothing  # p_a(c) = contexts / contexts.sum()
    values = np.log(counts.data * contexts.sum() / (words[counts.row] * contexts[counts.col]))  # total cancels
    keep = values > 0
    return type(counts)((values[keep], (counts.row[keep], counts.col[keep])), counts.shape).tocsr()


def ppmi_embeddings(tokens, lengths, vocab_size: int, embed_size: int, window: int = 2, scale: float = 0.1):
    """U_k sqrt(S_k) of the PPMI matrix's top ``embed_size`` singular triples, rescaled to entry sd ``scale``
    (the classifier's random embedding sd): float32 [vocab, embed]; words never seen get zero rows."""
    from sklearn.utils.extmath import randomized_svd

    matrix = ppmi(cooccurrence(tokens, lengths, vocab_size, window))
    vectors, values, _ = randomized_svd(matrix, embed_size, n_iter=7, random_state=0)
    table = vectors * np.sqrt(values)
    return (scale * table / table.std()).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class LanguageModel:
    """logits_t = W h_t + b over the ``output_words`` most frequent ids (others are <unk>), h = RNN(E[tokens]).

    Holds the classifier's ``embedding`` and ``encoder`` params under the same names (see :func:`with_pretrained`).
    """

    encoder: RNN
    vocab_size: int
    embed_size: int
    output_words: int

    def __post_init__(self):
        for name in ("vocab_size", "embed_size", "output_words"):
            arguments.positive_int(name, getattr(self, name))
        if not UNKNOWN < self.output_words <= self.vocab_size:
            raise ValueError(f"output_words must be in ({UNKNOWN}, vocab_size={self.vocab_size}]; "
                             f"got {self.output_words}")  # fmt: skip

    def init(self, key: jax.Array, embedding: jax.Array | None = None) -> dict[str, Any]:
        embed_key, encoder_key, output_key = jax.random.split(key, 3)
        if embedding is None:
            embedding = 0.1 * embedding_init(embed_key, self.vocab_size, self.embed_size)
        arguments.has_shape("embedding", embedding, (self.vocab_size, self.embed_size))
        return {"embedding": jnp.asarray(embedding, jnp.float32),
                "encoder": self.encoder.init(encoder_key, self.embed_size, jnp.float32),
                "output": dense_init(output_key, self.encoder.hidden_size, self.output_words)}  # fmt: skip

    def outputs(self, params, words: jax.Array, starts: jax.Array, lengths: jax.Array) -> jax.Array:
        """Encoder outputs [rows, window, directions * hidden]; each sentence runs as if alone (reset at starts)."""
        return self.encoder.apply(params["encoder"], words, lengths=lengths, reset=starts)[0]

    def loss(self, params, words, packed_batch) -> jax.Array:
        """Mean next-word (and previous-word) cross-entropy within sentences, of embedded words."""
        tokens, starts, lengths = packed_batch
        outputs = self.outputs(params, words, starts, lengths)
        targets = jnp.where(tokens < self.output_words, tokens, UNKNOWN)
        valid = length_mask(lengths, tokens.shape[1])
        hidden = self.encoder.hidden_size
        # forward: position t predicts t + 1 when t + 1 is valid and in the same sentence
        next_valid = valid[:, 1:] & ~starts[:, 1:]
        losses = [cross_entropy(dense(params["output"], outputs[:, :-1, :hidden]), targets[:, 1:], next_valid)]
        if self.encoder.bidirectional:  # backward: position t predicts t - 1 within the sentence
            losses.append(cross_entropy(dense(params["output"], outputs[:, 1:, hidden:]), targets[:, :-1],
                                        next_valid))  # fmt: skip
        return sum(losses) / len(losses)


def lm_loss(model: LanguageModel, dropout: float, params, batch, key):
    """:meth:`LanguageModel.loss` with dropout on the embedded words; bind model and dropout with partial."""
    words = params["embedding"][batch[0]]
    keep = jax.random.bernoulli(key, 1.0 - dropout, words.shape)
    loss = model.loss(params, jnp.where(keep, words / (1.0 - dropout), 0.0), batch)
    return loss, {"perplexity": jnp.exp(loss)}


def pretrain_seeds(model: LanguageModel, packed: PackedText, config: PretrainConfig, keys: jax.Array,
                   embedding: np.ndarray | None = None, run: Any = None,
                   progress: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """One language model per key, trained in one ``fit_many`` for ``config.steps``; the stacked params
    (``progress``: as in :func:`rnnjax.training.loop.fit_many`)."""
    tokens, starts, lengths = (jnp.asarray(a) for a in packed)
    data_key = jax.random.fold_in(keys[0], 1000)

    def batch_fn(step):  # jittable: the row order is a pure function of step
        index = device_batch_indices(data_key, step, len(lengths), config.batch_size)
        return tokens[index], starts[index], lengths[index]

    optimizer = optimizers.make_optimizer(optimizers.OptimizerConfig(
        learning_rate=config.learning_rate, warmup_steps=min(100, config.steps // 10), decay="cosine",
        decay_steps=config.steps, name="adamw"))  # fmt: skip
    init = functools.partial(model.init, embedding=None if embedding is None else jnp.asarray(embedding))
    states = loop.init_many(init, optimizer, keys)
    log_every = max(1, config.steps // 10)
    states, _ = loop.fit_many(functools.partial(lm_loss, model, config.dropout), optimizer, states, batch_fn,
                               config.steps, run=run, log_every=log_every, description="pretrain",
                               progress=progress)  # fmt: skip
    return states.params


def pretraining_corpus(data: Sentiment, unlabeled: bool) -> tuple[np.ndarray, np.ndarray]:
    """Token ids [sentences, time] and lengths of the training sentences (labels unused) and, when ``unlabeled``,
    the archive's other snippets, in the classifier's vocabulary. Validation and test sentences are never read."""
    extra = encode(list(load_unlabeled_texts()), data.vocabulary, data.train.tokens.shape[1]) if unlabeled else None
    if extra is None:
        return data.train.tokens, data.train.lengths
    return np.concatenate([data.train.tokens, extra[0]]), np.concatenate([data.train.lengths, extra[1]])


def pretrain(classifier: Any, data: Sentiment, config: PretrainConfig, keys: jax.Array, run: Any = None,
             progress: bool | None = None):  # fmt: skip
    """Per key, the ``embedding`` (and, after LM steps, ``encoder``) for ``classifier`` (a SentimentModel), stacked
    [seeds, ...], and the seconds it took; (None, 0.0) when ``config`` asks for no pretraining."""
    if not config.steps and not config.svd_embeddings:
        return None, 0.0
    started = time.perf_counter()
    tokens, lengths = pretraining_corpus(data, config.unlabeled)
    table = None
    if config.svd_embeddings:
        table = ppmi_embeddings(tokens, lengths, classifier.vocab_size, classifier.embed_size)
    if not config.steps:
        return {"embedding": jnp.broadcast_to(jnp.asarray(table), (len(keys), *table.shape))}, 0.0
    model = LanguageModel(classifier.encoder, classifier.vocab_size, classifier.embed_size, config.output_words)
    packed = pack_sentences(tokens, lengths, config.window)
    params = pretrain_seeds(model, packed, config, keys, table, run, progress)
    return jax.block_until_ready(params), time.perf_counter() - started


def with_pretrained(states: TrainState, pretrained: dict[str, Any]) -> TrainState:
    """Stacked classifier states with their ``embedding`` and ``encoder`` replaced by ``pretrained``'s.

    Adam's moments start at zero whatever the params are, so replacing params after ``init_many`` is the same as
    initialising from them.
    """
    params = dict(states.params)
    for name in set(pretrained) & {"embedding", "encoder"}:
        ours, theirs = jax.tree.structure(params[name]), jax.tree.structure(pretrained[name])
        shapes = [(a.shape, b.shape) for a, b in zip(jax.tree.leaves(params[name]), jax.tree.leaves(pretrained[name]))]
        if ours != theirs or any(a != b for a, b in shapes):
            raise ValueError(f"pretrained[{name!r}] must match the classifier's {name} (structure {ours}, shapes "
                             f"{[a for a, _ in shapes]}); got {theirs}, {[b for _, b in shapes]}")  # fmt: skip
        params[name] = pretrained[name]
    return states._replace(params=params)
