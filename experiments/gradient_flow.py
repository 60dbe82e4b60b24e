"""Vanishing and exploding gradients: a simple RNN vs an LSTM on the same long-memory task.

    python experiments/gradient_flow.py [--quick] [--time_steps 100] ...

Task (``rnnjax.tasks.toy_tasks.first_bit_task``): the sign of x_0 must be recalled at step T
through T-1 steps of noise. A tanh RNN (orthogonal init) and an LSTM (forget bias 3) are
trained; the same RNN with its recurrent kernel scaled up and an LSTM with forget bias 1 are
shown at initialisation only. At initialisation and after training, it records
||d logit_T/dh_t|| and ||dh_T/dh_t||_2 over t (batch means) and plots them on a log scale into
runs/gradient_flow/<name>/plots and (full runs) docs/figures/gradient_flow.png, plus the
neuron picture docs/figures/simple_rnn_neurons.png. The study itself is ``rnnjax.apps.gradient_flow``.
"""

from __future__ import annotations

import dataclasses

from rnnjax.apps import gradient_flow
from rnnjax.apps.outcome import Outcome
from rnnjax.training.config import RunConfig, RunField, cli, require_positive


@dataclasses.dataclass(frozen=True)
class GradientFlowConfig:
    """Gradient flow of a simple RNN vs an LSTM on the first-bit memory task."""

    time_steps: int = 100
    hidden_size: int = 32
    batch_size: int = 64
    train_steps: int = 1500
    eval_batch: int = 256
    learning_rate: float = 1e-2
    exploding_gain: float = 2.0
    forget_bias: float = 3.0
    figures: str = "docs/figures"
    """where the doc's figures go ("" to skip)."""
    run: RunField = RunConfig(run_name="default")

    def __post_init__(self):
        require_positive(
            self, "time_steps", "hidden_size", "batch_size",
            "train_steps", "eval_batch", "learning_rate", "exploding_gain",
        )  # fmt: skip


QUICK = GradientFlowConfig(time_steps=16, hidden_size=8, batch_size=16, train_steps=20, eval_batch=32, figures="",
                           run=RunConfig.quick())  # fmt: skip


def main(argv: list[str] | None = None) -> Outcome:
    config = cli(GradientFlowConfig, argv, presets={"quick": QUICK})
    run = config.run.open("gradient_flow", config)
    outcome = gradient_flow.study(config, run)
    gradient_flow.plot(config, run, outcome["curves"])
    run.write_results(outcome["results"])
    run.write_report(gradient_flow.report(outcome["results"]))
    headline = gradient_flow.headline(config, outcome["results"])
    return Outcome(outcome["results"], headline, (), run.directory, config.run.quiet)


if __name__ == "__main__":
    print(main().ending())  # sys.argv[1:]
