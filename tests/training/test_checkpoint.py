"""Checkpoints: round trip with typed keys, exact resume, keep-last-k and best, interrupted saves."""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import OPTIMIZER, STEP, batch_fn, init_params

from rnnjax.training import locks, loop
from rnnjax.training.checkpoint import (
    Checkpointer,
    NonFiniteStateError,
    TemplateMismatchError,
    from_saveable,
    to_saveable,
)
from rnnjax.training.locks import StaleLockWarning
from rnnjax.training.step import init_state


def _fresh_state(key_seed=3):
    return init_state(init_params(jax.random.key(0)), OPTIMIZER, jax.random.key(key_seed))


def _key_data(key):
    return np.asarray(jax.random.key_data(key))


def _assert_identical(a, b):
    leaves_a, tree_a = jax.tree.flatten(to_saveable(a))
    leaves_b, tree_b = jax.tree.flatten(to_saveable(b))
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_keeps_values_dtypes_and_typed_keys(tmp_path):
    state = _fresh_state(key_seed=11)._replace(step=jnp.int32(7))
    template = _fresh_state(key_seed=3)  # another key: a key left at the template's value would show
    assert not np.array_equal(_key_data(template.key), _key_data(state.key))
    with Checkpointer(tmp_path, save_every=1, keep=1) as checkpointer:
        assert checkpointer.restore_latest(state) is None
        assert checkpointer.save(7, state)
        restored = checkpointer.restore_latest(template)
    _assert_identical(restored, state)
    np.testing.assert_array_equal(_key_data(restored.key), _key_data(state.key))
    assert jnp.issubdtype(restored.key.dtype, jax.dtypes.prng_key)
    assert int(restored.step) == 7
    np.testing.assert_array_equal(jax.random.normal(restored.key, (3,)), jax.random.normal(state.key, (3,)))
    unsaved = to_saveable(state)
    assert unsaved.key.dtype == jnp.uint32
    _assert_identical(from_saveable(unsaved, state), state)


def test_exact_resume_is_bit_for_bit(tmp_path):
    step = STEP
    uninterrupted = loop.fit(_fresh_state(), step, batch_fn, 8, progress=False)

    def interrupted_batches(index):
        if index == 6:
            raise KeyboardInterrupt  # the process dies between checkpoints
        return batch_fn(index)

    checkpointer = Checkpointer(tmp_path, save_every=4, keep=2)
    with pytest.raises(KeyboardInterrupt):
        loop.fit(_fresh_state(), step, interrupted_batches, 8, checkpointer=checkpointer, progress=False)
    checkpointer.close()
    requested = []

    def recording_batches(index):
        requested.append(index)
        return batch_fn(index)

    template = _fresh_state(key_seed=99)  # only the checkpoint's key (seed 3) gives the uninterrupted run
    with Checkpointer(tmp_path, save_every=4, keep=2) as checkpointer:
        resumed = loop.fit(template, step, recording_batches, 8, checkpointer=checkpointer, progress=False)
    assert requested == [4, 5, 6, 7]  # continued from the checkpoint at step 4
    _assert_identical(resumed, uninterrupted)
    np.testing.assert_array_equal(_key_data(resumed.key), _key_data(jax.random.key(3)))


def test_keeps_last_k_and_best_by_metric(tmp_path):
    state = _fresh_state()
    losses = {2: 0.5, 4: 0.2, 6: 0.4, 8: 0.3}
    with Checkpointer(tmp_path, save_every=2, keep=2, best_metric="val/loss") as checkpointer:
        for step, loss in losses.items():
            marked = state._replace(step=jnp.int32(step))
            checkpointer.save(step, marked, metrics={"val/loss": loss})
        assert not checkpointer.save(3, state)  # not on the interval
        checkpointer.wait()
        assert sorted(int(p.name) for p in (tmp_path / "latest").iterdir() if p.name.isdigit()) == [6, 8]
        assert checkpointer.latest_step() == 8
        assert checkpointer.best_step() == 4
        assert int(checkpointer.restore_best(state).step) == 4
    with pytest.raises(ValueError, match="save_every"):
        Checkpointer(tmp_path / "x", save_every=0)


def test_best_mode_max_keeps_the_largest_metric(tmp_path):
    state = _fresh_state()
    with Checkpointer(tmp_path, save_every=1, keep=1, best_metric="val/accuracy", best_mode="max") as checkpointer:
        for step, accuracy in {1: 0.5, 2: 0.9, 3: 0.7}.items():
            checkpointer.save(step, state._replace(step=jnp.int32(step)), metrics={"val/accuracy": accuracy})
        checkpointer.wait()
        assert checkpointer.best_step() == 2
        assert int(checkpointer.restore_best(state).step) == 2

KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import jax, jax.numpy as jnp
    from rnnjax.training.checkpoint import Checkpointer
    checkpointer = Checkpointer(sys.argv[1], save_every=1, keep=5)
    checkpointer.save(1, {"w": jnp.full((1000,), 1.0), "key": jax.random.key(1)})
    checkpointer.wait()
    big = {"w": jnp.full((4_000_000,), 2.0), "key": jax.random.key(2)}
    checkpointer.save(2, big)  # asynchronous: the write is still in flight
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_process_killed_during_save_leaves_previous_checkpoint(tmp_path):
    directory = tmp_path / "ckpt"
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(directory)], env=env, timeout=240)
    assert result.returncode == -signal.SIGKILL
    holder = locks.read_holder(directory)  # the killed writer's record, left in the lock file
    assert holder is not None and holder.pid not in (os.getpid(), None)
    with pytest.warns(StaleLockWarning, match=f"pid {holder.pid} "):
        checkpointer = Checkpointer(directory, save_every=1, keep=5)  # the dead writer's lock is taken over
    with checkpointer:
        latest = checkpointer.latest_step()
        assert latest in (1, 2)
        size = 1000 if latest == 1 else 4_000_000
        template = {"w": jnp.zeros((size,)), "key": jax.random.key(0)}
        restored = checkpointer.restore_latest(template)
        np.testing.assert_array_equal(restored["w"], np.full((size,), float(latest)))
        np.testing.assert_array_equal(jax.random.key_data(restored["key"]), jax.random.key_data(jax.random.key(latest)))


def test_partial_temporary_checkpoint_is_ignored(tmp_path):
    state = _fresh_state()
    with Checkpointer(tmp_path, save_every=1, keep=3) as checkpointer:
        checkpointer.save(1, state._replace(step=jnp.int32(1)))
    partial = tmp_path / "latest" / "2.orbax-checkpoint-tmp"  # as left by a SIGKILL mid-save
    (partial / "default").mkdir(parents=True)
    (partial / "default" / "_METADATA").write_text('{"tree_metadata": {')  # truncated mid-write
    with Checkpointer(tmp_path, save_every=1, keep=3) as checkpointer:
        assert checkpointer.latest_step() == 1
        assert int(checkpointer.restore_latest(state).step) == 1
        checkpointer.save(2, state._replace(step=jnp.int32(2)))  # the step can be written again
        checkpointer.wait()
        assert int(checkpointer.restore_latest(state).step) == 2


def test_save_refuses_non_finite_state_and_writes_nothing(tmp_path):
    state = _fresh_state()
    broken = state._replace(params={**state.params, "head": state.params["head"].at[1].set(jnp.inf)})
    with Checkpointer(tmp_path, save_every=1, keep=2, best_metric="val/loss") as checkpointer:
        with pytest.raises(NonFiniteStateError, match=r"step 3 .*\['head'\] \(1 of 4\)"):
            checkpointer.save(3, broken, metrics={"val/loss": 0.1})
        checkpointer.wait()
        assert checkpointer.latest_step() is None and checkpointer.best_step() is None
        assert checkpointer.save(4, state)  # a finite state is still saved


@pytest.mark.parametrize("mode, values, best", [("min", (0.5, float("nan"), 0.7), 1),
                                                ("max", (0.5, float("inf"), 0.7), 3),
                                                ("min", (float("nan"), 0.9, float("-inf")), 2)])  # fmt: skip
def test_a_non_finite_metric_never_displaces_the_best_checkpoint(tmp_path, mode, values, best):
    state = _fresh_state()
    with Checkpointer(tmp_path, save_every=1, keep=5, best_metric="val/loss", best_mode=mode) as checkpointer:
        for step, value in enumerate(values, start=1):
            checkpointer.save(step, state._replace(step=jnp.int32(step)), metrics={"val/loss": value})
        checkpointer.wait()
        assert checkpointer.best_step() == best
        assert int(checkpointer.restore_best(state).step) == best
        assert checkpointer.latest_step() == len(values)  # the latest checkpoints keep every step


def test_a_template_of_another_shape_is_refused_and_nothing_is_moved(tmp_path):
    saved = {"w": jnp.arange(6.0), "b": jnp.zeros(2)}
    with Checkpointer(tmp_path, save_every=1) as checkpointer:
        checkpointer.save(1, saved)
        checkpointer.save(2, saved)
        checkpointer.wait()
        before = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
        wrong_shape = {"w": jnp.zeros(4), "b": jnp.zeros(2)}
        with pytest.raises(TemplateMismatchError, match=r"\['w'\]: saved \[6\], template \[4\]"):
            checkpointer.restore_latest(wrong_shape)
        with pytest.raises(TemplateMismatchError, match=r"\['extra'\]: in the template, not saved"):
            checkpointer.restore_latest({**saved, "extra": jnp.zeros(1)})
        with pytest.raises(TemplateMismatchError, match=r"\['b'\]: saved, not in the template"):
            checkpointer.restore_latest({"w": jnp.zeros(6)})
        assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")) == before
        assert checkpointer.latest_step() == 2 and not (tmp_path / "damaged").exists()
        np.testing.assert_array_equal(checkpointer.restore_latest(saved)["w"], saved["w"])


def test_fit_refuses_num_steps_below_the_checkpoint_it_resumes(tmp_path):
    with Checkpointer(tmp_path, save_every=2) as checkpointer:
        state = loop.fit(_fresh_state(), STEP, batch_fn, 6, checkpointer=checkpointer, progress=False)
        assert int(state.step) == 6
        with pytest.raises(ValueError, match=r"at least the checkpoint's step 6; got num_steps=4"):
            loop.fit(_fresh_state(), STEP, batch_fn, 4, checkpointer=checkpointer, progress=False)
        again = loop.fit(_fresh_state(), STEP, batch_fn, 6, checkpointer=checkpointer, progress=False)
        assert int(again.step) == 6  # equal: nothing to do, the checkpoint comes back
