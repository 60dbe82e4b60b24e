"""XLA CPU flags rnnjax sets before JAX creates its CPU client.

JAX 0.10 (XLA CPU thunk runtime) intermittently deadlocks when it runs a jitted
``vmap`` of a scanned model over many parameter sets (``fit_many``, probe sweeps,
``benchmarks/many.py``): every worker thread parks on a condition variable and
``block_until_ready`` never returns, using no CPU. On the 2-core development VM a
64-model LSTM training step (B=32, T=50, H=16) hung in 9 of 22 fresh processes with
the default flags and in 0 of 34 with ``--xla_cpu_enable_concurrency_optimized_scheduler=false``,
at unchanged step time; ``--xla_cpu_multi_thread_eigen=false`` and
``--xla_cpu_use_xnnpack=false`` did not help (3 of 6 and 4 of 6 hung).
``benchmarks/xla_cpu_hang.py`` reruns the comparison in alternating fresh processes.

The flag only changes how XLA orders independent operations on CPU; results are
bit-identical. It is added to ``XLA_FLAGS`` when rnnjax is imported, unless

* the user already set that flag in ``XLA_FLAGS`` (their value wins),
* ``RNNJAX_KEEP_XLA_FLAGS=1`` is set, or
* JAX has already created its backends (flags are read once; then a warning says
  the flag could not be applied).

:func:`apply` is the one process-wide side effect of ``import rnnjax``; it only edits
``os.environ["XLA_FLAGS"]`` and never imports or starts JAX itself.

The persistent compilation cache (JAX's own, :func:`enable_compilation_cache`) is never turned on by an
import: :func:`rnnjax.training.config.cli`, the command line of every experiment and the main job, turns it
on unless ``--no_compile_cache`` or ``RNNJAX_COMPILATION_CACHE=0``, so a rerun or a resume loads what an
earlier run compiled instead of compiling it again. JAX's cache key holds the program, the JAX and XLA
versions, the backend and XLA_FLAGS, so a changed flag or an upgraded JAX compiles afresh. Benchmarks that
time cold runs leave it off.
"""

from __future__ import annotations

import os
import sys
import warnings

FLAGS = {"xla_cpu_enable_concurrency_optimized_scheduler": "false"}

CACHE_VARIABLE = "RNNJAX_COMPILATION_CACHE"
"""Environment variable: a folder for the compilation cache, or 0 / off / false / no for no cache."""
OFF = ("0", "off", "false", "no")


def merged_flags(current: str, flags: dict[str, str] = FLAGS) -> str:
    """``current`` XLA_FLAGS with each of ``flags`` appended unless it is already named there."""
    named = {item.lstrip("-").split("=", 1)[0] for item in current.split()}
    extra = [f"--{name}={value}" for name, value in flags.items() if name not in named]
    return " ".join([current.strip(), *extra]).strip()


def apply() -> bool:
    """Add :data:`FLAGS` to ``os.environ["XLA_FLAGS"]``; True if XLA will see them."""
    if os.environ.get("RNNJAX_KEEP_XLA_FLAGS", "") not in ("", "0"):
        return False
    current = os.environ.get("XLA_FLAGS", "")
    merged = merged_flags(current)
    if merged == current:
        return True
    if backends_started():
        warnings.warn(
            "rnnjax was imported after JAX created its backends, so XLA_FLAGS "
            f"{merged[len(current) :].strip()} (a workaround for an intermittent XLA CPU deadlock "
            "in vmapped training) was not applied; import rnnjax before running JAX code, or set "
            "the flag yourself.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    os.environ["XLA_FLAGS"] = merged
    return True


def backends_started() -> bool:
    """True if JAX has already created its backends (so XLA_FLAGS can no longer take effect).

    JAX (0.10.2) has no public way to ask this: ``jax.extend.backend.backends()`` and
    ``get_backend()`` create the backends they return, and ``jax.config`` has no such
    option. So the answer is public where it can be (JAX not imported yet: nothing started)
    and otherwise comes from ``jax._src.xla_bridge.backends_are_initialized``, guarded so
    that a JAX that renames it only loses the warning, never the workaround.
    """
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:  # a later JAX moved it: we cannot tell, so apply the flag and stay quiet
        return False
    return bool(backends_are_initialized())


def compilation_cache_dir() -> str | None:
    """The compilation cache folder: ``$RNNJAX_COMPILATION_CACHE``, else ``$RNNJAX_CACHE/xla`` (default
    ``~/.cache/rnnjax/xla``); None when ``$RNNJAX_COMPILATION_CACHE`` is one of :data:`OFF`."""
    chosen = os.environ.get(CACHE_VARIABLE, "").strip()
    if chosen.lower() in OFF:
        return None
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    root = os.environ.get("RNNJAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rnnjax")
    return os.path.join(root, "xla")


def enable_compilation_cache(directory: str | None = None, min_compile_time_secs: float = 0.0) -> str | None:
    """Turn on JAX's persistent compilation cache for this process; returns its folder, or None if it is off.

    Args:
      directory: the folder (default: :func:`compilation_cache_dir`; ``RNNJAX_COMPILATION_CACHE=0`` turns the
        cache off and this function does nothing). A folder the user already gave JAX (``JAX_COMPILATION_CACHE_DIR``)
        wins, and ``JAX_ENABLE_COMPILATION_CACHE=false`` keeps it off.
      min_compile_time_secs: programs that compiled faster than this are not written (JAX's default is 1 s;
        0 keeps every program, so a rerun compiles nothing it compiled before).

    JAX opens the cache at its first compilation after a folder is set and keeps that folder for the process.
    """
    import jax  # here, not at module level: importing rnnjax must not import JAX through this module

    if not min_compile_time_secs >= 0:
        raise ValueError(f"min_compile_time_secs must be >= 0; got {min_compile_time_secs!r}")
    directory = directory or compilation_cache_dir()
    if directory is None or not jax.config.jax_enable_compilation_cache:
        return None  # off: a cache the user opened through JAX's own settings stays as they set it
    directory = jax.config.jax_compilation_cache_dir or directory
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_secs))
    return directory
