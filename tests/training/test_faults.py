"""Fault tests: kill -9 during saves, two processes on one folder, damaged checkpoints, unwritable folders, a full
disk and an infinite learning rate. After each, the newest intact checkpoint restores bit for bit (arrays and the
typed PRNG key data), and nothing outside the damaged step is lost.
"""

import contextlib
import errno
import fcntl
import inspect
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import OPTIMIZER, STEP, batch_fn, init_params, loss_fn

from rnnjax.training import locks, loop
from rnnjax.training.checkpoint import (
    Checkpointer,
    CheckpointWriteError,
    DamagedCheckpointError,
    DamagedCheckpointWarning,
    to_saveable,
)
from rnnjax.training.locks import FolderLockedError, StaleLockWarning
from rnnjax.training.runs import Run
from rnnjax.training.step import NonFiniteError, init_state, make_train_step

REPO = pathlib.Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def state(step, size):
    w = np.sin(np.arange(size, dtype=np.float64) + step).astype(np.float32)
    return {"w": jnp.asarray(w), "count": jnp.asarray(step, jnp.int32), "key": jax.random.key(step)}


STATE_SOURCE = "\n" + inspect.getsource(state)  # the same states in the subprocesses
SMALL, LARGE = 1000, 2_000_000


def _template(size):
    return {"w": jnp.zeros((size,), jnp.float32), "count": jnp.asarray(0, jnp.int32), "key": jax.random.key(999)}


def _assert_bit_exact(restored, expected):
    np.testing.assert_array_equal(np.asarray(jax.random.key_data(restored["key"])),
                                  np.asarray(jax.random.key_data(expected["key"])))  # fmt: skip
    for name in ("w", "count"):
        assert restored[name].dtype == expected[name].dtype
        np.testing.assert_array_equal(np.asarray(restored[name]), np.asarray(expected[name]))


@contextlib.contextmanager
def _no_damage_seen():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DamagedCheckpointWarning)
        yield


# --------------------------------------------------------------------------- kill -9 during a save

KILLED_WRITER = STATE_SOURCE.join(
    textwrap.dedent(part)
    for part in (
        """
        import os, signal, sys, time
        import numpy as np, jax, jax.numpy as jnp
        from orbax.checkpoint._src.path import async_path
        from rnnjax.training.checkpoint import Checkpointer
        """,
        """
        def kill_around(name, when, target=None):  # SIGKILL this process before or after an Orbax file operation
            original = getattr(async_path, name)

            async def wrapper(*args, **kwargs):
                path = args[1] if name == "rename" else args[0]  # rename(source, destination), write_text(path, ...)
                hit = target is None or os.path.basename(str(path)) == target
                if hit and when == "before":
                    os.kill(os.getpid(), signal.SIGKILL)
                result = await original(*args, **kwargs)
                if hit:
                    os.kill(os.getpid(), signal.SIGKILL)
                return result

            setattr(async_path, name, wrapper)

        directory, point = sys.argv[1], sys.argv[2]
        checkpointer = Checkpointer(directory, save_every=1, keep=5)
        checkpointer.save(1, state(1, 1000))
        checkpointer.wait()
        if not point.startswith("delay"):
            kill_around(*point.split(":"))
        checkpointer.save(2, state(2, 2_000_000))  # asynchronous: the write is in flight
        if point.startswith("delay"):
            time.sleep(float(point.split(":")[1]))
            os.kill(os.getpid(), signal.SIGKILL)
        checkpointer.wait()
        sys.exit(3)  # the kill point was never reached
        """,
    )
)


