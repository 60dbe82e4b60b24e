"""Folder locks: a run folder or a checkpoint folder is held by one process at a time.

The lock is the file ``<folder>/.lock``, held with ``fcntl.flock`` (the kernel releases it when the process dies,
even by SIGKILL) and holding the holder's pid, host and start time as JSON, for the messages. A clean release
empties the file, so a non-empty file found by the next holder was left by a process that died holding it: on
this host it is taken over with a :class:`StaleLockWarning` once that process has ended (a recorded process that
is still alive is refused: a reused process id or another tool); from another host it is refused (a network file
system may not share ``flock`` between hosts), and the message says which file to delete. A lock file that is a
symbolic link (or not a regular file) is refused with :class:`LockFileError`: nothing is written through it.

Within one process a folder's lock is shared: acquiring it again counts a reference, and the file is released
when the last reference is (``release``, ``with``, or at exit).

API:
    lock = acquire(folder)            # FolderLockedError if another process holds it
    lock.release()                    # or: with acquire(folder): ...
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import errno
import json
import os
import pathlib
import socket
import stat
import threading
import warnings
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: only the recorded pid and host protect the folder
    fcntl = None

LOCK_NAME = ".lock"


class FolderLockedError(RuntimeError):
    """Another process holds the folder; ``holder`` says which (None when its record could not be read)."""

    def __init__(self, message: str, holder: Holder | None = None):
        super().__init__(message)
        self.holder = holder


class LockFileError(FolderLockedError):
    """The lock file is a symbolic link or not a regular file: it is refused, never written through."""


class StaleLockWarning(UserWarning):
    """A lock left by a process of this host that died holding it was taken over."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a lock: process id, host name and UTC start time of the hold."""

    pid: int
    host: str
    started: str

    @classmethod
    def current(cls) -> Holder:
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return cls(os.getpid(), socket.gethostname(), started)

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host!r} (since {self.started})"


@dataclasses.dataclass
class _Entry:
    descriptor: int
    count: int
    owner_pid: int  # a forked child inherits the registry but must not release its parent's lock


_HELD: dict[str, _Entry] = {}
_GUARD = threading.Lock()


class FolderLock:
    """One reference to a held folder lock; ``release`` (or leaving ``with``) drops it."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self._released = False

    def release(self) -> None:
        """Drop this reference; the last one empties and unlocks the file. Idempotent."""
        if self._released:
            return
        self._released = True
        with _GUARD:
            entry = _HELD.get(str(self.path))
            if entry is None:
                return
            entry.count -= 1
            if entry.count <= 0:
                del _HELD[str(self.path)]
                _unlock(entry)

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def acquire(folder: str | pathlib.Path) -> FolderLock:
    """Hold ``folder`` (which must exist) for this process; raise :class:`FolderLockedError` if another holds it."""
    path = pathlib.Path(folder).resolve() / LOCK_NAME
    with _GUARD:
        entry = _HELD.get(str(path))
        if entry is not None and entry.owner_pid == os.getpid():
            entry.count += 1
        else:
            _HELD[str(path)] = _Entry(_lock(path), 1, os.getpid())
    return FolderLock(path)


def read_holder(folder: str | pathlib.Path) -> Holder | None:
    """The holder recorded in ``folder``'s lock file (None when free or unreadable)."""
    try:
        return _parse_holder((pathlib.Path(folder) / LOCK_NAME).read_text())
    except OSError:
        return None


def _parse_holder(text: str) -> Holder | None:
    try:
        record = json.loads(text)
        return Holder(int(record["pid"]), str(record["host"]), str(record["started"]))
    except (ValueError, KeyError, TypeError):
        return None


def _open(path: pathlib.Path) -> int:
    """Open (or create) the lock file itself; a symbolic link or anything but a regular file is refused."""
    if path.is_symlink():
        raise LockFileError(
            f"the lock file {path} is a symbolic link (to {os.readlink(path)}); a lock is never written through a "
            "link: delete the link"
        )
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:  # replaced by a link after the check above
            raise LockFileError(f"the lock file {path} is a symbolic link; delete the link") from error
        raise type(error)(
            error.errno, f"cannot create the lock file {path} (is the folder writable?): {error.strerror}"
        ) from error
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise LockFileError(f"the lock file {path} is not a regular file; delete it")
    return descriptor


def _try_flock(descriptor: int) -> bool | None:
    """True: locked; False: another process holds it; None: the file system has no flock."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return None
        raise


def _read_descriptor(descriptor: int) -> str:
    os.lseek(descriptor, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(descriptor, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _refuse(path: pathlib.Path, holder: Holder | None, detail: str) -> FolderLockedError:
    who = "another process (its record is unreadable)" if holder is None else holder.describe()
    return FolderLockedError(f"{path.parent} is held by {who}{detail}; lock file {path}", holder)


def _check_previous(path: pathlib.Path, previous: Holder | None, flocked: bool | None) -> None:
    """Decide about a non-empty lock file we could lock (or could not flock at all); raise if it is live."""
    host = socket.gethostname()
    if previous is None or previous.pid == os.getpid() and previous.host == host:
        return
    if previous.host != host:
        raise _refuse(path, previous, ", another host: if that process has ended, delete the lock file")
    if _process_alive(previous.pid):
        if flocked is None:
            raise _refuse(path, previous, "")
        raise _refuse(path, previous, (
            " (by its record: that process is alive but does not hold the lock, e.g. a reused process id or "
            "another tool); if it does not use this folder, delete the lock file"
        ))  # fmt: skip
    warnings.warn(
        f"taking over the lock of {path.parent}: it was left by {previous.describe()}, which died without releasing it",
        StaleLockWarning,
        stacklevel=4,
    )


def _lock(path: pathlib.Path) -> int:
    descriptor = _open(path)
    try:
        flocked = _try_flock(descriptor)
        text = _read_descriptor(descriptor)
        if flocked is False:
            raise _refuse(path, _parse_holder(text), "")
        if text.strip():
            _check_previous(path, _parse_holder(text), flocked)
        record = json.dumps(dataclasses.asdict(Holder.current())).encode()
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, record, 0)
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _unlock(entry: _Entry) -> None:
    if entry.owner_pid != os.getpid():
        return
    try:
        os.ftruncate(entry.descriptor, 0)  # a clean release leaves an empty file: nothing stale
    finally:
        os.close(entry.descriptor)  # closing drops the flock


@atexit.register
def _release_all() -> None:
    with _GUARD:
        entries = list(_HELD.values())
        _HELD.clear()
    for entry in entries:
        try:
            _unlock(entry)
        except OSError:
            pass
