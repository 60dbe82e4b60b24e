"""The user's own task for the task probe: paired sequences, checked, and a train / validation / test split.

Two shapes of task:

* aligned many-to-many: inputs [n, T, d_in] -> outputs [n, T, d_out], one length per sequence (``input_lengths``);
* different lengths: inputs [n, N, d_in] -> outputs [n, M, d_out], ``input_lengths`` and ``output_lengths``.

Outputs are real values (scored by NMSE) or per-step class labels, int [n, M] with ``classes`` given (scored by
cross-entropy and accuracy). Steps at or beyond a sequence's length are padding: whatever they hold is replaced by
zero, so models and floors both read zeros after the end (the zoo's convention). :func:`task_data` checks
everything before anything trains; :func:`load_task` reads an ``.npz``; :func:`sample_task` draws a data set from a
:class:`~rnnjax.probes.targets.Target` (or a plain function) the way the zoo does.
"""

from __future__ import annotations

import dataclasses
import fractions
import hashlib
import pathlib
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.checks import arguments
from rnnjax.probes import targets as target_zoo

NPZ_KEYS = ("inputs", "outputs", "input_lengths", "output_lengths", "classes", "split")
SPLIT_NAMES = ("train", "validation", "test")
MIN_SEQUENCES = 2  # per split part: an interval needs at least two independent sequences


@dataclasses.dataclass(frozen=True, eq=False)
class TaskData:
    """A checked data set (build it with :func:`task_data`); padding steps hold zeros.

    Attributes:
      inputs: float32 [n, N, d_in].
      outputs: float32 [n, M, d_out], or int32 labels [n, M] when ``classes`` is set.
      input_lengths, output_lengths: int32 [n] (equal for an aligned task).
      classes: number of classes for label outputs; None for real-valued outputs.
      aligned: one output per input step (N == M and equal lengths).
      name: shown in the report.
    """

    inputs: np.ndarray
    outputs: np.ndarray
    input_lengths: np.ndarray
    output_lengths: np.ndarray
    classes: int | None
    aligned: bool
    name: str = "task"

    @property
    def size(self) -> int:
        return self.inputs.shape[0]

    @property
    def input_size(self) -> int:
        return self.inputs.shape[2]

    @property
    def output_size(self) -> int:
        """Model outputs per step: d_out, or the number of classes (logits)."""
        return self.classes if self.labels else self.outputs.shape[2]

    @property
    def labels(self) -> bool:
        return self.classes is not None

    @property
    def input_steps(self) -> int:
        return self.inputs.shape[1]

    @property
    def output_steps(self) -> int:
        return self.outputs.shape[1]

    def output_mask(self) -> np.ndarray:
        """bool [n, M]: the valid output steps."""
        return np.arange(self.output_steps)[None, :] < self.output_lengths[:, None]

    def subset(self, indices: np.ndarray) -> "TaskData":
        """The sequences at ``indices`` (same sizes and padding)."""
        pick = lambda array: array[indices]  # noqa: E731
        return dataclasses.replace(self, inputs=pick(self.inputs), outputs=pick(self.outputs),
                                   input_lengths=pick(self.input_lengths), output_lengths=pick(self.output_lengths))

    def fingerprint(self) -> str:
        """sha256 of the arrays and sizes: a run folder refuses a resume on other data."""
        digest = hashlib.sha256()
        for array in (self.inputs, self.outputs, self.input_lengths, self.output_lengths):
            digest.update(str(array.shape).encode() + np.ascontiguousarray(array).tobytes())
        digest.update(f"{self.classes}/{self.aligned}".encode())
        return digest.hexdigest()[:16]


def task_data(
    inputs, outputs, *, input_lengths=None, output_lengths=None, classes: int | None = None,
    aligned: bool | None = None, name: str = "task",
) -> TaskData:  # fmt: skip
    """Check and pad a data set; raises ValueError naming the array and what is wrong.

    Args:
      inputs: [n, N, d_in] (or [n, N]: d_in = 1) real values.
      outputs: [n, M, d_out] (or [n, M]) real values, or int labels [n, M] in [0, classes) when ``classes`` is set.
      input_lengths: int [n] in [1, N] (default: all N).
      output_lengths: int [n] in [1, M] (default: the input lengths for an aligned task, else all M).
      classes: number of classes (>= 2) for label outputs; None for real outputs.
      aligned: one output per input step; None: aligned when N == M and no ``output_lengths`` differ.
      name: the task's name in the report.
    """
    classes = None if classes is None else arguments.integer("classes", classes, minimum=2)
    inputs = _features("inputs", inputs)
    outputs = _labels(outputs) if classes is not None else _features("outputs", outputs)
    if outputs.shape[0] != inputs.shape[0]:
        raise ValueError(f"outputs: expected {inputs.shape[0]} sequences like inputs; got shape "
                         f"{arguments.shape_str(outputs.shape)} for inputs {arguments.shape_str(inputs.shape)}")
    input_lengths = _lengths("input_lengths", input_lengths, inputs.shape)
    aligned = _is_aligned(inputs, outputs, input_lengths, output_lengths, aligned)
    default = input_lengths if aligned else None
    output_lengths = _lengths("output_lengths", default if output_lengths is None else output_lengths, outputs.shape)
    if aligned and not np.array_equal(input_lengths, output_lengths):
        first = int(np.argmax(input_lengths != output_lengths))
        raise ValueError(f"output_lengths: an aligned task needs them equal to input_lengths; sequence {first} "
                         f"has {output_lengths[first]} outputs for {input_lengths[first]} inputs")
    inputs = _pad("inputs", inputs, input_lengths)
    outputs = _pad("outputs", outputs, output_lengths)
    if classes is not None:
        _check_label_range(outputs, output_lengths, classes)
    else:
        _check_spread(outputs, output_lengths)
    return TaskData(inputs.astype(np.float32), outputs.astype(np.int32 if classes else np.float32),
                    input_lengths, output_lengths, classes, aligned, name)  # fmt: skip


