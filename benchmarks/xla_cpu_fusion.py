"""Why recurrent steps run slower than their arithmetic on XLA CPU: loop fusions that LLVM does not vectorise.

Each case is a ``lax.scan`` over T=32 steps of a [B=1024, H=16] carry with only elementwise work in the body, the
shape of a probe sweep's GRU step (16 models x 64 sequences). XLA fuses the body into one loop kernel; whether
LLVM vectorises that loop decides the speed. The script times each body (median of ``--rounds``) and, with
``--ir``, counts vector (``<N x float>``) against scalar float operations in the optimised LLVM IR of the body's
fusion (``XLA_FLAGS=--xla_dump_to``), which shows which bodies run as scalar code.

    PYTHONPATH=. python benchmarks/xla_cpu_fusion.py [--rounds 15] [--ir]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

BATCH, HIDDEN, STEPS = 1024, 16, 32


def cases():
    """name -> (body(h, u) -> h, scanned inputs)."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(jax.random.key(0), 4)
    gates = jax.random.normal(keys[0], (STEPS, 3, BATCH, HIDDEN))
    fused = jnp.moveaxis(gates, 1, 2).reshape(STEPS, BATCH, 3 * HIDDEN)  # [T, B, 3H], gate blocks side by side
    separate = (gates[:, 0], gates[:, 1], gates[:, 2])
    sigmoid = lambda x: 0.5 * jnp.tanh(0.5 * x) + 0.5  # noqa: E731
    barrier = jax.lax.optimization_barrier

    def gru(h, r_in, z_in, n_in):  # the GRU's elementwise part with r, z, n pre-activations given
        r, z = sigmoid(r_in + h), sigmoid(z_in + h)
        n = jnp.tanh(n_in + r * h)
        return n + z * (h - n)

    def thirds(u):
        return u[:, :HIDDEN], u[:, HIDDEN : 2 * HIDDEN], u[:, 2 * HIDDEN :]

    return {
        "one tanh": (lambda h, u: jnp.tanh(u[0] + h), separate),
        "tanh of tanh, one input": (lambda h, u: jnp.tanh(u[0] + jnp.tanh(u[0] + h)), separate),
        "tanh of tanh, two slices of [3, B, H]": (lambda h, u: jnp.tanh(u[1] + jnp.tanh(u[0] + h)), gates),
        "GRU step, three separate inputs": (lambda h, u: gru(h, *u), separate),
        "GRU step, slices of [B, 3H]": (lambda h, u: gru(h, *thirds(u)), fused),
        "GRU step, slices of [B, 3H] behind a barrier": (lambda h, u: gru(h, *barrier(thirds(u))), fused),
    }


def time_cases(rounds: int, only: str | None = None) -> dict[str, float]:
    import jax

    results = {}
    for name, (body, xs) in cases().items():
        if only is not None and name != only:
            continue
        h0 = jax.numpy.zeros((BATCH, HIDDEN))
        run = jax.jit(lambda h, xs, body=body: jax.lax.scan(lambda h, u: (body(h, u), None), h, xs)[0])
        run(h0, xs).block_until_ready()
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            run(h0, xs).block_until_ready()
            samples.append(time.perf_counter() - start)
        results[name] = 1e3 * statistics.median(samples)
    return results


def ir_counts(name: str) -> dict[str, int]:
    """Vector and scalar float operations in the optimised IR of the loop body's fusion (a fresh process)."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "XLA_FLAGS": f"--xla_dump_to={folder}"}
        command = [sys.executable, __file__, "--rounds", "1", "--only", name]
        subprocess.run(command, env=env, check=True, capture_output=True)
        files = [f for f in glob.glob(f"{folder}/*lambda*fusion*ir-with-opt.ll") if "wrapped" not in f]
        text = "".join(open(f).read() for f in files)
    return {
        "vector_ops": len(re.findall(r"x float>", text)),
        "scalar_ops": len(re.findall(r"\b(?:fadd|fmul|fsub|fdiv) (?:fast )?float\b", text)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ir", action="store_true", help="also count vector/scalar ops in the dumped LLVM IR")
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    times = time_cases(args.rounds, args.only)
    if args.only is not None:
        return
    rows = []
    for name, milliseconds in times.items():
        row = {"case": name, "ms": milliseconds, **(ir_counts(name) if args.ir else {})}
        rows.append(row)
        extra = f" | {row['vector_ops']} | {row['scalar_ops']}" if args.ir else ""
        print(f"| {name} | {milliseconds:.2f}{extra} |", flush=True)
    if args.out:
        with open(args.out, "w") as file:
            json.dump({"batch": BATCH, "hidden": HIDDEN, "steps": STEPS, "rows": rows}, file, indent=1)


if __name__ == "__main__":
    main()