@pytest.mark.parametrize(
    "point, expected_latest",
    [
        ("delay:0", (1, 2)),  # right after save() returns: the background write has just started
        ("delay:0.2", (1, 2)),
        ("write_text:before", (1,)),  # at the first metadata write of the new step
        ("rename:after:default", (1,)),  # the item is complete inside the step's temporary folder
        ("rename:before:2", (1,)),  # everything written, the step not yet renamed into place
        ("rename:after:2", (2,)),  # renamed into place, the old steps not yet cleaned up
    ],
)
def test_kill_during_save_leaves_the_newest_complete_checkpoint(tmp_path, point, expected_latest):
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path), point], env=ENV, timeout=240)
    assert result.returncode == -signal.SIGKILL
    holder = locks.read_holder(tmp_path)
    assert holder is not None and holder.pid != os.getpid()
    with pytest.warns(StaleLockWarning, match=f"pid {holder.pid} "):
        checkpointer = Checkpointer(tmp_path, save_every=1, keep=5)
    with checkpointer, _no_damage_seen():
        latest = checkpointer.latest_step()
        assert latest in expected_latest
        size = SMALL if latest == 1 else LARGE
        _assert_bit_exact(checkpointer.restore_latest(_template(size)), state(latest, size))


# --------------------------------------------------------------------------- two processes on one folder

HOLDER = textwrap.dedent(
    """
    import sys
    kind, root = sys.argv[1], sys.argv[2]
    if kind == "run":
        from rnnjax.training.runs import Run
        run = Run("toy", name="shared", root=root)
        run.log(1, loss=0.5)
    else:
        from rnnjax.training.checkpoint import Checkpointer
        checkpointer = Checkpointer(root, save_every=1)
    print("holding", flush=True)
    sys.stdin.readline()  # released by the end of the process (atexit), without close()
    """
)


def _start_holder(kind, root):
    process = subprocess.Popen([sys.executable, "-c", HOLDER, kind, str(root)], env=ENV, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert process.stdout.readline().strip() == "holding"
    return process


def test_second_process_on_a_run_is_refused_naming_the_holder(tmp_path):
    holder = _start_holder("run", tmp_path)
    who = re.escape(f"pid {holder.pid} on host {socket.gethostname()!r}")
    metrics = tmp_path / "toy" / "shared" / "metrics.jsonl"
    try:
        with pytest.raises(FolderLockedError, match=who) as error:
            Run("toy", name="shared", root=tmp_path)
        assert error.value.holder.pid == holder.pid
        with pytest.raises(FolderLockedError, match=who):
            Run("toy", name="shared", root=tmp_path, fresh=True)  # fresh deletes nothing of a held run
        assert metrics.read_text() == '{"step": 1, "loss": 0.5}\n'
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleLockWarning)  # released cleanly at exit: nothing stale
        with Run("toy", name="shared", root=tmp_path) as run:
            run.log(2, loss=0.25)
    assert [record["step"] for record in run.read_metrics()] == [1, 2]


def test_killed_holder_of_a_checkpoint_folder_is_taken_over_with_a_warning(tmp_path):
    holder = _start_holder("checkpointer", tmp_path)
    try:
        with pytest.raises(FolderLockedError, match=f"pid {holder.pid} on host"):
            Checkpointer(tmp_path, save_every=1)
    finally:
        holder.kill()
        holder.wait(timeout=60)
    with pytest.warns(StaleLockWarning, match=f"left by pid {holder.pid} .* died without releasing it"):
        checkpointer = Checkpointer(tmp_path, save_every=1)
    with checkpointer:
        assert checkpointer.save(1, state(1, SMALL))
        checkpointer.wait()
        _assert_bit_exact(checkpointer.restore_latest(_template(SMALL)), state(1, SMALL))
    assert (tmp_path / locks.LOCK_NAME).read_text() == ""  # released cleanly


