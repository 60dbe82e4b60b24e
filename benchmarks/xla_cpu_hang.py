"""How often a 64-model vmapped LSTM training step deadlocks XLA CPU, with and without rnnjax's flag.

    PYTHONPATH=. python benchmarks/xla_cpu_hang.py [--trials 10] [--timeout 30]

Each trial is a fresh Python process that compiles and runs one ``jit(vmap(train_step))``
over 64 LSTM models (B=32, T=50, H=16, as in ``benchmarks/many.py``). Trials alternate
between rnnjax's default XLA flags (``rnnjax/runtime.py``) and JAX's own
(``RNNJAX_KEEP_XLA_FLAGS=1``). A trial that does not finish within ``--timeout`` seconds
is a hang (a deadlocked process uses no CPU; a slow one would). Prints counts and the
one-sided Fisher exact p-value of "the flag does not change the hang rate".
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRIAL = """
import functools, jax, optax
from benchmarks.many import init_model, loss_fn, make_batch
from rnnjax.training.loop import init_many
from rnnjax.training.step import train_step_body
optimizer = optax.adam(1e-2)
keys = jax.random.split(jax.random.key(0), 64)
states = jax.jit(lambda k: init_many(functools.partial(init_model, hidden=16), optimizer, k))(keys)
batch = make_batch(jax.random.key(1), 32, 50)
step = jax.jit(jax.vmap(functools.partial(train_step_body, loss_fn, optimizer), in_axes=(0, None)))
for _ in range(3):
    states, metrics = step(states, batch)
    jax.block_until_ready(metrics["loss"])
"""


def trial(keep_jax_flags: bool, timeout: float) -> tuple[bool, float]:
    """(hung, seconds) for one fresh process."""
    env = {**os.environ, "PYTHONPATH": ROOT, "RNNJAX_KEEP_XLA_FLAGS": "1" if keep_jax_flags else "0"}
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", TRIAL], env=env, cwd=ROOT, timeout=timeout, capture_output=True)
    except subprocess.TimeoutExpired:
        return True, time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"trial failed (exit {done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return False, time.perf_counter() - start


def fisher_one_sided(hangs_a: int, n_a: int, hangs_b: int, n_b: int) -> float:
    """P(at least hangs_b of the hangs fall in group b) under the hypergeometric null."""
    total, hangs = n_a + n_b, hangs_a + hangs_b
    return sum(
        math.comb(n_b, k) * math.comb(n_a, hangs - k) / math.comb(total, hangs)
        for k in range(hangs_b, min(hangs, n_b) + 1)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="trials per setting")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a trial counts as hung")
    args = parser.parse_args()
    counts = {"rnnjax flags": [0, 0], "JAX defaults": [0, 0]}
    for index in range(2 * args.trials):
        name = "rnnjax flags" if index % 2 == 0 else "JAX defaults"
        hung, seconds = trial(name == "JAX defaults", args.timeout)
        counts[name][0] += hung
        counts[name][1] += 1
        print(f"trial {index + 1:3d}  {name:13s} {'HUNG' if hung else 'ok':4s} {seconds:6.1f} s", flush=True)
    for name, (hung, total) in counts.items():
        print(f"{name:13s}: {hung}/{total} hung")
    p = fisher_one_sided(*counts["rnnjax flags"], *counts["JAX defaults"])
    print(f"one-sided Fisher exact p (JAX defaults hang more often) = {p:.2g}")


if __name__ == "__main__":
    main()
