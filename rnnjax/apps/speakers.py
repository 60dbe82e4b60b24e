"""Speaker identification on JapaneseVowels: the model, its training over seeds, the baseline and the report.

    outcome = run(SpeakersConfig())                               # the whole experiment
    model = SpeakerModel(RNN(make_cell("gru"), 64, bidirectional=True), poolings=("mean",), deltas=True)
    masks = np.ones((config.seeds, len(data.train.labels)), bool)  # one row per run: the utterances it trains on
    states, metrics, seconds = train_seeds(model, data, config, masks)  # every run at once (fit_many)
    results = evaluate(model, states.params, data)                # per seed, ensemble, baseline, McNemar
    write_report(run, config, results)

The frames are already standardised per coefficient with train statistics (:func:`rnnjax.data.speakers.load_speakers`).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.analysis import plots
from rnnjax.apps import comparison as compared
from rnnjax.apps.comparison import pooled_statement, seed_rows
from rnnjax.apps.outcome import Outcome
from rnnjax.checks import arguments
from rnnjax.core.cells import make_cell
from rnnjax.core.unroll import RNN
from rnnjax.data import subset_batch_indices
from rnnjax.data.speakers import NUM_COEFFICIENTS, NUM_SPEAKERS, Speakers, Split, load_speakers
from rnnjax.tasks.heads import Pooling, dense, dense_init, pool
from rnnjax.tasks.losses import cross_entropy, length_mask
from rnnjax.training import loop, optimizers, stats
from rnnjax.training.checkpoint import Checkpointer
from rnnjax.training.config import RunConfig, RunField, require_positive
from rnnjax.training.runs import Run, markdown_table


@dataclasses.dataclass(frozen=True)
class SpeakersConfig:
    """JapaneseVowels speaker identification with masked variable-length batches."""

    cell: str = "gru"
    """recurrent cell (rnnjax.core.cells.make_cell name)."""
    hidden_size: int = 64
    """recurrent units (per direction)."""
    num_layers: int = 1
    """stacked recurrent layers."""
    bidirectional: bool = True
    """read each utterance both ways."""
    poolings: tuple[str, ...] = ("mean",)
    """poolings over valid frames, concatenated (mean, max, last)."""
    deltas: bool = True
    """append centred frame differences to the 12 coefficients."""
    input_noise: float = 0.5
    """sd of the Gaussian noise added to the training frames."""
    dropout: float = 0.5
    """dropout on the pooled features."""
    frame_drop: float = 0.0
    """chance that a training frame is dropped (a random speed-up of the utterance)."""
    label_smoothing: float = 0.1
    """chosen on validation (2026-11-29, 5 seeds, 81 held-out utterances): deltas + smoothing 0.1 99.26% vs 97.04%."""
    seeds: int = 5
    """models trained at once with fit_many (>= 2 for an interval over seeds)."""
    batch_size: int = 32
    """utterances per step and run."""
    num_steps: int = 1000
    """training steps."""
    chunk_steps: int = 250
    """steps per compiled chunk of the training scan."""
    val_fraction: float = 0.0
    """part of the 270 training utterances held out for validation (stratified, seeded)."""
    cv_folds: int = 5
    """cross-validation runs trained next to the seeds, each without one fold of the training utterances (0: none);
    their out-of-fold accuracy is the validation number when the seeds train on all 270."""
    optimizer: optimizers.OptimizerConfig = optimizers.OptimizerConfig(
        learning_rate=3e-3, warmup_steps=50, decay="cosine", decay_steps=1000, weight_decay=1e-2, name="adamw"
    )
    """AdamW and its learning-rate schedule."""
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(self, "hidden_size", "num_layers", "seeds", "batch_size", "num_steps", "chunk_steps")
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 for an interval over seeds; got {self.seeds}")
        if self.cv_folds == 1 or self.cv_folds < 0:
            raise ValueError(f"cv_folds must be 0 or >= 2; got {self.cv_folds}")
        if not 0.0 <= self.val_fraction < 1.0 or (self.val_fraction == 0.0 and not self.cv_folds):
            raise ValueError(f"val_fraction must be in [0, 1), and > 0 when cv_folds is 0; got {self.val_fraction}")

    @classmethod
    def quick(cls) -> "SpeakersConfig":
        """Two small BiGRUs and two folds, 60 steps: seconds."""
        optimizer = optimizers.OptimizerConfig(learning_rate=1e-2, warmup_steps=5, decay="cosine", decay_steps=60)
        return cls(hidden_size=16, seeds=2, cv_folds=2, num_steps=60, chunk_steps=30, optimizer=optimizer,
                   run=RunConfig.quick())  # fmt: skip


PRESETS = {"quick": SpeakersConfig.quick}


def neighbours(frames: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(x_{t-1}, x_{t+1}) with t clamped to the valid frames [0, length); frames [batch, time, coefficients]."""
    time_index = jnp.arange(frames.shape[1])
    last = jnp.maximum(lengths - 1, 0)[:, None]
    previous = jnp.minimum(jnp.maximum(time_index - 1, 0)[None], last)
    following = jnp.minimum(time_index[None] + 1, last)
    return (jnp.take_along_axis(frames, previous[..., None], axis=1),
            jnp.take_along_axis(frames, following[..., None], axis=1))  # fmt: skip


