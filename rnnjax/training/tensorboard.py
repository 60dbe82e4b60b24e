"""TensorBoard event files for run folders (tensorboardX, the optional ``tensorboard`` extra).

A :class:`~rnnjax.training.runs.Run` writes its scalars, its config (as text), its report and
the report's figures (as images) next to ``metrics.jsonl``; ``fit_many`` (given the run) also
writes each model's own means to one sub-folder per model (``models/<index>/``), so TensorBoard
draws one curve per run of a sweep:

    tensorboard --logdir runs/

Writing is on by default when tensorboardX is installed (``Run(..., tensorboard=False)`` turns it
off) and silently off when it is not. :func:`read_events` reads a folder's event files back
(TFRecord framing, parsed here; no TensorBoard install needed).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import pathlib
import struct
from typing import Any

import numpy as np

MODELS_FOLDER = "models"  # fit_many: one sub-folder of event files per model index


def available() -> bool:
    """True when tensorboardX can be imported."""
    return importlib.util.find_spec("tensorboardX") is not None


def resolve_enabled(enabled: bool | None) -> bool:
    """``None`` (the default): on when tensorboardX is installed; ``True`` requires it."""
    if enabled is None:
        return available()
    if not isinstance(enabled, bool):
        raise TypeError(f"tensorboard must be True, False or None; got {enabled!r} ({type(enabled).__name__})")
    if enabled and not available():
        raise ImportError("tensorboard=True: expected tensorboardX to be installed (pip install 'rnnjax[tensorboard]')")
    return enabled


def _scalar(value: Any) -> float | None:
    """A loggable float (NaN/inf kept), or None for values that are not single numbers."""
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return None
    if array.shape != () or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        return None
    return float(array)


def png_bytes(image: Any) -> bytes:
    """A PNG file path or a matplotlib ``Figure`` as encoded PNG bytes."""
    if isinstance(image, (str, pathlib.Path)):
        data = pathlib.Path(image).read_bytes()
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError(f"image: expected a PNG file; got {image} (not PNG data)")
        return data
    if hasattr(image, "savefig"):
        buffer = io.BytesIO()
        image.savefig(buffer, format="png")
        return buffer.getvalue()
    raise TypeError(f"image: expected a PNG path or a matplotlib Figure; got {type(image).__name__}")


class EventWriter:
    """One folder of event files; the tensorboardX writer opens on the first write.

    tensorboardX writes from a background thread: events reach the file within ``flush_seconds``,
    and all of them on :meth:`close` (or at exit); read a folder back after closing its writer.
    """

    flush_seconds = 10

    def __init__(self, directory: str | pathlib.Path):
        self.directory = pathlib.Path(directory)
        self._writer = None

    def _summary_writer(self) -> Any:
        if self._writer is None:
            from tensorboardX import SummaryWriter  # noqa: PLC0415 - optional dependency

            self._writer = SummaryWriter(logdir=str(self.directory), flush_secs=self.flush_seconds)
        return self._writer

    def scalars(self, step: int, metrics: dict[str, Any]) -> None:
        """One scalar per numeric metric at ``step`` (other values are skipped)."""
        writer = self._summary_writer()
        for tag, value in metrics.items():
            number = _scalar(value)
            if number is not None:
                writer.add_scalar(tag, number, int(step))

    def text(self, tag: str, text: str, step: int = 0) -> None:
        self._summary_writer().add_text(tag, text, int(step))

    def image(self, tag: str, image: Any, step: int = 0) -> None:
        """A PNG path or matplotlib Figure as an image summary (the PNG is stored as is)."""
        from tensorboardX.proto.summary_pb2 import Summary  # noqa: PLC0415

        data = png_bytes(image)
        width, height = struct.unpack(">II", data[16:24])  # the PNG IHDR chunk
        summary = Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
            height=height, width=width, colorspace=4, encoded_image_string=data))])  # fmt: skip
        self._summary_writer().file_writer.add_summary(summary, int(step))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class RunEvents:
    """The TensorBoard side of a run folder (``run.events``); every method does nothing when disabled."""

    def __init__(self, directory: str | pathlib.Path, enabled: bool | None = None):
        self.enabled = resolve_enabled(enabled)
        self.writer = EventWriter(directory)
        self.model_writers: dict[int, EventWriter] = {}  # fit_many: one per model index

    def scalars(self, step: int, metrics: dict[str, Any]) -> None:
        if self.enabled:
            self.writer.scalars(step, metrics)

    def config(self, config: Any) -> None:
        """The config (already JSON-able) as a text summary, in a code block."""
        if self.enabled:
            self.writer.text("config", "```\n" + json.dumps(config, indent=2, sort_keys=True) + "\n```")

    def figure(self, name: str, image: Any, step: int = 0) -> None:
        if self.enabled:
            self.writer.image(name, image, step)

    def report(self, markdown: str, plots_directory: pathlib.Path) -> None:
        """The report as text and every figure in ``plots/`` as an image."""
        if not self.enabled:
            return
        self.writer.text("report", markdown)
        for path in sorted(plots_directory.glob("*.png")):
            self.writer.image(f"plots/{path.stem}", path)

    def many(self, step: int, metrics: dict[str, Any]) -> None:
        """``fit_many`` metrics of one chunk (leaves ``[models, steps]``): per model, the means over the
        chunk's steps at ``step`` (steps done; ``fit`` too logs means), one sub-writer per model index."""
        if not self.enabled:
            return
        arrays = {name: np.asarray(value, np.float64) for name, value in metrics.items()}
        shapes = {value.shape for value in arrays.values()}
        if len(shapes) != 1 or any(value.ndim != 2 for value in arrays.values()):
            raise ValueError(f"metrics: expected leaves of one shape [models, steps]; got shapes {sorted(shapes)}")
        means = {f"train/{name}": value.mean(axis=1) for name, value in arrays.items()}
        for model in range(shapes.pop()[0]):
            if model not in self.model_writers:
                self.model_writers[model] = EventWriter(self.writer.directory / MODELS_FOLDER / str(model))
            self.model_writers[model].scalars(step, {name: value[model] for name, value in means.items()})

    def close(self) -> None:
        """Write out and close every event file of this run (reopened on the next write)."""
        for writer in (self.writer, *self.model_writers.values()):
            writer.close()