def test_lock_records_from_dead_processes_and_other_hosts(tmp_path):
    ended = subprocess.Popen(["true"])
    ended.wait(timeout=60)
    dead_pid = ended.pid  # a process of this host that has ended
    record = '{{"pid": {}, "host": "{}", "started": "2020-01-01T00:00:00+00:00"}}'
    (tmp_path / locks.LOCK_NAME).write_text(record.format(dead_pid, socket.gethostname()))
    with pytest.warns(StaleLockWarning, match=f"pid {dead_pid} "):
        locks.acquire(tmp_path).release()
    (tmp_path / locks.LOCK_NAME).write_text(record.format(4242, "elsewhere"))
    with pytest.raises(FolderLockedError, match="pid 4242 on host 'elsewhere'.*another host.*delete the lock file"):
        locks.acquire(tmp_path)
    with Run("toy", name="a", root=tmp_path) as run:
        again = Run("toy", name="a", root=tmp_path)  # one process may open its run twice (a shared hold)
        again.close()
        run.log(1, loss=1.0)  # still held after the second reference is released
        assert locks.read_holder(run.directory).pid == os.getpid()
    assert locks.read_holder(run.directory) is None


def test_a_lock_record_of_a_live_process_without_the_lock_is_refused_not_taken_over(tmp_path):
    live = subprocess.Popen(["sleep", "120"])  # alive, but holds no flock on the folder (a reused pid, another tool)
    record = f'{{"pid": {live.pid}, "host": "{socket.gethostname()}", "started": "2020-01-01T00:00:00+00:00"}}'
    (tmp_path / locks.LOCK_NAME).write_text(record)
    try:
        with pytest.raises(FolderLockedError, match=f"pid {live.pid} .*alive but does not hold the lock"):
            locks.acquire(tmp_path)
        assert (tmp_path / locks.LOCK_NAME).read_text() == record  # the record is left as it was
    finally:
        live.kill()
        live.wait(timeout=60)
    with pytest.warns(StaleLockWarning, match=f"left by pid {live.pid} "):
        locks.acquire(tmp_path).release()


RECORD = '{{"pid": {}, "host": "{}", "started": "2020-01-01T00:00:00+00:00"}}'


def test_lock_messages_in_full_and_the_check_for_a_live_record_signals_nothing(tmp_path):
    lock_file, host = tmp_path / locks.LOCK_NAME, socket.gethostname()
    hangup_kills = "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_DFL); print('ready', flush=True)"
    live = subprocess.Popen([sys.executable, "-c", hangup_kills + "; time.sleep(60)"], stdout=subprocess.PIPE,
                            text=True)  # any signal but 0 ends it, even under nohup  # fmt: skip
    assert live.stdout.readline().strip() == "ready"
    try:
        lock_file.write_text(RECORD.format(live.pid, host))
        with pytest.raises(FolderLockedError) as error:
            locks.acquire(tmp_path)
        assert str(error.value) == (
            f"{tmp_path} is held by pid {live.pid} on host {host!r} (since 2020-01-01T00:00:00+00:00) (by its record: "
            "that process is alive but does not hold the lock, e.g. a reused process id or another tool); if it does "
            f"not use this folder, delete the lock file; lock file {lock_file}"
        )
        with pytest.raises(subprocess.TimeoutExpired):
            live.wait(timeout=0.2)  # checking whether the recorded process lives sent it no signal
    finally:
        live.kill()
        live.wait(timeout=60)
        live.stdout.close()
    lock_file.write_text(RECORD.format(4242, "elsewhere"))
    with pytest.raises(FolderLockedError) as error:
        locks.acquire(tmp_path)
    assert str(error.value) == (
        f"{tmp_path} is held by pid 4242 on host 'elsewhere' (since 2020-01-01T00:00:00+00:00), another host: if that "
        f"process has ended, delete the lock file; lock file {lock_file}"
    )


def test_a_flock_held_elsewhere_with_an_unreadable_record_is_refused_without_a_holder(tmp_path):
    lock_file = tmp_path / locks.LOCK_NAME
    lock_file.write_text("not a record")
    with open(lock_file, "r+") as other:  # another open file description: its flock conflicts, even in-process
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(FolderLockedError) as error:
            locks.acquire(tmp_path)
    assert error.value.holder is None
    unreadable = "another process (its record is unreadable)"
    assert str(error.value) == f"{tmp_path} is held by {unreadable}; lock file {lock_file}"


