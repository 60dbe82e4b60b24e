"""Run folders: config.json, metrics.jsonl, plots, results.json, report.md."""

import dataclasses
import enum
import errno
import json
import math
import os
import pathlib
import re
import warnings

import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnjax.analysis import plots
from rnnjax.training import files, locks
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


def _snapshot(folder):
    """Every path under ``folder`` with its file contents (None for folders and links)."""
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() and not path.is_symlink() else None
        for path in folder.rglob("*")
    }


def _populated(tmp_path):
    for folder in ("runs/toy/kept", "runs/other/kept", "outside"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "data.txt").write_text(folder)
    return tmp_path / "runs"


@pytest.mark.parametrize("bad", ["ABSOLUTE", "..", "a/b", "", ".", "a\\b", "../outside"])
def test_bad_run_and_experiment_names_are_refused_and_delete_nothing(tmp_path, bad):
    root = _populated(tmp_path)
    bad = str(tmp_path / "outside") if bad == "ABSOLUTE" else bad
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match=r"name must be a plain name .*got " + re.escape(repr(bad))):
        Run("toy", name=bad, root=root, fresh=True)
    with pytest.raises(ValueError, match=r"experiment must be a plain name"):
        Run(bad, name="kept", root=root, fresh=True)
    with pytest.raises(TypeError, match="name must be a str"):
        Run("toy", name=3, root=root)
    assert _snapshot(tmp_path) == before


def test_fresh_empties_only_its_own_folder_and_never_follows_links(tmp_path):
    root = _populated(tmp_path)
    (root / "toy" / "kept" / "nested").mkdir()
    (root / "toy" / "kept" / "nested" / "deep.txt").write_text("deep")
    (root / "toy" / "kept" / "link").symlink_to(tmp_path / "outside")  # a link inside: removed, not followed
    (root / "toy" / "linked").symlink_to(tmp_path / "outside")  # the run folder itself is a link: refused
    outside, other = _snapshot(tmp_path / "outside"), _snapshot(root / "other")
    with Run("toy", name="kept", root=root, fresh=True) as run:
        assert sorted(path.name for path in run.directory.iterdir()) == [".lock"]
    with pytest.raises(ValueError, match="symbolic link"):
        Run("toy", name="linked", root=root, fresh=True)
    assert _snapshot(tmp_path / "outside") == outside and _snapshot(root / "other") == other


def test_sub_and_path_stay_inside_the_run(tmp_path):
    with Run("toy", name="a", root=tmp_path) as run:
        child = run.sub("model", config={"size": 2})
        assert child.directory == run.directory / "model"
        assert json.loads((child.directory / "config.json").read_text()) == {"size": 2}
        with pytest.raises(ValueError, match="plain name"):
            run.sub("../escape")
        for parts in (("/etc", "x"), ("..", "x"), ("plots", "..", "..", "x")):
            with pytest.raises(ValueError, match="inside the run folder"):
                run.path(*parts)
        assert run.path("plots", "a.png") == run.directory / "plots" / "a.png"
        child.close()
        assert locks.read_holder(run.directory).pid == os.getpid()  # a sub-run's close leaves the run held
        run.sub("never_closed")
    assert locks.read_holder(run.directory) is None  # released with the run, whatever its sub-runs did
    assert not (tmp_path / "escape").exists() and not (tmp_path / "toy" / "escape").exists()


def test_a_line_cut_short_by_a_killed_process_is_ignored_then_cut_and_a_damaged_line_is_an_error(tmp_path):
    with Run("toy", name="a", root=tmp_path, tensorboard=False) as run:
        run.log(1, loss=0.5)
        with open(run.directory / "metrics.jsonl", "a") as handle:
            handle.write('{"step": 2, "lo')  # what a process killed mid-write leaves
        with pytest.warns(files.TornLineWarning, match="cut short"):
            assert run.read_metrics() == [{"step": 1, "loss": 0.5}]
        run.log(3, loss=0.25)  # cuts the torn line first
        with warnings.catch_warnings():
            warnings.simplefilter("error", files.TornLineWarning)
            assert run.read_metrics() == [{"step": 1, "loss": 0.5}, {"step": 3, "loss": 0.25}]
        with open(run.directory / "metrics.jsonl", "a") as handle:
            handle.write("garbage\n")  # a whole line that is not JSON: damage, not an interruption
        run.log(4, loss=0.125)
        with pytest.raises(files.DamagedFileError, match="metrics.jsonl: line 3 is not a JSON record"):
            run.read_metrics()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lengths=st.lists(st.integers(0, 9000), max_size=4),
    tail=st.integers(0, 9000),
    newline_at_end=st.booleans(),
)
def test_cutting_a_torn_tail_keeps_every_whole_line_past_the_first_block(tmp_path, lengths, tail, newline_at_end):
    """Lines and torn tails longer than the 4096-byte block the search reads backwards at a time."""
    path = tmp_path / "lines.jsonl"
    whole = "".join(json.dumps("x" * length) + "\n" for length in lengths)
    torn = "" if newline_at_end else '"' + "y" * tail
    path.write_text(whole + torn)
    assert files.cut_torn_tail(path) == bool(torn)
    assert path.read_text() == whole
    assert [value for _, value in files.read_lines(path)] == ["x" * length for length in lengths]
    files.append_line(path, '"next"')
    assert path.read_text() == whole + '"next"\n'
    path.unlink()


