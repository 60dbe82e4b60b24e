"""The main job's runner: durable records, torn lines, config refusal, plan-order results, resume, progress."""

import dataclasses
import io
import json
import warnings

import pytest

from rnnjax.probes import runner, targets
from rnnjax.probes.models import ModelSpec, Readout
from rnnjax.probes.planning import plan_groups
from rnnjax.probes.progress import Progress, format_seconds
from rnnjax.probes.results import RESULT_FIELDS
from rnnjax.probes.studies import ProbeConfig, StudyPlan
from rnnjax.probes.training import TrainConfig
from rnnjax.training import files

TINY = TrainConfig(length=6, train_size=8, batch_size=4, steps=4, test_size=4, long_factors=(2,), dtype="float64",
                   fast_compile=True)  # fmt: skip


def _theory_one_half(rows, group_extras):
    """A stand-in finish: theory 0.5 everywhere, extras count the groups."""
    return [row.replace(theory_nmse=0.5, theory_nmse_lower=0.5) for row in rows], {"groups": len(group_extras)}


def _plans() -> dict[str, StudyPlan]:
    linear = ModelSpec("linear_diagonal", readout=Readout.NONE)
    first = plan_groups(targets.centred_sum(1), [linear], widths=(2, 3), seeds=(0, 1), config=TINY, study="a")
    second = plan_groups(targets.delay(1), [ModelSpec("simple_tanh")], widths=(2,), seeds=(0,), config=TINY, study="b")
    return {"a": StudyPlan(tuple(first), _theory_one_half), "b": StudyPlan(tuple(second), _theory_one_half)}


def _fake_record(group, value):
    rows = [{**dict.fromkeys(RESULT_FIELDS), "study": group.study, "model": group.spec.name, "width": group.spec.width,
             "nmse_test": value}]  # fmt: skip
    return {"group": group.id, "study": group.study, "seconds": 2.0, "cpu_seconds": 3.0, "models": group.models,
            "rows": rows, "extras": {}}  # fmt: skip


def test_records_are_appended_one_line_each_and_a_torn_last_line_is_ignored_then_cut(tmp_path):
    path = tmp_path / runner.RECORDS
    runner.open_config(tmp_path, ProbeConfig.quick())
    first, second = {"group": "s/t/m/w1", "rows": [1.5]}, {"group": "s/t/m/w2", "rows": [float("nan")]}
    runner.append_record(path, first)
    runner.append_record(path, second)
    with open(path, "a") as handle:  # a kill in the middle of a write
        handle.write('{"group": "s/t/m/w3", "ro')
    with pytest.warns(files.TornLineWarning, match="cut short"):
        records = runner.read_records(path)
    assert list(records) == ["s/t/m/w1", "s/t/m/w2"]
    assert records["s/t/m/w1"] == {**first, "config": runner.stored_hash(tmp_path)}
    assert records["s/t/m/w2"]["rows"][0] != records["s/t/m/w2"]["rows"][0]  # NaN survives the round trip
    runner.append_record(path, {"group": "s/t/m/w3", "rows": []})  # cuts the torn line first
    with warnings.catch_warnings():
        warnings.simplefilter("error", files.TornLineWarning)
        assert list(runner.read_records(path)) == ["s/t/m/w1", "s/t/m/w2", "s/t/m/w3"]
    lines = path.read_text().split("\n")
    assert len(lines) == 4 and lines[-1] == "" and all(json.loads(line) for line in lines[:-1])  # torn text cut


def test_a_corrupt_line_in_the_middle_is_an_error(tmp_path):
    runner.open_config(tmp_path, ProbeConfig.quick())
    path = tmp_path / runner.RECORDS
    path.write_text('{"group": "a"}\nnot json\n{"group": "b"}\n')
    with pytest.raises(files.DamagedFileError, match=f"{path}: line 2 is not a JSON record"):
        runner.read_records(path)


