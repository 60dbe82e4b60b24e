"""Every check of a :class:`rnnjax.probes.studies.ProbeConfig`, run when the config is built (so a refused command
line writes nothing, and the corrected one just works): ranges, non-empty lists, finite numbers, known cells, and
a memory estimate for the widest model against this machine's memory.

    check(config)                 # ValueError / TypeError naming the field (as its --probe.<field> flag)
    from_stored(ProbeConfig, json_value, path)   # a config.json back as a config, or an error naming the file
    memory_estimate(config)       # (bytes, the widest model) a rough lower bound of what training needs
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from typing import Any

from rnnjax.checks import arguments
from rnnjax.core.cells import make_cell

POSITIVE = ("length", "steps", "train_size", "batch_size", "test_size", "width", "parity_length", "parity_steps",
            "encoder_decoder_length", "encoder_decoder_spot_width", "encoder_decoder_linear_restarts")  # fmt: skip
POSITIVE_LISTS = ("order_widths", "memory_widths", "deep_widths", "depths", "encoder_decoder_widths", "pooling_widths")
CELL_LISTS = ("causal_cells", "bidirectional_cells", "wiener_cells", "parity_cells", "encoder_decoder_cells",
              "encoder_decoder_spot_cells", "attention_cells")  # fmt: skip
BYTES_PER_NUMBER = 8  # float64 (two studies train in it)
GATES = 4  # an LSTM's four gates: the widest cell per unit


def _flag(name: str) -> str:
    return f"--probe.{name}"


def _items(config: Any, name: str) -> list[tuple[str, Any]]:
    value = getattr(config, name)
    if not isinstance(value, tuple):
        raise TypeError(f"{_flag(name)} must be a tuple; got {type(value).__name__} {value!r}")
    return [(f"{_flag(name)}[{index}]", item) for index, item in enumerate(value)]


def _check_sizes(config: Any) -> None:
    for name in POSITIVE:
        arguments.positive_int(_flag(name), getattr(config, name))
    for name in POSITIVE_LISTS:
        for argument, item in _items(config, name):
            arguments.positive_int(argument, item)
    arguments.nonnegative_int(_flag("lbfgs_steps"), config.lbfgs_steps)
    arguments.integer(_flag("test_size"), config.test_size, minimum=2)  # an interval needs two test sequences
    # a lag of the whole length or more copies nothing: a zero target, whose NMSE is 0/0
    arguments.integer(_flag("copy_lag"), config.copy_lag, minimum=0, maximum=config.length - 1)
    arguments.positive_float(_flag("learning_rate"), config.learning_rate)


def _check_seeds_and_delays(config: Any) -> None:
    if not config.seeds:
        raise ValueError(f"{_flag('seeds')} must name at least one seed; got {config.seeds!r}")
    for argument, seed in _items(config, "seeds"):
        arguments.nonnegative_int(argument, seed)
    if len(set(config.seeds)) != len(config.seeds):
        raise ValueError(f"{_flag('seeds')} must not repeat a seed; got {config.seeds!r}")
    if not config.delays:
        raise ValueError(f"{_flag('delays')} must name at least one delay (0: causal); got {config.delays!r}")
    for argument, delay in _items(config, "delays"):
        arguments.nonnegative_int(argument, delay)  # a negative delay would be read as 0: the causal floor


def _check_cells(config: Any) -> None:
    for name in CELL_LISTS:
        for argument, cell in _items(config, name):
            try:
                make_cell(cell)
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{argument} must name a cell; got {cell!r} ({error})") from error


def _model_numbers(width: int, depth: int, batch: int, length: int) -> int:
    """Numbers held while training one model: params with their gradient and two Adam moments, and the
    activations a backward pass keeps (every gate of every layer at every step of a batch)."""
    params = depth * GATES * (width * width + 2 * width)
    return 4 * params + batch * length * depth * GATES * width


def memory_estimate(config: Any) -> tuple[int, str]:
    """(bytes, description) of the largest model's training: a rough lower bound (one seed, no XLA buffers)."""
    batch = max(config.batch_size, config.train_size)  # the L-BFGS studies train on the whole set
    length = max(config.length, config.parity_length, config.encoder_decoder_length)
    candidates = [(config.width, 1)]
    candidates += [(width, 1) for width in (*config.order_widths, *config.memory_widths, *config.pooling_widths)]
    candidates += [(width, 1) for width in (*config.encoder_decoder_widths, config.encoder_decoder_spot_width)]
    candidates += [(width, depth) for width in config.deep_widths for depth in config.depths]
    numbers, (width, depth) = max((_model_numbers(w, d, batch, length), (w, d)) for w, d in candidates)
    evaluation = config.test_size * length * width  # one layer's states over the test set (a lower bound)
    total = (numbers + evaluation) * BYTES_PER_NUMBER * len(config.seeds)
    return total, f"width {width}, depth {depth}, {len(config.seeds)} seeds, batch {batch}, length {length}"


def machine_memory() -> int | None:
    """Physical memory of this machine in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(config: Any) -> None:
    needed, model = memory_estimate(config)
    available = machine_memory()
    if available is not None and needed > available:
        raise ValueError(
            f"the probe config needs at least ~{needed / 2**30:.3g} GiB for its largest model ({model}), more than "
            f"this machine's {available / 2**30:.3g} GiB: lower --probe.width / --probe.*_widths / --probe.depths "
            "or the sizes"
        )
    if not math.isfinite(needed):
        raise ValueError(f"the probe config's memory estimate is not finite ({model})")


def check(config: Any) -> None:
    """Refuse a config that cannot run as asked, naming the flag, the expected and the actual value."""
    _check_sizes(config)
    _check_seeds_and_delays(config)
    _check_cells(config)
    _check_memory(config)


def from_stored(config_type: type, stored: Any, path: str | pathlib.Path) -> Any:
    """``config_type`` from the JSON of its config.json (lists back to tuples); an error naming ``path`` when the
    file holds something else (not an object, unknown fields, or values the config refuses)."""
    known = {field.name for field in dataclasses.fields(config_type)}
    if not isinstance(stored, dict):
        raise ValueError(f"{path}: expected a JSON object with the fields of {config_type.__name__}; got "
                         f"{type(stored).__name__}")  # fmt: skip
    unknown = sorted(set(stored) - known)
    if unknown:
        raise ValueError(f"{path}: fields {unknown} are not fields of {config_type.__name__} (written by another "
                         "version, or edited?)")  # fmt: skip
    try:
        return config_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} holds a config this version refuses: {error}") from error
