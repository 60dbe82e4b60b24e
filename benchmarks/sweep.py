"""The main job's workload against PyTorch: many small many-to-many models trained at once.

Each configuration (cell, width, T, number of models) trains ``models`` independent models on the probe's
teacher-RNN target (1 -> 1 features, 256 training sequences of length T, minibatch 64, ``steps`` Adam steps at a
constant learning rate, the probe's default since 2026-12-07, and global-norm clipping at 1; the tables of
2026-11-29 used warm-up + cosine in all three) three ways, in one process:

- rnnjax: :func:`rnnjax.probes.sweep.sweep`, every model in ONE compiled ``jit(vmap(...))`` program;
- torch loop: what a PyTorch user writes: for each model, ``nn.GRU``/``nn.LSTM`` + ``nn.Linear`` +
  ``torch.optim.Adam`` + ``clip_grad_norm_``;
- torch.func: ``torch.func.vmap`` + ``functional_call`` over a hand-written torch cell, all models at once
  (the best torch offers for many models; a Python loop over time, per-model clipping, stacked Adam).

Every model sees the same training and test sequences in all three (drawn from the same JAX keys as the
sweep's), so the final test NMSEs show the work is equal. Times are wall clock, compilation included
("cold"); rnnjax's "warm" figure reruns the compiled program on other seeds. rnnjax compiles at XLA level 1 as
the main job does (``TrainConfig.fast_compile``; ``--no-fast-compile`` for level 3, the setting of the
2026-11-29 table in benchmarks/README.md).

    python benchmarks/sweep.py                        # the full grid (long on 2 CPU cores)
    python benchmarks/sweep.py --cells gru --widths 16 --lengths 32 --models 16
    python benchmarks/sweep.py --loop-models 16       # the torch loop trains 16 models and is scaled to the rest

``--recipe`` measures test NMSE only (no times), on the delay-4 copy: the probe's sweep with each
:class:`rnnjax.probes.training.Schedule` beside torch loops at PyTorch's defaults (constant Adam, torch's
initialisation, minibatches drawn with replacement) and with the probe's schedule and/or initial parameters:

    python benchmarks/sweep.py --recipe --configs gru/16/32 --models 16

The torch loop trains its models one after the other, so its time is linear in the number of models;
``--loop-models K`` trains only the first K of them and multiplies the time by models / K (the table marks such
times with ``*``). Its NMSE is then the median over those K models. Likewise ``--func-seconds S`` stops the
torch.func run after S seconds and scales its time by steps / steps taken (every step is the same work; ``*``,
no NMSE): at T=100 it takes about 20 minutes for 16 LSTMs on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

from rnnjax.probes import models, targets
from rnnjax.probes.models import Initialisation, ModelSpec
from rnnjax.probes.sweep import sweep
from rnnjax.probes.training import Schedule, TrainConfig

TRAIN_SIZE, BATCH_SIZE, LEARNING_RATE, CLIP_NORM, TEST_SIZE = 256, 64, 1e-2, 1.0, 256


def probe_data(target, seed: int, config: TrainConfig):
    """The sweep's own training and test sets for one seed (same key derivation as ``train_run``)."""
    k_data, _, _, k_test = jax.random.split(jax.random.key(seed), 4)
    train = targets.sample(target, k_data, config.train_size, config.length)
    test = targets.sample(target, jax.random.fold_in(k_test, 1), config.test_size, config.length)
    return [tuple(torch.from_numpy(np.array(a, np.float32)) for a in pair) for pair in (train, test)]


def schedule(step: int, steps: int) -> float:
    """optax.warmup_cosine_decay_schedule(0, lr, steps // 20, steps, lr / 100) as a multiplier of lr."""
    warmup = max(1, steps // 20)
    if step < warmup:
        return step / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))


class TorchModel(torch.nn.Module):
    """nn.GRU / nn.LSTM + nn.Linear: a PyTorch user's many-to-many model."""

    def __init__(self, cell: str, width: int):
        super().__init__()
        layer = torch.nn.GRU if cell == "gru" else torch.nn.LSTM
        self.rnn, self.readout = layer(1, width, batch_first=True), torch.nn.Linear(width, 1)

    def forward(self, xs):
        return self.readout(self.rnn(xs)[0])


def nmse(predictions, labels) -> float:
    return float(torch.mean((predictions - labels) ** 2) / torch.var(labels, unbiased=False))