def with_deltas(frames: jax.Array, lengths: jax.Array) -> jax.Array:
    """[x_t, (x_{t+1} - x_{t-1}) / 2] on valid frames, zero after each length: [batch, time, 2 coefficients]."""
    previous, following = neighbours(frames, lengths)
    valid = length_mask(lengths, frames.shape[1])[..., None]
    return jnp.where(valid, jnp.concatenate([frames, 0.5 * (following - previous)], -1), 0.0)


@dataclasses.dataclass(frozen=True)
class SpeakerModel:
    """logits = W dropout(concat_p pool_p(RNN(features(x)))) + b over the valid frames of each utterance.

    Attributes:
      encoder: the (bidirectional, stacked) RNN.
      poolings: poolings over valid frames whose outputs are concatenated (MEAN, MAX, LAST).
      deltas: append the centred differences (x_{t+1} - x_{t-1}) / 2 to each frame.
    """

    encoder: RNN
    poolings: tuple[Pooling, ...] = (Pooling.MEAN,)
    deltas: bool = False

    def __post_init__(self):
        if not self.poolings:
            raise ValueError("poolings must name at least one pooling; got ()")
        object.__setattr__(self, "poolings", tuple(arguments.as_enum(Pooling, p, "poolings") for p in self.poolings))

    @property
    def input_size(self) -> int:
        return NUM_COEFFICIENTS * (2 if self.deltas else 1)

    def init(self, key: jax.Array) -> dict[str, Any]:
        encoder_key, readout_key = jax.random.split(key)
        encoder = self.encoder.init(encoder_key, self.input_size, jnp.float32)
        features = self.encoder.output_size(encoder) * len(self.poolings)
        return {"encoder": encoder, "readout": dense_init(readout_key, features, NUM_SPEAKERS)}

    def features(self, params: dict[str, Any], frames: jax.Array, lengths: jax.Array) -> jax.Array:
        """The pooled utterance vector [batch, features] of frames [batch, time, 12]."""
        inputs = with_deltas(frames, lengths) if self.deltas else frames
        outputs, _ = self.encoder.apply(params["encoder"], inputs, lengths=lengths)
        return jnp.concatenate([pool(outputs, lengths, pooling) for pooling in self.poolings], -1)

    def logits(self, params: dict[str, Any], frames: jax.Array, lengths: jax.Array) -> jax.Array:
        return dense(params["readout"], self.features(params, frames, lengths))


def drop_frames(key: jax.Array, frames: jax.Array, lengths: jax.Array, rate: float) -> tuple[jax.Array, jax.Array]:
    """Each valid frame but the first removed with chance ``rate``, the kept ones moved to the front in order
    (a random speed-up); returns (frames zero after the new lengths, new lengths)."""
    valid = length_mask(lengths, frames.shape[1])
    keep = valid & (jax.random.bernoulli(key, 1.0 - rate, valid.shape) | (jnp.arange(frames.shape[1]) == 0))
    order = jnp.argsort(~keep, axis=1, stable=True)  # kept frames first, in their order
    kept = keep.sum(1).astype(lengths.dtype)
    moved = jnp.take_along_axis(frames, order[..., None], axis=1)
    return jnp.where(length_mask(kept, frames.shape[1])[..., None], moved, 0.0), kept


