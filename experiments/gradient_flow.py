"""Vanishing and exploding gradients: a simple RNN vs an LSTM on the same long-memory task.

    python experiments/gradient_flow.py [--quick] [--time_steps 100] ...

Task (``rnnjax.tasks.toy_tasks.first_bit_task``): the sign of x_0 must be recalled at step T
through T-1 steps of noise. A tanh RNN (orthogonal init) and an LSTM (forget bias 3) are
trained; the same RNN with its recurrent kernel scaled up and an LSTM with forget bias 1 are
shown at initialisation only. At initialisation and after training, it records
||d logit_T/dh_t|| and ||dh_T/dh_t||_2 over t (batch means) and plots them on a log scale into
runs/gradient_flow/<name>/plots and (full runs) docs/figures/gradient_flow.png, plus the
neuron picture docs/figures/simple_rnn_neurons.png. Config and study: ``rnnjax.apps.gradient_flow``.
"""

from __future__ import annotations

from rnnjax.apps import gradient_flow as app
from rnnjax.apps.outcome import Outcome
from rnnjax.training.config import cli


def main(argv: list[str] | None = None) -> Outcome:
    return app.run(cli(app.GradientFlowConfig, argv, presets=app.PRESETS))


if __name__ == "__main__":
    print(main().ending())
