"""Data-parallel training across processes (hosts) with jax.distributed: a small LSTM regression.

Run one copy per process, e.g. two processes on one machine:

    python experiments/launch_multihost.py --coordinator 127.0.0.1:12355 --num-processes 2 --process-id 0 &
    python experiments/launch_multihost.py --coordinator 127.0.0.1:12355 --num-processes 2 --process-id 1

Arguments fall back to RNNJAX_COORDINATOR / RNNJAX_NUM_PROCESSES / RNNJAX_PROCESS_ID.
Each process feeds its own slice of the global batch; params are replicated and
every process prints the same final losses and parameter checksum (JSON, one line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from rnnjax.core.cells import lstm  # noqa: E402
from rnnjax.core.unroll import rnn  # noqa: E402
from rnnjax.training.sharding import data_parallel, device_mesh, global_batch, initialize_distributed, replicate  # noqa: E402
from rnnjax.training.step import init_state, make_train_step

CELL = lstm()


def loss_fn(params, batch, key):
    """Mean squared error of a readout of the last LSTM output against the running sum."""
    xs, target = batch
    ys, _ = rnn(CELL, params["cell"], xs)
    return jnp.mean((ys[:, -1] @ params["readout"] - target) ** 2), {}


def make_global_batch(step: int, global_size: int, time_steps: int = 12):
    """The full batch of one step, the same in every process (seeded by the step)."""
    rng = np.random.default_rng(step)
    xs = rng.standard_normal((global_size, time_steps, 2)).astype(np.float32)
    return xs, xs.sum(axis=(1, 2)).astype(np.float32)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coordinator", default=None, help="host:port of process 0")
    parser.add_argument("--num-processes", default=None)
    parser.add_argument("--process-id", type=int, default=None)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--global-batch", type=int, default=16)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    mesh = device_mesh()  # every device of every process on the "data" axis
    index, count = jax.process_index(), jax.process_count()
    local = args.global_batch // count
    optimizer = optax.adam(1e-2)
    k_cell, k_out = jax.random.split(jax.random.key(0))
    params = {"cell": CELL.init(k_cell, 2, 8), "readout": 0.1 * jax.random.normal(k_out, (8,))}
    state = replicate(init_state(params, optimizer, jax.random.key(1)), mesh)
    step = data_parallel(make_train_step(loss_fn, optimizer), mesh)
    losses = []
    for number in range(args.steps):
        xs, target = make_global_batch(number, args.global_batch)
        mine = (xs[index * local : (index + 1) * local], target[index * local : (index + 1) * local])
        state, metrics = step(state, global_batch(mine, mesh))
        losses.append(float(metrics["loss"]))
    checksum = float(sum(jnp.sum(jnp.abs(leaf)) for leaf in jax.tree.leaves(state.params)))
    result = {"process": index, "processes": count, "devices": len(jax.devices())}
    result.update(losses=losses, checksum=checksum)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