def test_own_record_is_taken_back_silently(tmp_path):
    lock_file = tmp_path / locks.LOCK_NAME
    lock_file.write_text(RECORD.format(os.getpid(), socket.gethostname()))  # this process's, not released cleanly
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        locks.acquire(tmp_path).release()


def test_a_stale_lock_is_reported_at_the_caller(tmp_path):
    lock_file, host = tmp_path / locks.LOCK_NAME, socket.gethostname()
    ended = subprocess.Popen(["true"])
    ended.wait(timeout=60)
    lock_file.write_text(RECORD.format(ended.pid, host))
    with pytest.warns(StaleLockWarning) as caught:
        locks.acquire(tmp_path).release()
    assert caught[0].filename == __file__  # the warning points at the code that asked for the lock


def test_a_record_of_a_process_this_user_may_not_signal_counts_as_alive(tmp_path, monkeypatch):
    """The PermissionError branch: another user's process exists (as root, forced with a stand-in ``os.kill``)."""
    real_kill = os.kill

    def kill(pid, signal_number):
        if pid == 4243:
            raise PermissionError(errno.EPERM, "not permitted")
        return real_kill(pid, signal_number)

    monkeypatch.setattr(locks.os, "kill", kill)
    (tmp_path / locks.LOCK_NAME).write_text(RECORD.format(4243, socket.gethostname()))
    with pytest.raises(FolderLockedError, match="pid 4243 .*alive but does not hold the lock"):
        locks.acquire(tmp_path)


def _no_flock(monkeypatch, how):
    """The fallback path: no fcntl module (not POSIX), or a file system whose flock fails with ``how`` (an errno)."""
    if how == "no fcntl":
        monkeypatch.setattr(locks, "fcntl", None)
        return

    def flock(descriptor, operation):
        raise OSError(how, os.strerror(how))

    monkeypatch.setattr(locks.fcntl, "flock", flock)


@pytest.mark.parametrize("how", ["no fcntl", errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS])
def test_without_flock_the_record_alone_guards_the_folder(tmp_path, monkeypatch, how):
    _no_flock(monkeypatch, how)
    lock_file, host = tmp_path / locks.LOCK_NAME, socket.gethostname()
    with locks.acquire(tmp_path):
        assert locks.read_holder(tmp_path).pid == os.getpid()
    assert lock_file.read_text() == ""  # released cleanly
    record = RECORD
    live = subprocess.Popen(["sleep", "60"])
    try:
        lock_file.write_text(record.format(live.pid, host))  # alive: without flock its record is all we know
        with pytest.raises(FolderLockedError) as error:
            locks.acquire(tmp_path)
    finally:
        live.kill()
        live.wait(timeout=60)
    assert str(error.value) == (f"{tmp_path} is held by pid {live.pid} on host {host!r} (since "
                                f"2020-01-01T00:00:00+00:00); lock file {lock_file}")  # fmt: skip
    assert lock_file.read_text() == record.format(live.pid, host)
    ended = subprocess.Popen(["true"])
    ended.wait(timeout=60)
    lock_file.write_text(record.format(ended.pid, host))
    with pytest.warns(StaleLockWarning, match=f"left by pid {ended.pid} "):
        locks.acquire(tmp_path).release()
    lock_file.write_text(record.format(4242, "elsewhere"))
    with pytest.raises(FolderLockedError, match="another host"):
        locks.acquire(tmp_path)


def test_a_flock_error_other_than_no_support_is_raised_not_taken_for_the_fallback(tmp_path, monkeypatch):
    _no_flock(monkeypatch, errno.EIO)
    with pytest.raises(OSError, match=os.strerror(errno.EIO)):
        locks.acquire(tmp_path)
    assert str(tmp_path.resolve() / locks.LOCK_NAME) not in locks._HELD  # nothing registered


