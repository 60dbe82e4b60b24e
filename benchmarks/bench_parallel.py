"""Sequential scan vs associative scan for linear-recurrence cells, T from 128 to 16,384.

    PYTHONPATH=. python benchmarks/bench_parallel.py [--quick] [--out parallel.json]

Both paths run in the same process, in alternation; reported: median time per
call (forward, and forward + backward), the ratio parallel / sequential and the
crossover, the smallest T from which the associative scan is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.run import measure_alternating, write_json  # noqa: E402
from rnnjax.core.cells import LinearKind, linear_rnn, min_gru  # noqa: E402
from rnnjax.core.parallel import parallel_rnn  # noqa: E402
from rnnjax.core.unroll import rnn  # noqa: E402

CELLS = {
    "min_gru": min_gru,
    "linear_diagonal": lambda: linear_rnn(LinearKind.DIAGONAL),
    "linear_complex_diagonal": lambda: linear_rnn(LinearKind.COMPLEX_DIAGONAL),
}


def compiled_pair(cell, params, xs):
    """Compiled forward and gradient functions for both unrolling paths."""
    out = {}
    for path, unroll in (("sequential", rnn), ("parallel", parallel_rnn)):

        def forward(p, x, unroll=unroll):
            return unroll(cell, p, x)[0]

        def loss(p, x, forward=forward):
            return jnp.mean(forward(p, x) ** 2)

        for mode, fn in (("forward", forward), ("train", jax.grad(loss))):
            compiled = jax.jit(fn).lower(params, xs).compile()
            out[(path, mode)] = lambda compiled=compiled: jax.block_until_ready(compiled(params, xs))
    return out


def crossover(rows: list[dict], cell: str, mode: str) -> int | None:
    """Smallest T from which the parallel path is faster at every longer T measured."""
    ratios = sorted((r["time"], r["parallel_over_sequential"]) for r in rows if r["cell"] == cell and r["mode"] == mode)
    for index, (time_steps, _) in enumerate(ratios):
        if all(ratio < 1.0 for _, ratio in ratios[index:]):
            return time_steps
    return None


def run(quick: bool, device: str, batch: int, hidden: int, rounds: int, out: str, cells: list[str]) -> dict:
    lengths = [16, 64] if quick else [128, 512, 2048, 8192, 16384]
    rows = []
    for name in cells:
        cell = CELLS[name]()
        params = cell.init(jax.random.key(0), hidden, hidden)
        for time_steps in lengths:
            xs = jax.random.normal(jax.random.key(1), (batch, time_steps, hidden))
            runs = compiled_pair(cell, params, xs)
            samples = measure_alternating({f"{p}/{m}": r for (p, m), r in runs.items()}, rounds, 0.02 if quick else 0.1)
            for mode in ("forward", "train"):
                sequential = statistics.median(samples[f"sequential/{mode}"])
                parallel = statistics.median(samples[f"parallel/{mode}"])
                rows.append(
                    {"cell": name, "time": time_steps, "mode": mode, "sequential_s": sequential,
                     "parallel_s": parallel, "parallel_over_sequential": parallel / sequential}
                )  # fmt: skip
            write_json({"device": device, "batch": batch, "hidden": hidden, "rows": rows}, out)
            timings = ", ".join(f"{k} {1e3 * statistics.median(v):.2f} ms" for k, v in samples.items())
            print(f"{name} T={time_steps}: {timings}", flush=True)
    crossovers = {f"{c}/{m}": crossover(rows, c, m) for c in cells for m in ("forward", "train")}
    return {"device": device, "batch": batch, "hidden": hidden, "rows": rows, "crossover_time": crossovers}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/parallel.json")
    parser.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated subset of {sorted(CELLS)}")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    sizes = (2, 8) if args.quick else (args.batch, args.hidden)
    cells = args.cells.split(",")
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        parser.error(f"--cells: unknown {unknown}; choose from {sorted(CELLS)}")
    result = run(args.quick, args.device, *sizes, rounds, args.out, cells)
    print("| cell | T | mode | sequential ms | parallel ms | parallel/sequential |\n|---|---:|---|---:|---:|---:|")
    for r in result["rows"]:
        times = f"{1e3 * r['sequential_s']:.2f} | {1e3 * r['parallel_s']:.2f} | {r['parallel_over_sequential']:.2f}"
        print(f"| {r['cell']} | {r['time']} | {r['mode']} | {times} |")
    print("crossover T (parallel faster from here on):", json.dumps(result["crossover_time"]))
    write_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
