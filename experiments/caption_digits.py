"""Captioning strips of 2-4 handwritten digits ("three one four"): CNN vector -> GRU decoder, trained jointly.

Digit scans are split into train/test pools before tiling, so test strips show unseen scans. Each seed has its own
split, strips and initialisation (seeds train one after another: vmapped convolutions are slow on CPU).
Target: >= 90% caption exact match (beam search) on every seed; the report gives per-seed exact match with
Wilson intervals, the mean, spread and 95% t-interval over seeds, and a PCA of single-digit vectors. Config,
model, training, evaluation and report: rnnjax/apps/caption_digits.py.

    python experiments/caption_digits.py [--quick] [--seeds 3] [--steps 3000] [--runs_root runs]
"""

from __future__ import annotations

from rnnjax.apps import caption_digits as app
from rnnjax.apps.outcome import Outcome
from rnnjax.training.config import cli


def main(argv: list[str] | None = None) -> Outcome:
    return app.run(cli(app.Config, argv, presets=app.PRESETS))


if __name__ == "__main__":
    print(main().ending())