# --------------------------------------------------------------------------- damaged checkpoints


def _flip_bytes(step_directory, pattern="d/*"):
    """Invert 8 bytes in the middle of every data file (OCDBT keeps small arrays in the merged top-level tree)."""
    for path in (step_directory / "default").rglob(pattern):
        data = bytearray(path.read_bytes())
        middle = len(data) // 2
        data[middle : middle + 8] = bytes(255 - byte for byte in data[middle : middle + 8])
        path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGES = {
    "array bytes": _flip_bytes,
    "item metadata truncated": lambda step: _truncate(step / "default" / "_METADATA"),
    "step metadata truncated": lambda step: _truncate(step / "_CHECKPOINT_METADATA"),
    "step metadata missing": lambda step: (step / "_CHECKPOINT_METADATA").unlink(),
    "data files missing": lambda step: [path.unlink() for path in (step / "default").rglob("d/*")],
    "manifest missing": lambda step: (step / "default" / "manifest.ocdbt").unlink(),
    "item folder missing": lambda step: shutil.rmtree(step / "default"),
}


def _snapshot(folder):
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _save_steps(directory, steps, keep=5):
    with Checkpointer(directory, save_every=1, keep=keep) as checkpointer:
        for step in steps:
            checkpointer.save(step, state(step, SMALL))


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_newest_checkpoint_falls_back_and_is_kept(tmp_path, damage):
    _save_steps(tmp_path, [1, 2])
    DAMAGES[damage](tmp_path / "latest" / "2")
    damaged = _snapshot(tmp_path / "latest" / "2")
    with Checkpointer(tmp_path, save_every=1, keep=5) as checkpointer:
        with pytest.warns(DamagedCheckpointWarning, match=r"step 2 .* is damaged .*restored step 1 instead"):
            restored = checkpointer.restore_latest(_template(SMALL))
        _assert_bit_exact(restored, state(1, SMALL))
        assert checkpointer.latest_step() == 1
    assert _snapshot(tmp_path / "damaged" / "latest-2") == damaged  # set aside, byte for byte, not deleted


def test_bytes_the_storage_layer_reads_without_error_are_caught_by_the_digest(tmp_path):
    # Orbax/TensorStore checksum their tree nodes but not array chunks: without the digest, this restore returns
    # changed values without any error (seen with orbax-checkpoint 0.12).
    size = 6000
    with Checkpointer(tmp_path, save_every=1, keep=5) as checkpointer:
        for step in (1, 2):
            checkpointer.save(step, state(step, size))
    _flip_bytes(tmp_path / "latest" / "2", pattern="ocdbt.process_0/d/*")
    with Checkpointer(tmp_path, save_every=1, keep=5) as checkpointer:
        with pytest.warns(DamagedCheckpointWarning, match=r"step 2 .*array \['w'\] .*does not match its digest"):
            _assert_bit_exact(checkpointer.restore_latest(_template(size)), state(1, size))


def test_all_checkpoints_damaged_raises_naming_each_step_and_moves_nothing(tmp_path):
    _save_steps(tmp_path, [1, 2])
    _flip_bytes(tmp_path / "latest" / "1")
    _truncate(tmp_path / "latest" / "2" / "default" / "_METADATA")
    before = _snapshot(tmp_path / "latest")
    with Checkpointer(tmp_path, save_every=1, keep=5) as checkpointer:
        with pytest.raises(DamagedCheckpointError, match=r"step 2: JSONDecodeError.*step 1: "):
            checkpointer.restore_latest(_template(SMALL))
    assert _snapshot(tmp_path / "latest") == before and not (tmp_path / "damaged").exists()


