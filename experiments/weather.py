"""Weather, many-to-one: temperature 24 h ahead from the last 96 h of hourly weather (pvlib's TMY3 file).

    python experiments/weather.py            # full run: 10 seeds in one fit_many program
    python experiments/weather.py --quick    # seconds, on a strided slice

Baselines on the same windows: persistence (the temperature now) and ridge regression on the flattened
window (alpha chosen on validation). With ``ridge_skip`` (default) the RNN is a hybrid: ridge's forecast is
a fixed linear highway (as in LSTNet) and a GRU reading the window learns the correction, with a
zero-initialised readout, so training starts from ridge and early stopping on validation MAE decides how far
it moves. The report gives each seed's test MAE, their seed summary, the seeds' mean forecast, and each
against ridge with a block bootstrap over contiguous days. Hyperparameters were chosen on validation MAE only.
Config, model, training, evaluation and report: rnnjax/apps/weather.py.
"""

from __future__ import annotations

from rnnjax.apps import weather as app
from rnnjax.apps.outcome import Outcome
from rnnjax.training.config import cli


def main(argv: list[str] | None = None) -> Outcome:
    return app.run(cli(app.WeatherConfig, argv, presets=app.PRESETS))


if __name__ == "__main__":
    print(main().ending())
