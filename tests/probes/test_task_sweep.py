"""The task probe's sweep: its plan, one vmapped group against smaller ones, records, resume and report-only."""

import dataclasses
import json

import numpy as np
import pytest

from rnnjax.probes import runner, targets, task, task_sweep
from rnnjax.probes.task_data import sample_task, task_data
from rnnjax.probes.task_sweep import Kind, TaskProbeConfig
from rnnjax.training.files import ConfigMismatch

TINY = TaskProbeConfig(cells=("linear_dense",), width=2, widths=(2,), max_delay=1, window=3, seeds=(0,), steps=6,
                       batch_size=8)  # fmt: skip


@pytest.fixture(scope="module")
def aligned():
    return sample_task(targets.centred_sum(1), 40, 6, seed=0)


def test_plan_of_an_aligned_task(aligned):
    config = dataclasses.replace(TINY, cells=("gru", "lstm"), widths=(4, 2, 4), seeds=(0, 1))
    groups = task_sweep.plan(aligned, config)
    assert [(g.kind, g.spec.cell, g.spec.width) for g in groups] == [
        (Kind.UNIDIRECTIONAL, "gru", 2), (Kind.BIDIRECTIONAL, "gru", 2), (Kind.BIDIRECTIONAL, "gru", 4),
        (Kind.UNIDIRECTIONAL, "lstm", 2), (Kind.BIDIRECTIONAL, "lstm", 2), (Kind.BIDIRECTIONAL, "lstm", 4),
    ]  # fmt: skip
    assert groups[0].delays == (0, 1) and groups[0].models == 4 and groups[1].delays == (0,)
    assert all(g.spec.bidirectional == (g.kind is Kind.BIDIRECTIONAL) for g in groups)
    assert len({g.id for g in groups}) == len(groups)


def test_plan_of_a_task_with_other_lengths():
    inputs = np.random.default_rng(0).normal(size=(12, 6, 1))
    data = task_data(inputs, inputs[:, :3], aligned=False)
    groups = task_sweep.plan(data, dataclasses.replace(TINY, cells=("gru",), widths=(2, 8)))
    assert [(g.kind, g.spec.width) for g in groups] == [(Kind.ENCODER_DECODER, 2), (Kind.ENCODER_DECODER, 8),
                                                         (Kind.ATTENTION, 2), (Kind.ATTENTION, 8)]  # fmt: skip
    assert {g.spec.architecture.value for g in groups} == {"encoder_decoder", "attention"}


@pytest.mark.parametrize(
    "fields, message",
    [({"widths": ()}, "widths must not be empty"), ({"width": 0}, "width must be"), ({"max_delay": -1}, "max_delay"),
     ({"cells": ("nope",)}, "nope"), ({"widths": (4, 0)}, r"widths\[1\] must be"),
     ({"learning_rate": 0.0}, "learning_rate"), ({"steps": 1}, "steps must be >= 2")],
)  # fmt: skip
def test_config_refuses_bad_sizes(fields, message):
    with pytest.raises((ValueError, TypeError), match=message):
        dataclasses.replace(TINY, **fields)


def test_recorded_run_resumes_and_rebuilds(aligned, tmp_path):
    result = task.probe(aligned, tmp_path / "run", TINY, progress=False)
    records_path = tmp_path / "run" / runner.RECORDS
    lines = records_path.read_text().splitlines()
    assert [json.loads(line)["group"] for line in lines] == ["floors", "unidirectional/linear_dense/w2",
                                                              "bidirectional/linear_dense-bi/w2"]  # fmt: skip
    assert len(result.rows) == 3 and {r["kind"] for r in result.rows} == {"unidirectional", "bidirectional"}
    for row in result.rows:
        assert row["test_error_low"] <= row["test_error"] <= row["test_error_high"]
    again = task.probe(aligned, tmp_path / "run", TINY, progress=False)  # everything recorded: nothing trains
    assert records_path.read_text().splitlines() == lines and again.rows == result.rows
    rebuilt = task.probe(aligned, tmp_path / "run", TINY, progress=False, train=False)
    assert rebuilt.answers == result.answers
    assert (tmp_path / "run" / "report.md").read_text().startswith("# Task probe: centred_sum1")
    assert (tmp_path / "run" / "plots" / "delays.png").is_file()


