"""The main job's flags: refused before anything is written, the corrected command just works, a user-named run is
never emptied by a preset, --report-only with a damaged or foreign record set is an error naming the file."""

import importlib.util
import json
import pathlib
import sys

import pytest

from rnnjax.probes import runner
from rnnjax.training import files

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "experiments" / "universal_approximation.py"
TINY = ["--quick", "--quiet", "--only", "wiener", "--probe.length", "8", "--probe.steps", "10", "--probe.train_size",
        "16", "--probe.batch_size", "8", "--probe.test_size", "16", "--no-tensorboard"]  # fmt: skip


@pytest.fixture(scope="module")
def experiment():
    spec = importlib.util.spec_from_file_location("universal_approximation_flags", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


BAD_FLAGS = [["--probe.delays", "0", "-2"], ["--probe.seeds"], ["--probe.learning_rate", "nan"],
             ["--probe.learning_rate", "-0.1"], ["--probe.steps", "-3"], ["--probe.copy_lag", "-1"],
             ["--probe.width", "1000000"], ["--only", "causalty"], ["--seed", "3"], ["--report-only", "--fresh"]]


@pytest.mark.parametrize("flags", BAD_FLAGS)
def test_a_bad_flag_is_refused_before_the_run_folder_is_touched(experiment, tmp_path, capsys, flags):
    with pytest.raises(SystemExit):
        experiment.main([*TINY, "--runs_root", str(tmp_path), "--run_name", "r", *flags])
    assert not any(tmp_path.iterdir())  # nothing created, so the corrected command is not a "config mismatch"
    flag = next(f for f in flags if f.startswith("--")).replace("-", "_").lstrip("_")
    assert flag.split("_")[0] in capsys.readouterr().err.replace("-", "_")


def test_the_main_job_refuses_foreign_records_and_damaged_config_and_keeps_a_named_run(experiment, tmp_path):
    common = [*TINY, "--runs_root", str(tmp_path)]
    run = experiment.main([*common, "--run_name", "mine"])
    records = (run.directory / runner.RECORDS).read_text()
    assert records and not (run.directory / "events").exists()  # --no-tensorboard is honoured
    experiment.main([*common, "--run_name", "mine"])  # --quick with a named run resumes: nothing retrained
    assert (run.directory / runner.RECORDS).read_text() == records
    before = _snapshot(run.directory)
    with pytest.raises(SystemExit):
        experiment.main([*common, "--run_name", "mine", "--report-only", "--fresh"])
    assert _snapshot(run.directory) == before
    other = experiment.main([*common, "--run_name", "other", "--probe.steps", "12"])
    foreign = (other.directory / runner.RECORDS).read_text()  # same group ids, another config
    (run.directory / runner.RECORDS).write_text(foreign)
    with pytest.raises(runner.ConfigMismatch, match="was written under config"):
        experiment.main([*common, "--run_name", "mine", "--report-only"])
    (run.directory / runner.RECORDS).write_text(records)
    config = run.directory / runner.CONFIG
    config.write_text(config.read_text()[:40])  # truncated
    with pytest.raises(files.DamagedFileError, match=f"{config} is damaged"):
        experiment.main([*common, "--run_name", "mine", "--report-only"])
    with pytest.raises(files.DamagedFileError, match=f"{config} is damaged"):
        experiment.main([*common, "--run_name", "mine"])
    config.unlink()
    with pytest.raises((files.DamagedFileError, FileNotFoundError), match=str(config)):
        experiment.main([*common, "--run_name", "mine"])
    assert not config.exists() and (run.directory / runner.RECORDS).read_text() == records
    assert json.loads((other.directory / runner.CONFIG).read_text())["steps"] == 12


def _diverge(records_path, seeds):
    """Make every row of the given seeds NaN, as a diverged run records them (the config stamp is kept)."""
    lines = [json.loads(line) for line in records_path.read_text().splitlines()]
    for record in lines:
        for row in record["rows"]:
            if row["seed"] in seeds:
                row.update({k: float("nan") for k, v in row.items() if k.startswith("nmse_") and v is not None})
    records_path.write_text("".join(json.dumps(record) + "\n" for record in lines))


def test_diverged_seeds_are_kept_counted_and_shown_never_dropped_from_the_median(experiment, tmp_path):
    common = [*TINY, "--probe.seeds", "0", "1", "2", "--runs_root", str(tmp_path), "--run_name", "nan"]
    run = experiment.main(common)
    clean = json.loads((run.directory / "results.json").read_text())
    _diverge(run.directory / runner.RECORDS, seeds={1})
    experiment.main([*common, "--report-only"])
    results = json.loads((run.directory / "results.json").read_text())
    assert len(results["records"]) == len(clean["records"])  # kept
    assert sum(r["nmse_test"] == "nan" for r in results["records"]) == len(clean["records"]) // 3
    for before, after in zip(clean["summary"], results["summary"]):
        assert after["diverged"] == 1 and after["seeds"] == 3
        finite = [r["nmse_test"] for r in clean["records"] if r["seed"] != 1 and r["model"] == before["model"]
                  and r["target"] == before["target"]]  # fmt: skip
        assert after["median"] == max(finite)  # the diverged seed ranks worst: the median moves up, not away
    report = (run.directory / "report.md").read_text()
    rows = len(clean["records"])
    assert f"Diverged runs (NaN or infinite test NMSE): {rows // 3} of {rows}" in report
    assert "(1 of 3 seeds diverged)" in report
    _diverge(run.directory / runner.RECORDS, seeds={0, 2})  # every seed diverged: still a report
    experiment.main([*common, "--report-only"])
    report = (run.directory / "report.md").read_text()
    assert f"{rows} of {rows};" in report and "diverged (3 of 3 seeds diverged)" in report
