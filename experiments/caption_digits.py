"""Captioning strips of 2-4 handwritten digits ("three one four"): CNN vector -> GRU decoder, trained jointly.

Digit scans are split into train/test pools before tiling, so test strips show unseen scans. Each seed has its own
split, strips and initialisation (seeds train one after another: vmapped convolutions are slow on CPU).
Target: >= 90% caption exact match (beam search) on every seed; the report gives per-seed exact match with
Wilson intervals, the mean, spread and 95% t-interval over seeds, and a PCA of single-digit vectors. Model,
training, evaluation and report: rnnjax/apps/caption_digits.py.

    python experiments/caption_digits.py [--quick] [--seeds 3] [--steps 3000] [--runs_root runs]
"""

from __future__ import annotations

import dataclasses
import time

from rnnjax.analysis.plots import learning_curves
from rnnjax.apps import caption_digits as app
from rnnjax.apps.outcome import Outcome
from rnnjax.data import captions
from rnnjax.training.config import RunConfig, RunField, cli, require_positive
from rnnjax.training.optimizers import OptimizerConfig

TARGET = 0.9  # beam exact match on every seed


@dataclasses.dataclass(frozen=True)
class Config:
    """Caption strips of sklearn digit scans with a CNN vector and an RNN decoder."""

    num_test: int = 2000
    channels: int = 32
    vector_size: int = 128
    embed_size: int = 16
    batch_size: int = 64
    steps: int = 3000
    seeds: int = 3  # seeds run + 0, 1, ...: each its own scan split, strips and initialisation
    beam_width: int = 3
    optimizer: OptimizerConfig = OptimizerConfig(learning_rate=2e-3, warmup_steps=100, decay="cosine", decay_steps=3000)
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(self, "num_test", "channels", "vector_size", "embed_size", "batch_size", "steps",
                         "beam_width", "seeds")  # fmt: skip
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 for an interval over seeds; got {self.seeds}")

    @classmethod
    def quick(cls) -> "Config":
        optimizer = OptimizerConfig(learning_rate=5e-3, decay="cosine", decay_steps=40)
        return cls(num_test=100, channels=8, vector_size=32, embed_size=8, batch_size=32, steps=40, beam_width=2,
                   seeds=2, optimizer=optimizer, run=RunConfig.quick())


def main(argv=None) -> Outcome:
    config = cli(Config, argv, presets={"quick": Config.quick})
    run = config.run.open("caption_digits", config)
    seeds = [config.run.seed + offset for offset in range(config.seeds)]
    pools = [captions.split_digits(seed) for seed in seeds]
    model = app.build(config)
    started = time.perf_counter()
    params = app.train_seeds(config, run, model, pools, seeds)
    seconds = time.perf_counter() - started
    tests = app.held_out_strips(pools, seeds, config.num_test)
    results = app.evaluate(config, model, params, pools, tests, seeds)
    results |= {"num_train_scans": len(pools[0].train_images), "num_test_scans": len(pools[0].test_images),
                "train_seconds_all_seeds": seconds, "target_exact_match": TARGET,
                "target_met": results["beam_exact_match_min"] >= TARGET}
    run.write_results(results)
    app.plot_captions(run.plot_path("test_captions"), tests[0].images, results["seeds"][0]["examples"])
    app.plot_pca(run.plot_path("vector_pca"), model, app.one_seed(params, 0), pools[0])
    learning_curves(run, [f"seed{seed}/train/loss" for seed in seeds], run.plot_path("loss"), log_y=True)
    run.write_report(app.report(config, results))
    return Outcome(results, app.headline(results), app.targets(results), run.directory, config.run.quiet)


if __name__ == "__main__":
    print(main().ending())
