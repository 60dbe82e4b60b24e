"""Speakers, many-to-one: which of nine speakers said /ae/, from 7-29 frames of 12 cepstral coefficients.

    python experiments/speakers.py           # several seeds trained at once (fit_many: vmap x scan)
    python experiments/speakers.py --quick

Variable-length utterances are zero-padded to 29 frames and masked by their lengths. The seeds train on all 270
training utterances; next to them, in the same compiled program, one run per cross-validation fold trains without
that fold, and their out-of-fold accuracy (and the baseline's on the same folds) is the validation number. The
report gives each seed alone against a logistic-regression baseline on utterance statistics, fitted on the same
270 utterances (Wilson intervals, exact McNemar), the seed summary, and their ensemble. Config, model, training
and report: rnnjax/apps/speakers.py.

Measured 2026-11-29 (2-core dev VM, run final2_2026-11-29, 5 seeds + 5 folds, 82 s): test 98.65, 98.65, 98.92,
98.65, 98.65% (98.70% +- 0.12%) vs logistic regression 98.65% (5 errors of 370), McNemar p = 1 on every seed;
5-fold cross-validation 98.52% (4 errors of 270) vs logistic regression 97.78% (6 errors).
"""

from __future__ import annotations

from rnnjax.apps import speakers as app
from rnnjax.apps.outcome import Outcome
from rnnjax.training.config import cli


def main(argv: list[str] | None = None) -> Outcome:
    return app.run(cli(app.SpeakersConfig, argv, presets=app.PRESETS))


if __name__ == "__main__":
    print(main().ending())