# --------------------------------------------------------------------------- reading back


@dataclasses.dataclass(frozen=True)
class Events:
    """What a folder's event files hold: ``scalars[tag] = [(step, value)]``, ``texts[tag] = [str]``,
    ``images[tag] = [(step, png_bytes)]`` in file order."""

    scalars: dict[str, list[tuple[int, float]]]
    texts: dict[str, list[str]]
    images: dict[str, list[tuple[int, bytes]]]


def _records(path: pathlib.Path) -> list[bytes]:
    """The payloads of a TFRecord file: [uint64 length][uint32 crc][data][uint32 crc] per record."""
    data = path.read_bytes()
    records, offset = [], 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        records.append(data[offset + 12 : offset + 12 + length])
        offset += 12 + length + 4
    return records


def read_events(directory: str | pathlib.Path) -> Events:
    """Read every ``events.out.tfevents.*`` file directly in ``directory`` (not sub-folders)."""
    from tensorboardX.proto.event_pb2 import Event  # noqa: PLC0415

    scalars: dict[str, list] = {}
    texts: dict[str, list] = {}
    images: dict[str, list] = {}
    for path in sorted(pathlib.Path(directory).glob("events.out.tfevents.*")):
        for record in _records(path):
            event = Event.FromString(record)
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
                elif kind == "image":
                    images.setdefault(value.tag, []).append((event.step, value.image.encoded_image_string))
                elif kind == "tensor" and value.metadata.plugin_data.plugin_name == "text":
                    texts.setdefault(_text_tag(value.tag), []).append(value.tensor.string_val[0].decode())
    return Events(scalars=scalars, texts=texts, images=images)


def _text_tag(tag: str) -> str:
    """tensorboardX stores ``add_text("config", ...)`` under ``config/text_summary``."""
    return tag[: -len("/text_summary")] if tag.endswith("/text_summary") else tag