def torch_loop(
    cell: str, width: int, data, steps: int, warmup_cosine: bool = False, replacement: bool = False,
    probe_init: str = "",
) -> list[float]:  # fmt: skip
    """Train one TorchModel per seed, one after the other; return each model's test NMSE.

    warmup_cosine: the probe's schedule (else a constant learning rate, PyTorch's default); replacement: minibatches
    drawn with replacement (else a random subset per step, as the probe); probe_init: start from the probe's own
    initial parameters for the seed made with this :class:`rnnjax.probes.models.Initialisation`
    (:func:`load_probe_init`), else ('') PyTorch's default initialisation."""
    errors = []
    for seed, ((xs, ys), (test_xs, test_ys)) in enumerate(data):
        torch.manual_seed(seed)
        model = TorchModel(cell, width)
        if probe_init:
            load_probe_init(model, cell, width, seed, probe_init)
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        multiplier = (lambda step: schedule(step, steps)) if warmup_cosine else (lambda step: 1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
        generator, scale = torch.Generator().manual_seed(seed), torch.var(ys, unbiased=False)
        for _ in range(steps):
            if replacement:
                batch = torch.randint(0, TRAIN_SIZE, (BATCH_SIZE,), generator=generator)
            else:
                batch = torch.randperm(TRAIN_SIZE, generator=generator)[:BATCH_SIZE]
            loss = torch.mean((model(xs[batch]) - ys[batch]) ** 2) / scale
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            optimizer.step()
            scheduler.step()
        with torch.no_grad():
            errors.append(nmse(model(test_xs), test_ys))
    return errors


def load_probe_init(
    model: TorchModel, cell: str, width: int, seed: int,
    initialisation: Initialisation | str = TrainConfig.initialisation,
) -> None:  # fmt: skip
    """Copy the probe's initial parameters of run ``seed`` (``models.init`` from the key ``train_run`` uses, with
    ``initialisation``, the probe's default unless named) into a TorchModel (GRU gate order r, z, n as torch's;
    kernels transposed). GRU only: the LSTM's gates differ."""
    if cell != "gru":
        raise ValueError(f"load_probe_init copies GRU parameters; got cell {cell!r}")
    _, k_init, _, _ = jax.random.split(jax.random.key(seed), 4)
    params = models.init(ModelSpec(cell, width=width), k_init, 1, 1, initialisation=initialisation)
    layer, readout = params["rnn"]["layers"][0][0], params["readout"]
    values = {"rnn.weight_ih_l0": layer["input_kernel"].T, "rnn.weight_hh_l0": layer["recurrent_kernel"].T,
              "rnn.bias_ih_l0": layer["input_bias"], "rnn.bias_hh_l0": layer["recurrent_bias"],
              "readout.weight": readout["w"].T, "readout.bias": readout["b"]}  # fmt: skip
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            tensor.copy_(torch.from_numpy(np.array(values[name], np.float32)))


class HandCell(torch.nn.Module):
    """A hand-written GRU (PyTorch convention) or LSTM over [batch, time, 1] + a linear readout."""

    def __init__(self, cell: str, width: int):
        super().__init__()
        gates = 3 if cell == "gru" else 4
        bound = 1.0 / math.sqrt(width)
        uniform = lambda *shape: torch.nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))  # noqa: E731
        self.cell, self.width = cell, width
        self.input_kernel, self.recurrent_kernel = uniform(1, gates * width), uniform(width, gates * width)
        self.input_bias, self.recurrent_bias = uniform(gates * width), uniform(gates * width)
        self.readout, self.readout_bias = uniform(width, 1), uniform(1)

    def forward(self, xs):
        h = xs.new_zeros(xs.shape[0], self.width)
        c, outputs = h, []
        projected = xs @ self.input_kernel + self.input_bias
        for t in range(xs.shape[1]):
            recurrent = h @ self.recurrent_kernel + self.recurrent_bias
            if self.cell == "gru":
                xr, xz, xn = projected[:, t].chunk(3, -1)
                hr, hz, hn = recurrent.chunk(3, -1)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                h = (1 - z) * torch.tanh(xn + r * hn) + z * h
            else:
                i, f, g, o = (projected[:, t] + recurrent).chunk(4, -1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, 1) @ self.readout + self.readout_bias


