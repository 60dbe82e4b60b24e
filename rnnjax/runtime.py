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
"""

from __future__ import annotations

import os
import sys
import warnings

FLAGS = {"xla_cpu_enable_concurrency_optimized_scheduler": "false"}


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
