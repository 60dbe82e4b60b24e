"""RNN benchmark: rnnjax vs Flax, Equinox and PyTorch, in one process, in alternation.

    PYTHONPATH=. python benchmarks/run.py [--quick] [--device cpu|gpu] [--out bench.json]

For every shape, all competitors are built (and compiled) first; then each
round runs every competitor once (a calibrated number of calls), in an order
that rotates from round to round. Reported: the median over rounds of the time
per call, and ratios rnnjax / peer. Also: the GFLOP/s of the LSTM forward
against a large matrix product, peak memory per configuration, and 64 small
models trained at once with vmap against 64 sequential runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _single_thread_xla() -> None:
    """With --threads 1, XLA must be told before it starts (single-threaded Eigen and thread pool)."""
    if "--threads" in sys.argv and sys.argv[sys.argv.index("--threads") + 1 :][:1] == ["1"]:
        flags = "--xla_cpu_multi_thread_eigen=false"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()


if __name__ == "__main__":
    _single_thread_xla()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import rnnjax  # noqa: E402, F401  (before any JAX computation: rnnjax/runtime.py)
from benchmarks import competitors as comp  # noqa: E402

FULL_SHAPES = [
    comp.Shape("layer", "lstm", 32, 128, 256, 256),
    comp.Shape("probe", "lstm", 256, 100, 1, 32),
    comp.Shape("probe", "gru", 256, 100, 1, 32),
    comp.Shape("layer", "gru", 32, 128, 256, 256),
    comp.Shape("long", "lstm", 8, 4096, 128, 128),
    comp.Shape("long", "gru", 8, 4096, 128, 128),
]
QUICK_SHAPES = [comp.Shape("layer", "lstm", 4, 8, 16, 16), comp.Shape("probe", "gru", 8, 6, 1, 4)]


def thread_count() -> int:
    """Cores this process may use (XLA's CPU thread pool uses them all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def calibrate(run, target_s: float) -> int:
    """Calls per measurement so that one measurement lasts about ``target_s``."""
    start = time.perf_counter()
    run()
    once = max(time.perf_counter() - start, 1e-6)
    return max(1, min(1000, int(target_s / once)))


def measure_alternating(runs: dict, rounds: int, target_s: float) -> dict[str, list[float]]:
    """Seconds per call of each named run, one sample per round, rotating the order each round."""
    names = list(runs)
    calls = {name: calibrate(runs[name], target_s) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            for _ in range(calls[name]):
                runs[name]()
            samples[name].append((time.perf_counter() - start) / calls[name])
    return samples


def build_all(shape: comp.Shape, table: dict, errors: dict) -> dict:
    built = {}
    for name, builder in table.items():
        try:
            bench = builder(shape)
            bench.forward(), bench.train()  # warm up (compile, allocate)
            built[name] = bench
        except Exception as error:  # noqa: BLE001 - a failing competitor is reported, not fatal
            errors[f"{shape.name}/{shape.cell}/{name}"] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    return built


def bench_shape(shape: comp.Shape, table: dict, rounds: int, target_s: float, errors: dict) -> list[dict]:
    """All competitors on one shape, forward then train; one result row per (competitor, mode)."""
    built = build_all(shape, table, errors)
    rows = []
    for mode in ("forward", "train"):
        runs = {name: getattr(bench, mode) for name, bench in built.items()}
        samples = measure_alternating(runs, rounds, target_s)
        for name, values in samples.items():
            rows.append(
                {
                    "shape": shape.name, "cell": shape.cell, "mode": mode, "competitor": name,
                    "median_s": statistics.median(values), "min_s": min(values), "max_s": max(values),
                    "rounds": len(values), "memory_bytes": built[name].memory.get(mode),
                    "sizes": {"batch": shape.batch, "time": shape.time, "input": shape.input, "hidden": shape.hidden},
                }
            )  # fmt: skip
    return rows


def matmul_peak(size: int, rounds: int) -> float:
    """GFLOP/s of one large float32 matrix product (the practical peak)."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    product = jax.jit(lambda x: x @ x)
    jax.block_until_ready(product(a))
    samples = measure_alternating({"matmul": lambda: jax.block_until_ready(product(a))}, rounds, 0.2)["matmul"]
    return 2.0 * size**3 / statistics.median(samples) / 1e9


def add_ratios(rows: list[dict]) -> None:
    """ratio_vs: rnnjax time / peer time, for the default rnnjax and the fastest rnnjax variant."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["shape"], row["cell"], row["mode"]), []).append(row)
    for group in groups.values():
        by_name = {row["competitor"]: row["median_s"] for row in group}
        ours = {n: t for n, t in by_name.items() if n.startswith("rnnjax")}
        if not ours:
            continue
        best = min(ours, key=ours.get)
        for row in group:
            row["best_rnnjax"] = best
            row["rnnjax_over_this"] = by_name.get("rnnjax", float("nan")) / row["median_s"]
            row["best_rnnjax_over_this"] = ours[best] / row["median_s"]


def format_table(rows: list[dict], peak: float) -> str:
    lines = ["| shape | cell | mode | competitor | median ms | rnnjax/this | best rnnjax/this | GFLOP/s | memory MB |"]
    lines.append("|---|---|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        sizes = comp.Shape(row["shape"], row["cell"], *row["sizes"].values())
        gflops = sizes.lstm_forward_flops() / row["median_s"] / 1e9 if row["mode"] == "forward" else None
        memory = row["memory_bytes"]
        lines.append(
            f"| {row['shape']} | {row['cell']} | {row['mode']} | {row['competitor']} | {1e3 * row['median_s']:.3f} "
            f"| {row.get('rnnjax_over_this', float('nan')):.2f} | {row.get('best_rnnjax_over_this', float('nan')):.2f} "
            f"| {'' if gflops is None else f'{gflops:.1f}'} | {'' if memory is None else f'{memory / 2**20:.1f}'} |"
        )
    lines.append(f"\nmatmul peak: {peak:.1f} GFLOP/s (GFLOP/s column: matmul flops of the forward pass / time)")
    return "\n".join(lines)


def setup_torch(device: str, threads: int) -> dict:
    try:
        import torch

        if device == "cpu":
            torch.set_num_threads(threads)
        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    except Exception as error:  # noqa: BLE001
        return {"torch_error": repr(error)}


def write_json(result: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as file:
        json.dump(result, file, indent=1)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, a few seconds (smoke test)")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--out", default="benchmarks/results.json", help="JSON output path")
    parser.add_argument("--rounds", type=int, default=None, help="samples per competitor (default 7, quick 3)")
    parser.add_argument(
        "--shapes", default="", help="comma-separated shapes to keep: layer, probe, long or name/cell (layer/lstm)"
    )
    parser.add_argument("--only", default="", help="comma-separated competitor names to keep")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch and XLA (default all; 1 "
        "also makes XLA single-threaded, steadier on a shared machine)",
    )
    parser.add_argument("--skip-many", action="store_true", help="skip the 64-models vmap benchmark")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 7)
    target_s = 0.005 if args.quick else 0.15
    shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    if args.shapes:
        keep = args.shapes.split(",")
        shapes = [s for s in shapes if s.name in keep or f"{s.name}/{s.cell}" in keep]
    table = comp.competitors(args.device, args.quick)
    if args.only:
        table = {k: v for k, v in table.items() if k in args.only.split(",")}
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {thread_count()} cores",
        "jax": jax.__version__, "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""), **setup_torch(args.device, args.threads or thread_count()),
    }  # fmt: skip
    print(json.dumps(info), flush=True)
    errors: dict[str, str] = {}
    peak = matmul_peak(256 if args.quick else (8192 if args.device == "gpu" else 2048), rounds)
    result = {"info": info, "matmul_peak_gflops": peak, "rows": [], "errors": errors}
    for shape in shapes:
        result["rows"] += bench_shape(shape, table, rounds, target_s, errors)
        add_ratios(result["rows"])
        write_json(result, args.out)  # partial results survive a timeout
        print(f"done {shape.name}/{shape.cell}", flush=True)
    print(format_table(result["rows"], peak))
    if not args.skip_many:  # after the main table, which a timeout must not lose
        try:  # imported here: it needs rnnjax.training.loop (tqdm), which a bare GPU image may lack
            from benchmarks.many import format_table as format_many
            from benchmarks.many import many_models

            result["many_models"] = many_models(args.quick)
            print(format_many(result["many_models"]), flush=True)
        except Exception:  # noqa: BLE001
            errors["many_models"] = traceback.format_exc().splitlines()[-1]
    for name, message in errors.items():
        print(f"FAILED {name}: {message}")
    write_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