def torch_func(
    cell: str, width: int, data, steps: int, max_seconds: float = math.inf, warmup_cosine: bool = False
) -> tuple[list[float], int]:
    """All models at once: torch.func.vmap(functional_call) over stacked HandCell params (constant Adam, or the
    probe's old warm-up + cosine).

    Returns (test NMSEs, steps taken): past ``max_seconds`` it stops, returning no NMSEs and the steps it took
    (every step is the same work, so the caller scales the time to all steps)."""
    models = len(data)
    torch.manual_seed(0)
    params, buffers = torch.func.stack_module_state([HandCell(cell, width) for _ in range(models)])
    base = HandCell(cell, width).to("meta")
    forward = torch.func.vmap(lambda p, b, x: torch.func.functional_call(base, (p, b), (x,)))
    xs, ys = (torch.stack([d[0][k] for d in data]) for k in (0, 1))
    test_xs, test_ys = (torch.stack([d[1][k] for d in data]) for k in (0, 1))
    scale = torch.var(ys, dim=(1, 2, 3), unbiased=False)
    optimizer = torch.optim.Adam(params.values(), lr=LEARNING_RATE)
    multiplier = (lambda step: schedule(step, steps)) if warmup_cosine else (lambda step: 1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
    generator = torch.Generator().manual_seed(0)
    rows, started = torch.arange(models)[:, None], time.perf_counter()
    for step in range(steps):
        if time.perf_counter() - started > max_seconds:
            return [], step
        batch = torch.argsort(torch.rand(models, TRAIN_SIZE, generator=generator), 1)[:, :BATCH_SIZE]
        errors = torch.mean((forward(params, buffers, xs[rows, batch]) - ys[rows, batch]) ** 2, dim=(1, 2, 3))
        optimizer.zero_grad(set_to_none=True)
        torch.sum(errors / scale).backward()
        clip_per_model(list(params.values()), models)
        optimizer.step()
        scheduler.step()
    with torch.no_grad():
        predictions = forward(params, buffers, test_xs)
    return [nmse(predictions[m], test_ys[m]) for m in range(models)], steps


def clip_per_model(tensors, models: int) -> None:
    """clip_grad_norm_ for each model separately: the leading axis of every stacked gradient is the model."""
    squares = sum(t.grad.reshape(models, -1).pow(2).sum(1) for t in tensors)
    factor = torch.clamp(CLIP_NORM / (squares.sqrt() + 1e-6), max=1.0)
    for t in tensors:
        t.grad.mul_(factor.reshape(models, *([1] * (t.grad.dim() - 1))))


def rnnjax_sweep(target, cell: str, width: int, config: TrainConfig, seeds) -> list[float]:
    """Train one model per seed with the probe's sweep; return the test NMSEs."""
    records, _ = sweep(target, [ModelSpec(cell)], widths=(width,), seeds=seeds, delays=(0,), config=config)
    return [r.nmse_test for r in records]


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def run_configuration(
    cell: str, width: int, length: int, models: int, steps: int, loop_models: int = 0, func_seconds: float = math.inf,
    fast_compile: bool = True,
) -> dict:
    config = TrainConfig(length=length, train_size=TRAIN_SIZE, batch_size=BATCH_SIZE, steps=steps,
                         learning_rate=LEARNING_RATE, clip_norm=CLIP_NORM, test_size=TEST_SIZE, long_factors=(),
                         fast_compile=fast_compile)  # fmt: skip
    seeds = tuple(range(models))
    target = targets.teacher_rnn(0)
    data = [probe_data(target, seed, config) for seed in seeds]
    ours, cold = timed(rnnjax_sweep, target, cell, width, config, seeds)
    _, warm = timed(rnnjax_sweep, target, cell, width, config, tuple(range(models, 2 * models)))
    trained = min(models, loop_models or models)
    loop_errors, loop_seconds = timed(torch_loop, cell, width, data[:trained], steps)
    loop_seconds *= models / trained  # one model after the other: linear in the number of models
    (func_errors, func_steps), func_time = timed(torch_func, cell, width, data, steps, func_seconds)
    func_time *= steps / max(func_steps, 1)  # stopped early: the same work per step
    median = lambda values: float(np.median(values))  # noqa: E731
    return {
        "cell": cell, "width": width, "length": length, "models": models, "steps": steps, "loop_trained": trained,
        "rnnjax_cold_s": cold, "rnnjax_warm_s": warm, "torch_loop_s": loop_seconds, "torch_func_s": func_time,
        "loop_over_rnnjax": loop_seconds / cold, "func_over_rnnjax": func_time / cold, "func_steps": func_steps,
        "nmse_rnnjax": median(ours), "nmse_torch_loop": median(loop_errors),
        "nmse_torch_func": median(func_errors) if func_errors else None,
    }


def recipe(cell: str, width: int, length: int, models: int, steps: int, copy_lag: int = 4) -> list[dict]:
    """Test NMSE of the probe's recipes and of torch loops (PyTorch's defaults, the probe's schedule and/or init) on
    the main job's workload: ``models`` models on the delay-``copy_lag`` copy, the same data for all (no times)."""
    config = TrainConfig(length=length, train_size=TRAIN_SIZE, batch_size=BATCH_SIZE, steps=steps,
                         learning_rate=LEARNING_RATE, clip_norm=CLIP_NORM, test_size=TEST_SIZE, long_factors=(),
                         fast_compile=True)  # fmt: skip
    seeds, target = tuple(range(models)), targets.delay(copy_lag)
    data = [probe_data(target, seed, config) for seed in seeds]
    probe = lambda **change: rnnjax_sweep(target, cell, width, dataclasses.replace(config, **change), seeds)  # noqa: E731
    loop = lambda **options: torch_loop(cell, width, data, steps, **options)  # noqa: E731
    old_init = Initialisation.CELL_DEFAULT
    runs = {
        "rnnjax default (constant, PyTorch's init)": lambda: probe(),
        "rnnjax, warm-up + cosine to 1%": lambda: probe(schedule=Schedule.WARMUP_COSINE),
        "rnnjax, the cells' own init (LeCun input, LSTM forget bias 1)": lambda: probe(initialisation=old_init),
        "rnnjax, warm-up + cosine and LeCun init (before 2026-12-07)": lambda: probe(
            schedule=Schedule.WARMUP_COSINE, initialisation=old_init),
        "torch loop, PyTorch defaults (constant, torch init)": lambda: loop(warmup_cosine=False, replacement=True),
        "torch loop, the probe's schedule": lambda: loop(warmup_cosine=True, replacement=True),
    }
    if cell == "gru":  # load_probe_init copies GRU parameters only
        runs["torch loop, the probe's init"] = lambda: loop(warmup_cosine=False, replacement=True,
                                                             probe_init=Initialisation.PYTORCH.value)  # fmt: skip
        runs["torch loop, the cells' LeCun init"] = lambda: loop(warmup_cosine=False, replacement=True,
                                                                 probe_init=old_init.value)  # fmt: skip
    rows = []
    for name, run in runs.items():
        errors = np.asarray(run(), np.float64)
        low, median, high = np.percentile(errors, [25, 50, 75])
        rows.append({"cell": cell, "width": width, "length": length, "models": models, "steps": steps,
                     "recipe": name, "median": median, "q25": low, "q75": high, "nmse": errors.tolist()})  # fmt: skip
        print(f"| {cell}-{width} T={length} | {name} | {median:.3g} ({low:.3g}..{high:.3g}) |", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| cell | width | T | models | rnnjax cold s (warm) | torch loop s | torch.func s | loop / rnnjax | "
        "func / rnnjax | median test NMSE rnnjax / loop / func |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['width']} | {r['length']} | {r['models']} | {r['rnnjax_cold_s']:.1f} "
            f"({r['rnnjax_warm_s']:.1f}) | {r['torch_loop_s']:.1f}{'' if r['loop_trained'] == r['models'] else '*'} | "
            f"{r['torch_func_s']:.1f}{'' if r['func_steps'] == r['steps'] else '*'} | "
            f"{r['loop_over_rnnjax']:.1f}x | {r['func_over_rnnjax']:.1f}x | "
            f"{r['nmse_rnnjax']:.3g} / {r['nmse_torch_loop']:.3g} / "
            f"{'-' if r['nmse_torch_func'] is None else format(r['nmse_torch_func'], '.3g')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="gru,lstm")
    parser.add_argument("--widths", default="16,32")
    parser.add_argument("--lengths", default="32,100")
    parser.add_argument("--models", default="16,64")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--loop-models", type=int, default=0, help="torch loop: train this many, scale to all")
    parser.add_argument("--configs", default="", help="cell/width/T list, e.g. gru/16/32,lstm/32/100")
    parser.add_argument("--func-seconds", type=float, default=math.inf, help="torch.func: stop after this long, scale")
    parser.add_argument("--no-fast-compile", action="store_true", help="XLA level 3, not the main job's level 1")
    parser.add_argument("--recipe", action="store_true", help="test NMSE of training recipes on the delay-4 copy")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    grid = [(c, int(w), int(t), int(m)) for c in args.cells.split(",") for w in args.widths.split(",")
            for t in args.lengths.split(",") for m in args.models.split(",")]
    if args.configs:
        grid = [(c, int(w), int(t), int(m)) for c, w, t in (item.split("/") for item in args.configs.split(","))
                for m in args.models.split(",")]
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
            "torch": torch.__version__, "backend": jax.default_backend(), "argv": sys.argv[1:]}
    rows = []
    if args.recipe:
        print("| model | recipe | median test NMSE (quartiles) |\n|---|---|---|")
        for cell, width, length, models in grid:
            rows += recipe(cell, width, length, models, args.steps)
            if args.out:
                with open(args.out, "w") as file:
                    json.dump({"meta": meta, "rows": rows}, file, indent=1)
        return
    for cell, width, length, models in grid:
        rows.append(run_configuration(cell, width, length, models, args.steps, args.loop_models, args.func_seconds,
                                      fast_compile=not args.no_fast_compile))  # fmt: skip
        print(table(rows[-1:]).splitlines()[-1], flush=True)
        if args.out:  # after every configuration: an interrupted sweep keeps what it measured
            with open(args.out, "w") as file:
                json.dump({"meta": meta, "rows": rows}, file, indent=1)
    print(table(rows))


if __name__ == "__main__":
    jnp.zeros(())  # start the backend after rnnjax has set its XLA flags
    main()
