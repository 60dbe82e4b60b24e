"""Spoken digit strings (eSpeak NG voices) -> digits with a bidirectional LSTM and CTC, over seeds.

Test utterances use held-out voice variants (every accent, every speed). Decoding by collapsing
the frame argmax (greedy) and by CTC prefix beam search. Target: <= 5% digit error rate on every
seed. ``--seeds`` models train one after another on length-bucketed batches; the report gives every seed's
digit error rate and exact-utterance rate with 95% Wilson intervals, and the seed summaries (mean, sd, t-interval).
Config, model, training, evaluation and report: rnnjax/apps/speech_ctc.py.

    python experiments/speech_ctc.py [--quick] [--seeds 3] [--steps 2000] [--runs_root runs]
"""

from __future__ import annotations

from rnnjax.apps import speech_ctc as app
from rnnjax.apps.outcome import Outcome
from rnnjax.training.config import cli


def main(argv: list[str] | None = None) -> Outcome:
    return app.run(cli(app.Config, argv, presets=app.PRESETS))


if __name__ == "__main__":
    print(main().ending())
