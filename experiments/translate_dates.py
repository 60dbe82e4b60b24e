"""Date translation with an attention encoder-decoder: de/en/ja renderings -> ISO, and ISO -> German.

Sources are real CLDR renderings (babel) in several styles; whole years are held out for test. Greedy and beam
search at test time. Target: >= 99% exact match in both directions, greedy and beam, on every seed; each seed
draws its own held-out years, data order and initialisation, and all seeds of a direction train at once in one
``fit_many``. The report gives per-seed numbers with Wilson intervals, their mean, spread and 95% t-interval.
``--german_train_years`` can widen the training years of ISO -> German (test years stay in 1950-2049). Config,
model, training over seeds, evaluation and report: rnnjax/apps/translate_dates.py.

    python experiments/translate_dates.py [--quick] [--seeds 3] [--steps 3000] [--runs_root runs]
"""

from __future__ import annotations

from rnnjax.apps import translate_dates as app
from rnnjax.apps.outcome import Outcome
from rnnjax.training.config import cli


def main(argv: list[str] | None = None) -> Outcome:
    return app.run(cli(app.Config, argv, presets=app.PRESETS))


if __name__ == "__main__":
    print(main().ending())
