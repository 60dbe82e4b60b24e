"""Date translation: the --quick run (2 seeds in one fit_many, both directions, greedy and beam)."""

import numpy as np
import pytest
from experiment_helpers import logged, run_quick

from rnnjax.data import dates


def test_translate_dates_quick(tmp_path):
    results, returned = run_quick("translate_dates", tmp_path)
    assert returned.targets_met == results["target_met"] and len(returned.targets) == 1
    to_iso, german = results["to_iso"]["seeds"], results["iso_to_german"]["seeds"]
    assert [seed["seed"] for seed in to_iso] == [seed["seed"] for seed in german] == [0, 1]
    assert to_iso[0]["test_years"] != to_iso[1]["test_years"]  # each seed holds out its own years
    # 40 steps learn the ISO layout (0.29 of the characters in place, measured); an untrained decoder gets ~0.
    assert all(seed["character_accuracy_greedy"] > 0.15 for seed in to_iso)
    assert all(seed["beam1_equals_greedy"] == 1.0 for seed in to_iso + german)
    assert {f"language={lang}" for lang in dates.LANGUAGES} <= set(to_iso[0]["beam"])
    assert all(f"style={style}" in to_iso[0]["beam"] for style in dates.STYLES)
    for decoding in ("greedy", "beam"):  # the mean over seeds lies inside its t-interval
        summary = results["iso_to_german"][f"{decoding}_exact_match"]
        assert summary["values"] == [seed[decoding]["overall"] for seed in german]
        assert summary["mean"] == pytest.approx(np.mean(summary["values"]))
        assert summary["low"] <= summary["mean"] <= summary["high"]
    folder = tmp_path / "translate_dates" / "quick"
    for which in ("to_iso", "iso_to_german"):  # one loss curve per seed, next to the mean over seeds
        runs = [logged(folder, f"{which}/train/loss_run{i}") for i in range(2)]
        mean = logged(folder, f"{which}/train/loss")
        np.testing.assert_allclose((np.array(runs[0]) + runs[1]) / 2, mean, rtol=1e-5)
