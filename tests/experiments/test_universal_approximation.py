"""The main job: the quick report builds, its models learn, a killed run resumes to the uninterrupted results."""

import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnjax.probes import runner
from rnnjax.probes.studies import ProbeConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "experiments" / "universal_approximation.py"
TINY = ["--probe.length", "8", "--probe.steps", "25", "--probe.train_size", "16", "--probe.batch_size", "8",
        "--probe.test_size", "16"]  # fmt: skip  # smaller than --quick


def _experiment():
    spec = importlib.util.spec_from_file_location("universal_approximation", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _by(records, **where):
    return [r for r in records if all(r[k] == v for k, v in where.items())]


def _assert_quick_models_learn(records):
    """Loose thresholds at the quick size that an untrained or broken model (NMSE ~1 or more) misses."""
    linear_floor = _by(records, study="causality", model="linear", delay=0)
    assert linear_floor and all(r["nmse_test"] >= 0.9 * r["theory_nmse"] > 0.1 for r in linear_floor)
    delayed = _by(records, study="causality", target="centred_sum4", model="linear", delay=4)
    assert delayed and all(r["nmse_test"] < 0.05 for r in delayed)  # the delay covers the look-ahead
    assert all(r["nmse_test"] < 0.05 for r in _by(records, study="width", target="oscillators4", width=4))
    assert all(r["nmse_test"] < 0.01 for r in _by(records, study="memory", target="exponential"))
    wiener_linear = _by(records, study="wiener", model="linear")
    assert wiener_linear
    assert all(0.9 * r["theory_nmse"] <= r["nmse_test"] <= 1.5 * r["theory_nmse"] for r in wiener_linear)
    assert all(r["nmse_test"] < 0.05 for r in _by(records, study="wiener", model="linear+mlp"))
    assert all(r["nmse_test"] < 0.05 for r in _by(records, study="non_fading", target="counting"))
    depth = _by(records, study="depth")
    assert depth and all(r["nmse_test"] < 0.7 for r in depth)


def test_quick_report_builds_learns_and_rebuilds_from_its_records(tmp_path):
    module = _experiment()
    run = module.main(["--quick", "--quiet", "--runs_root", str(tmp_path), "--run_name", "ci"])
    results = json.loads((run.directory / "results.json").read_text())
    schema = results["schema"]
    assert schema[:11] == [
        "study", "target", "model", "width", "depth", "delay", "seed",
        "nmse_train", "nmse_test", "nmse_test_2x", "nmse_test_long",
    ]  # fmt: skip
    assert {r["study"] for r in results["records"]} == set(module.studies.STUDIES)  # every study ran
    for record in results["records"]:
        assert set(schema) <= set(record)
        assert isinstance(record["width"], int) and isinstance(record["nmse_test"], float)
        assert record["theory_nmse"] is None or record["theory_nmse"] >= 0.0
    _assert_quick_models_learn(results["records"])
    report = (run.directory / "report.md").read_text()
    for title in ("Causal vs non-causal", "Width thresholds", "curse of memory", "Wiener", "parity", "Depth vs width"):
        assert title in report
    assert "Training time per study, wall-clock (process CPU): causality " in report and "Partial" not in report
    answer = report.split("\n\n")[1]  # the short answer: each study's sentences cite their rows
    assert answer.startswith("**Short answer.**") and answer.count("[rows: ") >= len(module.studies.STUDIES) - 1
    assert "Convergence rule: " in report and "| converged |" in report and results["convergence_rule"]
    summary_keys = {"median", "median_low", "median_high", "best", "train_median", "class_optimum", "gap", "converged"}
    assert all(summary_keys <= set(row) for row in results["summary"])
    plots = sorted(p.name for p in (run.directory / "plots").glob("*.png"))
    assert "causality.png" in plots and "width.png" in plots and len(plots) >= 6
    for name in plots:
        assert f"plots/{name}" in report
    # the records hold everything: --report-only rebuilds the same results without training
    lines = (run.directory / runner.RECORDS).read_text().splitlines()
    assert len(lines) == sum(len(p.groups) for p in module.studies.plan(ProbeConfig.quick()).values())
    (run.directory / "results.json").unlink()
    (run.directory / "report.md").unlink()
    module.main(["--quick", "--report-only", "--quiet", "--runs_root", str(tmp_path), "--run-name", "ci"])
    assert json.loads((run.directory / "results.json").read_text()) == results
    assert (run.directory / "report.md").read_text() == report
    # a rerun under another config is refused before anything is trained, naming the fields
    with pytest.raises(runner.ConfigMismatch, match=r"seeds: \[0\] -> \[0, 1\]"):
        module.main(["--quick", "--quiet", "--runs_root", str(tmp_path), "--run_name", "ci", "--probe.seeds", "0", "1"])
    assert (run.directory / runner.RECORDS).read_text().splitlines() == lines


def _start(root: pathlib.Path, name: str) -> subprocess.Popen:
    # 3000 steps: each group trains for about a second, so the kill below lands while the second group runs (its
    # program was compiled while the first one ran, so without them it would finish within one polling interval)
    command = [sys.executable, str(EXPERIMENT), "--quick", *TINY, "--probe.steps", "3000", "--only", "wiener",
               "--runs_root", str(root), "--run-name", name]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def _finish(process: subprocess.Popen) -> str:
    _, errors = process.communicate(timeout=600)
    assert process.returncode == 0, errors[-3000:]
    return errors


def _rows(directory: pathlib.Path) -> list[dict]:
    records = json.loads((directory / "results.json").read_text())["records"]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_a_run_killed_in_the_middle_of_a_study_resumes_to_the_uninterrupted_results(tmp_path):
    log = _finish(_start(tmp_path, "whole"))  # the reference: two groups of study 'wiener', uninterrupted
    assert "wiener: 2 groups (0 recorded), 2 models" in log
    assert "[models 1/2, groups 1/2] wiener linear w16 done" in log and "\r" not in log  # plain lines in a log
    assert "first group (wiener/wiener/linear/w16, 1 models) took" in log
    directory = tmp_path / "universal_approximation" / "killed"
    records = directory / runner.RECORDS
    process = _start(tmp_path, "killed")
    deadline = time.monotonic() + 600
    while not (records.exists() and records.read_text().count("\n") >= 1):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first group landed"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # while the second group of the study trains
    process.communicate()
    assert records.read_text().count("\n") == 1, "the kill came after the second group: nothing was interrupted"
    assert (directory / "config.json").exists() and not (directory / "results.json").exists()
    log = _finish(_start(tmp_path, "killed"))
    assert "wiener: 2 groups (1 recorded), 2 models; models linear, linear+mlp" in log
    assert "[models 1/1, groups 1/1] wiener linear+mlp w16 done" in log
    whole, resumed = _rows(tmp_path / "universal_approximation" / "whole"), _rows(directory)
    assert [r["model"] for r in resumed] == ["linear", "linear+mlp"]
    assert resumed == whole  # same rows; NMSEs bit-identical (JSON floats round-trip exactly)
    assert np.all(np.isfinite([r["nmse_test"] for r in resumed]))
