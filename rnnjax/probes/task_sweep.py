"""The task probe's sweep: models trained on the user's data, each same-shape group in ONE compiled program.

Aligned tasks: unidirectional models at output delays D = 0..max_delay (one group per cell, vmapped over seeds and
delays) and bidirectional models at every width (one group per cell and width, vmapped over seeds). Different
lengths: encoder-decoders through a width-m vector, with and without attention, at every width m.

Each run trains on the training part (minibatch Adam: :func:`rnnjax.probes.training.adam_phase`, the main job's
recipe) and is scored on all three parts with 95% intervals (:mod:`rnnjax.probes.task_metrics`). A run folder
holds ``config.json`` and ``records.jsonl`` (one line for the floors, one per group, appended as soon as it ends:
:mod:`rnnjax.probes.runner`'s records functions), so a rerun resumes and ``--report-only`` trains nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import pathlib
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.checks import arguments
from rnnjax.probes import compiling, models, planning, runner, task_floors, task_metrics, training
from rnnjax.probes.models import Architecture, ModelSpec
from rnnjax.probes.progress import Progress
from rnnjax.probes.task_data import SPLIT_NAMES, Split, TaskData, split_task
from rnnjax.training.runs import to_jsonable

FLOORS = "floors"  # the records.jsonl key of the floors' line


class Kind(enum.Enum):
    """Which question a trained model answers."""

    UNIDIRECTIONAL = "unidirectional"  # aligned, output delay D
    BIDIRECTIONAL = "bidirectional"  # aligned, sees the whole sequence
    ENCODER_DECODER = "encoder_decoder"  # different lengths, everything through a width-m vector
    ATTENTION = "attention"  # encoder-decoder whose decoder also attends over the encoder outputs


@dataclasses.dataclass(frozen=True)
class TaskProbeConfig:
    """Sizes of the task probe; every field is a command-line flag (``--probe.<field>``)."""

    cells: tuple[str, ...] = ("gru",)
    """recurrent cells to train (rnnjax.core.cells.make_cell names: gru, lstm, simple_tanh, linear_dense, ...)."""
    width: int = 32
    """width of the unidirectional models swept over delays."""
    widths: tuple[int, ...] = (8, 16, 32, 64)
    """widths of the bidirectional models (aligned) or vector widths m of the encoder-decoders (different lengths)."""
    max_delay: int = 8
    """unidirectional models and causal floors at delays D = 0..max_delay."""
    window: int = 16
    """past steps the linear floors read (and as many future steps for the non-causal floor, minus one)."""
    seeds: tuple[int, ...] = (0, 1)
    """one trained model per seed (initialisation and minibatch order)."""
    steps: int = 400
    """Adam steps per model."""
    schedule: training.Schedule = training.Schedule.CONSTANT
    """learning rate over the steps: constant (the main job's default) or warmup_cosine."""
    batch_size: int = 64
    """sequences per Adam step."""
    learning_rate: float = 1e-2
    """peak Adam learning rate."""
    clip_norm: float = 1.0
    """global gradient-norm clip."""
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    """train, validation and test fractions (ignored when the data holds a fixed 'split')."""
    split_seed: int = 0
    """seed of the random split."""
    fast_compile: bool = True
    """compile at XLA optimisation level rnnjax.probes.compiling.FAST_COMPILE_LEVEL (compiling dominates on CPU)."""

    def __post_init__(self):
        for name in ("width", "steps", "batch_size", "window"):
            arguments.positive_int(name, getattr(self, name))
        arguments.integer("steps", self.steps, minimum=2)  # warmup_cosine: one warmup step, then at least one of decay
        object.__setattr__(self, "schedule", arguments.as_enum(training.Schedule, self.schedule, "schedule"))
        arguments.nonnegative_int("max_delay", self.max_delay)
        arguments.positive_float("learning_rate", self.learning_rate)
        arguments.positive_float("clip_norm", self.clip_norm)
        for name in ("cells", "widths", "seeds"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        for index, width in enumerate(self.widths):
            arguments.positive_int(f"widths[{index}]", width)
        for cell in self.cells:
            ModelSpec(cell=cell)  # validates the name

    @classmethod
    def quick(cls) -> "TaskProbeConfig":
        """A smoke-test size (seconds of training per group)."""
        return cls(width=8, widths=(4, 8), max_delay=2, window=4, seeds=(0,), steps=30, batch_size=16)


@dataclasses.dataclass(frozen=True)
class TaskGroup:
    """One compiled program: every (seed, delay) of one model spec at one width."""

    kind: Kind
    spec: ModelSpec
    seeds: tuple[int, ...]
    delays: tuple[int, ...]

    @property
    def id(self) -> str:
        """Stable key of records.jsonl: 'kind/model/w<width>'."""
        return f"{self.kind.value}/{self.spec.name}/w{self.spec.width}"

    @property
    def models(self) -> int:
        return len(self.seeds) * len(self.delays)

    def work(self, data: TaskData, config: TaskProbeConfig) -> float:
        """Cost in :data:`rnnjax.probes.planning.COMPILE_WORK` units: models x steps x batch x length x width / 16."""
        layers = 2 if self.spec.bidirectional else 1
        steps = data.input_steps + data.output_steps + max(self.delays)
        size = self.models * layers * steps * config.steps * config.batch_size * max(1.0, self.spec.width / 16)
        return planning.COMPILE_WORK + size


def plan(data: TaskData, config: TaskProbeConfig) -> list[TaskGroup]:
    """The groups of the task probe, in training order."""
    widths, seeds = sorted(set(config.widths)), tuple(config.seeds)
    groups = []
    for cell in config.cells:
        if data.aligned:
            uni = ModelSpec(cell=cell, width=config.width)
            groups.append(TaskGroup(Kind.UNIDIRECTIONAL, uni, seeds, tuple(range(config.max_delay + 1))))
            groups += [TaskGroup(Kind.BIDIRECTIONAL, ModelSpec(cell=cell, width=w, bidirectional=True), seeds, (0,))
                       for w in widths]  # fmt: skip
            continue
        for kind, architecture in ((Kind.ENCODER_DECODER, Architecture.ENCODER_DECODER),
                                   (Kind.ATTENTION, Architecture.ATTENTION)):  # fmt: skip
            groups += [TaskGroup(kind, ModelSpec(cell=cell, width=w, architecture=architecture), seeds, (0,))
                       for w in widths]  # fmt: skip
    return groups


# --------------------------------------------------------------------------- training one group


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What a compiled program needs to know about the data (static)."""

    input_size: int
    output_size: int
    output_steps: int
    labels: bool
    train_size: int


def part_arrays(data: TaskData, split: Split) -> dict[str, dict[str, jax.Array]]:
    """{'train' | 'validation' | 'test': {'x', 'y', 'mask'}} as device arrays, plus the training outputs' variance."""
    arrays = {}
    for name in SPLIT_NAMES:
        part = data.subset(getattr(split, name))
        arrays[name] = {"x": jnp.asarray(part.inputs), "y": jnp.asarray(part.outputs),
                        "mask": jnp.asarray(part.output_mask())}  # fmt: skip
    train = data.subset(split.train)
    scale = 1.0 if data.labels else float(np.var(train.outputs[train.output_mask()]))
    arrays["scale"] = jnp.asarray(scale, jnp.float32)
    return arrays


def train_task_run(key: jax.Array, delay: jax.Array, arrays: dict, *, spec: ModelSpec, sizes: Sizes,
                   config: TaskProbeConfig, max_delay: int) -> dict[str, jax.Array]:  # fmt: skip
    """Train one model on arrays['train'] from ``key`` and score it on every part (vmapped over keys and delays).

    Returns {'<part>_error', '<part>_error_low', ... (+ accuracy for labels), 'losses'}.
    """
    k_init, k_steps = jax.random.split(key)
    train = arrays["train"]

    def predict(params, xs):
        return models.aligned_predictions(spec, params, xs, sizes.output_size, delay, max_delay, sizes.output_steps)

    def loss_fn(params, batch):
        outputs = predict(params, train["x"][batch])
        return task_metrics.loss(outputs, train["y"][batch], train["mask"][batch], sizes.labels, arrays["scale"])

    params = models.init(spec, k_init, sizes.input_size, sizes.output_size, jnp.float32)
    recipe = training.TrainConfig(length=max(1, sizes.output_steps), train_size=sizes.train_size,
                               batch_size=config.batch_size, steps=config.steps,
                               learning_rate=config.learning_rate, clip_norm=config.clip_norm,
                               schedule=config.schedule)  # fmt: skip
    params, losses = training.adam_phase(loss_fn, params, k_steps, recipe)
    metrics = {"losses": losses}
    for name in SPLIT_NAMES:
        part = arrays[name]
        part_scores = task_metrics.scores(predict(params, part["x"]), part["y"], part["mask"], sizes.labels)
        metrics.update({f"{name}_{key}": value for key, value in part_scores.items()})
    return metrics


@functools.lru_cache(maxsize=None)
def _program(spec: ModelSpec, sizes: Sizes, config: TaskProbeConfig, max_delay: int):
    run = functools.partial(train_task_run, spec=spec, sizes=sizes, config=config, max_delay=max_delay)
    options = {"xla_backend_optimization_level": compiling.FAST_COMPILE_LEVEL} if config.fast_compile else None
    return jax.jit(jax.vmap(run, in_axes=(0, 0, None)), compiler_options=options)


def sizes_of(data: TaskData, split: Split) -> Sizes:
    return Sizes(data.input_size, data.output_size, data.output_steps, data.labels, int(split.train.size))


def train_group(group: TaskGroup, arrays: dict, sizes: Sizes, config: TaskProbeConfig) -> list[dict[str, Any]]:
    """Train every (seed, delay) of ``group`` in one program; one row per model."""
    start = time.perf_counter()
    pairs = [(seed, delay) for seed in group.seeds for delay in group.delays]
    keys = jnp.stack([jax.random.key(seed) for seed, _ in pairs])
    delays = jnp.asarray([delay for _, delay in pairs], jnp.int32)
    metrics = jax.device_get(_program(group.spec, sizes, config, max(group.delays))(keys, delays, arrays))
    seconds = (time.perf_counter() - start) / len(pairs)
    rows = []
    for index, (seed, delay) in enumerate(pairs):
        values = {name: float(value[index]) for name, value in metrics.items() if name != "losses"}
        losses = metrics["losses"][index]
        rows.append({"kind": group.kind.value, "model": group.spec.name, "cell": group.spec.cell,
                     "width": group.spec.width, "delay": delay, "seed": seed, **values, "seconds": seconds,
                     "losses": [float(x) for x in losses[:: max(1, len(losses) // 50)]]})  # fmt: skip
    return rows


# --------------------------------------------------------------------------- the recorded, resumable probe


def run_config(data: TaskData, split: Split, config: TaskProbeConfig) -> dict[str, Any]:
    """What config.json holds: the sizes, the data's fingerprint and the split (a resume must match all)."""
    return {"probe": to_jsonable(config), "data": data.name, "fingerprint": data.fingerprint(),
            "split_sizes": split.sizes(), "split_fingerprint": _split_fingerprint(split)}  # fmt: skip


def _split_fingerprint(split: Split) -> str:
    digest = hashlib.sha256()
    for name in SPLIT_NAMES:
        digest.update(name.encode() + np.asarray(getattr(split, name), np.int64).tobytes())
    return digest.hexdigest()[:16]


def run_probe(
    data: TaskData, directory: pathlib.Path, config: TaskProbeConfig,
    assignment: np.ndarray | None = None, progress: bool = True, train: bool = True,
) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """(floor rows, model rows): compute and train what ``directory``'s records.jsonl lacks (``train=False``:
    nothing), appending each part as soon as it ends; then read everything back in plan order."""
    split = split_task(data, config.split, config.split_seed, assignment)
    directory = pathlib.Path(directory)
    records_path = directory / runner.RECORDS
    groups = plan(data, config)
    if not train and not (directory / runner.CONFIG).exists():
        raise FileNotFoundError(
            f"train=False reports what {str(directory)!r} records, and it holds no {runner.CONFIG}: nothing was "
            "started there (train=True starts it)"
        )
    runner.open_config(directory, run_config(data, split, config))  # report-only: checks the stored config
    if train:
        _train_missing(data, split, config, groups, records_path, progress)
    return collect(groups, runner.read_records(records_path))


def _train_missing(data, split, config, groups, records_path, progress: bool) -> None:
    done = runner.read_records(records_path)
    if FLOORS not in done:
        start = time.perf_counter()
        floors = task_floors.linear_floors(data, split, config.window, config.max_delay, sorted(set(config.widths)))
        runner.append_record(records_path, {"group": FLOORS, "study": "task", "seconds": time.perf_counter() - start,
                                            "models": 0, "rows": floors, "extras": {}})  # fmt: skip
    todo = [group for group in groups if group.id not in done]
    if not todo:
        return
    arrays, sizes = part_arrays(data, split), sizes_of(data, split)
    bar = Progress(sum(g.work(data, config) for g in todo), sum(g.models for g in todo), len(todo), enabled=progress)
    try:
        for group in todo:
            bar.begin(f"task {group.kind.value} {group.spec.name} w{group.spec.width}")
            start, cpu_start = time.perf_counter(), time.process_time()
            rows = train_group(group, arrays, sizes, config)
            runner.append_record(records_path, {
                "group": group.id, "study": "task", "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu_start, "models": group.models, "rows": rows, "extras": {},
            })  # fmt: skip
            bar.finish(group.work(data, config), group.models)
    finally:
        bar.close()


def collect(groups: Sequence[TaskGroup], records: dict[str, dict]) -> tuple[list[dict], list[dict]]:
    """(floor rows, model rows in plan order) from the recorded lines; missing groups are left out."""
    floors = list(records[FLOORS]["rows"]) if FLOORS in records else []
    rows = [dict(row) for group in groups if group.id in records for row in records[group.id]["rows"]]
    return floors, rows
