"""Every real-data experiment's --quick mode runs end to end and writes a valid run folder."""

import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

from rnnjax.training.tensorboard import read_events

ROOT = pathlib.Path(__file__).resolve().parents[2]

EXPECTED = {
    "weather": ["test_mae_rnn", "test_mae_persistence", "test_mae_ridge", "test_mae_single_seed_summary",
                "single_seeds_vs_ridge", "ensemble_vs_ridge", "every_seed_beats_ridge"],
    "sentiment": ["test_accuracy", "baseline_bag_of_words", "against_baseline", "val_accuracy_per_seed",
                  "pretrain_seconds_all_seeds"],
    "speakers": ["test_accuracy", "test_accuracy_per_seed", "against_baseline", "baseline_statistics_logreg",
                 "cross_validation", "cross_validation_logreg"],
    "shakespeare": ["val_nats_per_char", "val_bits_per_char", "samples", "val_nats_per_char_per_seed",
                    "val_nats_per_char_summary"],
}


QUIET = {"weather"}  # run with --quiet: the script prints the report's path alone

# A loose quality bar per quick run (a few dozen steps on a slice), with a wide margin below what the quick run
# reaches, so that a model that does not learn (or a broken baseline comparison) fails. Quick-run values measured
# on 2026-11-29 in comments.
QUALITY = {
    # ridge highway + GRU correction, early-stopped on validation: val MAE 2.87 vs ridge 2.92; test 3.33 vs
    # persistence 4.02. The RNN starts as ridge, so it must not end worse than ridge on validation.
    "weather": lambda r: r["val_mae_rnn"] < r["val_mae_ridge"] and r["test_mae_rnn"] < r["test_mae_persistence"] - 0.3,
    # 2 single BiGRU-16s with deltas, 60 steps: 0.938 and 0.924 test accuracy (logreg 0.981); chance is 1/9.
    "speakers": lambda r: r["test_accuracy_min"] > 0.8 and r["baseline_statistics_logreg"] > 0.9,
    # 120 steps of 2 BiGRU-16s (PPMI-SVD embeddings, no bag-of-words input) on 800 sentences: 0.623 and 0.659 test
    # accuracy (bag-of-words 0.661); chance 0.5, standard error 0.018.
    "sentiment": lambda r: min(r["against_baseline"]["accuracy"]["values"]) > 0.58
    and r["baseline_bag_of_words"]["test_accuracy"] > 0.6,
    # 30 steps on 100k characters, 2 seeds: 3.277 and 3.283 nats/char; a uniform guess over 82 characters costs 4.41.
    "shakespeare": lambda r: max(r["val_nats_per_char_per_seed"]) < math.log(r["corpus_chars"]["alphabet"]) - 0.5,
}


def _numbers(value):
    if isinstance(value, dict):
        for inner in value.values():
            yield from _numbers(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _numbers(inner)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_quick_run_writes_valid_run_folder(name, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", "JAX_ENABLE_X64": "0"}
    command = [sys.executable, str(ROOT / "experiments" / f"{name}.py"), "--quick", "--runs_root", str(tmp_path)]
    command += ["--quiet"] if name in QUIET else []
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    run = tmp_path / name / "quick"
    printed = finished.stdout.splitlines()  # the ending: a few lines naming the report, or (--quiet) its path alone
    assert printed == [str(run / "report.md")] if name in QUIET else (
        len(printed) <= 12 and f"report:  {run / 'report.md'}" in printed
    ), finished.stdout
    results = json.loads((run / "results.json").read_text())
    for key in EXPECTED[name]:
        assert key in results, f"{key} missing from {name} results.json"
    assert all(math.isfinite(x) for x in _numbers(results))
    config = json.loads((run / "config.json").read_text())
    assert config["run"]["runs_root"] == str(tmp_path)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] if (
        run / "metrics.jsonl"
    ).exists() else []
    nested = list(run.glob("*/metrics.jsonl"))
    assert records or nested, "no metrics.jsonl written"
    assert sorted(p.suffix for p in run.rglob("plots/*")) and all(
        p.read_bytes()[:4] == b"\x89PNG" for p in run.rglob("plots/*.png")
    )
    assert list(run.rglob("checkpoints/*"))
    report = (run / "report.md").read_text()
    assert report.startswith("# ") and "plots/" in report
    assert QUALITY[name](results), f"{name} quick run below its quality bar: {results}"
    if importlib.util.find_spec("tensorboardX"):  # TensorBoard: the run's scalars and figures, read back
        events = read_events(run)
        logged = {key for record in records for key, value in record.items() if isinstance(value, (int, float))}
        assert logged - {"step"} <= set(events.scalars) and events.texts["config"]
        assert {f"plots/{p.stem}" for p in run.glob("plots/*.png")} <= set(events.images)