def test_damaged_best_checkpoint_is_named(tmp_path):
    with Checkpointer(tmp_path, save_every=1, keep=2, best_metric="val/loss") as checkpointer:
        for step, loss in ((1, 0.5), (2, 0.2)):
            checkpointer.save(step, state(step, SMALL), metrics={"val/loss": loss})
    _flip_bytes(tmp_path / "best" / "2")
    with Checkpointer(tmp_path, save_every=1, keep=2, best_metric="val/loss") as checkpointer:
        with pytest.raises(DamagedCheckpointError, match=r"best checkpoint step 2 in .*best is damaged"):
            checkpointer.restore_best(_template(SMALL))
        with _no_damage_seen():  # the latest steps are separate copies, intact
            _assert_bit_exact(checkpointer.restore_latest(_template(SMALL)), state(2, SMALL))


def test_keep_last_k_never_drops_the_intact_fallback_for_a_damaged_step(tmp_path):
    _save_steps(tmp_path, [1, 2], keep=2)
    _flip_bytes(tmp_path / "latest" / "2")
    with Checkpointer(tmp_path, save_every=1, keep=2) as checkpointer:
        with pytest.warns(DamagedCheckpointWarning, match="step 2"):
            _assert_bit_exact(checkpointer.restore_latest(_template(SMALL)), state(1, SMALL))
        assert checkpointer.save(2, state(2, SMALL))  # the damaged step no longer blocks its own rewrite
        assert checkpointer.save(3, state(3, SMALL))
        checkpointer.wait()
        assert sorted(int(path.name) for path in (tmp_path / "latest").iterdir() if path.name.isdigit()) == [2, 3]
        with _no_damage_seen():
            _assert_bit_exact(checkpointer.restore_latest(_template(SMALL)), state(3, SMALL))
    assert (tmp_path / "damaged" / "latest-2" / "default").is_dir()


def test_fit_resumes_bit_exactly_from_the_newest_intact_checkpoint(tmp_path):
    step = STEP  # compiled once for the training tests

    def fresh(key_seed):
        return init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(key_seed))

    uninterrupted = loop.fit(fresh(3), step, batch_fn, 8, progress=False)
    with Checkpointer(tmp_path, save_every=2, keep=2) as checkpointer:
        loop.fit(fresh(3), step, batch_fn, 6, checkpointer=checkpointer, progress=False)
    _flip_bytes(tmp_path / "latest" / "6")
    requested = []

    def recording(index):
        requested.append(index)
        return batch_fn(index)

    with Checkpointer(tmp_path, save_every=2, keep=2) as checkpointer:
        with pytest.warns(DamagedCheckpointWarning, match="step 6 .*restored step 4"):
            resumed = loop.fit(fresh(99), step, recording, 8, checkpointer=checkpointer, progress=False)
    assert requested == [4, 5, 6, 7]
    for got, want in zip(jax.tree.leaves(to_saveable(resumed)), jax.tree.leaves(to_saveable(uninterrupted))):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


# --------------------------------------------------------------------------- unwritable folders, full disk


def _mount(*arguments):
    return subprocess.run(["mount", *arguments], capture_output=True, timeout=60).returncode == 0


@pytest.fixture
def mounted(tmp_path):
    """Mount points under tmp_path (real tmpfs and read-only binds; skipped without the right to mount)."""
    points = []

    def mount(*arguments, at):
        at.mkdir(parents=True, exist_ok=True)
        if not _mount(*arguments, str(at)):
            pytest.skip("mount is not permitted here (needs root or CAP_SYS_ADMIN)")
        points.append(at)

    yield mount
    for point in reversed(points):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=60)


def test_read_only_folder_is_refused_clearly_and_keeps_its_checkpoints(tmp_path, mounted):
    folder = tmp_path / "checkpoints"
    _save_steps(folder, [1])
    mounted("--bind", str(folder), at=folder)
    if not _mount("-o", "remount,ro,bind", str(folder)):
        pytest.skip("remounting read-only is not permitted here")
    with pytest.raises(OSError, match=r"cannot create the lock file .*writable") as error:
        Checkpointer(folder, save_every=1)
    assert error.value.errno == errno.EROFS
    with pytest.raises(OSError, match="Read-only file system") as error:
        Run("toy", name="a", root=folder)
    assert error.value.errno == errno.EROFS
    _mount("-o", "remount,rw,bind", str(folder))
    with Checkpointer(folder, save_every=1) as checkpointer, _no_damage_seen():
        _assert_bit_exact(checkpointer.restore_latest(_template(SMALL)), state(1, SMALL))