def test_a_resume_refuses_other_sizes_or_data(aligned, tmp_path):
    task_sweep.run_probe(aligned, tmp_path, dataclasses.replace(TINY, steps=6, widths=(1,), max_delay=0),
                         progress=False)  # fmt: skip
    with pytest.raises(ConfigMismatch, match="probe.steps"):
        task_sweep.run_probe(aligned, tmp_path, dataclasses.replace(TINY, steps=7, widths=(1,), max_delay=0))
    other = sample_task(targets.centred_sum(2), 40, 6, seed=0)
    with pytest.raises(ConfigMismatch, match="fingerprint"):
        task_sweep.run_probe(other, tmp_path, dataclasses.replace(TINY, steps=6, widths=(1,), max_delay=0))


def test_a_delay_trained_in_a_larger_group_equals_it_trained_alone(aligned, tmp_path):
    """D = 0 in the vmapped (D = 0, 1) group equals the one-delay group: the extra zero steps are after the end."""
    both = task_sweep.run_probe(aligned, tmp_path / "both", TINY, progress=False)[1]
    alone = task_sweep.run_probe(aligned, tmp_path / "alone", dataclasses.replace(TINY, max_delay=0),
                                 progress=False)[1]  # fmt: skip
    pick = lambda rows: next(r for r in rows if r["kind"] == "unidirectional" and r["delay"] == 0)  # noqa: E731
    for field in ("train_error", "validation_error", "test_error", "test_error_high"):
        np.testing.assert_allclose(pick(both)[field], pick(alone)[field], rtol=1e-5)


@pytest.mark.parametrize("target, lookahead", [(targets.centred_sum(1), 1), (targets.anticausal_filter(0.5, 3), 2)],
                         ids=["centred_sum1", "anticausal_support3"])  # fmt: skip
def test_trained_delay_needed_is_the_lookahead(target, lookahead, tmp_path):
    """Linear RNNs on linear targets train to ~1e-8 here, so the trained answer is the target's look-ahead too."""
    data = sample_task(target, 300, 10, seed=0)
    config = TaskProbeConfig(cells=("linear_dense",), width=4, widths=(4,), max_delay=lookahead + 1, window=4,
                             seeds=(0, 1), steps=300, batch_size=300, learning_rate=3e-2)  # fmt: skip
    result = task.probe(data, tmp_path, config, progress=False)
    assert result.answers["Delay needed"] == f"linear_dense: D = {lookahead}; linear floors: D = {lookahead}."
    causal = next(row for row in result.selected if row["kind"] == "unidirectional" and row["delay"] == 0)
    assert causal["test_error_low"] > 0.1  # without look-ahead the error stays at the causal floor


def test_the_schedule_option_changes_training(aligned, tmp_path):
    constant = task_sweep.run_probe(aligned, tmp_path / "constant", TINY, progress=False)[1]
    cosine = dataclasses.replace(TINY, schedule="warmup_cosine")
    assert cosine.schedule is task_sweep.training.Schedule.WARMUP_COSINE
    warm = task_sweep.run_probe(aligned, tmp_path / "warm", cosine, progress=False)[1]
    assert [r["delay"] for r in constant] == [r["delay"] for r in warm]
    assert all(a["train_error"] != b["train_error"] for a, b in zip(constant, warm))


def test_report_only_on_a_folder_with_nothing_trained_says_so(aligned, tmp_path):
    """train=False: a folder never started is refused naming it; a started one whose records hold nothing yet gets
    a report saying so (both used to raise IndexError in the table writer), under its own config only."""
    with pytest.raises(FileNotFoundError, match=r"train=False reports what .*never.* holds no config.json"):
        task.probe(aligned, tmp_path / "never", TINY, progress=False, train=False)
    assert not (tmp_path / "never").exists()
    split = task_sweep.split_task(aligned, TINY.split, TINY.split_seed, None)
    runner.open_config(tmp_path / "run", task_sweep.run_config(aligned, split, TINY))  # started, killed at once
    task.probe(aligned, tmp_path / "run", TINY, progress=False, train=False)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "No model trained yet" in report and "No floor computed yet" in report
    with pytest.raises(ConfigMismatch, match="steps"):
        task.probe(aligned, tmp_path / "run", dataclasses.replace(TINY, steps=7), progress=False, train=False)
