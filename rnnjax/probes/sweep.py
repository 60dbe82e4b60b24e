"""Sweeps: train many (model, width, delay, seed) combinations, each same-shape group in ONE compiled program.

For one :class:`~rnnjax.probes.models.ModelSpec` at one width, every (seed, delay) pair has parameters of the same
shapes, so :func:`train_group` is ``jit(vmap(train_run))`` over them: data generation on device, minibatch Adam
with ``lax.scan`` over steps, an optional full-batch L-BFGS refinement, and evaluation on fresh sequences of
length T and at longer lengths. With several devices the (seed, delay) axis is sharded over them.

A :class:`Group` is that unit of work, named by a stable :attr:`Group.id`: :func:`plan_groups` lists the groups of
a sweep, :func:`run_group` trains one, and :func:`sweep` is the two in a loop (with progress when asked).
:mod:`rnnjax.probes.runner` plans, records, skips and resumes the groups of the main job.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import itertools
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rnnjax.checks import arguments
from rnnjax.probes import models
from rnnjax.probes.models import ModelSpec
from rnnjax.probes.progress import Progress
from rnnjax.probes.statistics import nmse_interval
from rnnjax.probes.targets import Target, sample_inputs
from rnnjax.training.optimizers import warmup_cosine_adam
from rnnjax.training.step import init_state, train_step_body

RESULT_FIELDS = (
    "study", "target", "model", "width", "depth", "delay", "seed", "nmse_train", "nmse_test",
    "nmse_test_2x", "nmse_test_long", "theory_nmse", "theory_nmse_lower",
    "nmse_test_low", "nmse_test_high", "nmse_test_2x_low", "nmse_test_2x_high", "nmse_test_long_low",
    "nmse_test_long_high",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How every run of a sweep is trained and evaluated.

    Attributes:
      length: training sequence length T.
      train_size: number of training sequences (a fixed set, drawn per seed).
      batch_size: minibatch size (>= train_size means full-batch Adam).
      steps: Adam steps (warmup + cosine decay to 1% of ``learning_rate``).
      learning_rate: peak Adam learning rate.
      clip_norm: global gradient-norm clip.
      lbfgs_steps: full-batch L-BFGS refinement steps after Adam (0 for none).
      test_size: fresh test sequences at length T; at length f T, test_size // f (at least 16): about the same
        number of labelled steps, so about the same 95% interval (:func:`rnnjax.probes.statistics.nmse_interval`).
      long_factors: test lengths as multiples of T; the last one is reported as ``nmse_test_long``.
      dtype: 'float32' or 'float64' (float64 needs jax_enable_x64).
      fast_compile: compile at XLA backend optimisation level :data:`FAST_COMPILE_LEVEL` (1) instead of 3:
        compiling takes 20-45% less time and the steps run about as fast (on CPU, where compiling dominates a
        short group).
    """

    length: int = 32
    train_size: int = 256
    batch_size: int = 64
    steps: int = 400
    learning_rate: float = 1e-2
    clip_norm: float = 1.0
    lbfgs_steps: int = 0
    test_size: int = 128
    long_factors: tuple[int, ...] = (2, 10)
    dtype: str = "float32"
    fast_compile: bool = False

    def __post_init__(self):
        for argument in ("length", "train_size", "batch_size", "steps", "test_size"):
            arguments.positive_int(argument, getattr(self, argument))
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")


def nmse(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """E|yhat - y|^2 / Var(y), pooled over all entries."""
    return jnp.mean((predictions - targets) ** 2) / jnp.var(targets)


def _labelled(target: Target, values: jax.Array) -> jax.Array:
    """The entries that are labels: all steps, or only the last for a many-to-one target."""
    return values[:, -1:] if target.many_to_one else values


def _predict(spec, target, max_delay, params, xs, delay):
    length = target.output_length(xs.shape[1])
    predictions = models.aligned_predictions(spec, params, xs, target.output_size, delay, max_delay, length)
    return _labelled(target, predictions)


def adam_phase(loss_fn, params, key, config: TrainConfig):
    """Minibatch Adam under lax.scan; loss_fn(params, indices) -> loss. Returns (params, losses [steps]).

    Each step is :func:`rnnjax.training.step.train_step_body` (the step ``fit`` and ``fit_many`` take), so a
    non-finite step leaves the parameters unchanged; minibatch ``index`` is drawn from fold_in(key, index).
    """
    optimizer = warmup_cosine_adam(config.learning_rate, config.steps, config.clip_norm)
    full = config.batch_size >= config.train_size

    def batch(index):
        if full:
            return jnp.arange(config.train_size)
        choice_key = jax.random.fold_in(key, index)
        return jax.random.choice(choice_key, config.train_size, (config.batch_size,), replace=False)

    def loss_and_metrics(params, indices, _step_key):  # the (loss, metrics) form of rnnjax.training
        return loss_fn(params, indices), {}

    def step(state, index):
        state, metrics = train_step_body(loss_and_metrics, optimizer, state, batch(index))
        return state, metrics["loss"]

    state, losses = jax.lax.scan(step, init_state(params, optimizer, key), jnp.arange(config.steps))
    return state.params, losses


def lbfgs_refine(loss_fn, params, steps: int):
    """Full-batch L-BFGS refinement (optax.lbfgs with its zoom line search)."""
    optimizer = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss_fn)

    def step(carry, _):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = optimizer.update(grad, state, params, value=value, grad=grad, value_fn=loss_fn)
        return (optax.apply_updates(params, updates), state), value

    (params, _), values = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
    return params, values


