"""LSTM gate forms and layouts on CPU: the library's ``lstm(gates=...)`` forms (sigmoid/tanh on slices, one tanh),
per-gate products, a broadcast input projection, next to torch.nn.LSTM, in one process.

    PYTHONPATH=. python benchmarks/lstm_layouts.py --rounds 15 --target 0.05
    PYTHONPATH=. python benchmarks/lstm_layouts.py --shapes probe --variants slices,one_tanh

Every variant is the production path, ``rnnjax.core.unroll.rnn`` (autodiff backward), with the cell
``lstm(gates=...)`` and for some variants its ``recur`` or ``project`` swapped; "manual" is
``rnn(..., backward="manual")`` with the default cell. Rounds alternate all variants and torch in a
rotating order; reported are the median time per call, the spread (25th-75th percentile), the median
over rounds of the paired ratio to torch (same round) and to the default cell (same round), which
cancels most of the load of a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, NamedTuple

if __name__ == "__main__" and "--threads" in sys.argv and sys.argv[sys.argv.index("--threads") + 1 :][:1] == ["1"]:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import rnnjax  # noqa: E402, F401  (rnnjax/runtime.py before any JAX computation)
from benchmarks import competitors as comp  # noqa: E402
from benchmarks.run import measure_alternating, setup_torch, thread_count  # noqa: E402
from rnnjax.core.cells import lstm  # noqa: E402
from rnnjax.core.cells.lstm import LSTMGates, LSTMState, gate_sigmoid  # noqa: E402
from rnnjax.core.unroll import rnn  # noqa: E402

SHAPES = {
    "layer": comp.Shape("layer", "lstm", 32, 128, 256, 256),
    "probe": comp.Shape("probe", "lstm", 256, 100, 1, 32),
    "small": comp.Shape("small", "lstm", 64, 50, 8, 64),
}


def _cell_update(carry, i, f, g, o):
    c = f * carry.c + i * g
    h = o * jnp.tanh(c)
    return LSTMState(h=h, c=c), h


def recur_per_gate(gates: LSTMGates):
    """Four [H, H] products, one per gate, each followed by its own nonlinearity (the library's sigmoid of
    the form ``gates``), as the hand-written rule's forward pass does."""

    def recur(params, carry, u):
        hidden = carry.h.shape[-1]
        sigmoid, kernel = gate_sigmoid(gates), params["recurrent_kernel"]
        blocks = [slice(k * hidden, (k + 1) * hidden) for k in range(4)]
        zi, zf, zg, zo = (u[block] + carry.h @ kernel[:, block] for block in blocks)
        return _cell_update(carry, sigmoid(zi), sigmoid(zf), jnp.tanh(zg), sigmoid(zo))

    return recur


def project_broadcast(params, x):
    """x W + b as a broadcast product when the input has one feature (no K=1 matrix product)."""
    kernel = params["input_kernel"]
    if kernel.shape[0] == 1:
        return x * kernel[0] + params["bias"]
    return x @ kernel + params["bias"]


class Variant(NamedTuple):
    """The library's ``lstm(gates=...)``, optionally with another recurrent layout or input projection."""

    gates: LSTMGates
    recur: Callable[[LSTMGates], Callable] | None = None
    project: Callable | None = None


VARIANTS: dict[str, Variant] = {
    "default": Variant(LSTMGates.AUTO),
    "slices": Variant(LSTMGates.SLICES),
    "one_tanh": Variant(LSTMGates.ONE_TANH),
    "per_gate": Variant(LSTMGates.SLICES, recur_per_gate),
    "per_gate_tanh": Variant(LSTMGates.ONE_TANH, recur_per_gate),
    "slices_bcast": Variant(LSTMGates.SLICES, None, project_broadcast),
    "one_tanh_bcast": Variant(LSTMGates.ONE_TANH, None, project_broadcast),
}
"""The 2026-11-29 study also timed autodiff through the one-tanh form and a gate-major [4, H] layout (results in
benchmarks/README.md); those are no longer in the library, so they are no longer here."""


