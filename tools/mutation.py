"""Mutation score of rnnjax's tests, measured with mutmut: per module, with every surviving mutant listed.

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python tools/mutation.py [--scopes core,tasks,training,probes] [--only GLOB,GLOB]
        [--workdir DIR] [--output benchmarks/results/mutation_<date>.json] [--max-children 1] [--resume]

Not collected by pytest and not run in CI: it is slow. Measured on 2 shared cores, one worker: about 3 s a mutant
whose covering tests are fast, up to ~20 s for a function every test calls (``locks._lock``); 477 mutants of
training/optimizers.py + locks.py took 29 min for 318 of them, and the whole listed scope (core, tasks, training,
the probes' record keeping) holds 11,451 mutants, about 10 hours. Score a module at a time. The repository is copied
to ``--workdir`` (default: a fresh folder under the system temp dir) and mutmut runs there, so the working tree is
never mutated and no ``mutants/`` folder appears in it. The results file lists, per module, how many mutants were
killed, timed out, survived, had no covering test, were not checked (a run stopped early) or are known equivalent
(``EQUIVALENT`` below, each with its reason; left out of the score), and the diff of every survivor; a ``.md``
twin with the same stem is written for reading.

Why mutmut (3.8.1) rather than cosmic-ray:

- mutmut runs a stats pass once (which test calls which function) and then, per mutant, only the tests that call
  the mutated function, in a process forked from a server that has already imported pytest and collected the
  tests. cosmic-ray starts a fresh interpreter per mutant (about 3 s for Python + JAX) and runs the whole
  selection; on two shared cores that is the difference between minutes and hours.
- mutmut keeps each mutant's verdict in ``mutants/*.meta`` as it goes: a run stopped at a deadline is resumed
  with ``--resume`` and a partial run still yields scores (its unchecked mutants are counted as such).
- ``process_isolation = "forkserver"``, not mutmut's default ``fork``: in fork mode the stats pass and the clean
  run execute in the parent, so every jitted program compiled there is inherited by each mutant's child, and a
  mutated function behind a ``jax.jit`` that was traced once is never traced again (false survivors). The fork
  server's warm-up only imports ``PRELOAD`` (``forkserver_warmup = "import"``), not mutmut's default test
  collection: collecting imports rnnjax, which starts XLA's CPU thread pools, and every forked child then hung
  until its timeout (counted as a kill: a false score). Each mutant's child imports rnnjax, traces and compiles
  afresh (about 2 s more per mutant, the price of a true verdict).

Scoring new tests against unchanged sources: ``--revision <sources> --tests-revision <tests> --resume
--rerun-survivors`` reruns only the earlier survivors. mutmut resets the verdict of every mutant of a function that a
new test covers, so the earlier kills come back as "not checked": a kill cannot be undone by adding tests to
unchanged sources, so they are put back from the earlier run (``--restore-kills FILE``: the earlier report).

What mutmut does not mutate (so the score does not cover it): decorated functions other than ``staticmethod``/
``classmethod`` (``@jax.jit``, ``@functools.partial(jax.jit, ...)``, ``@shaped`` bodies), module-level statements
and class bodies other than their methods.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORED = (".git", ".venv", "__pycache__", "*.pyc", "*.egg-info", "runs", ".pytest_cache", ".hypothesis", ".cache",
           "mutants", "docs", "benchmarks", "experiments", "data_cache")
MUTMUT_VERSION = "3.8.1"


@dataclasses.dataclass(frozen=True)
class Scope:
    """Sources to mutate (mutmut ``only_mutate`` globs) and the fast tests that exercise them."""

    sources: tuple[str, ...]
    tests: tuple[str, ...]
    deselect: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()  # rnnjax modules whose import starts no XLA backend (checked: no thread starts)


# Fast tests of each module only: no experiment runs, docs, interop or class-optimum tests.
SCOPES = {
    "core": Scope(("rnnjax/core/*",), ("tests/core",), preload=("rnnjax.core.unroll", "rnnjax.core.cells")),
    "tasks": Scope(("rnnjax/tasks/*",), ("tests/tasks",), preload=("rnnjax.tasks.seq2seq", "rnnjax.tasks.heads")),
    # training: the bookkeeping and optimizer modules, with the tests that exercise them (not the checkpoint
    # fault tests: each mutant of a function they call would run every kill/damage/disk test, minutes a mutant).
    "training": Scope(
        ("rnnjax/training/optimizers.py", "rnnjax/training/locks.py", "rnnjax/training/files.py",
         "rnnjax/training/runs.py", "rnnjax/training/step.py", "rnnjax/training/stats.py",
         "rnnjax/training/config.py", "rnnjax/checks/arguments.py"),
        ("tests/training/test_train.py", "tests/training/test_runs.py", "tests/training/test_config.py",
         "tests/training/test_faults.py", "tests/training/test_stats.py", "tests/training/test_arguments_mutation.py"),
        deselect=(
            # Introspection that mutmut's trampolines change: __defaults__, and the stack depth a warning points at.
            "tests/training/test_runs.py::test_to_jsonable_handles_non_finite_and_nesting",
            "tests/training/test_faults.py::test_a_stale_lock_is_reported_at_the_caller",
            *(f"tests/training/test_faults.py::test_{name}" for name in (
                "kill_during_save", "damaged", "bytes_the_storage", "all_checkpoints", "keep_last_k", "fit_resumes",
                "read_only", "full_disk", "injected_write", "infinite_learning")),
        ),
        preload=("rnnjax.training.loop", "rnnjax.training.runs", "rnnjax.training.checkpoint"),
    ),
    "probes": Scope(
        ("rnnjax/probes/runner.py", "rnnjax/probes/results.py", "rnnjax/probes/statistics.py"),
        ("tests/probes/test_runner.py", "tests/probes/test_statistics.py"),
    ),
}

# Mutants that cannot change any observable result, with the reason; left out of the score.
EQUIVALENT: dict[str, str] = {
    "rnnjax.training.optimizers.x_make_schedule__mutmut_9":
        "jnp.result_type(None) is the default float dtype, as jnp.result_type(float) (float64 under x64, else float32)",
    "rnnjax.training.stats.x_compare_with_baseline__mutmut_37":
        "seeds.mean(+1) is seeds.mean(-1): seed_right is refused unless it has exactly 2 dimensions",
    "rnnjax.training.stats.x_compare_with_baseline__mutmut_66":
        "only_first >= only_second differs from > only at equal counts, where the exact McNemar p is 1 and never "
        "< 1 - confidence (confidence >= 0 is checked)",
    "rnnjax.training.step.x__tree_finite__mutmut_5":
        "jnp.issubdtype(None, jnp.inexact) is True, so every leaf is kept: jnp.isfinite of an int or bool leaf is all "
        "True, so the result is unchanged (and params reach _tree_finite only through value_and_grad: all inexact)",
    "rnnjax.training.config.x__given__mutmut_12":
        "arg.split('=')[0] is arg.split('=', 1)[0] for every string: only the part before the first '=' is read",
    "rnnjax.training.config.x__given__mutmut_15":
        "arg.split('=', 2)[0] is arg.split('=', 1)[0] for every string: only the part before the first '=' is read",
}

STATUS_BY_EXIT_CODE = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
                       36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "error",
                       37: "caught by type check", -11: "segfault", -9: "segfault", None: "not checked"}
# "error" (exit 255): the mutant's test run raised outside pytest's reporting (e.g. a test module's import-time
# call of the mutated function failed); mutmut files it under timeout, we keep it apart. Both count as killed.
KILLED = ("killed", "error", "timeout", "caught by type check", "segfault")
# Imported once by the fork server: they start no thread that a fork would orphan. Importing rnnjax (or collecting
# the tests) initialises XLA's CPU backend and its thread pools, and each forked child then deadlocks.
PRELOAD = ("numpy", "jax", "jax.numpy", "optax", "hypothesis", "pytest", "_pytest.python")


def copy_repository(workdir: Path, revision: str | None, tests_revision: str | None) -> None:
    """The sources, tests and pyproject.toml (of the working tree, or as committed at ``revision``); the tests
    may come from another revision (new tests scored against unchanged sources)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("rnnjax", "tests"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    if revision is None:
        for name in ("rnnjax", "tests"):
            shutil.copytree(ROOT / name, workdir / name, ignore=shutil.ignore_patterns(*IGNORED))
        shutil.copy2(ROOT / "pyproject.toml", workdir / "pyproject.toml")
    else:  # e.g. the suite before a change, to score it
        _extract(revision, ("rnnjax", "tests", "pyproject.toml"), workdir)
    if tests_revision is not None:
        shutil.rmtree(workdir / "tests")
        _extract(tests_revision, ("tests",), workdir)


def _extract(revision: str, paths: tuple[str, ...], workdir: Path) -> None:
    archive = subprocess.run(["git", "archive", revision, *paths], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)


def mutmut_config(scopes: list[Scope], only: list[str] | None) -> str:
    """The ``[tool.mutmut]`` table appended to the copy's pyproject.toml."""
    sources = only or [glob for scope in scopes for glob in scope.sources]
    tests = [test for scope in scopes for test in scope.tests]
    deselect = [arg for scope in scopes for test in scope.deselect for arg in ("--deselect", test)]
    pytest_args = ["-p", "no:xdist", "-p", "no:cacheprovider", "-q", "-x", *deselect]
    return "\n".join((
        "", "[tool.mutmut]",
        'source_paths = ["rnnjax/"]',
        f"only_mutate = {json.dumps(sources)}",
        f"pytest_add_cli_args = {json.dumps(pytest_args)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        'process_isolation = "forkserver"',
        'forkserver_warmup = "import"',
        'preload_modules_file = "preload.txt"',
        "use_git_change_detection = false",
        "timeout_multiplier = 5.0",
        "",
    ))


def run_mutmut(workdir: Path, max_children: int, mutants: list[str] = ()) -> float:
    """``mutmut run [mutants]`` in the copy at low priority; returns its wall time in seconds."""
    # RNNJAX_CHECK_SHAPES as tests/conftest.py sets it, but before the fork server preloads rnnjax.
    env = dict(os.environ, PYTHONPATH="", RNNJAX_COMPILATION_CACHE="0", RNNJAX_CHECK_SHAPES="1")
    mutmut = Path(sys.executable).parent / "mutmut"
    start = time.perf_counter()
    with open(workdir / "mutmut-run.log", "w") as log:
        subprocess.run(["nice", "-n", "10", str(mutmut), "run", "--max-children", str(max_children), *mutants],
                       cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    return time.perf_counter() - start


DIFFS = """
import json, sys
from mutmut.__main__ import get_diff_for_mutant, find_mutant
out = {}
for name in json.load(sys.stdin):
    out[name] = get_diff_for_mutant(name, path=find_mutant(name).path)
print(json.dumps(out))
"""


def read_verdicts(workdir: Path) -> dict[str, str]:
    """Mutant name -> status, from the ``.meta`` files mutmut writes next to each mutated module."""
    verdicts = {}
    for meta in sorted((workdir / "mutants" / "rnnjax").rglob("*.py.meta")):
        for name, exit_code in json.loads(meta.read_text())["exit_code_by_key"].items():
            verdicts[name] = STATUS_BY_EXIT_CODE.get(exit_code, "suspicious")
    return verdicts


def survivor_diffs(workdir: Path, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    result = subprocess.run([sys.executable, "-c", DIFFS], cwd=workdir, input=json.dumps(names),
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def module_of(mutant: str) -> str:
    """``rnnjax.training.stats.x_seed_summary__mutmut_1`` -> ``rnnjax.training.stats``."""
    return ".".join(part for part in mutant.split(".") if not part.startswith("x"))


def scores(verdicts: dict[str, str]) -> dict[str, dict]:
    """Per module: counts by status and the score killed / (mutants - equivalent - not checked)."""
    table: dict[str, dict] = {}
    for name, status in verdicts.items():
        status = "equivalent" if name in EQUIVALENT else status
        row = table.setdefault(module_of(name), {"mutants": 0})
        row["mutants"] += 1
        row[status] = row.get(status, 0) + 1
    total: dict[str, int] = {}
    for row in table.values():
        for status, count in row.items():
            total[status] = total.get(status, 0) + count
    table["TOTAL"] = total
    for row in table.values():
        killed = sum(row.get(status, 0) for status in KILLED)
        judged = row["mutants"] - row.get("equivalent", 0) - row.get("not checked", 0) - row.get("skipped", 0)
        row["score"] = round(killed / judged, 4) if judged else None
    return table


def markdown(report: dict) -> str:
    statuses = ("killed", "error", "timeout", "survived", "no tests", "equivalent", "not checked")
    lines = [f"# Mutation score ({report['date']}, mutmut {report['tool_version']})", "",
             f"Command: `{report['command']}`; wall time {report['wall_time_s'] / 60:.1f} min "
             f"({report['max_children']} worker).", "", *([report["note"], ""] if report["note"] else []),
             "| module | mutants | " + " | ".join(statuses) + " | score |",
             "|---|---:|" + "---:|" * len(statuses) + "---:|"]
    for module, row in sorted(report["modules"].items(), key=lambda item: item[0] == "TOTAL"):
        score = "-" if row["score"] is None else f"{100 * row['score']:.1f}%"
        lines.append(f"| {module} | {row['mutants']} | " + " | ".join(str(row.get(s, 0)) for s in statuses)
                     + f" | {score} |")
    lines += ["", "## Equivalent mutants (left out of the score)", ""]
    lines += [f"- `{name}`: {reason}" for name, reason in sorted(report["equivalent"].items())] or ["- none"]
    lines += ["", "## Survivors", ""]
    for name, diff in sorted(report["survivors"].items()):
        lines += [f"### `{name}`", "", "```diff", diff.strip(), "```", ""]
    return "\n".join(lines) + "\n"


def _without_note(argv: list[str]) -> list[str]:
    """The command line for the report, less the note's text (the report shows it apart)."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--note="):
            skip = False
            continue
        skip = arg == "--note"
        if not skip:
            kept.append(arg)
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scopes", default=",".join(SCOPES), help=f"comma-separated, of {', '.join(SCOPES)}")
    parser.add_argument("--only", help="comma-separated source globs, narrower than the scopes' sources")
    parser.add_argument("--workdir", type=Path, help="where the copy lives (default: a new temp folder)")
    parser.add_argument("--resume", action="store_true", help="keep the workdir's mutants/ and earlier verdicts")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="with --resume: copy the current tests in and rerun only the earlier survivors (tests "
                             "added since; no library change, so the killed stay killed)")
    parser.add_argument("--report-only", action="store_true", help="read the workdir's verdicts, run nothing")
    parser.add_argument("--wall-time-s", type=float, help="with --report-only: the wall time of a run stopped by hand")
    parser.add_argument("--restore-kills", type=Path, help="an earlier report: its kills stand for unchecked mutants")
    parser.add_argument("--note", default="", help="a line for the report (what was measured, what was not)")
    parser.add_argument("--revision", help="score the sources and tests committed at this git revision")
    parser.add_argument("--tests-revision", help="the tests as committed at this revision (default: with the sources)")
    parser.add_argument("--max-children", type=int, default=1)
    parser.add_argument("--output", type=Path,
                        default=ROOT / "benchmarks" / "results" / f"mutation_{datetime.date.today()}.json")
    args = parser.parse_args(argv)
    names = args.scopes.split(",")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rnnjax-mutation-"))
    wall_times, verdicts = {}, {}
    for name in names:  # one copy and one mutmut run per scope: each scope's results come as soon as it ends
        scope_dir = workdir / name
        if not args.report_only:
            if not args.resume:
                shutil.rmtree(scope_dir / "mutants", ignore_errors=True)
            copy_repository(scope_dir, args.revision, args.tests_revision)
            (scope_dir / "preload.txt").write_text("\n".join((*PRELOAD, *SCOPES[name].preload)) + "\n")
            with open(scope_dir / "pyproject.toml", "a") as pyproject:
                pyproject.write(mutmut_config([SCOPES[name]], args.only.split(",") if args.only else None))
            again = []
            if args.rerun_survivors:
                again = [m for m, status in read_verdicts(scope_dir).items() if status in ("survived", "no tests")]
            if not args.rerun_survivors or again:
                wall_times[name] = round(run_mutmut(scope_dir, args.max_children, again), 1)
        verdicts.update({mutant: (status, scope_dir) for mutant, status in read_verdicts(scope_dir).items()})
    if args.restore_kills:
        earlier = json.loads(args.restore_kills.read_text())["verdicts"]
        for mutant, (status, scope_dir) in verdicts.items():
            if status == "not checked" and earlier.get(mutant) in KILLED:
                verdicts[mutant] = (earlier[mutant], scope_dir)
    survivors = sorted(mutant for mutant, (status, _) in verdicts.items()
                       if status in ("survived", "no tests", "suspicious") and mutant not in EQUIVALENT)
    diffs = {}
    for name in names:
        diffs.update(survivor_diffs(workdir / name, [m for m in survivors if verdicts[m][1] == workdir / name]))
    report = {
        "date": str(datetime.date.today()), "tool": "mutmut", "tool_version": MUTMUT_VERSION,
        "command": " ".join(["tools/mutation.py", *_without_note(argv if argv is not None else sys.argv[1:])]),
        "note": args.note, "workdir": str(workdir),
        "wall_time_s": round(args.wall_time_s or sum(wall_times.values()), 1), "wall_time_s_by_scope": wall_times,
        "revision": args.revision or "working tree", "tests_revision": args.tests_revision or args.revision,
        "max_children": args.max_children,
        "scopes": {name: dataclasses.asdict(SCOPES[name]) for name in names},
        "modules": scores({mutant: status for mutant, (status, _) in verdicts.items()}),
        "equivalent": {k: v for k, v in EQUIVALENT.items() if k in verdicts},
        "survivors": diffs,
        "verdicts": {mutant: status for mutant, (status, _) in sorted(verdicts.items())},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    args.output.with_suffix(".md").write_text(markdown(report))
    total = report["modules"]["TOTAL"]
    print(f"{total['mutants']} mutants, score {total['score']}, {len(survivors)} survivors -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