def test_config_differences_name_nested_added_and_removed_fields_but_not_untracked_ones():
    stored = {"model": {"size": 3, "cell": "lstm"}, "seed": 0, "name": "a", "empty": {}}
    current = {"model": {"size": 4, "cell": "lstm", "layers": 2}, "seed": 0, "name": "b", "empty": {}}
    assert files.config_differences(stored, current, untracked=("name",)) == [
        "model.layers: (absent) -> 2", "model.size: 3 -> 4"]  # fmt: skip
    reverse = files.config_differences(current, stored, untracked=("name", "model.size"))
    assert reverse == ["model.layers: 2 -> (absent)"]
    assert files.config_differences(stored, stored) == [] and files.config_differences({"a": {}}, {"a": 1}) == [
        "a: {} -> 1"]  # fmt: skip
    assert files.config_hash({"b": 1, "a": [1, 2]}) == files.config_hash({"a": [1, 2], "b": 1})
    assert files.config_hash({"a": 1}) != files.config_hash({"a": 2}) and len(files.config_hash({})) == 16


def test_every_write_is_fsynced_before_it_returns(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda descriptor: (synced.append(os.readlink(f"/proc/self/fd/{descriptor}")),
                                                         real(descriptor)))  # fmt: skip
    with Run("toy", name="a", root=tmp_path, config={"size": 1}, tensorboard=False) as run:
        run.log(1, loss=0.5)
        run.write_results({"accuracy": 0.5})
    names = [pathlib.Path(path).name for path in synced]
    assert "metrics.jsonl" in names and any(".results.json.tmp" in n for n in names)
    assert any(".config.json.tmp" in n for n in names) and "a" in names  # the folder of the rename too


