"""Run folders: config.json, metrics.jsonl, plots, results.json, report.md."""

import dataclasses
import enum
import json
import math

import jax.numpy as jnp

from rnnjax.analysis import plots
from rnnjax.training.runs import Run, to_jsonable


class Kind(enum.Enum):
    A = "a"


@dataclasses.dataclass(frozen=True)
class Config:
    size: int = 3
    kind: Kind = Kind.A
    shape: tuple[int, ...] = (1, 2)


def test_run_folder_layout_and_round_trips(tmp_path):
    run = Run("toy", name="first", config=Config(), root=tmp_path)
    assert run.directory == tmp_path / "toy" / "first"
    assert json.loads((run.directory / "config.json").read_text()) == {"size": 3, "kind": "a", "shape": [1, 2]}
    run.log(1, loss=jnp.float32(0.5))
    run.log(2, loss=0.25, accuracy=jnp.array(0.75))
    run.log(2, loss=0.125)
    lines = (run.directory / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines][:2] == [
        {"step": 1, "loss": 0.5},
        {"step": 2, "loss": 0.25, "accuracy": 0.75},
    ]
    assert run.series("loss") == ([1, 2], [0.5, 0.125])
    run.write_results({"accuracy": jnp.array(0.9, jnp.float64), "curve": jnp.arange(3)})
    assert json.loads((run.directory / "results.json").read_text()) == {"accuracy": 0.9, "curve": [0, 1, 2]}
    run.write_report("# Toy")
    assert (run.directory / "report.md").read_text() == "# Toy\n"
    path = plots.learning_curves(run, ["loss", "accuracy"], run.plot_path("curves"))
    assert path == run.directory / "plots" / "curves.png" and path.read_bytes()[:4] == b"\x89PNG"
    again = Run("toy", name="first", root=tmp_path)  # resuming appends
    again.log(3, loss=0.1)
    assert len(again.read_metrics()) == 4


def test_to_jsonable_handles_non_finite_and_nesting():
    assert to_jsonable({"x": (1, math.inf), "k": Kind.A}) == {"x": [1, "inf"], "k": "a"}
    assert Run.__init__.__defaults__[-1] == "runs"
