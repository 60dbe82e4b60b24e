"""Mutation smoke test: plant plausible bugs in a copy of the repository and check the tests notice.

    .venv/bin/python tests/mutation_smoke.py [--only NAME,NAME] [--baseline] [--timeout SECONDS] [--list]

Not collected by pytest (the name does not start with ``test_``). Each mutant is a (file, exact old
text, new text) patch applied to a temporary copy of the repository; the copy's own test files for
that area then run (``-x -q -p no:xdist``, ``PYTHONPATH`` at the copy). A mutant is *killed* when
the run fails, *survived* when it passes, and a patch whose old text is not found exactly once is
reported as "patch did not apply" and left out of the score. ``--baseline`` first runs every
selection on the unmutated copy (a failing baseline makes the score meaningless).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORED = (".git", ".venv", "__pycache__", "*.pyc", "*.egg-info", "runs", ".pytest_cache", ".hypothesis", ".cache")


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (found exactly once in ``path``) by ``new``; run ``tests``."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


class Outcome(enum.Enum):
    KILLED = "killed"
    SURVIVED = "survived"
    NOT_APPLIED = "patch did not apply"
    TIMEOUT = "timeout"
    NOT_FOUND = "tests not found"


MUTANTS = (
    Mutant(
        "min_gru: z and 1 - z swapped",
        "rnnjax/core/cells/min_gated.py",
        "return 1.0 - z, z * candidate",
        "return z, (1.0 - z) * candidate",
        (
            "tests/core/test_cells.py::test_step_matches_reference_maths",
            "tests/core/test_cells.py::test_min_gated_cells_match_reference_equations",
            "tests/core/test_parallel.py::test_linear_form_matches_the_gate_equations",
        ),
    ),
    Mutant(
        "min_lstm: forget and input gates swapped",
        "rnnjax/core/cells/min_gated.py",
        "f_pre, i_pre, candidate = jnp.split(u, 3, axis=-1)",
        "i_pre, f_pre, candidate = jnp.split(u, 3, axis=-1)",
        (
            "tests/core/test_cells.py::test_step_matches_reference_maths",
            "tests/core/test_cells.py::test_min_gated_cells_match_reference_equations",
            "tests/core/test_parallel.py::test_linear_form_matches_the_gate_equations",
        ),
    ),
    Mutant(
        "GRU (PyTorch) reset gate on the input part",
        "rnnjax/core/cells/gru.py",
        "z = jax.nn.sigmoid(u_z + v_z)\n    n = jnp.tanh(u_n + r * v_n)",
        "z = jax.nn.sigmoid(u_z + v_z)\n    n = jnp.tanh(r * u_n + v_n)",
        ("tests/core/test_cells.py::test_step_matches_reference_maths",),
    ),
    Mutant(
        "GRU manual BPTT forward: reset gate on the input part",
        "rnnjax/core/cells/gru.py",
        "v_n = h @ kernels[2] + b_hn\n        n = jnp.tanh(u_n + r * v_n)",
        "v_n = h @ kernels[2] + b_hn\n        n = jnp.tanh(r * u_n + v_n)",
        (
            "tests/core/test_bptt.py::test_backward_matches_autodiff",
            "tests/core/test_bptt.py::test_manual_vjp_matches_rnn_and_autodiff",
        ),
    ),
    Mutant(
        "length mask off by one (t <= length valid)",
        "rnnjax/core/inputs.py",
        "return jnp.arange(time_steps) < lengths[..., None]",
        "return jnp.arange(time_steps) <= lengths[..., None]",
        (
            "tests/core/test_unroll.py::test_padding_matches_each_sequence_alone",
            "tests/core/test_padding.py::test_rnn_ignores_nan_padding",
        ),
    ),
    Mutant(
        "bidirectional: backward direction not reversed",
        "rnnjax/core/unroll.py",
        "reverse=direction == 1,",
        "reverse=False,",
        (
            "tests/core/test_unroll.py::test_bidirectional_stack_on_padded_batch_matches_unpadded",
            "tests/core/test_unroll.py::test_stacked_bidirectional_matches_manual_composition",
        ),
    ),
    Mutant(
        "reverse with resets: segment boundary not shifted",
        "rnnjax/core/inputs.py",
        "if reverse:  # reset[t] starts a segment at t",
        "if False:  # reset[t] starts a segment at t",
        ("tests/core/test_unroll.py::test_reset_equals_starting_a_fresh_sequence",),
    ),
    Mutant(
        "training: same key every step",
        "rnnjax/training/loop.py",
        "key = jax.random.fold_in(state.key, state.step)",
        "key = jax.random.fold_in(state.key, 0)",
        ("tests/training/test_train.py::test_fit_and_fit_many_use_a_new_key_every_step",),
    ),
    Mutant(
        "checkpoint restore ignores the saved PRNG key",
        "rnnjax/training/checkpoint.py",
        "return jax.random.wrap_key_data(data, impl=jax.random.key_impl(like))",
        "return like",
        (
            "tests/training/test_checkpoint.py::test_round_trip_keeps_values_dtypes_and_typed_keys",
            "tests/training/test_checkpoint.py::test_exact_resume_is_bit_for_bit",
        ),
    ),
    Mutant(
        "attention softmax over the batch axis",
        "rnnjax/tasks/seq2seq.py",
        "weights = jax.nn.softmax(scores, axis=-1) * mask",
        "weights = jax.nn.softmax(scores, axis=0) * mask",
        (
            "tests/tasks/test_seq2seq.py::test_attend_equals_masked_softmax_in_numpy",
            "tests/tasks/test_seq2seq.py::test_decoder_equals_numpy_equations",
        ),
    ),
    Mutant(
        "attention over padded memory (mask ignored)",
        "rnnjax/tasks/seq2seq.py",
        "mask = memory.mask if scores.ndim == 2 else memory.mask[:, None, :]",
        "mask = (memory.mask | True) if scores.ndim == 2 else (memory.mask | True)[:, None, :]",
        (
            "tests/tasks/test_seq2seq.py::test_attend_equals_masked_softmax_in_numpy",
            "tests/tasks/test_seq2seq.py::test_padding_is_ignored_and_jit_vmap_agree",
        ),
    ),
    Mutant(
        "CTC collapse keeps repeated labels",
        "rnnjax/tasks/ctc.py",
        "keep = valid & (tokens != blank_id) & ((tokens != previous) | first)",
        "keep = valid & (tokens != blank_id)",
        ("tests/tasks/test_ctc.py",),
    ),
    Mutant(
        "training NMSE divided by the variance of the inputs",
        "rnnjax/probes/training.py",
        "scale = jnp.var(labels)",
        "scale = jnp.var(xs)",
        ("tests/probes/test_training.py::test_sweep_metrics_equal_an_independent_evaluation_of_the_trained_models",),
    ),
    Mutant(
        "kernel target: taps applied one step late",
        "rnnjax/probes/targets.py",
        "jnp.arange(length)[None, :] - min_lag  #",
        "jnp.arange(length)[None, :] - min_lag - 1  #",
        ("tests/probes/test_targets.py::test_kernel_target_matches_the_convolution_sum",),
    ),
    Mutant(
        "test NMSE divided by the spread of the predictions",
        "rnnjax/probes/statistics.py",
        "spreads = jnp.sum((targets - jnp.mean(targets)) ** 2, axis=axes)",
        "spreads = jnp.sum((predictions - jnp.mean(predictions)) ** 2, axis=axes)",
        (
            "tests/probes/test_statistics.py::test_point_estimate_is_the_pooled_nmse_and_bounds_are_ordered",
            "tests/probes/test_training.py::test_sweep_metrics_equal_an_independent_evaluation_of_the_trained_models",
        ),
    ),
    Mutant(
        "NMSE interval: delta method without the ratio term",
        "rnnjax/probes/statistics.py",
        "jnp.std(errors - ratio * spreads, ddof=1)",
        "jnp.std(errors, ddof=1)",
        ("tests/probes/test_statistics.py",),
    ),
    Mutant(
        "LSTM manual BPTT: cell gradient not scaled by the forget gate",
        "rnnjax/core/cells/lstm.py",
        "return LSTMState(h=d_h_prev, c=d_c * f), d_z",
        "return LSTMState(h=d_h_prev, c=d_c), d_z",
        ("tests/core/test_bptt.py::test_backward_matches_autodiff",),
    ),
    Mutant(
        "seq2seq bridge without its tanh",
        "rnnjax/tasks/seq2seq.py",
        "lambda p, _: jnp.tanh(dense(p, vector))",
        "lambda p, _: dense(p, vector)",
        ("tests/tasks/test_seq2seq.py::test_bridge_connects_different_cells_and_sizes",),
    ),
    Mutant(
        "best checkpoint always by the smallest metric (best_mode ignored)",
        "rnnjax/training/checkpoint.py",
        "best_mode=mode.value,",
        'best_mode="min",',
        ("tests/training/test_checkpoint.py::test_best_mode_max_keeps_the_largest_metric",),
    ),
    Mutant(
        "warm-up one step ahead",
        "rnnjax/training/loop.py",
        "ramp = jnp.minimum(1.0, t / warmup) if warmup > 0 else 1.0",
        "ramp = jnp.minimum(1.0, (t + 1) / warmup) if warmup > 0 else 1.0",
        ("tests/training/test_train.py::test_schedule_warmup_then_cosine",),
    ),
    Mutant(
        "benchmark flop count without the input projection",
        "benchmarks/many.py",
        "return 3 * 2 * batch * time_steps * (1 + hidden) * 4 * hidden",
        "return 3 * 2 * batch * time_steps * hidden * 4 * hidden",
        ("tests/test_benchmarks.py::test_flops_per_step_matches_the_traced_matmuls",),
    ),
)


def copy_repository(destination: Path) -> Path:
    """A copy of the working tree (sources, tests, scripts; no .git, .venv or caches)."""
    target = destination / "repo"
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(*IGNORED))
    return target


def copy_environment(copy: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}


def check_imports_from_copy(copy: Path) -> None:
    """Refuse to run if ``import rnnjax`` would pick the original tree (an editable install first)."""
    found = subprocess.run(
        [sys.executable, "-c", "import rnnjax; print(rnnjax.__file__)"],
        cwd=copy, env=copy_environment(copy), capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not Path(found).resolve().is_relative_to(copy.resolve()):
        raise RuntimeError(f"rnnjax imports from {found}, expected the copy at {copy}")


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[int | None, str]:
    """(pytest's exit status or None on timeout, the last lines of its output)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command, cwd=copy, env=copy_environment(copy), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])


def apply_patch(copy: Path, mutant: Mutant) -> str | None:
    """Write the mutated file; return its original text, or None when ``old`` is not found exactly once."""
    file = copy / mutant.path
    if not file.exists():
        return None
    original = file.read_text()
    if original.count(mutant.old) != 1:
        return None
    file.write_text(original.replace(mutant.old, mutant.new))
    return original


def judge(copy: Path, mutant: Mutant, timeout: float) -> tuple[Outcome, str]:
    original = apply_patch(copy, mutant)
    if original is None:
        return Outcome.NOT_APPLIED, f"old text not found exactly once in {mutant.path}"
    try:
        status, tail = run_tests(copy, mutant.tests, timeout)
    finally:
        (copy / mutant.path).write_text(original)
    if status is None:
        return Outcome.TIMEOUT, f"no verdict within {timeout:.0f} s"
    if status == 0:
        return Outcome.SURVIVED, tail
    if status in (4, 5):  # usage error (a test id not found), no tests collected
        return Outcome.NOT_FOUND, tail.replace("\n", " ")
    if status not in (1, 2):  # 3: internal error
        raise RuntimeError(f"pytest exited with {status} for {mutant.name}:\n{tail}")
    return Outcome.KILLED, first_failure(tail)


def first_failure(tail: str) -> str:
    lines = [line for line in tail.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return lines[0] if lines else tail.splitlines()[-1] if tail else ""


def run_baseline(copy: Path, mutants: tuple[Mutant, ...], timeout: float) -> None:
    selection = tuple(sorted({test for mutant in mutants for test in mutant.tests}))
    status, tail = run_tests(copy, selection, timeout * len(selection))
    if status != 0:
        raise RuntimeError(f"the unmutated copy fails its tests (status {status}):\n{tail}")
    print(f"baseline: {len(selection)} test files pass on the unmutated copy", flush=True)


def format_table(rows: list[tuple[Mutant, Outcome, str, float]]) -> str:
    scored = [outcome for _, outcome, _, _ in rows if outcome in (Outcome.KILLED, Outcome.SURVIVED)]
    killed = sum(outcome is Outcome.KILLED for outcome in scored)
    lines = ["| mutant | tests run | outcome | seconds | first failure |", "|---|---|---|---:|---|"]
    for mutant, outcome, detail, seconds in rows:
        tests = ", ".join(Path(test).name for test in mutant.tests)
        lines.append(f"| {mutant.name} | {tests} | {outcome.value} | {seconds:.0f} | {detail.replace('|', '/')} |")
    lines.append(f"\nscore: {killed}/{len(scored)} killed ({len(rows) - len(scored)} not scored)")
    return "\n".join(lines)


def missing_tests(mutant: Mutant) -> list[str]:
    """The test ids of ``mutant`` whose file or test function is not in the working tree."""
    missing = []
    for test in mutant.tests:
        file, _, function = test.partition("::")
        path = ROOT / file
        if not path.exists() or (function and f"def {function}(" not in path.read_text()):
            missing.append(test)
    return missing


def describe(mutant: Mutant) -> str:
    """Whether the patch applies and its tests exist in the working tree (for ``--list``)."""
    file = ROOT / mutant.path
    applies = file.exists() and file.read_text().count(mutant.old) == 1
    missing = missing_tests(mutant)
    status = "applies" if applies else "PATCH DOES NOT APPLY"
    return f"{status}: {mutant.name} ({mutant.path})" + (f"; TESTS NOT FOUND: {missing}" if missing else "")


def select(names: str) -> tuple[Mutant, ...]:
    if not names:
        return MUTANTS
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    chosen = tuple(mutant for mutant in MUTANTS if any(name in mutant.name for name in wanted))
    if not chosen:
        raise SystemExit(f"--only {names!r} matches none of: {[mutant.name for mutant in MUTANTS]}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated substrings of mutant names")
    parser.add_argument("--baseline", action="store_true", help="first check the unmutated copy passes")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant")
    parser.add_argument("--list", action="store_true", help="list the mutants and whether each patch applies")
    args = parser.parse_args()
    mutants = select(args.only)
    if args.list:
        for mutant in mutants:
            print(describe(mutant))
        return
    with tempfile.TemporaryDirectory(prefix="rnnjax-mutants-") as folder:
        copy = copy_repository(Path(folder))
        check_imports_from_copy(copy)
        if args.baseline:
            run_baseline(copy, mutants, args.timeout)
        rows = []
        for mutant in mutants:
            start = time.perf_counter()
            outcome, detail = judge(copy, mutant, args.timeout)
            rows.append((mutant, outcome, detail, time.perf_counter() - start))
            print(f"{outcome.value}: {mutant.name} ({rows[-1][3]:.0f} s) {detail}", flush=True)
    print(format_table(rows))


if __name__ == "__main__":
    main()