def test_resuming_under_another_config_is_refused_naming_the_field_and_fresh_starts_over(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Shown:
        quiet: bool = False

    @dataclasses.dataclass(frozen=True)
    class WithRun:
        size: int = 3
        run: Shown = Shown()

    Run("toy", name="a", root=tmp_path, config=WithRun()).close()
    with pytest.raises(files.ConfigMismatch, match=r"size: 3 -> 4"):
        Run("toy", name="a", root=tmp_path, config=WithRun(size=4))
    assert json.loads((tmp_path / "toy" / "a" / "config.json").read_text())["size"] == 3
    assert locks.read_holder(tmp_path / "toy" / "a") is None  # the refused run released its hold
    with pytest.raises(files.ConfigMismatch, match=r"run.quiet: false -> true"):
        Run("toy", name="a", root=tmp_path, config=WithRun(run=Shown(True)))
    Run("toy", name="a", root=tmp_path, config=WithRun(run=Shown(True)), untracked=["run.quiet"]).close()
    Run("toy", name="a", root=tmp_path, config=WithRun(size=4), fresh=True).close()
    assert json.loads((tmp_path / "toy" / "a" / "config.json").read_text())["size"] == 4


def test_a_damaged_or_deleted_config_json_is_an_error_naming_it(tmp_path):
    with Run("toy", name="a", root=tmp_path, config={"size": 1}, tensorboard=False) as run:
        run.log(1, loss=0.5)
    path = tmp_path / "toy" / "a" / "config.json"
    path.write_text('{"si')
    with pytest.raises(files.DamagedFileError, match=f"{path} is damaged"):
        Run("toy", name="a", root=tmp_path, config={"size": 1})
    path.unlink()
    with pytest.raises(files.DamagedFileError, match=f"{path} is missing but the folder holds records"):
        Run("toy", name="a", root=tmp_path, config={"size": 1})
    assert not path.exists()
    Run("toy", name="a", root=tmp_path).close()  # without a config nothing is checked


def _outside_with_data(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "data.txt").write_text("keep me")
    return _snapshot(tmp_path / "outside")


def test_fresh_refuses_a_run_reached_through_a_linked_experiment_folder(tmp_path):
    before = _outside_with_data(tmp_path)
    (tmp_path / "outside" / "run").mkdir()
    (tmp_path / "outside" / "run" / "data.txt").write_text("keep me too")
    root = tmp_path / "runs"
    root.mkdir()
    (root / "toy").symlink_to(tmp_path / "outside")
    before = _snapshot(tmp_path / "outside")
    for fresh in (True, False):
        with pytest.raises(ValueError, match="symbolic link"):
            Run("toy", name="run", root=root, fresh=fresh)
    assert _snapshot(tmp_path / "outside") == before


def test_links_inside_the_root_may_be_followed_but_never_emptied(tmp_path):
    root = tmp_path / "runs"
    (root / "real" / "run").mkdir(parents=True)
    (root / "real" / "run" / "data.txt").write_text("keep")
    (root / "alias").symlink_to(root / "real")  # stays inside the root: a resume through it is allowed
    with Run("alias", name="run", root=root, tensorboard=False) as run:
        run.log(1, loss=0.5)
    assert (root / "real" / "run" / "metrics.jsonl").exists()
    with pytest.raises(ValueError, match="fresh=True will not empty"):
        Run("alias", name="run", root=root, fresh=True)
    assert (root / "real" / "run" / "data.txt").read_text() == "keep"


@pytest.mark.parametrize("link", ["plots", "checkpoints", "metrics.jsonl", "results.json"])
def test_a_link_inside_the_run_folder_leading_out_is_refused(tmp_path, link):
    before = _outside_with_data(tmp_path)
    with Run("toy", name="a", root=tmp_path / "runs", tensorboard=False) as run:
        target = tmp_path / "outside" / ("data.txt" if "." in link else "")
        (run.directory / link).symlink_to(target)
        with pytest.raises(ValueError, match="outside"):
            {"plots": lambda: run.plot_path("curve"), "checkpoints": lambda: run.checkpoint_dir,
             "metrics.jsonl": lambda: run.log(1, loss=0.5),
             "results.json": lambda: run.write_results({"a": 1})}[link]()  # fmt: skip
    assert _snapshot(tmp_path / "outside") == before


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(tmp_path):
    before = _outside_with_data(tmp_path)
    folder = tmp_path / "runs" / "toy" / "a"
    folder.mkdir(parents=True)
    (folder / locks.LOCK_NAME).symlink_to(tmp_path / "outside" / "data.txt")
    with pytest.raises(locks.LockFileError, match="is a symbolic link"):
        Run("toy", name="a", root=tmp_path / "runs")
    (folder / locks.LOCK_NAME).unlink()
    (folder / locks.LOCK_NAME).mkdir()  # not a regular file
    with pytest.raises((locks.LockFileError, OSError), match="lock file"):
        Run("toy", name="a", root=tmp_path / "runs")
    assert _snapshot(tmp_path / "outside") == before


def test_json_files_are_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    with Run("toy", name="a", root=tmp_path, config={"size": 1}, tensorboard=False) as run:
        def no_space(*args):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "replace", no_space)
        with pytest.raises(OSError, match="No space left"):
            run.write_results({"accuracy": 0.5})
        monkeypatch.undo()
        assert not (run.directory / "results.json").exists()
        assert sorted(path.name for path in run.directory.iterdir()) == [".lock", "config.json"]  # no temporary left
        run.write_results({"accuracy": 0.5})
        assert json.loads((run.directory / "results.json").read_text()) == {"accuracy": 0.5}


def test_markdown_table_with_no_rows_says_so_or_refuses():
    from rnnjax.training.runs import markdown_table

    assert markdown_table([], empty="nothing yet") == "nothing yet"
    with pytest.raises(ValueError, match="at least one row"):
        markdown_table([])
    assert markdown_table([{"a": 0.5, "b": "x"}], empty="nothing yet").splitlines() == ["| a | b |", "|---|---|",
                                                                                        "| 0.5 | x |"]  # fmt: skip