def _check_family(targets: Sequence[Target]) -> Target:
    """Targets trained in one program must agree on sizes, input kind and labelling; return the first."""
    first = targets[0]
    for target in targets[1:]:
        for field in ("input_size", "output_size", "many_to_one", "input_kind", "length_ratio"):
            if getattr(target, field) != getattr(first, field):
                raise ValueError(
                    f"targets in one sweep must share {field}: {first.name!r} has {getattr(first, field)!r}, "
                    f"{target.name!r} has {getattr(target, field)!r}"
                )
    return first


def sample_family(targets: Sequence[Target], index: jax.Array, key: jax.Array, batch: int, length: int, dtype):
    """Like :func:`rnnjax.probes.targets.sample` for targets[index], with a traced ``index`` (lax.switch)."""
    xs = sample_inputs(targets[0], key, batch, length, dtype)
    if len(targets) == 1:
        return xs, jax.vmap(targets[0].fn)(xs).astype(dtype)
    branches = [lambda xs, fn=t.fn: jax.vmap(fn)(xs).astype(dtype) for t in targets]
    return xs, jax.lax.switch(index, branches, xs)


def train_run(
    key: jax.Array, delay: jax.Array, index: jax.Array, *,
    spec: ModelSpec, targets: tuple[Target, ...], config: TrainConfig, max_delay: int,
):  # fmt: skip
    """Train and evaluate one model on targets[index] from one key (vmapped over keys, delays and indices).

    Returns (params, metrics) with metrics {'nmse_train', 'nmse_test', 'nmse_test_<f>x' per long factor, 'losses'}.
    """
    dtype = jnp.dtype(config.dtype)
    target = _check_family(targets)
    sample = functools.partial(sample_family, targets, index)
    k_data, k_init, k_steps, k_test = jax.random.split(key, 4)
    xs, ys = sample(k_data, config.train_size, config.length, dtype)
    labels = _labelled(target, ys)
    scale = jnp.var(labels)
    predict = functools.partial(_predict, spec, target, max_delay)

    def loss_fn(params, batch=None):
        if batch is None:
            return jnp.mean((predict(params, xs, delay) - labels) ** 2) / scale
        return jnp.mean((predict(params, xs[batch], delay) - labels[batch]) ** 2) / scale

    params = models.init(spec, k_init, target.input_size, target.output_size, dtype)
    params, losses = adam_phase(loss_fn, params, k_steps, config)
    if config.lbfgs_steps:
        params, refined = lbfgs_refine(loss_fn, params, config.lbfgs_steps)
        losses = jnp.concatenate([losses, refined])
    metrics = {"nmse_train": loss_fn(params), "losses": losses}
    for factor in (1, *config.long_factors):  # about test_size * T labelled steps at every length
        size = max(16, config.test_size // factor)
        test_xs, test_ys = sample(jax.random.fold_in(k_test, factor), size, factor * config.length, dtype)
        name = "nmse_test" if factor == 1 else f"nmse_test_{factor}x"
        interval = nmse_interval(predict(params, test_xs, delay), _labelled(target, test_ys))
        metrics[name], metrics[f"{name}_low"], metrics[f"{name}_high"] = interval
    return params, metrics


def _shard(*arrays):
    """Shard the leading (run) axis over all devices when there are several and it divides evenly."""
    devices = jax.devices()
    if len(devices) < 2 or arrays[0].shape[0] % len(devices):
        return arrays
    sharding = NamedSharding(Mesh(np.array(devices), ("runs",)), PartitionSpec("runs"))
    return tuple(jax.device_put(a, sharding) for a in arrays)


FAST_COMPILE_LEVEL = 1
"""XLA backend optimisation level of ``TrainConfig.fast_compile`` (the default is 3). Measured on the 2-core VM,
compile + run of one group at levels 0 / 1 / 3: causal GRU (18 models, T=32) - / 7.3 + 10.0 / 13.6 + 14.9 s;
float64 L-BFGS width group - / 10.6 + 4.0 / 16.4 + 4.4 s (level 0 made study 3's groups 5-7x slower to run);
encoder-decoder GRU with attention 7.9 + 7.3 / 10.7 + 2.0 s; 3-layer ReLU RNN 7.7 + 4.8 / 9.2 + 1.6 s."""


@functools.lru_cache(maxsize=None)
def _compiled_group(spec: ModelSpec, targets: tuple[Target, ...], config: TrainConfig, max_delay: int):
    run = functools.partial(train_run, spec=spec, targets=targets, config=config, max_delay=max_delay)
    options = {"xla_backend_optimization_level": FAST_COMPILE_LEVEL} if config.fast_compile else None
    return jax.jit(jax.vmap(run), compiler_options=options)


def _group_program(spec: ModelSpec, targets: Sequence[Target], config: TrainConfig, seeds, delays):
    """(triples, the jitted program, its arguments) of one group, checked."""
    if config.dtype == "float64" and not jax.config.read("jax_enable_x64"):
        raise ValueError("TrainConfig.dtype='float64' needs jax.config.update('jax_enable_x64', True) first")
    targets = tuple(targets)
    _check_family(targets)
    triples = list(itertools.product(range(len(targets)), seeds, delays))
    keys = jnp.stack([jax.random.key(seed) for _, seed, _ in triples])
    delay_array = jnp.asarray([d for *_, d in triples], jnp.int32)
    index_array = jnp.asarray([i for i, *_ in triples], jnp.int32)
    program_arguments = _shard(keys, delay_array, index_array)
    return triples, _compiled_group(spec, targets, config, max(delays)), program_arguments


COMPILE_THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))
"""Background threads that compile upcoming groups (:func:`compile_ahead`): half the cores, 1 to 4. Compiling
dominates the default main job on CPU (2-core VM, 28 groups: ~280 s of compiling against ~105 s of running); two
compile threads there ran it slower (380 s wall, 718 CPU-s, against 361 s and 625 CPU-s with one)."""