def variant_cell(name: str):
    variant = VARIANTS[name]
    cell = lstm(gates=variant.gates)
    replacements = {}
    if variant.recur is not None:
        replacements["recur"] = variant.recur(variant.gates)
    if variant.project is not None:
        replacements["project"] = variant.project
    return cell._replace(**replacements) if replacements else cell


def build(shape: comp.Shape, names: list[str], manual: bool) -> dict[str, comp.Bench]:
    """Benches for torch, each variant (and the manual backward); checks every variant's outputs
    against the default cell's."""
    xs = jnp.asarray(comp._data(shape))
    params = lstm().init(jax.random.key(0), shape.input, shape.hidden)
    reference = rnn(lstm(), params, xs)[0]
    benches = {"torch": comp.torch_rnn(shape)}
    for name in names:
        cell = variant_cell(name)
        ys = rnn(cell, params, xs)[0]
        np.testing.assert_allclose(np.asarray(ys), np.asarray(reference), atol=2e-5, rtol=1e-4, err_msg=name)
        benches[name] = comp._jax_bench(lambda p, x, cell=cell: rnn(cell, p, x)[0], params, xs)
    if manual:
        benches["manual"] = comp._jax_bench(lambda p, x: rnn(lstm(), p, x, backward="manual")[0], params, xs)
    return benches


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Median, quartiles, and the medians of the per-round ratios to torch and to the default cell."""
    torch_times = np.asarray(samples["torch"])
    base = np.asarray(samples.get("default", samples["torch"]))
    rows = {}
    for name, values in samples.items():
        times = np.asarray(values)
        rows[name] = {
            "median_ms": float(np.median(times) * 1e3),
            "q25_ms": float(np.percentile(times, 25) * 1e3),
            "q75_ms": float(np.percentile(times, 75) * 1e3),
            "vs_torch": float(np.median(times / torch_times)),
            "vs_default": float(np.median(times / base)),
            "vs_default_q25": float(np.percentile(times / base, 25)),
            "vs_default_q75": float(np.percentile(times / base, 75)),
        }
    return rows


def format_rows(shape: str, mode: str, rows: dict) -> str:
    lines = []
    for name, row in rows.items():
        lines.append(
            f"{shape:6s} {mode:8s} {name:15s} {row['median_ms']:8.2f} ms [{row['q25_ms']:.2f}, {row['q75_ms']:.2f}]"
            f"  vs torch {row['vs_torch']:5.2f}  vs default {row['vs_default']:5.2f}"
            f" [{row['vs_default_q25']:.2f}, {row['vs_default_q75']:.2f}]"
        )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="layer,probe", help=f"comma-separated, from {sorted(SHAPES)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {list(VARIANTS)}")
    parser.add_argument("--modes", default="forward,train")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--target", type=float, default=0.05, help="seconds per measurement")
    parser.add_argument("--no-manual", action="store_true", help="skip rnn(..., backward='manual')")
    parser.add_argument("--threads", type=int, default=0, help="torch and XLA threads (default: all cores)")
    parser.add_argument("--out", default="")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    names = [name for name in args.variants.split(",") if name]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"--variants: expected names from {list(VARIANTS)}, got {unknown}")
    threads = args.threads or thread_count()
    result = {"jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""), **setup_torch("cpu", threads)}
    result["rows"] = {}
    for shape_name in args.shapes.split(","):
        benches = build(SHAPES[shape_name], names, manual=not args.no_manual)
        for mode in args.modes.split(","):
            runs = {name: getattr(bench, mode) for name, bench in benches.items()}
            rows = summarize(measure_alternating(runs, args.rounds, args.target))
            result["rows"][f"{shape_name}/{mode}"] = rows
            print(format_rows(shape_name, mode, rows), flush=True)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
