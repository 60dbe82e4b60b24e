"""Sentiment, many-to-one: movie-review sentence polarity (vaderSentiment 3.3.2 sdist data).

    python experiments/sentiment.py           # the RNN over seeds (fit_many) + the bag-of-words baseline
    python experiments/sentiment.py --quick   # a small model on a slice
    python experiments/sentiment.py --cell gru --bidirectional --pooling attention   # another variant

Words are embedded (started from the PPMI-SVD of the training sentences and the archive's unlabeled snippets;
optionally an LM-pretrained embedding and encoder, --pretrain.steps), read by the RNN and pooled over valid steps.
Each seed keeps its best-on-validation parameters. The baseline is logistic regression on binary unigram+bigram
counts; the report gives each seed's test accuracy with a Wilson interval and an exact McNemar test against the
baseline on the same sentences, and the seed summary. Config, model, training and report: rnnjax/apps/sentiment.py.

Chosen on validation (2026-11-29, 3 seeds, 1,057 sentences, mean best-on-validation accuracy): PPMI-SVD
embeddings 78.8%, random embeddings 77.5%, LM pretraining (800 steps) + SVD 76.1% (fine-tuning at 1e-3: 65.2%);
bag of words 80.0%. Test (run final2_2026-11-29, 2-core dev VM): 77.58, 76.06, 78.33% (77.33% +- 1.16%) vs bag of
words 77.01%, exact McNemar p = 0.70, 0.49, 0.29: a tie.
"""

from __future__ import annotations

from rnnjax.apps import sentiment as app
from rnnjax.apps.outcome import Outcome
from rnnjax.training.config import cli


def main(argv: list[str] | None = None) -> Outcome:
    return app.run(cli(app.SentimentConfig, argv, presets=app.PRESETS))


if __name__ == "__main__":
    print(main().ending())