# Programs being compiled, or compiled, ahead by compile_ahead; taken (once) by the group's own dispatch:
# key -> Future of jax.stages.Compiled.
_COMPILED_AHEAD: dict[tuple, concurrent.futures.Future] = {}


@functools.cache
def _compile_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The compile threads, created on first use."""
    return concurrent.futures.ThreadPoolExecutor(COMPILE_THREADS, thread_name_prefix="rnnjax-compile")


def _ahead_key(spec, targets, config, seeds, delays) -> tuple:
    return spec, tuple(targets), config, tuple(seeds), tuple(delays)


def _compile(group: "Group"):
    _, program, program_arguments = _group_program(group.spec, group.targets, group.config, group.seeds, group.delays)
    return program.lower(*program_arguments).compile()


def compile_ahead(group: "Group") -> None:
    """Start compiling ``group``'s program on a background thread (:data:`COMPILE_THREADS`), e.g. while the
    previous group's program runs; its own :func:`dispatch_group` takes the result, waiting for it if needed.

    JAX dispatches a run asynchronously and XLA compiles without holding the GIL, so compiling and running
    overlap (measured on 2 CPU cores: run + compile 609 ms overlapped, against 424 + 399 ms in turn). A compile
    error is raised by the group's dispatch.
    """
    key = _ahead_key(group.spec, group.targets, group.config, group.seeds, group.delays)
    if key not in _COMPILED_AHEAD:
        _COMPILED_AHEAD[key] = _compile_pool().submit(_compile, group)


def cancel_ahead() -> None:
    """Forget every program compiled ahead and cancel the compiles not yet started (after an error or a stop)."""
    for future in _COMPILED_AHEAD.values():
        future.cancel()
    _COMPILED_AHEAD.clear()


def dispatch_group(spec: ModelSpec, targets: Sequence[Target], config: TrainConfig, seeds, delays):
    """Start one group's program and return (triples, params, metrics) as device arrays, without waiting."""
    triples, program, program_arguments = _group_program(spec, targets, config, seeds, delays)
    ahead = _COMPILED_AHEAD.pop(_ahead_key(spec, targets, config, seeds, delays), None)
    params, metrics = (ahead.result() if ahead is not None else program)(*program_arguments)
    return triples, params, metrics