def test_full_disk_fails_the_save_clearly_and_keeps_the_earlier_checkpoint(tmp_path, mounted):
    disk = tmp_path / "disk"
    mounted("-t", "tmpfs", "-o", "size=512k", "tmpfs", at=disk)
    checkpointer = Checkpointer(disk, save_every=1, keep=3)
    try:
        checkpointer.save(1, state(1, SMALL))
        checkpointer.wait()
        with pytest.raises(CheckpointWriteError, match=r"checkpoint step 2 to .*No space left on device"):
            checkpointer.save(2, state(2, LARGE))  # 8 MB on a 512 kB disk
            checkpointer.wait()
    finally:
        checkpointer.close()
    with Checkpointer(disk, save_every=1, keep=3) as reopened, _no_damage_seen():
        assert reopened.latest_step() == 1
        _assert_bit_exact(reopened.restore_latest(_template(SMALL)), state(1, SMALL))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # Orbax's loop, after the error
@pytest.mark.parametrize(
    "operation, error",
    [
        ("write_text", PermissionError(errno.EACCES, "Permission denied")),  # folder made unwritable mid-run
        ("rename", OSError(errno.ENOSPC, "No space left on device")),  # disk full at the last moment
    ],
)
def test_injected_write_errors_keep_the_earlier_checkpoint(tmp_path, monkeypatch, operation, error):
    from orbax.checkpoint._src.path import async_path

    _save_steps(tmp_path, [1])

    async def failing(*args, **kwargs):
        raise error

    with Checkpointer(tmp_path, save_every=1, keep=3) as checkpointer:
        monkeypatch.setattr(async_path, operation, failing)
        with pytest.raises(CheckpointWriteError, match=rf"checkpoint step 2 .*{error.strerror}"):
            checkpointer.save(2, state(2, SMALL))
            checkpointer.wait()
        monkeypatch.undo()
        with _no_damage_seen():
            _assert_bit_exact(checkpointer.restore_latest(_template(SMALL)), state(1, SMALL))
        assert checkpointer.save(2, state(2, SMALL))  # writable again: the step is written
        checkpointer.wait()
        _assert_bit_exact(checkpointer.restore_latest(_template(SMALL)), state(2, SMALL))


# --------------------------------------------------------------------------- an infinite learning rate


def test_infinite_learning_rate_stops_fit_without_saving_a_non_finite_state(tmp_path):
    # Loss and gradients stay finite; the update from step 3 on is not. (A hand-built optimizer: configs refuse inf.)
    optimizer = optax.sgd(lambda count: jnp.where(count < 3, 0.05, jnp.inf))
    step = make_train_step(loss_fn, optimizer)
    initial = init_state(init_params(jax.random.key(0)), optimizer, jax.random.key(3))
    with Checkpointer(tmp_path, save_every=1, keep=10) as checkpointer:
        with pytest.raises(NonFiniteError, match="at step 3 .*last good checkpoint is step 3") as error:
            loop.fit(initial, step, batch_fn, 6, checkpointer=checkpointer, progress=False)
        assert error.value.step == 3 and int(error.value.state.step) == 3
        last_good = to_saveable(error.value.state)
        assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(last_good.params))
        checkpointer.wait()
        assert checkpointer.latest_step() == 3
        template = init_state(init_params(jax.random.key(1)), optimizer, jax.random.key(99))
        restored = to_saveable(checkpointer.restore_latest(template))
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(last_good)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
