"""Digit-strip captioning over seeds: CNN vector -> GRU decoder, trained jointly, one model per seed.

Each seed splits the digit scans into its own train/test pools, draws its own strips and initialisation; the
seeds train one after another (see :func:`train_seeds`); test strips show only that seed's unseen scans.

    outcome = run(Config())                                       # the whole experiment
    pools = [captions.split_digits(seed) for seed in seeds]
    params = train_seeds(config, run, model, pools, seeds)        # leaves [seeds, ...]
    tests = held_out_strips(pools, seeds, config.num_test)        # each seed's unseen scans
    results = evaluate(config, model, params, pools, tests, seeds)  # per seed: greedy, beam, Wilson; seed summaries
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis.plots import learning_curves, new_axes, new_figure, save_figure
from rnnjax.apps.outcome import Outcome, Target, seeds_text
from rnnjax.apps.seeds import DECODINGS, decoded_seed, decoding_widths, summarize_seeds, with_interval
from rnnjax.core.cells import gru
from rnnjax.data import captions
from rnnjax.tasks.metrics import word_error_rate
from rnnjax.tasks.seq2seq import Decoder
from rnnjax.tasks.vision import Captioner
from rnnjax.training import recipes, stats
from rnnjax.training.config import RunConfig, RunField, require_positive
from rnnjax.training.optimizers import OptimizerConfig
from rnnjax.training.runs import Run

MAX_LENGTH = captions.MAX_DIGITS + 2
IMAGE_SHAPE = (captions.TILE, captions.TILE * captions.MAX_DIGITS, 1)
DATA_STREAM = 1  # fold_in(key(seed), DATA_STREAM) draws a seed's strips; init_many splits key(seed) for the rest
TARGET = 0.9  # beam exact match on every seed


@dataclasses.dataclass(frozen=True)
class Config:
    """Caption strips of sklearn digit scans with a CNN vector and an RNN decoder."""

    num_test: int = 2000
    """test strips per seed, tiled from that seed's unseen scans."""
    channels: int = 32
    """channels of both convolutions."""
    vector_size: int = 128
    """size of the CNN vector, the decoder's initial state."""
    embed_size: int = 16
    """token embedding size of the decoder."""
    batch_size: int = 64
    """strips per step, drawn fresh each step."""
    steps: int = 3000
    """training steps per seed."""
    seeds: int = 3
    """seeds run.seed + 0, 1, ...: each its own scan split, strips and initialisation (>= 2)."""
    beam_width: int = 3
    """beam width at test time."""
    optimizer: OptimizerConfig = OptimizerConfig(learning_rate=2e-3, warmup_steps=100, decay="cosine", decay_steps=3000)
    """Adam and its learning-rate schedule."""
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(self, "num_test", "channels", "vector_size", "embed_size", "batch_size", "steps",
                         "beam_width", "seeds")  # fmt: skip
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 for an interval over seeds; got {self.seeds}")

    @classmethod
    def quick(cls) -> "Config":
        """100 test strips, a small model, 2 seeds, 40 steps: seconds (it does not caption yet)."""
        optimizer = OptimizerConfig(learning_rate=5e-3, decay="cosine", decay_steps=40)
        return cls(num_test=100, channels=8, vector_size=32, embed_size=8, batch_size=32, steps=40, beam_width=2,
                   seeds=2, optimizer=optimizer, run=RunConfig.quick())  # fmt: skip


PRESETS = {"quick": Config.quick}