def train_group(
    spec: ModelSpec, targets: Sequence[Target], config: TrainConfig, seeds: Sequence[int], delays: Sequence[int]
):  # fmt: skip
    """All (target, seed, delay) triples of one spec in one compiled program.

    Returns (triples, params, metrics) with params and metrics stacked along the triples.
    """
    triples, params, metrics = dispatch_group(spec, targets, config, seeds, delays)
    return triples, params, jax.device_get(metrics)


@dataclasses.dataclass(frozen=True)
class Group:
    """One compiled program: every (target, seed, delay) of one model spec at one width.

    Attributes:
      study: label stored in every record (and the first part of :attr:`id`).
      targets: maps with the same sizes, input kind and labelling.
      spec: the model family at its width.
      seeds, delays: one run per (target, seed, delay).
      config: training and evaluation settings.
      evaluate: optional ``evaluate(group, triples, params) -> dict`` of JSON-ready extras computed from the trained
        parameters (e.g. step responses), kept next to the group's records.
    """

    study: str
    targets: tuple[Target, ...]
    spec: ModelSpec
    seeds: tuple[int, ...]
    delays: tuple[int, ...]
    config: TrainConfig
    evaluate: Callable[..., dict[str, Any]] | None = dataclasses.field(default=None, compare=False)

    @property
    def id(self) -> str:
        """Stable name 'study/target[+target...]/model/w<width>', the key of records.jsonl."""
        names = "+".join(target.name for target in self.targets)
        return f"{self.study or '-'}/{names}/{self.spec.name}/w{self.spec.width}"

    @property
    def label(self) -> str:
        return f"{self.study or 'sweep'} {self.spec.name} w{self.spec.width}"

    @property
    def models(self) -> int:
        return len(self.targets) * len(self.seeds) * len(self.delays)

    @property
    def work(self) -> float:
        """Cost estimate: models x layers x length x (Adam examples + L-BFGS examples), plus a compile share."""
        config, spec = self.config, self.spec
        examples = config.steps * min(config.batch_size, config.train_size) + 4 * config.lbfgs_steps * config.train_size
        layers = spec.depth * (2 if spec.bidirectional else 1)
        return COMPILE_WORK + self.models * layers * config.length * examples


COMPILE_WORK = 2e7
"""A group's compile time in work units: on CPU compiling dominates a default-run group (5-11 s against 1-10 s of
running); with 2e6 the first group's estimate of the default main job was 10 min 47 s for a 3 min 54 s run, with
2e7 it is ~5 min 10 s (2-core VM)."""


def plan_groups(
    target: Target | Sequence[Target],
    model_specs: Sequence[ModelSpec],
    widths: Sequence[int] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3),
    delays: Sequence[int] | None = None,
    config: TrainConfig = TrainConfig(),
    study: str = "",
    evaluate: Callable[..., dict[str, Any]] | None = None,
) -> list[Group]:
    """The groups of :func:`sweep` (same arguments), one per (model spec, width), in sweep order."""
    targets = (target,) if isinstance(target, Target) else tuple(target)
    _check_family(targets)
    groups = []
    for spec in model_specs:
        for width in widths or (spec.width,):
            sized = dataclasses.replace(spec, width=width)
            chosen = tuple(delays or (spec.delay,))
            groups.append(Group(study, targets, sized, tuple(seeds), chosen, config, evaluate))
    return groups


@dataclasses.dataclass(frozen=True)
class GroupResult:
    """What one group produced: records (see :func:`sweep`), the evaluate() extras, triples and stacked params."""

    records: list[dict[str, Any]]
    extras: dict[str, Any]
    triples: list[tuple[int, int, int]]
    params: Any
    seconds: float


def run_group(group: Group, ahead: Sequence[Group] = ()) -> GroupResult:
    """Train one group (one compiled program) and turn its metrics into records; meanwhile the programs of the
    groups in ``ahead`` (the next :data:`COMPILE_THREADS`, say) compile in the background (:func:`compile_ahead`)."""
    start = time.perf_counter()
    for upcoming in (group, *ahead):  # the group's own program first: the compile threads take them in order
        compile_ahead(upcoming)
    triples, params, metrics = dispatch_group(group.spec, group.targets, group.config, group.seeds, group.delays)
    metrics = jax.device_get(metrics)
    extras = group.evaluate(group, triples, params) if group.evaluate else {}
    seconds = time.perf_counter() - start
    records = [
        _record(group.study, group.targets[index], group.spec, group.config, (seed, delay), i, metrics,
                seconds / len(triples))
        for i, (index, seed, delay) in enumerate(triples)
    ]  # fmt: skip
    return GroupResult(records, extras, triples, params, seconds)


