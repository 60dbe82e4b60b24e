"""Weather, many-to-one: temperature 24 h ahead from the last 96 h of hourly weather (pvlib's TMY3 file).

    python experiments/weather.py            # full run: 10 seeds in one fit_many program
    python experiments/weather.py --quick    # seconds, on a strided slice

Baselines on the same windows: persistence (the temperature now) and ridge regression on the flattened
window (alpha chosen on validation). With ``ridge_skip`` (default) the RNN is a hybrid: ridge's forecast is
a fixed linear highway (as in LSTNet) and a GRU reading the window learns the correction, with a
zero-initialised readout, so training starts from ridge and early stopping on validation MAE decides how far
it moves. The report gives each seed's test MAE, their seed summary, the seeds' mean forecast, and each
against ridge with a block bootstrap over contiguous days (:mod:`rnnjax.apps.weather`). Hyperparameters were
chosen on validation MAE only.
"""

from __future__ import annotations

import dataclasses
import sys

from rnnjax.apps import weather
from rnnjax.apps.outcome import Outcome
from rnnjax.data.weather import load_weather, ridge_baseline
from rnnjax.training import optimizers
from rnnjax.training.config import RunConfig, RunField, cli, require_positive


@dataclasses.dataclass(frozen=True)
class WeatherConfig:
    """Temperature 24 h ahead from 96 h of weather: RNN vs persistence vs ridge."""

    window: int = 96
    horizon: int = 24
    stride: int = 1
    cell: str = "gru"
    hidden_size: int = 32
    input_noise: float = 0.3
    dropout: float = 0.5
    l1_loss: bool = True  # the reported metric is MAE; also steadier on validation than MSE
    seeds: int = 10
    batch_size: int = 64
    num_steps: int = 1000
    eval_every: int = 50
    optimizer: optimizers.OptimizerConfig = optimizers.OptimizerConfig(
        name="adamw", learning_rate=3e-4, warmup_steps=50, decay="cosine", decay_steps=1000, weight_decay=1e-2
    )
    ridge_skip: bool = True  # the RNN corrects ridge's forecast (a fixed linear highway), not persistence
    ridge_alphas: tuple[float, ...] = (1e2, 1e3, 3e3, 1e4, 3e4, 1e5)
    block_days: int = 3  # the bootstrap's blocks of contiguous test days (errors are correlated within a spell)
    bootstrap_draws: int = 10_000
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(
            self, "window", "horizon", "stride", "hidden_size", "seeds", "batch_size", "num_steps",
            "eval_every", "ridge_alphas", "block_days", "bootstrap_draws",
        )  # fmt: skip

    @classmethod
    def quick(cls):
        optimizer = optimizers.OptimizerConfig(learning_rate=3e-3, warmup_steps=5, decay="cosine", decay_steps=40)
        return cls(stride=8, hidden_size=16, seeds=2, num_steps=40, eval_every=20, bootstrap_draws=2000,
                   optimizer=optimizer, run=RunConfig.quick())  # fmt: skip


def main(argv: list[str] | None = None) -> Outcome:
    config = cli(WeatherConfig, argv, presets={"quick": WeatherConfig.quick})
    run = config.run.open("weather", config)
    data = load_weather(config.window, config.horizon, stride=config.stride)
    forecaster = weather.Forecaster.build(config, data, ridge_baseline(data, config.ridge_alphas))
    trained = weather.train_seeds(config, forecaster, data, run)
    results, forecasts = weather.evaluate(config, forecaster, data, trained)
    run.write_results(results)
    weather.write_report(run, config, data, results, forecasts)
    return Outcome(results, weather.headline(results), (), run.directory, config.run.quiet)


if __name__ == "__main__":
    print(main(sys.argv[1:]).ending())
