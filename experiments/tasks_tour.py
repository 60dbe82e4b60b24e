"""A tour of the task types of RNNs on seeded toy data, each trained from scratch on CPU.

    python experiments/tasks_tour.py            # full: 400 Adam steps per task, mostly XLA compile time
    python experiments/tasks_tour.py --quick    # 30 steps per task: a smoke test, accuracies are low

many-to-one: parity of 1..8 bits (ManyToOne); many-to-many aligned: next-token tags, uni- vs
bidirectional (Tagger); seq2seq: copy without attention, reverse with Bahdanau attention (greedy and
beam search); CTC: transcribe noisy runs of symbols (greedy collapse and prefix beam search);
one-to-many: caption bar images from a CNN "semantic vector" (Captioner, CNN and RNN trained jointly).
Config and tasks: ``rnnjax.apps.tasks_tour``.
"""

from __future__ import annotations

from rnnjax.apps import tasks_tour as app
from rnnjax.apps.outcome import Outcome
from rnnjax.training.config import cli


def main(argv: list[str] | None = None) -> Outcome:
    return app.run(cli(app.TourConfig, argv, presets=app.PRESETS))


if __name__ == "__main__":
    print(main().ending())
