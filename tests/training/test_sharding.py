"""Sharded training equals single-device training (4 host devices, in a subprocess); multi-process launch.

The 4-device checks need ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before JAX
starts, so they run this file as a script in a fresh interpreter.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = os.path.join(ROOT, "experiments", "launch_multihost.py")


def _env(devices: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNJAX_")}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    return env


# --------------------------------------------------------------------------- the 4-device worker


def _loss_fn(params, batch, key):
    from rnnjax.core.unroll import rnn

    xs, target = batch
    ys, _ = rnn(_cell(), params["cell"], xs)
    noise = 1e-3 * jax.random.normal(key, target.shape, target.dtype)  # uses the per-step key
    return jnp.mean((ys[:, -1] @ params["readout"] - target - noise) ** 2), {}


def _cell():
    from rnnjax.core.cells import gru

    return gru()


def _init(key):
    k_cell, k_out = jax.random.split(key)
    return {"cell": _cell().init(k_cell, 3, 6, jnp.float64), "readout": jax.random.normal(k_out, (6,), jnp.float64)}


def _batch(step):
    xs = jax.random.normal(jax.random.fold_in(jax.random.key(7), step), (8, 5, 3), jnp.float64)
    return xs, xs.sum(axis=(1, 2))


def _max_difference(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _worker() -> dict:
    import optax

    from rnnjax.training import sharding
    from rnnjax.training.loop import fit, fit_many, init_many
    from rnnjax.training.step import init_state, make_train_step

    assert jax.device_count() == 4, jax.devices()
    optimizer = optax.adam(1e-2)
    mesh = sharding.device_mesh()
    single = fit(init_state(_init(jax.random.key(0)), optimizer, jax.random.key(1)),
                 make_train_step(_loss_fn, optimizer), _batch, 4, progress=False)  # fmt: skip
    state = sharding.replicate(init_state(_init(jax.random.key(0)), optimizer, jax.random.key(1)), mesh)
    step = sharding.data_parallel(make_train_step(_loss_fn, optimizer), mesh)
    sharded = fit(state, step, sharding.shard_batches(_batch, mesh), 4, progress=False)

    keys = jax.random.split(jax.random.key(3), 8)
    runs_mesh = sharding.device_mesh((sharding.MODELS,))
    many, _ = fit_many(_loss_fn, optimizer, init_many(_init, optimizer, keys), _batch, 3, progress=False)
    spread = sharding.shard_runs(init_many(_init, optimizer, keys), runs_mesh)
    many_sharded, _ = fit_many(_loss_fn, optimizer, spread, _batch, 3, progress=False)
    kernel = many_sharded.params["cell"]["recurrent_kernel"]
    return {
        "data_parallel_difference": _max_difference(single.params, sharded.params),
        "data_parallel_moved": _max_difference(single.params, _init(jax.random.key(0))),
        "batch_devices": len(sharding.shard_batch(_batch(0), mesh)[0].sharding.device_set),
        "params_replicated": sharded.params["readout"].sharding.is_fully_replicated,
        "fit_many_difference": _max_difference(many.params, many_sharded.params),
        "runs_devices": len(kernel.sharding.device_set),
        "runs_shard_shape": list(kernel.addressable_shards[0].data.shape),
    }


@pytest.fixture(scope="module")
def worker_result():
    command = [sys.executable, __file__, "worker"]
    done = subprocess.run(command, env=_env(4), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_data_parallel_equals_single_device(worker_result):
    assert worker_result["batch_devices"] == 4
    assert worker_result["params_replicated"]
    assert worker_result["data_parallel_moved"] > 1e-3  # training changed the params
    assert worker_result["data_parallel_difference"] < 1e-12


def test_fit_many_runs_spread_over_devices(worker_result):
    assert worker_result["runs_devices"] == 4
    assert worker_result["runs_shard_shape"] == [2, 6, 18]  # 8 runs / 4 devices
    assert worker_result["fit_many_difference"] < 1e-12


# --------------------------------------------------------------------------- in-process checks


def test_rejects_indivisible_batch_and_bad_mesh():
    from rnnjax.training import sharding

    mesh = sharding.device_mesh(devices=[jax.devices()[0]] * 1)
    values = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(sharding.shard_batch(values, mesh), values)  # one device: any batch size
    with pytest.raises(ValueError, match="shape must have one entry per axis"):
        sharding.device_mesh(("data",), shape=(2,), devices=jax.devices()[:1])
    with pytest.raises(ValueError, match="axis must be one of the mesh axes"):
        sharding.shard_batch(np.zeros((4, 2)), mesh, axis="models")
    with pytest.raises(ValueError, match=r"leaf \[1\] has shape \[\]"):
        sharding.shard_batch((np.zeros(2), np.float32(1.0)), mesh)
    with pytest.raises(ValueError, match="coordinator_address"):
        sharding.initialize_distributed(None, 2, 0)


# --------------------------------------------------------------------------- two processes on localhost


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_process_data_parallel_matches_one_process():
    """Two CPU processes (gloo collectives over 127.0.0.1) train like one process on the whole batch."""
    address = f"127.0.0.1:{_free_port()}"
    common = [sys.executable, LAUNCHER, "--steps", "3", "--global-batch", "8"]
    runs = [
        subprocess.Popen(common + ["--num-processes", "1"], env=_env(1), stdout=subprocess.PIPE, text=True, cwd=ROOT)
    ]
    for index in range(2):
        args = ["--coordinator", address, "--num-processes", "2", "--process-id", str(index)]
        runs.append(subprocess.Popen(common + args, env=_env(1), stdout=subprocess.PIPE, text=True, cwd=ROOT))
    try:
        outputs = [run.communicate(timeout=180)[0] for run in runs]
    finally:
        for run in runs:
            run.kill()
    assert all(run.returncode == 0 for run in runs), outputs
    reference, first, second = (json.loads(out.strip().splitlines()[-1]) for out in outputs)
    assert (first["processes"], first["devices"], second["process"]) == (2, 2, 1)
    assert first["losses"] == second["losses"] and first["checksum"] == second["checksum"]
    np.testing.assert_allclose(first["losses"], reference["losses"], rtol=1e-5)
    np.testing.assert_allclose(first["checksum"], reference["checksum"], rtol=1e-5)


if __name__ == "__main__" and sys.argv[1:] == ["worker"]:
    jax.config.update("jax_enable_x64", True)
    print(json.dumps(_worker()))
