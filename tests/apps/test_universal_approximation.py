"""The main job's application module: the stored config round-trips, timing and the report's run line."""

import dataclasses

import pytest

from rnnjax.apps import universal_approximation as main_job
from rnnjax.probes import runner, studies
from rnnjax.probes.results import RESULT_FIELDS, Row


def test_stored_config_reads_back_the_config_a_run_was_started_with(tmp_path):
    config = dataclasses.replace(studies.ProbeConfig.quick(), seeds=(3, 5), length=12)
    runner.open_config(tmp_path, config)
    assert main_job.stored_config(tmp_path) == config
    with pytest.raises(FileNotFoundError, match="--report-only needs a started run"):
        main_job.stored_config(tmp_path / "never_started")


def test_timing_names_each_study_and_flags_a_partial_one():
    coverage = {
        "causality": runner.Coverage(groups_done=4, groups_total=4, seconds=65.0, cpu_seconds=120.0),
        "width": runner.Coverage(groups_done=1, groups_total=3, seconds=5.0, cpu_seconds=9.0),
    }
    text = main_job.timing(coverage)
    assert text.startswith("Training time per study, wall-clock (process CPU): causality ")
    assert "(1/3 groups recorded)" in text and text.count("groups recorded") == 1


def test_the_report_states_the_run_and_only_the_studies_it_holds():
    record = {field: None for field in RESULT_FIELDS} | {
        "study": "width", "target": "oscillators4", "model": "linear", "width": 4, "depth": 1, "delay": 0, "seed": 0,
        "bidirectional": False, "nmse_train": 0.4, "theory_nmse": 0.0,
    }  # fmt: skip
    for field in ("nmse_test", "nmse_test_2x", "nmse_test_long"):
        record |= {field: 0.5, f"{field}_low": 0.45, f"{field}_high": 0.55}
    coverage = {"width": runner.Coverage(groups_done=1, groups_total=2, seconds=3.0, cpu_seconds=4.0)}
    info = main_job.ReportInfo(name="try", mode="custom")
    extras = {"width": {"orders": {"oscillators4": 4}}}
    text = main_job.markdown([Row.from_json(record)], extras, {}, coverage, studies.ProbeConfig.quick(), info)
    assert "Run `try` (custom): 1 trained models" in text
    assert "**Partial:** 1 of 2 groups recorded." in text
    assert "## 2. Width thresholds" in text and "State-space orders (Hankel rank) of the targets" in text
    assert "## 1. Causal" not in text  # only the studies with rows