def sweep(
    target: Target | Sequence[Target],
    model_specs: Sequence[ModelSpec],
    widths: Sequence[int] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3),
    delays: Sequence[int] | None = None,
    config: TrainConfig = TrainConfig(),
    study: str = "",
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict]:
    """Train every (target, model, width, delay, seed); all but the model and width share one compiled program.

    Args:
      target: the map to learn, or several maps with the same sizes, input kind and labelling.
      model_specs: model families; each is used at every width in ``widths`` (default: its own width).
      seeds: one run per seed (data, init and minibatch order all derive from the seed).
      delays: output delays D (default: each spec's own delay).
      config: training and evaluation settings.
      study: label stored in every record.
      progress: show progress over the groups on stderr (:class:`rnnjax.probes.progress.Progress`).

    Returns:
      (records, trained): one dict per run with :data:`RESULT_FIELDS` (theory fields None; see
      :mod:`rnnjax.probes.theory`) plus 'readout', 'bidirectional', 'train_length', 'seconds', 'losses';
      and {(model name, width): (spec, triples, stacked params)} for further evaluation.
    """
    groups = plan_groups(target, model_specs, widths, seeds, delays, config, study)
    total_work, total_models = sum(g.work for g in groups), sum(g.models for g in groups)
    bar = Progress(total_work, total_models, len(groups), enabled=progress)
    records, trained = [], {}
    try:
        for number, group in enumerate(groups):
            bar.begin(group.label)
            result = run_group(group, ahead=groups[number + 1 : number + 1 + COMPILE_THREADS])
            bar.finish(group.work, group.models)
            trained[(group.spec.name, group.spec.width)] = (group.spec, result.triples, result.params)
            records += result.records
    finally:
        cancel_ahead()
        bar.close()
    return records, trained


def _record(study, target, spec, config, pair, index, metrics, seconds) -> dict[str, Any]:
    seed, delay = pair
    long = config.long_factors
    value = lambda name: float(metrics[name][index])  # noqa: E731
    losses = metrics["losses"][index]
    return {
        "study": study, "target": target.name, "model": spec.name, "width": spec.width, "depth": spec.depth,
        "delay": delay, "seed": seed, "nmse_train": value("nmse_train"), "nmse_test": value("nmse_test"),
        "nmse_test_2x": value("nmse_test_2x") if 2 in long else None,
        "nmse_test_long": value(f"nmse_test_{long[-1]}x") if long else None,
        "nmse_test_low": value("nmse_test_low"), "nmse_test_high": value("nmse_test_high"),
        "nmse_test_2x_low": value("nmse_test_2x_low") if 2 in long else None,
        "nmse_test_2x_high": value("nmse_test_2x_high") if 2 in long else None,
        "nmse_test_long_low": value(f"nmse_test_{long[-1]}x_low") if long else None,
        "nmse_test_long_high": value(f"nmse_test_{long[-1]}x_high") if long else None,
        "theory_nmse": None, "theory_nmse_lower": None, "readout": spec.readout.value,
        "bidirectional": spec.bidirectional, "train_length": config.length, "seconds": seconds,
        "losses": [float(x) for x in losses[:: max(1, len(losses) // 50)]],
    }  # fmt: skip


def summarise(records: Sequence[dict[str, Any]], field: str = "nmse_test") -> list[dict[str, Any]]:
    """Best and median of ``field`` over seeds for each (study, target, model, width, depth, delay)."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        key = tuple(record[k] for k in ("study", "target", "model", "width", "depth", "delay"))
        groups.setdefault(key, []).append(record)
    rows = []
    for key, group in groups.items():
        values = np.array([r[field] for r in group], np.float64)
        row = dict(zip(("study", "target", "model", "width", "depth", "delay"), key))
        row.update(best=float(np.nanmin(values)), median=float(np.nanmedian(values)), seeds=len(group))
        if group[0].get(f"{field}_low") is not None:  # 95% intervals: the best row's; the median row(s)' (mean)
            best = group[int(np.nanargmin(values))]
            middle = [group[i] for i in np.argsort(values)[(len(group) - 1) // 2 : len(group) // 2 + 1]]
            row.update(best_low=best[f"{field}_low"], best_high=best[f"{field}_high"],
                       median_low=float(np.mean([r[f"{field}_low"] for r in middle])),
                       median_high=float(np.mean([r[f"{field}_high"] for r in middle])))  # fmt: skip
        row["theory_nmse"] = group[0]["theory_nmse"]
        row["theory_nmse_lower"] = group[0]["theory_nmse_lower"]
        rows.append(row)
    return rows
