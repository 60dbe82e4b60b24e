"""Hand-derived BPTT (custom_vjp) vs autodiff through ``lax.scan``: LSTM training step on CPU, float32.

    PYTHONPATH=. nice -n 10 python benchmarks/bench_bptt.py [--quick] [--rounds 15] [--out FILE]

A training step is forward + backward of ``mean((ys - targets)^2)`` with respect to the
params (one compiled call each). Both paths run in the same process, in alternation
(``benchmarks.run.measure_alternating``); reported: median seconds per step and the
ratio autodiff / manual (above 1: the hand-derived backward is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.run import measure_alternating, thread_count  # noqa: E402
from rnnjax.core.bptt import rnn_manual_vjp  # noqa: E402
from rnnjax.core.cells import make_cell  # noqa: E402
from rnnjax.core.unroll import rnn  # noqa: E402

SHAPES = [(32, 128, 256, 256), (256, 100, 1, 32)]  # (batch, time, input, hidden)
QUICK_SHAPES = [(4, 16, 8, 8)]
PATHS = {"autodiff": rnn, "manual": rnn_manual_vjp}


def training_steps(cell_name: str, batch: int, time: int, input_size: int, hidden: int) -> dict:
    """Compiled gradient calls of both paths on the same data; checks that they agree first."""
    cell = make_cell(cell_name)
    k_params, k_x, k_y = jax.random.split(jax.random.key(0), 3)
    params = cell.init(k_params, input_size, hidden, jnp.float32)
    xs = jax.random.normal(k_x, (batch, time, input_size), jnp.float32)
    targets = jax.random.normal(k_y, (batch, time, hidden), jnp.float32)
    runs, grads = {}, {}
    for name, forward in PATHS.items():

        def loss(p, forward=forward):
            return jnp.mean((forward(cell, p, xs)[0] - targets) ** 2)

        compiled = jax.jit(jax.value_and_grad(loss)).lower(params).compile()
        grads[name] = compiled(params)[1]
        runs[name] = lambda compiled=compiled: jax.block_until_ready(compiled(params))
    error = max(
        float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30))
        for a, b in zip(jax.tree.leaves(grads["manual"]), jax.tree.leaves(grads["autodiff"]))
    )
    return {"runs": runs, "max_relative_difference": error}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--target-s", type=float, default=0.3, help="seconds per measurement")
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--out", default="runs/benchmarks/bench_bptt.json")
    args = parser.parse_args(argv)
    rows = []
    for batch, time, input_size, hidden in QUICK_SHAPES if args.quick else SHAPES:
        built = training_steps(args.cell, batch, time, input_size, hidden)
        samples = measure_alternating(built["runs"], 3 if args.quick else args.rounds, args.target_s)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        rows.append(
            {"cell": args.cell, "batch": batch, "time": time, "input": input_size, "hidden": hidden,
             "median_s": medians, "ratio_autodiff_over_manual": medians["autodiff"] / medians["manual"],
             "max_relative_difference": built["max_relative_difference"], "samples_s": samples}
        )  # fmt: skip
        print(_row(rows[-1]), flush=True)
    result = {"rows": rows, "jax": jax.__version__, "platform": platform.platform(), "threads": thread_count()}
    path = pathlib.Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return result


def _row(row: dict) -> str:
    shape = f"B={row['batch']:<4} T={row['time']:<4} I={row['input']:<4} H={row['hidden']:<4}"
    times = "  ".join(f"{name} {1e3 * value:9.2f} ms" for name, value in row["median_s"].items())
    return f"{row['cell']:5} {shape} {times}  autodiff/manual {row['ratio_autodiff_over_manual']:.2f}x"


if __name__ == "__main__":
    main()
