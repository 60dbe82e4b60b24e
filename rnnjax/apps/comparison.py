"""Single models (one per seed) against one baseline on the same test items, as report text.

API:
    comparison = stats.compare_with_baseline(seed_right, baseline_right)
    rows = seed_rows(comparison, val_accuracy)       # one markdown-table row per seed
    text = pooled_statement(comparison, "logreg")    # the seeds together against the baseline, in words
    line = headline(comparison, "logreg")             # the same in one line, for the end of a run
"""

from __future__ import annotations

from collections.abc import Sequence

from rnnjax.apps.outcome import interval_text, seeds_text
from rnnjax.training import stats


def seed_rows(comparison: dict, val_accuracy: Sequence[float] | None, baseline_name: str = "baseline") -> list[dict]:
    """Per seed: validation (unless None) and test accuracy, the test Wilson interval, discordant items, McNemar p."""
    accuracy = comparison["accuracy"]["values"]
    if val_accuracy is not None and len(val_accuracy) != len(accuracy):
        raise ValueError(f"val_accuracy must hold one value per seed ({len(accuracy)}); got {len(val_accuracy)}")
    rows = []
    for seed, (test, (low, high), paired) in enumerate(
        zip(accuracy, comparison["wilson_per_seed"], comparison["mcnemar_per_seed"])
    ):
        row = {"seed": seed} | ({} if val_accuracy is None else {"val accuracy": val_accuracy[seed]})
        rows.append(row | {"test accuracy": test, "test 95% Wilson": f"{low:.4f}-{high:.4f}",
                           "only RNN right": paired["only_first"], f"only {baseline_name} right": paired["only_second"],
                           "McNemar p": paired["p_value"]})  # fmt: skip
    return rows


def pooled_statement(comparison: dict, baseline_name: str = "the baseline") -> str:
    """The seeds' mean and t-interval against the baseline's accuracy and Wilson interval, and the McNemar verdict."""
    summary = stats.SeedSummary.from_dict(comparison["accuracy"])
    baseline = comparison["baseline_accuracy"]
    low, high = comparison["baseline_wilson"]
    if summary.low > baseline:
        position = "lies above the baseline's accuracy"
    elif summary.high < baseline:
        position = "lies below the baseline's accuracy"
    else:
        position = "contains the baseline's accuracy"
    paired = comparison["mcnemar_per_seed"]
    p_values = ", ".join(f"{seed['p_value']:.3g}" for seed in paired)
    better = sum(seed["only_first"] > seed["only_second"] and seed["p_value"] < 0.05 for seed in paired)
    worse = sum(seed["only_first"] < seed["only_second"] and seed["p_value"] < 0.05 for seed in paired)
    return (
        f"Single model over seeds: {summary.text()}; {baseline_name}: {baseline:.4f} "
        f"(95% Wilson {low:.4f}-{high:.4f}). The seeds' t-interval {position} "
        "(seed-to-seed spread only; the test set is one sample). Exact McNemar per "
        f"seed: p = {p_values}: significantly better than {baseline_name} on {better}, worse on {worse}, "
        f"not distinguishable on {len(paired) - better - worse} of {len(paired)} seeds (p < 0.05)."
    )


def headline(comparison: dict, baseline_name: str = "baseline") -> str:
    """The seeds and the baseline in one headline line: accuracies with intervals and the McNemar p per seed."""
    p_values = ", ".join(f"{seed['p_value']:.2g}" for seed in comparison["mcnemar_per_seed"])
    return (f"test accuracy: RNN {seeds_text(comparison['accuracy'], percent=True)}; {baseline_name} "
            f"{interval_text(comparison['baseline_accuracy'], comparison['baseline_wilson'])} (95% Wilson); "
            f"exact McNemar p per seed {p_values}")  # fmt: skip