def test_records_carry_their_config_and_lines_from_another_run_are_refused(tmp_path):
    quick = ProbeConfig.quick()
    other = tmp_path / "other"
    runner.open_config(other, dataclasses.replace(quick, steps=quick.steps + 1))
    runner.append_record(other / runner.RECORDS, {"group": "g1", "rows": [0.5]})
    mine = tmp_path / "mine"
    runner.open_config(mine, quick)
    runner.append_record(mine / runner.RECORDS, {"group": "g0", "rows": [0.25]})
    assert runner.stored_hash(mine) != runner.stored_hash(other)
    stolen = (other / runner.RECORDS).read_text()  # a line of another run, same group ids
    with open(mine / runner.RECORDS, "a") as handle:
        handle.write(stolen)
    with pytest.raises(runner.ConfigMismatch, match=r"line 2 \(group 'g1'\) was written under config"):
        runner.read_records(mine / runner.RECORDS)
    unstamped = tmp_path / "old"
    runner.open_config(unstamped, quick)
    (unstamped / runner.RECORDS).write_text('{"group": "g0", "rows": []}\n')  # no config recorded
    with pytest.raises(runner.ConfigMismatch, match=r"\(none recorded\)"):
        runner.read_records(unstamped / runner.RECORDS)


def test_a_missing_or_damaged_config_is_an_error_naming_the_file_and_never_replaced(tmp_path):
    config = ProbeConfig.quick()
    runner.open_config(tmp_path, config)
    runner.append_record(tmp_path / runner.RECORDS, {"group": "g0", "rows": []})
    text = (tmp_path / runner.CONFIG).read_text()
    (tmp_path / runner.CONFIG).write_text(text[: len(text) // 2])  # truncated
    for call in (lambda: runner.open_config(tmp_path, config), lambda: runner.read_records(tmp_path / runner.RECORDS)):
        with pytest.raises(files.DamagedFileError, match=f"{tmp_path / runner.CONFIG} is damaged"):
            call()
    assert (tmp_path / runner.CONFIG).read_text() == text[: len(text) // 2]  # left for the user to repair
    (tmp_path / runner.CONFIG).unlink()  # deleted: the records' config is unknown
    with pytest.raises(files.DamagedFileError, match=f"{tmp_path / runner.CONFIG} is missing but the folder holds"):
        runner.open_config(tmp_path, config)
    with pytest.raises(files.DamagedFileError, match="is missing"):
        runner.read_records(tmp_path / runner.RECORDS)
    assert not (tmp_path / runner.CONFIG).exists()
    with pytest.raises(files.DamagedFileError, match="is missing"):  # appending needs the config to stamp
        runner.append_record(tmp_path / runner.RECORDS, {"group": "g1", "rows": []})


def test_config_is_written_once_and_a_changed_config_is_refused_naming_the_fields(tmp_path):
    config = ProbeConfig.quick()
    written = runner.open_config(tmp_path, config)
    assert json.loads((tmp_path / runner.CONFIG).read_text()) == written and written["seeds"] == [0]
    assert runner.open_config(tmp_path, config) == written  # same config: accepted
    changed = dataclasses.replace(config, seeds=(0, 1), steps=config.steps + 1)
    with pytest.raises(runner.ConfigMismatch) as error:
        runner.open_config(tmp_path, changed)
    message = str(error.value)
    assert "seeds: [0] -> [0, 1]" in message and f"steps: {config.steps} -> {config.steps + 1}" in message
    assert "width" not in message.split("Differing fields")[1]  # only the fields that differ
    assert json.loads((tmp_path / runner.CONFIG).read_text()) == written  # the stored config is kept


def test_collect_follows_the_plan_order_and_reports_partial_studies():
    plans = _plans()
    groups = runner.all_groups(plans)
    assert [g.id for g in groups] == [
        "a/centred_sum1/linear_diagonal/w2", "a/centred_sum1/linear_diagonal/w3", "b/delay1/simple_tanh/w2",
    ]  # fmt: skip
    recorded = {g.id: _fake_record(g, float(i)) for i, g in reversed(list(enumerate(groups[1:], start=1)))}
    rows, extras, coverage = runner.collect(plans, recorded)
    assert [(r.width, r.nmse_test) for r in rows] == [(3, 1.0), (2, 2.0)]  # plan order, not record order
    assert all(r.theory_nmse == 0.5 for r in rows) and extras == {"a": {"groups": 1}, "b": {"groups": 1}}
    assert coverage["a"] == runner.Coverage(1, 2, 2.0, 3.0) and not coverage["a"].complete and coverage["b"].complete
    assert [g.id for g in runner.pending(plans, recorded)] == [groups[0].id]
    assert "a: 2 groups (1 recorded), 4 models" in runner.describe(plans, recorded)


def test_duplicate_group_ids_are_refused():
    plans = _plans()
    twice = {"a": plans["a"], "again": plans["a"]}
    with pytest.raises(ValueError, match="appears twice"):
        runner.all_groups(twice)


def test_interrupted_then_resumed_records_equal_an_uninterrupted_run(tmp_path):
    plans = _plans()
    whole, resumed = tmp_path / "whole.jsonl", tmp_path / "resumed.jsonl"
    runner.open_config(tmp_path, TINY)  # the records of both are stamped with its hash
    quiet = Progress(1.0, 1, 1, enabled=False)
    runner.execute(runner.all_groups(plans), whole, quiet)
    runner.execute(runner.all_groups(plans)[:1], resumed, quiet)  # the run stops after its first group
    todo = runner.pending(plans, runner.read_records(resumed))
    assert len(todo) == 2
    runner.execute(todo, resumed, quiet)
    assert runner.pending(plans, runner.read_records(resumed)) == []
    rows_whole, _, _ = runner.collect(plans, runner.read_records(whole))
    rows_resumed, _, _ = runner.collect(plans, runner.read_records(resumed))
    drop = lambda rows: [{k: v for k, v in row.to_json().items() if k != "seconds"} for row in rows]  # noqa: E731
    assert len(rows_whole) == 2 * 2 + 1 and drop(rows_whole) == drop(rows_resumed)


def test_smallest_group_goes_first_and_the_others_keep_their_order():
    groups = runner.all_groups(_plans())  # widths 2, 3 of a one-layer linear cell, then a tanh RNN at width 2
    cheap = dataclasses.replace(groups[1], seeds=(0,))
    assert runner.smallest_first([groups[0], cheap, groups[2]]) == [cheap, groups[0], groups[2]]
    assert runner.smallest_first(groups[:1]) == groups[:1] and runner.smallest_first([]) == []


def test_estimate_scales_the_measured_group_by_work():
    groups = runner.all_groups(_plans())
    assert runner.estimate_seconds(groups[:1], groups[0], 3.0) == pytest.approx(3.0)
    assert runner.estimate_seconds(groups[:1] * 4, groups[0], 3.0) == pytest.approx(12.0)
    bigger = dataclasses.replace(groups[0], seeds=(0, 1, 2, 3))  # twice the models: more work, < 2x (compile)
    ratio = runner.estimate_seconds([bigger], groups[0], 1.0)
    assert 1.0 < ratio < 2.0
    assert "estimated time for all 3 groups on cpu" in runner.estimate_line(groups, groups[0], 3.0, "cpu")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_prints_plain_lines_in_a_log_a_bar_on_a_terminal_and_nothing_when_quiet():
    log = io.StringIO()
    progress = Progress(30.0, 5, 2, stream=log)
    progress.begin("memory linear w4")
    progress.finish(10.0, 3)
    progress.begin("memory linear w8")
    progress.finish(20.0, 2)
    progress.close()
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("[models 3/5, groups 1/2] memory linear w4 done; elapsed ")
    assert lines[1].startswith("[models 5/5, groups 2/2] memory linear w8 done") and lines[1].endswith("left ~0s")
    assert "\r" not in log.getvalue()
    terminal = _Terminal()
    bar = Progress(30.0, 5, 2, stream=terminal)
    bar.begin("depth simple_relu w16")
    bar.finish(10.0, 3)
    bar.close()
    shown = terminal.getvalue()
    assert "\r" in shown and "depth simple_relu w16" in shown and "models 3/5, groups 1/2" in shown and "33%" in shown
    silent = io.StringIO()
    quiet = Progress(30.0, 5, 2, stream=silent, enabled=False)
    quiet.begin("x")
    quiet.finish(30.0, 5)
    quiet.note("estimate")
    quiet.close()
    assert silent.getvalue() == ""


def test_format_seconds():
    assert [format_seconds(s) for s in (4.4, 75.2, 3700.0)] == ["4s", "1m15s", "1h01m40s"]


def test_records_are_never_appended_through_a_link(tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text("keep\n")
    run = tmp_path / "run"
    runner.open_config(run, ProbeConfig.quick())
    (run / runner.RECORDS).symlink_to(outside)
    with pytest.raises(ValueError, match="is a symbolic link .* never appended through a link"):
        runner.append_record(run / runner.RECORDS, {"group": "g0", "rows": []})
    assert outside.read_text() == "keep\n"