def _features(argument: str, values) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or min(array.shape) < 1:
        raise ValueError(f"{argument}: expected a non-empty [sequence, time, feature] array; got shape "
                         f"{arguments.shape_str(array.shape)}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{argument}: expected real numbers; got dtype {array.dtype}")
    return array.astype(np.float64)


def _labels(values) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2 or min(array.shape) < 1:
        raise ValueError(f"outputs: class labels must be a non-empty [sequence, time] array; got shape "
                         f"{arguments.shape_str(array.shape)}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"outputs: class labels must be integers (classes is set); got dtype {array.dtype}")
    return array.astype(np.int64)


def _lengths(argument: str, lengths, shape: tuple[int, ...]) -> np.ndarray:
    count, steps = shape[0], shape[1]
    if lengths is None:
        return np.full(count, steps, np.int32)
    array = np.asarray(lengths)
    if array.shape != (count,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{argument}: expected int [{count}] (one per sequence); got {array.dtype} "
                         f"{arguments.shape_str(array.shape)}")
    bad = np.flatnonzero((array < 1) | (array > steps))
    if bad.size:
        raise ValueError(f"{argument}: expected values in [1, {steps}] (the padded time axis); sequence {bad[0]} "
                         f"has {array[bad[0]]}")
    return array.astype(np.int32)


def _is_aligned(inputs, outputs, input_lengths, output_lengths, aligned: bool | None) -> bool:
    same_steps = inputs.shape[1] == outputs.shape[1]
    if aligned is None:
        return same_steps and (output_lengths is None or np.array_equal(np.asarray(output_lengths), input_lengths))
    if aligned and not same_steps:
        raise ValueError(f"outputs: an aligned task needs as many steps as inputs ({inputs.shape[1]}); got "
                         f"{outputs.shape[1]}")
    return bool(aligned)


def _pad(argument: str, array: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Zero the padding steps; refuse NaN or inf at a valid step."""
    valid = np.arange(array.shape[1])[None, :] < lengths[:, None]
    valid = valid.reshape(valid.shape + (1,) * (array.ndim - 2))
    if np.issubdtype(array.dtype, np.floating):
        bad = np.argwhere(~np.isfinite(array) & valid)
        if bad.size:
            sequence, step = bad[0][:2]
            raise ValueError(f"{argument}: NaN or inf at valid step {step} of sequence {sequence} "
                             f"({len(bad)} such entries); only padding steps may hold them")
        array = np.where(valid, np.nan_to_num(array), 0.0)
    return np.where(valid, array, 0)


def _check_label_range(labels: np.ndarray, lengths: np.ndarray, classes: int) -> None:
    valid = np.arange(labels.shape[1])[None, :] < lengths[:, None]
    bad = np.argwhere(((labels < 0) | (labels >= classes)) & valid)
    if bad.size:
        sequence, step = bad[0]
        raise ValueError(f"outputs: labels must lie in [0, {classes}) (classes={classes}); sequence {sequence} "
                         f"step {step} has {labels[sequence, step]} ({len(bad)} such labels)")


def _check_spread(outputs: np.ndarray, lengths: np.ndarray) -> None:
    valid = np.arange(outputs.shape[1])[None, :] < lengths[:, None]
    if np.var(outputs[valid]) == 0:
        raise ValueError("outputs: every valid output has the same value; NMSE (error / variance) is undefined")


# --------------------------------------------------------------------------- loading and sampling


def load_task(path: str | pathlib.Path, name: str | None = None) -> tuple[TaskData, np.ndarray | None]:
    """(data, split) from an ``.npz`` with keys inputs, outputs and optionally input_lengths, output_lengths,
    classes (a scalar: labels) and split (int [n]: 0 train, 1 validation, 2 test; None when absent)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data: no such file {str(path)!r} (expected an .npz with inputs and outputs)")
    with np.load(path, allow_pickle=False) as archive:
        stored = {key: archive[key] for key in archive.files}
    unknown = sorted(set(stored) - set(NPZ_KEYS))
    missing = [key for key in ("inputs", "outputs") if key not in stored]
    if unknown or missing:
        raise ValueError(f"data {str(path)!r}: expected keys {list(NPZ_KEYS)} (inputs and outputs required); "
                         f"missing {missing}, unknown {unknown}")
    classes = int(stored["classes"]) if "classes" in stored else None
    data = task_data(stored["inputs"], stored["outputs"], input_lengths=stored.get("input_lengths"),
                     output_lengths=stored.get("output_lengths"), classes=classes, name=name or path.stem)
    return data, stored.get("split")


def save_task(path: str | pathlib.Path, data: TaskData, split: np.ndarray | None = None) -> pathlib.Path:
    """Write ``data`` (and a split assignment) as an ``.npz`` that :func:`load_task` reads back."""
    arrays = {"inputs": data.inputs, "outputs": data.outputs, "input_lengths": data.input_lengths,
              "output_lengths": data.output_lengths}  # fmt: skip
    if data.labels:
        arrays["classes"] = np.asarray(data.classes)
    if split is not None:
        arrays["split"] = np.asarray(split)
    np.savez_compressed(path, **arrays)
    return pathlib.Path(path)


def sample_task(
    target: target_zoo.Target | Callable, size: int, length: int, seed: int = 0, input_size: int = 1
) -> TaskData:  # fmt: skip
    """``size`` sequences of ``length`` steps drawn as the zoo draws them (:func:`rnnjax.probes.targets.sample`).

    ``target`` is a Target or a plain function of one sequence [length, input_size] -> [M, d_out] (Gaussian inputs).
    """
    if not isinstance(target, target_zoo.Target):
        if not callable(target):
            raise TypeError(f"target must be a Target or a function of one sequence; got {type(target).__name__}")
        target = as_target(target, length, input_size)
    xs = target_zoo.sample_inputs(target, jax.random.key(seed), size, length, jnp.float32)
    ys = jax.vmap(target.fn)(xs)
    return task_data(np.asarray(xs), np.asarray(ys), aligned=target.aligned, name=target.name)


def as_target(fn: Callable, length: int, input_size: int = 1, name: str | None = None) -> target_zoo.Target:
    """A nonlinear, non-causal :class:`Target` around ``fn`` (sizes and output length read off one call)."""
    shape = jax.eval_shape(fn, jax.ShapeDtypeStruct((length, input_size), jnp.float32)).shape
    if len(shape) != 2:
        raise ValueError(f"target: fn must map [time, input] to [time, output]; got output shape {shape}")
    ratio = fractions.Fraction(shape[0], length)
    return target_zoo.Target(name or getattr(fn, "__name__", "target"), fn, input_size=input_size,
                             output_size=shape[1], causal=False, length_ratio=ratio)  # fmt: skip


# --------------------------------------------------------------------------- split


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """Sequence indices of each part (disjoint, sorted)."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {name: int(getattr(self, name).size) for name in SPLIT_NAMES}


def split_task(
    data: TaskData, parts: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 0,
    assignment: np.ndarray | None = None,
) -> Split:  # fmt: skip
    """A seeded random split by the fractions ``parts`` (train, validation, test), or the fixed ``assignment`` (int [n]:
    0 train, 1 validation, 2 test). Each part needs at least :data:`MIN_SEQUENCES` sequences."""
    if assignment is None:
        assignment = _random_assignment(data.size, parts, seed)
    assignment = np.asarray(assignment)
    if assignment.shape != (data.size,) or not np.isin(assignment, (0, 1, 2)).all():
        raise ValueError(f"split: expected int [{data.size}] with values 0 (train), 1 (validation), 2 (test); got "
                         f"{assignment.dtype} {arguments.shape_str(assignment.shape)}")
    parts = [np.flatnonzero(assignment == part) for part in range(3)]
    for name, part in zip(SPLIT_NAMES, parts):
        if part.size < MIN_SEQUENCES:
            raise ValueError(f"split: too few sequences for the split: {data.size} sequences give {part.size} for "
                             f"{name}; each part needs at least {MIN_SEQUENCES} (more data or other split fractions)")
    return Split(*parts)


def _random_assignment(size: int, parts, seed: int) -> np.ndarray:
    shares = np.asarray(parts, np.float64)
    if shares.shape != (3,) or (shares <= 0).any():
        raise ValueError(f"split fractions: expected three positive numbers (train, validation, test); got {parts}")
    counts = np.floor(shares / shares.sum() * size).astype(int)
    counts[0] += size - counts.sum()
    order = np.random.default_rng(seed).permutation(size)
    assignment = np.empty(size, np.int32)
    assignment[order] = np.repeat(np.arange(3), counts)
    return assignment
