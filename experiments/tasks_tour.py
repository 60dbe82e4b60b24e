"""A tour of the task types of RNNs on seeded toy data, each trained from scratch on CPU.

    python experiments/tasks_tour.py            # full: 400 Adam steps per task, mostly XLA compile time
    python experiments/tasks_tour.py --quick    # 30 steps per task: a smoke test, accuracies are low

many-to-one: parity of 1..8 bits (ManyToOne); many-to-many aligned: next-token tags, uni- vs
bidirectional (Tagger); seq2seq: copy without attention, reverse with Bahdanau attention (greedy and
beam search); CTC: transcribe noisy runs of symbols (greedy collapse and prefix beam search);
one-to-many: caption bar images from a CNN "semantic vector" (Captioner, CNN and RNN trained jointly).
The tasks themselves are ``rnnjax.apps.tasks_tour``.
"""

from __future__ import annotations

import dataclasses
import sys

from rnnjax.apps import tasks_tour
from rnnjax.apps.outcome import Outcome
from rnnjax.apps.tasks_tour import Task
from rnnjax.training.config import RunConfig, RunField, cli, require_positive


@dataclasses.dataclass(frozen=True)
class TourConfig:
    """Train every task type on a toy problem and report test accuracies."""

    num_steps: int = 400
    hidden_size: int = 32
    learning_rate: float = 1e-2
    test_size: int = 512
    beam_width: int = 4
    tasks: tuple[Task, ...] = tuple(Task)
    """the tasks to train (default: all)."""
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(self, "num_steps", "hidden_size", "learning_rate", "test_size", "beam_width")

    @classmethod
    def quick(cls):
        return cls(num_steps=30, hidden_size=16, test_size=64, run=RunConfig.quick())


def print_rows(rows: list[dict]) -> None:
    """Progress: one finished task's test metrics, on stderr."""
    print(tasks_tour.task_line(rows), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> Outcome:
    config = cli(TourConfig, argv, presets={"quick": TourConfig.quick})
    run = config.run.open("tasks_tour", config)
    rows = tasks_tour.tour(config, on_task=(lambda rows: None) if config.run.quiet else print_rows)
    run.write_results({"rows": rows})
    run.write_report(tasks_tour.report(config, rows))
    return Outcome({"rows": rows}, tasks_tour.headline(rows), (), run.directory, config.run.quiet)


if __name__ == "__main__":
    print(main(sys.argv[1:]).ending())
