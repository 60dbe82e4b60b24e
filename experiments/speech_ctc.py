"""Spoken digit strings (eSpeak NG voices) -> digits with a bidirectional LSTM and CTC, over seeds.

Test utterances use held-out voice variants (every accent, every speed). Decoding by collapsing
the frame argmax (greedy) and by CTC prefix beam search. Target: <= 5% digit error rate on every
seed. ``--seeds`` models train one after another on length-bucketed batches; the report gives every seed's
digit error rate and exact-utterance rate with 95% Wilson intervals, and the seed summaries (mean, sd, t-interval).

    python experiments/speech_ctc.py [--quick] [--seeds 3] [--steps 2000] [--runs_root runs]
"""

from __future__ import annotations

import dataclasses
import time

from rnnjax.analysis.plots import learning_curves
from rnnjax.apps import speech_ctc as app
from rnnjax.apps.outcome import Outcome
from rnnjax.data import speech
from rnnjax.training.config import RunConfig, RunField, cli, require_positive
from rnnjax.training.optimizers import OptimizerConfig


@dataclasses.dataclass(frozen=True)
class Config:
    """Spoken digit strings (eSpeak NG) transcribed by a BiLSTM trained with CTC, over seeds."""

    num_train: int = 6000
    num_test: int = 1000
    num_test_variants: int = 5
    hidden_size: int = 64
    num_layers: int = 2
    feature_noise: float = 0.1  # Gaussian noise added to training features
    seeds: int = 3
    """models trained (initialisation, batch order and feature noise differ; >= 2 for an interval)."""
    batch_size: int = 32
    steps: int = 2000
    beam_width: int = 8
    optimizer: OptimizerConfig = OptimizerConfig(learning_rate=3e-3, warmup_steps=100, decay="cosine", decay_steps=2000)
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(
            self, "num_train", "num_test", "num_test_variants", "hidden_size",
            "num_layers", "batch_size", "steps", "beam_width", "seeds",
        )  # fmt: skip
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 (a seed interval needs two); got {self.seeds}")

    @classmethod
    def quick(cls) -> "Config":
        optimizer = OptimizerConfig(learning_rate=5e-3, decay="cosine", decay_steps=30)
        return cls(num_train=64, num_test=16, hidden_size=16, num_layers=1, seeds=2, batch_size=16, steps=30,
                   beam_width=2, optimizer=optimizer, run=RunConfig.quick())  # fmt: skip


def main(argv=None) -> Outcome:
    config = cli(Config, argv, presets={"quick": Config.quick})
    run = config.run.open("speech_ctc", config)
    started = time.perf_counter()
    train, test = speech.make_speech_data(config.run.seed, config.num_train, config.num_test,
                                          num_test_variants=config.num_test_variants)  # fmt: skip
    data_seconds, started = time.perf_counter() - started, time.perf_counter()
    model = app.make_model(config)
    params = app.train_seeds(config, run, model, train)
    train_seconds = time.perf_counter() - started
    decoded = app.decode_seeds(model, params, test, config.beam_width)
    results = app.evaluate(test, decoded) | {
        "data_seconds": data_seconds, "train_seconds": train_seconds, "beam_seconds": decoded["beam_seconds"],
        "test_variants": speech.split_variants(config.run.seed, config.num_test_variants)[1],
    }  # fmt: skip
    run.write_results(results)
    app.plot_example(run, test, decoded["logits"])
    curves = [f"seed{i}/train/loss" for i in range(config.seeds)]
    learning_curves(run, curves, run.plot_path("loss"), title="CTC loss per seed", log_y=True)
    run.write_report(app.report(config, results))
    return Outcome(results, app.headline(results), app.targets(results), run.directory, config.run.quiet)


if __name__ == "__main__":
    print(main().ending())
