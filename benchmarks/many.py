"""64 small models trained at once with vmap, against 64 sequential runs of the same step code.

    PYTHONPATH=. python benchmarks/many.py [--quick] [--sizes tiny,small,default,probe] [--out many.json]

Two comparisons, each in one process:

* **step loop** (per model size): 64 runs of ``steps`` calls of the jitted
  ``make_train_step`` step (the cheapest sequential code: no host loop around it) against
  ``steps`` calls of one ``jit(vmap(train_step_body))`` over the 64 stacked states. Median
  of 3 alternating repeats, compilation excluded. The vmapped program does 64x the work of
  one step in the same number of loop iterations, so its advantage is the per-step and
  per-iteration overhead it removes; once one model's step is compute-bound the ratio
  falls towards 1 (``flops_per_model_step`` and the achieved GFLOP/s show where).
* **end to end** (every size but the probe): what a researcher runs: 64 calls of :func:`rnnjax.training.loop.fit`
  (one shared jitted step) against one :func:`rnnjax.training.loop.fit_many` (vmap over runs inside
  a ``lax.scan`` over steps), both from a cold start (compilation included) and warm.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from rnnjax.core.cells import lstm
from rnnjax.core.unroll import rnn
from rnnjax.training.loop import fit, fit_many, init_many
from rnnjax.training.step import init_state, make_train_step, train_step_body

CELL = lstm()
# name: (batch, time, hidden, steps); input size 1 and a scalar readout throughout
SIZES = {
    "tiny": (8, 10, 8, 20),
    "small": (16, 20, 8, 20),
    "default": (32, 50, 16, 20),
    "probe": (256, 100, 32, 4),
}
QUICK_SIZES = {"quick": (8, 10, 8, 3)}


def init_model(key, hidden: int):
    """A probe-sized model: LSTM(1 -> hidden) and a linear readout of the last output."""
    k_cell, k_out = jax.random.split(key)
    return {"cell": CELL.init(k_cell, 1, hidden), "readout": 0.1 * jax.random.normal(k_out, (hidden,))}


def loss_fn(params, batch, key):
    """Regress the running mean of the inputs from the last LSTM output."""
    xs, target = batch
    ys, _ = rnn(CELL, params["cell"], xs)
    prediction = ys[:, -1] @ params["readout"]
    return jnp.mean((prediction - target) ** 2), {}


def make_batch(key, batch: int, time_steps: int):
    xs = jax.random.normal(key, (batch, time_steps, 1), jnp.float32)  # float32 like the params
    return xs, jnp.mean(xs[..., 0], axis=-1)


def flops_per_step(batch: int, time_steps: int, hidden: int) -> float:
    """Matrix-product flops of one training step of one model: forward, and twice that backward."""
    return 3 * 2 * batch * time_steps * (1 + hidden) * 4 * hidden


def make_init_one(init, optimizer):
    """Jitted ``key -> TrainState`` for one run, splitting the key exactly as ``init_many`` does."""

    @jax.jit
    def init_one(key):
        init_key, train_key = jax.random.split(key)
        return init_state(init(init_key), optimizer, train_key)

    return init_one


def _median_alternating(runs: dict, repeats: int) -> dict[str, float]:
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def step_loop(batch: int, time_steps: int, hidden: int, steps: int, models: int = 64, repeats: int = 3) -> dict:
    """Seconds for ``models`` runs of ``steps`` steps: sequential (jitted step) vs one vmapped step."""
    optimizer = optax.adam(1e-2)
    batches = [make_batch(jax.random.key(100 + s), batch, time_steps) for s in range(steps)]
    keys = jax.random.split(jax.random.key(0), models)
    init = functools.partial(init_model, hidden=hidden)

    step = make_train_step(loss_fn, optimizer)

    init_one = make_init_one(init, optimizer)
    init_all = jax.jit(lambda keys: init_many(init, optimizer, keys))
    many_step = jax.jit(jax.vmap(functools.partial(train_step_body, loss_fn, optimizer), in_axes=(0, None)))

    def sequential():
        losses = []
        for key in keys:
            state = init_one(key)
            for b in batches:
                state, metrics = step(state, b)
            losses.append(metrics["loss"])
        return jax.block_until_ready(jnp.stack(losses))

    def vmapped():
        states = init_all(keys)
        for b in batches:
            states, metrics = many_step(states, b)
        return jax.block_until_ready(metrics["loss"])

    sequential_losses, vmapped_losses = sequential(), vmapped()  # compile both
    best = _median_alternating({"sequential": sequential, "vmapped": vmapped}, repeats)
    flops = flops_per_step(batch, time_steps, hidden)
    return {
        "models": models, "steps": steps, "batch": batch, "time": time_steps, "hidden": hidden,
        "flops_per_model_step": flops,
        "sequential_s": best["sequential"], "vmapped_s": best["vmapped"],
        "speedup": best["sequential"] / best["vmapped"],
        "sequential_gflops": models * steps * flops / best["sequential"] / 1e9,
        "vmapped_gflops": models * steps * flops / best["vmapped"] / 1e9,
        "max_loss_difference": float(jnp.max(jnp.abs(sequential_losses - vmapped_losses))),
    }  # fmt: skip


def end_to_end(batch: int, time_steps: int, hidden: int, steps: int, models: int = 64) -> dict:
    """64 calls of ``fit`` vs one ``fit_many``, cold (with compilation) and warm."""
    optimizer = optax.adam(1e-2)
    init = functools.partial(init_model, hidden=hidden)
    keys = jax.random.split(jax.random.key(0), models)

    def batch_fn(step):
        return make_batch(jax.random.fold_in(jax.random.key(100), step), batch, time_steps)

    jitted_batch = jax.jit(batch_fn)
    final_loss = jax.jit(lambda params: loss_fn(params, batch_fn(steps), None)[0])  # held-out batch

    train_step = make_train_step(loss_fn, optimizer)  # one step function, shared by the 64 runs

    init_one = make_init_one(init, optimizer)

    def sequential():
        losses = []
        for key in keys:
            state = fit(init_one(key), train_step, jitted_batch, steps, progress=False, log_every=steps)
            losses.append(final_loss(state.params))
        return jax.block_until_ready(jnp.stack(losses))

    def many():
        states = init_many(init, optimizer, keys)
        states, _ = fit_many(loss_fn, optimizer, states, batch_fn, steps, progress=False)
        return jax.block_until_ready(jax.vmap(final_loss)(states.params))

    jax.clear_caches()
    cold = {}
    for name, run in (("sequential", sequential), ("fit_many", many)):
        start = time.perf_counter()
        final = run()
        cold[name] = (time.perf_counter() - start, final)
    warm = _median_alternating({"sequential": sequential, "fit_many": many}, 3)
    return {
        "models": models, "steps": steps, "batch": batch, "time": time_steps, "hidden": hidden,
        "cold_sequential_s": cold["sequential"][0], "cold_fit_many_s": cold["fit_many"][0],
        "cold_speedup": cold["sequential"][0] / cold["fit_many"][0],
        "warm_sequential_s": warm["sequential"], "warm_fit_many_s": warm["fit_many"],
        "warm_speedup": warm["sequential"] / warm["fit_many"],
        "max_final_loss_difference": float(jnp.max(jnp.abs(cold["sequential"][1] - cold["fit_many"][1]))),
    }  # fmt: skip


def many_models(quick: bool, sizes: list[str] | None = None) -> dict:
    """The step-loop comparison for each size, and the end-to-end comparison for all but the probe size."""
    table = QUICK_SIZES if quick else {name: SIZES[name] for name in (sizes or SIZES)}
    return {
        "step_loop": {name: step_loop(*config) for name, config in table.items()},
        "end_to_end": {name: end_to_end(*config) for name, config in table.items() if name != "probe"},
    }


def format_table(result: dict) -> str:
    lines = [
        "| size | B x T, H | MFLOP/model-step | 64 sequential | 1 vmapped | speedup | GFLOP/s seq / vmap |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["step_loop"].items():
        lines.append(
            f"| {name} | {r['batch']}x{r['time']}, {r['hidden']} | {r['flops_per_model_step'] / 1e6:.2f} | "
            f"{r['sequential_s']:.3f} s | {r['vmapped_s']:.3f} s | {r['speedup']:.2f}x | "
            f"{r['sequential_gflops']:.1f} / {r['vmapped_gflops']:.1f} |"
        )
    lines += [
        "",
        "| size (end to end) | steps | 64 x fit cold / warm | fit_many cold / warm | speedup cold / warm |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, e in result["end_to_end"].items():
        lines.append(
            f"| {name} | {e['steps']} | {e['cold_sequential_s']:.2f} s / {e['warm_sequential_s']:.3f} s | "
            f"{e['cold_fit_many_s']:.2f} s / {e['warm_fit_many_s']:.3f} s | "
            f"{e['cold_speedup']:.2f}x / {e['warm_speedup']:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default="", help=f"comma-separated subset of {','.join(SIZES)}")
    parser.add_argument("--out", default="", help="JSON output path")
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)  # cold times compile, even with JAX_COMPILATION_CACHE_DIR
    result = many_models(args.quick, [s for s in args.sizes.split(",") if s] or None)
    print(format_table(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