def speaker_loss(model: SpeakerModel, regularisation: tuple[float, ...], params, batch, key):
    """Cross-entropy (label smoothing) with frame dropping, Gaussian noise on the frames and dropout before the
    readout.

    ``regularisation`` is (input noise sd, dropout rate, label smoothing, frame drop rate); bind it with
    functools.partial.
    """
    input_noise, dropout, smoothing, frame_drop = regularisation
    frames, lengths, labels = batch
    noise_key, drop_key, frame_key = jax.random.split(key, 3)
    if frame_drop:
        frames, lengths = drop_frames(frame_key, frames, lengths, frame_drop)
    noisy = frames + input_noise * jax.random.normal(noise_key, frames.shape)
    features = model.features(params, noisy, lengths)
    keep = jax.random.bernoulli(drop_key, 1.0 - dropout, features.shape)
    logits = dense(params["readout"], jnp.where(keep, features / (1.0 - dropout), 0.0))
    loss = cross_entropy(logits, labels, label_smoothing=smoothing)
    return loss, {"accuracy": jnp.mean(logits.argmax(-1) == labels)}


def cross_validation_masks(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """bool [folds, examples]: row k is False on fold k and True elsewhere; folds stratified by label, seeded."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2; got {folds}")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold[members] = np.arange(len(members)) % folds
    return fold[None] != np.arange(folds)[:, None]


def train_seeds(model: SpeakerModel, data: Speakers, config: SpeakersConfig,
                masks: np.ndarray) -> tuple[Any, dict, float]:  # fmt: skip
    """One model per row of ``masks`` (bool [runs, train examples]: the utterances that run trains on), all at
    once (fit_many); returns the stacked states, train metrics and seconds. Each run has its own initialisation,
    noise and data order.
    """
    frames, lengths, labels = (jnp.asarray(a) for a in data.train)  # on device for the scan
    data_key, masks = jax.random.key(config.run.seed + 1000), jnp.asarray(masks)
    run_keys = jax.random.split(data_key, len(masks))

    def batch_fn(step):  # jittable: each run's data order is a pure function of (seed, run, step)
        index = jax.vmap(subset_batch_indices, (0, None, 0, None))(run_keys, step, masks, config.batch_size)
        return frames[index], lengths[index], labels[index]  # [runs, batch, ...]

    regularisation = (config.input_noise, config.dropout, config.label_smoothing, config.frame_drop)
    loss_fn = functools.partial(speaker_loss, model, regularisation)
    optimizer = optimizers.make_optimizer(config.optimizer)
    states = loop.init_many(model.init, optimizer, jax.random.split(jax.random.key(config.run.seed), len(masks)))
    started = time.perf_counter()
    states, metrics = loop.fit_many(loss_fn, optimizer, states, batch_fn, config.num_steps,
                                     chunk_steps=config.chunk_steps, per_run_batches=True,
                                     progress=config.run.progress)  # fmt: skip
    jax.block_until_ready(states)
    return states, metrics, time.perf_counter() - started


def seed_probabilities(model: SpeakerModel, params: Any, split: Split) -> np.ndarray:
    """Softmax outputs [seeds, examples, speakers] of stacked params."""
    frames, lengths = jnp.asarray(split.frames), jnp.asarray(split.lengths)
    return np.asarray(jax.nn.softmax(jax.vmap(lambda p: model.logits(p, frames, lengths))(params)))


def statistics_features(split: Split) -> np.ndarray:
    """Per utterance: mean, std, first and last frame of the valid frames, [examples, 48]."""
    rows = []
    for frames, length in zip(split.frames, split.lengths):
        valid = frames[:length]
        rows.append(np.concatenate([valid.mean(0), valid.std(0), valid[0], valid[-1]]))
    return np.array(rows)


def statistics_baseline(train_split: Split, test_split: Split) -> np.ndarray:
    """Predictions [test examples] of logistic regression (C = 1) on :func:`statistics_features`."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=5000).fit(statistics_features(train_split), train_split.labels)
    return model.predict(statistics_features(test_split))


def statistics_baseline_cross_validation(train_split: Split, masks: np.ndarray) -> dict:
    """:func:`cross_validation` of the baseline on the same folds (``masks`` [folds, examples])."""
    probabilities = np.zeros((len(masks), len(train_split.labels), NUM_SPEAKERS))
    for fold, mask in enumerate(masks):
        predictions = statistics_baseline(Split(*(a[mask] for a in train_split)), train_split)
        probabilities[fold, np.arange(len(predictions)), predictions] = 1.0
    return cross_validation(probabilities, masks, train_split.labels)


def cross_validation(probabilities: np.ndarray, masks: np.ndarray, labels: np.ndarray) -> dict:
    """Out-of-fold accuracy of fold runs: ``probabilities`` [folds, train examples, speakers] on the whole train
    split, ``masks`` [folds, examples] what each fold trained on (each example held out by exactly one fold)."""
    held_out = ~masks
    if not np.all(held_out.sum(0) == 1):
        raise ValueError(f"masks must hold out each example exactly once; counts {np.bincount(held_out.sum(0))}")
    right = probabilities.argmax(-1) == labels
    return {"accuracy": float(right[held_out].mean()), "examples": int(held_out.sum()),
            "errors": int((~right[held_out]).sum()),
            "accuracy_per_fold": [float(r[h].mean()) for r, h in zip(right, held_out)]}  # fmt: skip


def evaluate(model: SpeakerModel, params: Any, data: Speakers, fold_masks: np.ndarray | None = None) -> dict:
    """Per-seed and ensemble test accuracy against the logistic-regression baseline, and the validation numbers:
    the held-out split's (when it has utterances) and the out-of-fold accuracy of the cross-validation runs.

    ``params`` are stacked [seeds + folds, ...]: the single models first, then one run per row of ``fold_masks``.
    """
    folds = 0 if fold_masks is None else len(fold_masks)
    seed_params = jax.tree.map(lambda leaf: leaf[: len(leaf) - folds], params)
    test = seed_probabilities(model, seed_params, data.test)
    test_right = test.argmax(-1) == data.test.labels
    comparison = stats.compare_with_baseline(test_right, statistics_baseline(data.train, data.test) == data.test.labels)
    results = {
        "test_accuracy": float(comparison["accuracy"]["mean"]),  # single model, mean over seeds
        "test_accuracy_per_seed": test_right.mean(-1).tolist(),
        "test_accuracy_min": float(test_right.mean(-1).min()),
        "test_accuracy_ensemble": float((test.mean(0).argmax(-1) == data.test.labels).mean()),
        "baseline_statistics_logreg": comparison["baseline_accuracy"],
        "against_baseline": comparison,
        "examples": {name: len(getattr(data, name).labels) for name in ("train", "val", "test")},
    }
    if len(data.val.labels):
        val_right = seed_probabilities(model, seed_params, data.val).argmax(-1) == data.val.labels
        results |= {"val_accuracy": float(val_right.mean()), "val_accuracy_per_seed": val_right.mean(-1).tolist()}
    if folds:
        fold_params = jax.tree.map(lambda leaf: leaf[len(leaf) - folds :], params)
        train_probabilities = seed_probabilities(model, fold_params, data.train)
        results["cross_validation"] = cross_validation(train_probabilities, fold_masks, data.train.labels)
        results["cross_validation_logreg"] = statistics_baseline_cross_validation(data.train, fold_masks)
    return results


def log_losses(run: Run, metrics: dict, seeds: int) -> None:
    """Train loss of each run at about 100 steps into metrics.jsonl (``metrics`` leaves [runs, steps]): the first
    ``seeds`` runs as ``train/loss_seed<i>``, the cross-validation runs after them as ``train/loss_fold<k>``."""
    losses = np.asarray(metrics["loss"])
    names = [f"seed{i}" for i in range(seeds)] + [f"fold{k}" for k in range(losses.shape[0] - seeds)]
    for step in range(0, losses.shape[1], max(losses.shape[1] // 100, 1)):
        run.log(step + 1, **{f"train/loss_{name}": losses[i, step] for i, name in enumerate(names)})


def validation_text(results: dict) -> str:
    """The validation numbers in words: the held-out split's accuracy and/or the cross-validation's."""
    parts = []
    if "val_accuracy" in results:
        parts.append(f"Held-out validation accuracy (mean of seeds): {results['val_accuracy']:.4f}.")
    if "cross_validation" in results:
        cv = results["cross_validation"]
        parts.append(f"{len(cv['accuracy_per_fold'])}-fold cross-validation on the training utterances (one run "
                     f"per fold, trained with the seeds): {cv['accuracy']:.4f} out of fold ({cv['errors']} errors "
                     f"in {cv['examples']}); logistic regression on the same folds "
                     f"{results['cross_validation_logreg']['accuracy']:.4f}.")  # fmt: skip
    return " ".join(parts)


def write_report(run: Run, config: SpeakersConfig, results: dict) -> None:
    """report.md: the per-seed table, the pooled statement, the ensemble, and two plots."""
    seeds = len(results["test_accuracy_per_seed"])
    curves = [f"train/loss_seed{i}" for i in range(seeds)]
    plots.learning_curves(run, curves, run.plot_path("train_loss"), title="train loss per seed", log_y=True)
    bars = {f"seed {i}": a for i, a in enumerate(results["test_accuracy_per_seed"])}
    bars |= {"ensemble": results["test_accuracy_ensemble"], "stats+logreg": results["baseline_statistics_logreg"]}
    plots.bars(bars, run.plot_path("test_accuracy"), ylabel="test accuracy")
    comparison = results["against_baseline"]
    table = markdown_table(seed_rows(comparison, results.get("val_accuracy_per_seed"), "logreg"))
    direction = "bidirectional " if config.bidirectional else ""
    run.write_report(
        f"# Speakers: JapaneseVowels speaker identification\n\n{results['examples']} utterances; {direction}"
        f"{config.cell.upper()} {config.hidden_size} x {config.num_layers} layer(s), {'+'.join(config.poolings)} "
        f"pooling over valid frames, deltas {config.deltas}; {seeds} seeds trained at once with `fit_many` in "
        f"{results['train_seconds_all_seeds']:.0f} s.\n\n{validation_text(results)}\n\n{table}\n\n"
        f"{pooled_statement(comparison, 'logistic regression on utterance statistics')}\n\n"
        f"Ensemble of the {seeds} seeds (mean probabilities), for reference: test accuracy "
        f"{results['test_accuracy_ensemble']:.4f}.\n\n![test accuracy](plots/test_accuracy.png)\n"
        "![train loss](plots/train_loss.png)\n"
    )


def headline(results: dict) -> tuple[str, ...]:
    """The report's opening numbers: the seeds against logistic regression on the test set, then cross-validation."""
    lines = (compared.headline(results["against_baseline"], "logistic regression"),)
    if "cross_validation" in results:
        cv, logreg = results["cross_validation"], results["cross_validation_logreg"]
        lines += (f"{len(cv['accuracy_per_fold'])}-fold cross-validation: RNN {100 * cv['accuracy']:.2f}% "
                  f"({cv['errors']} errors in {cv['examples']}); logistic regression {100 * logreg['accuracy']:.2f}%",)
    return lines


def run(config: SpeakersConfig) -> Outcome:
    """The seeds on all training utterances and the cross-validation runs in one program; results against the
    baseline, the stacked checkpoint, plots and report."""
    run = config.run.open("speakers", config)
    data = load_speakers(val_fraction=config.val_fraction, seed=config.run.seed)
    encoder = RNN(make_cell(config.cell), config.hidden_size, num_layers=config.num_layers,
                  bidirectional=config.bidirectional)  # fmt: skip
    model = SpeakerModel(encoder, config.poolings, config.deltas)
    count = len(data.train.labels)
    folds = cross_validation_masks(data.train.labels, config.cv_folds, config.run.seed) if config.cv_folds \
        else np.zeros((0, count), bool)  # fmt: skip
    masks = np.concatenate([np.ones((config.seeds, count), bool), folds])
    states, metrics, seconds = train_seeds(model, data, config, masks)
    log_losses(run, metrics, config.seeds)
    with Checkpointer(run.checkpoint_dir, save_every=1, keep=1) as checkpointer:
        checkpointer.save(config.num_steps, states)  # the seeds, then the cross-validation runs, stacked
    results = evaluate(model, states.params, data, folds) | {"train_seconds_all_seeds": seconds}
    run.write_results(results)
    write_report(run, config, results)
    return Outcome(results, headline(results), (), run.directory, config.run.quiet)
