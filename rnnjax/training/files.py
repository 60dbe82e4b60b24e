"""The one way run folders write and read their files: atomic JSON, durable JSON lines, one config.json policy.

API:
    write_atomically(path, text)                 # a reader sees the old or the new text, never a part (fsynced)
    append_line(path, line)                      # one durable line (a torn last line is cut first)
    records = read_lines(path)                   # [(line number, value)]; the torn-line policy below
    value = read_json(path)                      # DamagedFileError naming the file when it is cut short
    stored = open_config(folder, config_json)    # the config.json policy below
    config_hash(config_json)                     # '3f2a...' (16 hex digits): what each record line carries

Torn lines: a last line without its newline is what a process killed mid-write leaves; readers ignore it (with a
:class:`TornLineWarning`) and the next :func:`append_line` cuts it before writing. Any other line that is not JSON
is damage, not an interruption: :class:`DamagedFileError` naming the file and the line.

config.json: written when the folder has none and nothing else was recorded there; a folder whose config.json is
missing while it holds records, or is unreadable, is an error naming the file (it is never silently replaced); a
stored config that differs from the current one in a tracked field is refused (:class:`ConfigMismatch`, naming
each differing field).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import warnings
from typing import Any, Collection, Mapping, Sequence

CONFIG = "config.json"


class DamagedFileError(ValueError):
    """A run file cannot be read as written (cut short or overwritten); the message names the file and line."""


class ConfigMismatch(ValueError):
    """A run folder was started with another config; its records cannot be mixed with this one's."""


class TornLineWarning(UserWarning):
    """A last line cut short by an interrupted write was ignored."""


def _fsync_folder(folder: pathlib.Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # not every system opens folders
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_atomically(path: str | pathlib.Path, text: str) -> None:
    """Write a temporary file, fsync it and rename it over ``path``; nothing is left behind on failure."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_folder(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def cut_torn_tail(path: str | pathlib.Path) -> bool:
    """Cut the text after the last newline (a write torn by a kill); returns whether anything was cut."""
    path = pathlib.Path(path)
    if not path.exists():
        return False
    _refuse_link(path)
    with open(path, "r+b") as handle:
        handle.seek(0, os.SEEK_END)
        size = position = handle.tell()
        while position > 0:  # find the last newline from the end, a block at a time
            begin = max(position - 4096, 0)
            handle.seek(begin)
            block = handle.read(position - begin)
            if (found := block.rfind(b"\n")) >= 0:
                position = begin + found + 1
                break
            position = begin
        if position == size:
            return False
        handle.truncate(position)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _refuse_link(path: pathlib.Path) -> None:
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link (to {os.readlink(path)}): lines are never appended through a "
                         "link, which could write outside the run folder; remove the link")  # fmt: skip


def append_line(path: str | pathlib.Path, line: str) -> None:
    """Append one line and make it durable (flush + fsync); a torn last line is cut first so it stays apart.

    A file that is a symbolic link is refused (ValueError): an append would follow it."""
    if "\n" in line:
        raise ValueError(f"line must be a single line; got {line[:80]!r}...")
    path = pathlib.Path(path)
    _refuse_link(path)
    cut_torn_tail(path)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with open(descriptor, "a") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_lines(path: str | pathlib.Path) -> list[tuple[int, Any]]:
    """[(line number, JSON value)] of a JSON-lines file (none when absent), by the torn-line policy above."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").split("\n")
    if lines[-1].strip():
        warnings.warn(f"{path}: ignored a last line cut short (an interrupted write): {lines[-1][:60]!r}",
                      TornLineWarning, stacklevel=2)  # fmt: skip
    values = []
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            values.append((number, json.loads(line)))
        except ValueError as error:
            raise DamagedFileError(
                f"{path}: line {number} is not a JSON record ({error}); expected one record per line. The file "
                "was changed by something else than this library: repair or remove that line"
            ) from error
    return values


def read_json(path: str | pathlib.Path) -> Any:
    """The JSON value in ``path``; FileNotFoundError or DamagedFileError naming the file."""
    path = pathlib.Path(path)
    text = path.read_text(errors="replace")
    try:
        return json.loads(text)
    except ValueError as error:
        raise DamagedFileError(
            f"{path} is damaged ({error}; {len(text)} characters): it is not replaced; restore it, or start the run "
            "again under another name (or with --fresh)"
        ) from error


def config_hash(config_json: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the config's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(config_json, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}.").items()}
    return {prefix[:-1]: value}


def config_differences(stored: Any, current: Any, untracked: Collection[str] = ()) -> list[str]:
    """'field: stored -> current' for every field that differs (nested fields as 'a.b'), except ``untracked``."""
    missing = object()
    before_all, after_all = _flatten(stored), _flatten(current)
    lines = []
    for field in sorted(set(before_all) | set(after_all)):
        before, after = before_all.get(field, missing), after_all.get(field, missing)
        if field not in untracked and before != after:
            show = lambda value: "(absent)" if value is missing else json.dumps(value)  # noqa: E731
            lines.append(f"{field}: {show(before)} -> {show(after)}")
    return lines


def open_config(
    folder: str | pathlib.Path,
    current: Mapping[str, Any],
    *,
    recorded: Sequence[str | pathlib.Path] = (),
    untracked: Collection[str] = (),
) -> dict[str, Any]:
    """Write ``folder/config.json`` or check ``current`` against it; returns the stored config.

    Args:
      folder: the run folder.
      current: the config as JSON.
      recorded: files whose existence (non-empty) means the folder has recorded results under a config: a missing
        config.json is then an error, never replaced.
      untracked: dotted field names that may differ (how a run is shown, not what it computes).
    """
    path = pathlib.Path(folder) / CONFIG
    if not path.exists():
        found = [str(p) for p in map(pathlib.Path, recorded) if p.exists() and p.stat().st_size]
        if found:
            raise DamagedFileError(
                f"{path} is missing but the folder holds records ({', '.join(found)}): the config they were made "
                "under is unknown. Restore config.json, or start again under another name (or with --fresh)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(current, indent=2, sort_keys=True) + "\n")
        return dict(current)
    stored = read_json(path)
    differences = config_differences(stored, current, untracked)
    if differences:
        raise ConfigMismatch(
            f"run folder {str(folder)!r} was started with another config ({path}); its records cannot be mixed "
            f"with this run's. Differing fields (stored -> now): {'; '.join(differences)}. Use another run name, "
            "start again with --fresh, or rerun with the stored config."
        )
    return stored
