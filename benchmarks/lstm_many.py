"""The LSTM in a vmapped sweep group: which backward path and gate form train 16 LSTM-32s at T=100 fastest?

    PYTHONPATH=. python benchmarks/lstm_many.py                        # 16 models, H=32, T=100, B=64, 7 rounds
    PYTHONPATH=. python benchmarks/lstm_many.py --models 4 --time 20 --rounds 3   # a smoke run

The program is one probe group's training: ``jit(vmap(...))`` over ``models`` independent models (LSTM 1 -> H
and a linear readout per step, mean squared error) of a ``lax.scan`` over ``steps`` minibatch Adam steps,
compiled at XLA level 1 like the main job (``--level 3`` for XLA's default). Variants: ``rnn(backward=...)``
"autodiff" or "manual" (the hand-written rule) x ``lstm(gates=...)`` "one_tanh" or "slices", optionally with a
``lax.scan`` unroll factor ("autodiff/one_tanh/2"; the probe uses 1). Per variant it
reports the compile time, XLA's cost analysis (flops, bytes accessed; a loop body counts once), the share of a
training step spent in the forward pass (loss only) and the median over rounds of the time per step (wall, or
with ``--clock cpu`` the process's CPU seconds); rounds alternate the variants
in a rotating order, so paired ratios to the first variant cancel most of a shared machine's load. Every
variant's loss after the first round is checked against the first's.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rnnjax  # noqa: F401  (rnnjax/runtime.py before any JAX computation)
from rnnjax.core.cells import lstm
from rnnjax.core.unroll import rnn

LEVEL_OPTION = "xla_backend_optimization_level"


def init_model(key, hidden: int):
    k_cell, k_out = jax.random.split(key)
    return {"cell": lstm().init(k_cell, 1, hidden), "w": 0.1 * jax.random.normal(k_out, (hidden, 1))}


def loss(cell, backward: str, unroll: int, params, xs, ys):
    """Mean squared error of a per-step linear readout; one model, xs and ys [batch, time, 1]."""
    hs, _ = rnn(cell, params["cell"], xs, backward=backward, unroll=unroll)
    return jnp.mean((hs @ params["w"] - ys) ** 2)


def train(cell, backward: str, unroll: int, optimizer, params, xs, ys):
    """``steps`` Adam steps of one model on minibatches cut from xs, ys [steps, batch, time, 1] (vmapped)."""

    def step(state, batch):
        params, opt_state = state
        value, grads = jax.value_and_grad(functools.partial(loss, cell, backward, unroll))(params, *batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), value

    (params, _), values = jax.lax.scan(step, (params, optimizer.init(params)), (xs, ys))
    return params, values


def problem(models: int, hidden: int, time_steps: int, batch: int, steps: int):
    """Stacked params [models, ...] and data [models, steps, batch, time, 1]: y_t = sum of the last 3 inputs."""
    params = jax.vmap(lambda key: init_model(key, hidden))(jax.random.split(jax.random.key(0), models))
    xs = jax.random.normal(jax.random.key(1), (models, steps, batch, time_steps, 1), jnp.float32)
    shifted = lambda lag: jnp.pad(xs, ((0, 0),) * 3 + ((lag, 0), (0, 0)))[..., :time_steps, :]  # noqa: E731
    return params, xs, xs + shifted(1) + shifted(2)


def compile_variant(name: str, args, level: int):
    """(compiled training, compiled forward-only loss, compile seconds, cost analysis) of one variant."""
    backward, gates, *unroll = name.split("/")  # e.g. "autodiff/one_tanh" or "manual/slices/2" (scan unroll 2)
    cell, optimizer, unroll = lstm(gates=gates), optax.adam(1e-2), int(unroll[0]) if unroll else 1
    options = {LEVEL_OPTION: level} if level != 3 else None
    run = jax.vmap(functools.partial(train, cell, backward, unroll, optimizer))
    forward = jax.vmap(jax.vmap(functools.partial(loss, cell, backward, unroll), in_axes=(None, 0, 0)))
    start = time.perf_counter()
    compiled = jax.jit(run, compiler_options=options).lower(*args).compile()
    seconds = time.perf_counter() - start
    compiled_forward = jax.jit(forward, compiler_options=options).lower(*args).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return compiled, compiled_forward, seconds, {k: float(cost.get(k, 0.0)) for k in ("flops", "bytes accessed")}


def measure(compiled: dict, args, rounds: int, clock) -> dict[str, list[float]]:
    """Seconds per call of each compiled program on ``clock`` (wall: ``time.perf_counter``, or this process's CPU
    time: ``time.process_time``, steadier on a loaded machine), one sample per round, rotating the order."""
    names, samples = list(compiled), {name: [] for name in compiled}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            start = clock()
            jax.block_until_ready(compiled[name](*args))
            samples[name].append(clock() - start)
    return samples


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="Adam steps per call (lax.scan)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--level", type=int, default=1, help="XLA backend optimisation level (main job: 1)")
    parser.add_argument("--variants", default="autodiff/one_tanh,autodiff/slices,manual/one_tanh,manual/slices")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or process CPU seconds (steadier when the machine is shared)",
    )
    parser.add_argument("--out", default="")
    return parser.parse_args(argv)


def summarize(samples: dict[str, list[float]], steps: int) -> dict[str, dict[str, float]]:
    base = np.asarray(next(iter(samples.values())))
    return {
        name: {
            "ms_per_step": float(np.median(values) * 1e3 / steps),
            "iqr_ms_per_step": [float(np.percentile(values, q) * 1e3 / steps) for q in (25, 75)],
            "vs_first": float(np.median(np.asarray(values) / base)),
            "vs_first_iqr": [float(np.percentile(np.asarray(values) / base, q)) for q in (25, 75)],
        }
        for name, values in samples.items()
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    data = problem(args.models, args.hidden, args.time, args.batch, args.steps)
    names = [name for name in args.variants.split(",") if name]
    built = {name: compile_variant(name, data, args.level) for name in names}
    reference = np.asarray(built[names[0]][0](*data)[1])
    for name in names[1:]:
        np.testing.assert_allclose(np.asarray(built[name][0](*data)[1]), reference, rtol=2e-3, err_msg=name)
    programs = {**{name: built[name][0] for name in names}, **{f"{name} forward": built[name][1] for name in names}}
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rows = summarize(measure(programs, data, args.rounds, clock), args.steps)
    result = {"jax": jax.__version__, "argv": sys.argv[1:], **vars(args), "rows": rows}
    for name in names:
        rows[name].update(compile_s=built[name][2], **built[name][3])
        rows[name]["forward_share"] = rows[f"{name} forward"]["ms_per_step"] / rows[name]["ms_per_step"]
    for name, row in itertools.islice(rows.items(), len(names)):
        spread = f"[{row['vs_first_iqr'][0]:.2f}, {row['vs_first_iqr'][1]:.2f}]"
        cost = f"GFLOP {row['flops'] / 1e9:.2f}  GB {row['bytes accessed'] / 1e9:.2f}"
        print(f"{name:18s} {row['ms_per_step']:8.2f} ms/step  vs first {row['vs_first']:.2f} {spread}  "
              f"forward share {row['forward_share']:.2f}  compile {row['compile_s']:.1f} s  {cost}")  # fmt: skip
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    jax.config.update("jax_enable_compilation_cache", False)  # compile times are cold, even with a cache folder set
    main(sys.argv[1:])
