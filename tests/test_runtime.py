"""rnnjax's XLA CPU flags: merged into XLA_FLAGS at import, user settings win, and the deadlock case runs; the
persistent compilation cache: off after import, on through the experiments' command line, a second process
compiles nothing the first compiled."""

import json
import os
import subprocess
import sys

import pytest

from rnnjax import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


def _python(code: str, timeout: float = 120, **env_updates: str) -> subprocess.CompletedProcess:
    removed = ("XLA_FLAGS", "RNNJAX_KEEP_XLA_FLAGS", "RNNJAX_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR")
    env = {k: v for k, v in os.environ.items() if k not in removed}
    env.update(PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", **env_updates)
    command = [sys.executable, "-c", code]
    return subprocess.run(command, env=env, cwd=ROOT, timeout=timeout, capture_output=True, text=True)


def test_merged_flags_appends_missing_and_keeps_existing():
    assert runtime.merged_flags("") == FLAG
    assert runtime.merged_flags("--xla_force_host_platform_device_count=4") == (
        "--xla_force_host_platform_device_count=4 " + FLAG
    )
    user = "--xla_cpu_enable_concurrency_optimized_scheduler=true --foo=1"
    assert runtime.merged_flags(user) == user  # the user's own value wins
    assert runtime.merged_flags(FLAG) == FLAG  # idempotent


def test_this_process_runs_with_the_flag():
    # conftest/pytest import rnnjax before any JAX computation, so the flag is in effect here too.
    assert FLAG in os.environ.get("XLA_FLAGS", "") or "concurrency_optimized_scheduler" in os.environ.get(
        "XLA_FLAGS", ""
    )


PRINT_FLAGS = "import os, rnnjax; print(os.environ.get('XLA_FLAGS', ''))"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, FLAG),
        ({"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, "--xla_force_host_platform_device_count=2 " + FLAG),
        ({"XLA_FLAGS": "--xla_cpu_enable_concurrency_optimized_scheduler=true"},
         "--xla_cpu_enable_concurrency_optimized_scheduler=true"),
        ({"RNNJAX_KEEP_XLA_FLAGS": "1"}, ""),
    ],
)  # fmt: skip
def test_import_sets_flags_unless_told_not_to(env, expected):
    done = _python(PRINT_FLAGS, **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_import_after_backend_start_warns_instead_of_silently_doing_nothing():
    done = _python("import jax; jax.numpy.ones(2).block_until_ready(); import rnnjax")
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" in done.stderr and "xla_cpu_enable_concurrency_optimized_scheduler" in done.stderr


def test_vmapped_many_model_training_step_completes():
    """The configuration that deadlocked 9 of 22 fresh processes with JAX's default flags."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from xla_cpu_hang import TRIAL

    done = _python(TRIAL, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]


SMALL_STEP = """
import functools, hashlib, jax, numpy as np, optax
from benchmarks.many import init_model, loss_fn, make_batch
from rnnjax.training.loop import init_many
from rnnjax.training.step import train_step_body
optimizer = optax.adam(1e-2)
states = init_many(functools.partial(init_model, hidden=8), optimizer, jax.random.split(jax.random.key(0), 16))
step = jax.jit(jax.vmap(functools.partial(train_step_body, loss_fn, optimizer), in_axes=(0, None)))
for s in range(3):
    states, _ = step(states, make_batch(jax.random.key(s), 8, 10))
print(hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in jax.tree.leaves(states.params))).hexdigest())
"""


def test_flag_leaves_results_bit_identical():
    with_flag = _python(SMALL_STEP)
    without = _python(SMALL_STEP, RNNJAX_KEEP_XLA_FLAGS="1")
    assert with_flag.returncode == 0 and without.returncode == 0, with_flag.stderr + without.stderr
    assert with_flag.stdout == without.stdout


BACKENDS = """
import sys
from rnnjax import runtime
before = runtime.backends_started()
import jax
imported = runtime.backends_started()
jax.numpy.ones(2).block_until_ready()
print(before, imported, runtime.backends_started())
"""


def test_backends_started_turns_true_only_when_jax_computes():
    done = _python(BACKENDS, RNNJAX_KEEP_XLA_FLAGS="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "True"]


IMPORT_EVERYTHING_LIGHT = """
import sys
import rnnjax, rnnjax.core, rnnjax.typing, rnnjax.analysis.diagnostics, rnnjax.analysis.plots, rnnjax.analysis.viz
import rnnjax.tasks.losses, rnnjax.tasks.ctc, rnnjax.tasks.heads, rnnjax.training.loop, rnnjax.probes.report
print(sorted(name for name in ("matplotlib", "flax", "torch", "beartype") if name in sys.modules))
"""


def test_import_pulls_in_no_optional_dependency():
    done = _python(IMPORT_EVERYTHING_LIGHT, RNNJAX_CHECK_SHAPES="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


CACHE_COUNTS = """
import json, sys, jax, jax.numpy as jnp
from rnnjax import runtime
events = []
jax.monitoring.register_event_listener(lambda name, **_: events.append(name))
folder = runtime.enable_compilation_cache() if sys.argv[1] == "default" else None
jax.jit(lambda x: jnp.tanh(x) @ x.T)(jnp.ones((3, 3))).block_until_ready()
count = lambda end: sum(name.endswith(end) for name in events)
print(json.dumps([folder, count("cache_hits"), count("cache_misses"), count("compile_requests_use_cache")]))
"""


def _cache_counts(*args: str, **env: str) -> list:
    done = subprocess.run([sys.executable, "-c", CACHE_COUNTS, *args], env={**_env(), **env}, cwd=ROOT,
                          timeout=120, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _env() -> dict[str, str]:
    removed = ("XLA_FLAGS", "RNNJAX_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR", "RNNJAX_CACHE")
    return {**{k: v for k, v in os.environ.items() if k not in removed}, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}


def test_second_process_loads_every_program_the_first_compiled(tmp_path):
    folder = str(tmp_path / "xla")
    first = _cache_counts("default", RNNJAX_COMPILATION_CACHE=folder)
    second = _cache_counts("default", RNNJAX_COMPILATION_CACHE=folder)
    assert first[0] == second[0] == folder
    assert first[1] == 0 and first[2] == first[3] > 0  # every program compiled and written
    assert second[1] == second[3] == first[3] and second[2] == 0  # every program read back, none compiled
    assert len(os.listdir(folder)) == first[3]


def test_cache_default_folder_and_off_switch(tmp_path):
    default = _cache_counts("default", RNNJAX_CACHE=str(tmp_path))
    assert default[0] == str(tmp_path / "xla") and len(os.listdir(tmp_path / "xla")) == default[3]
    for off in ("0", "off"):
        counts = _cache_counts("default", RNNJAX_COMPILATION_CACHE=off, RNNJAX_CACHE=str(tmp_path / off))
        assert counts[:3] == [None, 0, 0]  # no folder, nothing looked up
    assert not (tmp_path / "0").exists()


def test_jax_settings_of_the_user_win(tmp_path):
    theirs = str(tmp_path / "theirs")
    counts = _cache_counts("default", JAX_COMPILATION_CACHE_DIR=theirs, RNNJAX_CACHE=str(tmp_path))
    assert counts[0] == theirs and len(os.listdir(theirs)) == counts[2] > 0  # their folder, not ours
    off = _cache_counts("default", JAX_ENABLE_COMPILATION_CACHE="false", RNNJAX_CACHE=str(tmp_path))
    assert off[:3] == [None, 0, 0] and not (tmp_path / "xla").exists()


def test_import_turns_no_cache_on(tmp_path):
    assert _cache_counts("import-only", RNNJAX_CACHE=str(tmp_path))[:3] == [None, 0, 0]
    assert not (tmp_path / "xla").exists()


CLI = """
import dataclasses, sys, jax
from rnnjax.training.config import RunConfig, RunField, cli

@dataclasses.dataclass(frozen=True)
class Config:
    run: RunField = RunConfig()

config = cli(Config, sys.argv[1:])
print(config.run.compile_cache, jax.config.jax_compilation_cache_dir)
"""


@pytest.mark.parametrize("flags, env, expected", [
    ([], {}, "True {folder}"),
    (["--no_compile_cache"], {}, "False None"),
    ([], {"RNNJAX_COMPILATION_CACHE": "0"}, "True None"),
])  # fmt: skip
def test_experiment_command_line_turns_the_cache_on_unless_told_not_to(tmp_path, flags, env, expected):
    done = subprocess.run([sys.executable, "-c", CLI, *flags], env={**_env(), "RNNJAX_CACHE": str(tmp_path), **env},
                          cwd=ROOT, timeout=120, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected.format(folder=tmp_path / "xla")


def test_enable_compilation_cache_rejects_a_negative_threshold():
    with pytest.raises(ValueError, match="min_compile_time_secs must be >= 0; got -1"):
        runtime.enable_compilation_cache(min_compile_time_secs=-1)