class StripEncoder(nn.Module):
    """conv3x3 -> relu (x2) -> maxpool2 -> flatten -> dense: keeps where each digit sits (no global pooling)."""

    channels: int = 32
    output_size: int = 128

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x = nn.relu(nn.Conv(self.channels, (3, 3), padding="SAME")(images))
        x = nn.relu(nn.Conv(self.channels, (3, 3), padding="SAME")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        return nn.Dense(self.output_size)(x.reshape(*x.shape[:-3], -1))


def build(config: Config) -> Captioner:
    decoder = Decoder(gru(), captions.VOCAB_SIZE, config.vector_size, config.embed_size, init_size=config.vector_size,
                      start_id=captions.BOS, end_id=captions.EOS)
    return Captioner(StripEncoder(config.channels, config.vector_size), decoder)


def loss_fn(model: Captioner, params, batch, key):
    """Teacher-forced cross-entropy of one batch of strips."""
    lengths = (batch["tokens"] != captions.PAD).sum(1)
    return model.loss(params, batch["images"][..., None], batch["tokens"], lengths), {}


def seed_strips(data_key, images, labels, batch_size: int, step):
    """Jittable ``batch(step)`` of one seed: fresh strips of its training scans drawn by fold_in(data_key, step)."""
    return captions.tile_on_device(jax.random.fold_in(data_key, step), images, labels, batch_size)


def train_seeds(config: Config, run: Run, model: Captioner, pools, seeds: Sequence[int]):
    """Seeds one after another, each on its own strips; the stacked params (leaves ``[seeds, ...]``).

    Not one fit_many: vmapping the convolutions over seeds is slow on XLA's CPU (measured 2026-11-29: 2 quick-size
    seeds 25-30 ms a step vmapped vs 4 ms one seed alone; the default size ran > 2 CPU-s a step). Logs
    ``seed<s>/train/loss``."""
    trained = []
    for seed, seed_pools in zip(seeds, pools):
        key = jax.random.key(seed)
        images, labels = jnp.asarray(seed_pools.train_images), jnp.asarray(seed_pools.train_labels)
        batches = jax.jit(functools.partial(seed_strips, jax.random.fold_in(key, DATA_STREAM), images, labels,
                                            config.batch_size))
        trained.append(recipes.train_model(
            functools.partial(loss_fn, model), model.init(key, IMAGE_SHAPE), config.optimizer, batches, config.steps,
            key=key, checkpoint_dir=run.path("checkpoints", f"seed{seed}"), save_every=max(config.steps // 3, 1),
            run=recipes.PrefixedRun(run, f"seed{seed}"), description=f"caption seed {seed}",
            progress=config.run.progress))
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trained)


def caption_seeds(model: Captioner, params, images: np.ndarray, beam_width: int) -> list[list[str]]:
    """Per seed, captions of its own test strips ``images [seeds, n, 8, 32]``: greedy when beam_width == 0."""

    @jax.jit
    def one(seed_params, seed_images):
        if beam_width == 0:
            return model.greedy(seed_params, seed_images[..., None], max_length=MAX_LENGTH).tokens
        beams = model.beam_search(seed_params, seed_images[..., None], beam_width=beam_width, max_length=MAX_LENGTH)
        return beams.tokens[:, 0]

    tokens = [np.asarray(one(one_seed(params, i), jnp.asarray(images[i]))) for i in range(len(images))]
    return [[captions.decode_tokens(row) for row in seed_tokens] for seed_tokens in tokens]


def scores(references: list[str], predicted: list[str]) -> dict:
    """Exact match (with its 95% Wilson interval), word accuracy (reference positions right) and word error rate."""
    hits = sum(r == p for r, p in zip(references, predicted))
    right = sum(sum(a == b for a, b in zip(r.split(), p.split())) for r, p in zip(references, predicted))
    count = len(references)
    return {"exact_match": hits / count, "exact_match_wilson_95": stats.wilson_interval(hits, count),
            "word_accuracy": right / sum(len(r.split()) for r in references),
            "word_error_rate": float(word_error_rate(references, predicted))}


def single_digit_vectors(model: Captioner, params, pools: captions.DigitPools) -> np.ndarray:
    """CNN vectors of each unseen scan alone in the first slot of an empty strip, [n, vector]."""
    strips = np.zeros((len(pools.test_images), *IMAGE_SHAPE[:2]), np.float32)
    strips[:, :, : captions.TILE] = pools.test_images
    return np.asarray(jax.jit(model.encode)(params, jnp.asarray(strips)[..., None]))


def pca_nearest_centroid(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """The vectors' first two principal components, and nearest-centroid accuracy of the digits in that plane."""
    centred = vectors - vectors.mean(0)
    points = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    digits = np.unique(labels)
    centroids = np.stack([points[labels == d].mean(0) for d in digits])
    nearest = digits[np.linalg.norm(points[:, None] - centroids[None], axis=-1).argmin(1)]
    return points, float((nearest == labels).mean())


def one_seed(params, index: int):
    """Seed ``index``'s params out of the stacked ones (leaves ``[seeds, ...]``)."""
    return jax.tree.map(lambda leaf: leaf[index], params)


def held_out_strips(pools: Sequence[captions.DigitPools], seeds: Sequence[int], count: int) -> list:
    """Per seed, ``count`` strips of its unseen scans (the numpy :func:`rnnjax.data.captions.tile`)."""
    return [captions.tile(p.test_images, p.test_labels, count, seed * 2 + 2) for p, seed in zip(pools, seeds)]


def seed_result(seed: int, test: captions.CaptionSet, decoded: dict[str, list[str]], pca_accuracy: float) -> dict:
    """One seed: greedy and beam scores, how often beam width 1 is greedy, the PCA check, a few captions."""
    return decoded_seed(seed, decoded, functools.partial(scores, test.captions)) | {
        "pca_nearest_centroid_accuracy": pca_accuracy,
        "examples": [list(pair) for pair in zip(test.captions, decoded["beam"])][:12]}  # fmt: skip


def summarize(per_seed: list[dict]) -> dict:
    """Per decoding and metric: the seed summary (mean, sd, 95% t-interval); the smallest exact match."""
    metrics = {f"{decoding}_{metric}": functools.partial(lambda d, m, seed: seed[d][m], decoding, metric)
               for decoding in DECODINGS for metric in ("exact_match", "word_accuracy")}  # fmt: skip
    return summarize_seeds(per_seed, metrics, minimum=tuple(f"{d}_exact_match" for d in DECODINGS))


def evaluate(config: Config, model: Captioner, params, pools, tests, seeds: Sequence[int]) -> dict:
    """Every seed on its own test strips: greedy, beam and beam width 1 captions, the PCA check, seed summaries."""
    images = np.stack([t.images for t in tests])
    decoded = {name: caption_seeds(model, params, images, width)
               for name, width in decoding_widths(config.beam_width).items()}
    per_seed = []
    for i, (seed, test, seed_pools) in enumerate(zip(seeds, tests, pools)):
        vectors = single_digit_vectors(model, one_seed(params, i), seed_pools)
        _, pca_accuracy = pca_nearest_centroid(vectors, seed_pools.test_labels)
        per_seed.append(seed_result(seed, test, {name: d[i] for name, d in decoded.items()}, pca_accuracy))
    return summarize(per_seed)


def plot_captions(path, images: np.ndarray, examples: Sequence[tuple[str, str]]) -> None:
    """Twelve test strips titled with their beam caption (red: wrong)."""
    figure = new_figure(figsize=(9, 5))
    axes = figure.subplots(4, 3)
    for axis, image, (reference, guess) in zip(axes.flat, images, examples):
        axis.imshow(image, cmap="gray_r")
        axis.set_title(guess, fontsize=9, color="k" if guess == reference else "r")
        axis.axis("off")
    figure.suptitle("generated captions of unseen test strips (red: wrong)")
    save_figure(figure, path)


def plot_pca(path, model: Captioner, seed_params, pools: captions.DigitPools) -> None:
    """The single-digit vectors of one seed in their first two principal components, coloured by digit."""
    points, _ = pca_nearest_centroid(single_digit_vectors(model, seed_params, pools), pools.test_labels)
    figure, axes = new_axes(figsize=(5.5, 5))
    for digit in range(10):
        axes.scatter(*points[pools.test_labels == digit].T, s=6, label=captions.WORDS[digit])
    axes.legend(markerscale=3, fontsize=7)
    axes.set_title("CNN vectors of single unseen digits (PCA)")
    save_figure(figure, path)


def seed_rows(results: dict) -> str:
    """One markdown row per seed: exact match (95% Wilson) and word accuracy, greedy and beam; the PCA check."""
    rows = []
    for seed in results["seeds"]:
        cells = [f"{with_interval(seed[d]['exact_match'], seed[d]['exact_match_wilson_95'])} | "
                 f"{seed[d]['word_accuracy']:.4f}" for d in DECODINGS]
        rows.append(f"| {seed['seed']} | {' | '.join(cells)} | {seed['pca_nearest_centroid_accuracy']:.3f} |")
    return "\n".join(rows)


def report(config: Config, results: dict) -> str:
    lines = "\n".join(f"- {d} {m.replace('_', ' ')}: {stats.SeedSummary.from_dict(results[f'{d}_{m}']).text()}"
                      for d in DECODINGS for m in ("exact_match", "word_accuracy"))
    beam_one = min(seed["beam1_equals_greedy"] for seed in results["seeds"])
    return f"""# Digit-strip captioning (CNN vector -> GRU decoder, beam width {config.beam_width})

{results['num_train_scans']} training scans, {results['num_test_scans']} unseen test scans and {config.num_test} test
strips per seed; {config.seeds} seeds (each its own scan split, strips and initialisation), trained one after
another in {results['train_seconds_all_seeds']:.0f} s. Mean +- sample sd (95% t-interval over seeds):
{lines}

| seed | greedy exact (95% Wilson) | greedy word acc. | beam exact (95% Wilson) | beam word acc. | PCA centroid acc. |
|---|---|---|---|---|---|
{seed_rows(results)}

Target exact match >= {results['target_exact_match']} (beam) on every seed:
{'met' if results['target_met'] else 'NOT met'}.
PCA: nearest-centroid accuracy of single-digit vectors in their 2-D PCA plane (chance 0.1). Beam width 1 gives the
greedy caption for {beam_one:.4f} of the test strips (worst seed).

![captions](plots/test_captions.png) ![pca](plots/vector_pca.png) ![loss](plots/loss.png)
"""


def headline(results: dict) -> tuple[str, ...]:
    """The report's opening numbers: caption exact match (beam, greedy) and word accuracy, over seeds."""
    text = lambda key: seeds_text(results[key], percent=True)  # noqa: E731
    return (f"caption exact match: beam {text('beam_exact_match')}; greedy {text('greedy_exact_match')}",
            f"word accuracy (beam): {text('beam_word_accuracy')}")


def targets(results: dict) -> tuple[Target, ...]:
    """The docstring's target: caption exact match >= 90% (beam) on every seed."""
    statement = (f"caption exact match >= {results['target_exact_match']:.0%} (beam) on every seed (worst seed "
                 f"{100 * results['beam_exact_match_min']:.1f}%)")  # fmt: skip
    return (Target(statement, bool(results["target_met"])),)


def run(config: Config) -> Outcome:
    """Every seed on its own scan split: train, caption its unseen strips, then results, plots and report."""
    run = config.run.open("caption_digits", config)
    seeds = [config.run.seed + offset for offset in range(config.seeds)]
    pools = [captions.split_digits(seed) for seed in seeds]
    model = build(config)
    started = time.perf_counter()
    params = train_seeds(config, run, model, pools, seeds)
    seconds = time.perf_counter() - started
    tests = held_out_strips(pools, seeds, config.num_test)
    results = evaluate(config, model, params, pools, tests, seeds)
    results |= {"num_train_scans": len(pools[0].train_images), "num_test_scans": len(pools[0].test_images),
                "train_seconds_all_seeds": seconds, "target_exact_match": TARGET,
                "target_met": results["beam_exact_match_min"] >= TARGET}  # fmt: skip
    run.write_results(results)
    plot_captions(run.plot_path("test_captions"), tests[0].images, results["seeds"][0]["examples"])
    plot_pca(run.plot_path("vector_pca"), model, one_seed(params, 0), pools[0])
    learning_curves(run, [f"seed{seed}/train/loss" for seed in seeds], run.plot_path("loss"), log_y=True)
    run.write_report(report(config, results))
    return Outcome(results, headline(results), targets(results), run.directory, config.run.quiet)
