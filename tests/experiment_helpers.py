"""Shared helpers of the experiment tests: import a script, run its --quick mode, read its run folder."""

import dataclasses
import importlib.util
import json
import pathlib
import sys

import numpy as np

from rnnjax.training.runs import to_jsonable

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / "experiments"
MAX_ENDING_LINES = 12  # what a script prints when it ends: a few headline lines, targets, three paths


def load(name: str):
    """Import experiments/<name>.py (a script, not a package module)."""
    module_name = f"experiment_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, EXPERIMENTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up while it is executing
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def run_quick(name: str, tmp_path, steps_field: str = "steps", trains_with_checkpoints: bool = True):
    """Run ``--quick`` in-process; check the run folder and the ending; return (results.json, main's Outcome)."""
    returned = load(name).main(["--quick", "--runs_root", str(tmp_path), "--run_name", "quick"])
    folder = tmp_path / name / "quick"
    check_ending(returned, folder)
    for required in ("config.json", "results.json", "report.md"):
        assert (folder / required).is_file(), required
    if trains_with_checkpoints:
        assert (folder / "metrics.jsonl").is_file() and any((folder / "checkpoints").rglob("*")), "no checkpoint"
    results = json.loads((folder / "results.json").read_text())
    assert json.loads((folder / "config.json").read_text())[steps_field] < 100  # the quick config was used
    for line in (folder / "report.md").read_text().splitlines():
        if line.startswith("!["):
            for image in line.split("(")[1:]:
                assert (folder / image.split(")")[0]).is_file()
    return results, returned


def check_ending(outcome, folder: pathlib.Path) -> None:
    """What the script prints at the end: short, naming report.md, results.json and every plot; --quiet: the path."""
    lines = outcome.ending().splitlines()
    assert len(lines) <= MAX_ENDING_LINES, lines
    assert f"report:  {folder / 'report.md'}" in lines and f"results: {folder / 'results.json'}" in lines
    assert all(path.name in outcome.ending() for path in folder.rglob("plots/*.png"))
    assert len(lines) == len(outcome.headline) + len(outcome.targets) + 2 + len({p.parent for p in outcome.plot_paths})
    assert dataclasses.replace(outcome, quiet=True).ending() == str(folder / "report.md")
    assert json.loads((folder / "results.json").read_text()) == json.loads(json.dumps(to_jsonable(outcome.results)))


def in_unit(value):
    return 0.0 <= value <= 1.0


def logged(folder: pathlib.Path, metric: str) -> list[float]:
    """The values of one metric in metrics.jsonl, in step order."""
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r[metric] for r in sorted(records, key=lambda r: r["step"]) if metric in r]


def check_beam_one_against_greedy(greedy, beam) -> None:
    """Beam width 1 (alpha 0) is greedy decoding: same tokens, lengths and log p. An end token that is only the
    runner-up at some step must not become a finished hypothesis (the old rule that cut greedy's path short)."""
    np.testing.assert_array_equal(np.asarray(beam.tokens[:, 0]), np.asarray(greedy.tokens))
    np.testing.assert_array_equal(np.asarray(beam.lengths[:, 0]), np.asarray(greedy.lengths))
    np.testing.assert_allclose(np.asarray(beam.log_probs[:, 0]), np.asarray(greedy.log_probs), rtol=1e-9)
