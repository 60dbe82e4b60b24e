"""Competitors for the RNN benchmark: each builder returns a :class:`Bench` for one shape.

Every competitor computes the same thing on the same random data: a single-layer
LSTM or GRU over ``[batch, time, input]`` float32 inputs; "forward" returns the
outputs, "train" the gradients of ``mean(ys ** 2)`` with respect to the weights.
A builder that cannot run (missing package, no GPU kernel) raises; the runner
reports the error instead of crashing.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Shape:
    """A benchmark configuration: cell kind ("lstm"/"gru") and sizes."""

    name: str
    cell: str
    batch: int
    time: int
    input: int
    hidden: int

    def lstm_forward_flops(self) -> float:
        """Matrix-product flops of one LSTM/GRU forward pass: 2 B T (I + H) G H."""
        gates = 4 if self.cell == "lstm" else 3
        return 2.0 * self.batch * self.time * (self.input + self.hidden) * gates * self.hidden


class Bench(NamedTuple):
    """Callables that run one forward / one training step and block until done; memory in bytes."""

    forward: Callable[[], Any]
    train: Callable[[], Any]
    memory: dict[str, int | None]


def _data(shape: Shape) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((shape.batch, shape.time, shape.input)).astype(np.float32)


# --------------------------------------------------------------------------- JAX helpers


def _jax_memory(compiled) -> int | None:
    """Peak-memory estimate of a compiled JAX program: arguments + outputs + temporaries."""
    try:
        stats = compiled.memory_analysis()
        return int(stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None


def _jax_bench(apply: Callable[[Any, jax.Array], jax.Array], params: Any, xs: jax.Array) -> Bench:
    """Bench from ``apply(params, xs) -> ys`` (batch-major); loss = mean(ys ** 2)."""

    def loss(p, x):
        return jnp.mean(apply(p, x) ** 2)

    forward = jax.jit(apply).lower(params, xs).compile()
    train = jax.jit(jax.grad(loss)).lower(params, xs).compile()
    memory = {"forward": _jax_memory(forward), "train": _jax_memory(train)}
    return Bench(
        lambda: jax.block_until_ready(forward(params, xs)),
        lambda: jax.block_until_ready(train(params, xs)),
        memory,
    )


def _rnnjax_cell(shape: Shape):
    from rnnjax.core.cells import gru, lstm

    return lstm() if shape.cell == "lstm" else gru()


def rnnjax_scan(shape: Shape, unroll: int = 1, precision: str | None = None, hoist: bool | None = None) -> Bench:
    """rnnjax.core.unroll.rnn: lax.scan over time, vmapped cell; ``hoist`` forces the input projection
    out of the loop (True) or into it (False) instead of rnn's per-backend default."""
    from rnnjax.core import unroll as unroll_module

    cell = _rnnjax_cell(shape)
    params = cell.init(jax.random.key(0), shape.input, shape.hidden)

    def apply(p, x):
        with jax.default_matmul_precision(precision) if precision else _null():
            return unroll_module.rnn(cell, p, x, unroll=unroll, hoist_projection=hoist)[0]

    return _jax_bench(apply, params, jnp.asarray(_data(shape)))


def rnnjax_manual_vjp(shape: Shape, unroll: int = 1) -> Bench:
    """rnnjax.core.bptt.rnn_manual_vjp: same forward, hand-written backward (weight grads as big matmuls)."""
    from rnnjax.core.bptt import rnn_manual_vjp

    cell = _rnnjax_cell(shape)
    params = cell.init(jax.random.key(0), shape.input, shape.hidden)
    return _jax_bench(lambda p, x: rnn_manual_vjp(cell, p, x, unroll=unroll)[0], params, jnp.asarray(_data(shape)))


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def flax_linen(shape: Shape) -> Bench:
    """flax.linen.RNN over OptimizedLSTMCell / GRUCell."""
    import flax.linen as nn

    cell = nn.OptimizedLSTMCell(shape.hidden) if shape.cell == "lstm" else nn.GRUCell(shape.hidden)
    model = nn.RNN(cell)
    xs = jnp.asarray(_data(shape))
    params = model.init(jax.random.key(0), xs)
    return _jax_bench(model.apply, params, xs)


def equinox_scan(shape: Shape) -> Bench:
    """Equinox LSTMCell / GRUCell, lax.scan over time, vmap over the batch."""
    import equinox as eqx

    key = jax.random.key(0)
    if shape.cell == "lstm":
        module = eqx.nn.LSTMCell(shape.input, shape.hidden, key=key)
    else:
        module = eqx.nn.GRUCell(shape.input, shape.hidden, key=key)
    params, static = eqx.partition(module, eqx.is_array)
    zeros = jnp.zeros((shape.hidden,), jnp.float32)
    carry0 = (zeros, zeros) if shape.cell == "lstm" else zeros

    def one_sequence(cell, xs):  # vmapped over the batch
        def step(carry, x):
            carry = cell(x, carry)
            return carry, carry[0] if shape.cell == "lstm" else carry

        return jax.lax.scan(step, carry0, xs)[1]

    def apply(p, xs):
        return jax.vmap(functools.partial(one_sequence, eqx.combine(p, static)))(xs)

    return _jax_bench(apply, params, jnp.asarray(_data(shape)))


def jax_cudnn(shape: Shape) -> Bench:
    """jax.experimental.rnn.lstm (cuDNN; GPU only)."""
    if shape.cell != "lstm":
        raise NotImplementedError("jax.experimental.rnn only provides an LSTM")
    from jax.experimental import rnn as jrnn

    weights = jrnn.init_lstm_weight(jax.random.key(0), shape.input, shape.hidden, 1, False)
    lengths = jnp.full((shape.batch,), shape.time, jnp.int32)
    h0 = jnp.zeros((1, shape.batch, shape.hidden), jnp.float32)

    def apply(w, xs):
        return jrnn.lstm(xs, h0, h0, w, lengths, shape.input, shape.hidden, 1, 0.0, False)[0]

    return _jax_bench(apply, weights, jnp.asarray(_data(shape)))


# --------------------------------------------------------------------------- PyTorch


def _torch_saved_bytes(torch, module, xs) -> int:
    """Bytes of tensors autograd saves for the backward pass, plus the output (CPU memory proxy)."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out, _ = module(xs)
    return total + out.numel() * out.element_size()


def torch_rnn(shape: Shape, device: str = "cpu") -> Bench:
    """torch.nn.LSTM / GRU (cuDNN on CUDA), batch_first, same loss."""
    import torch

    torch.manual_seed(0)
    layer = torch.nn.LSTM if shape.cell == "lstm" else torch.nn.GRU
    module = layer(shape.input, shape.hidden, batch_first=True).to(device)
    xs = torch.from_numpy(_data(shape)).to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            out, _ = module(xs)
        sync()
        return out

    def train():
        module.zero_grad(set_to_none=True)
        out, _ = module(xs)
        (out**2).mean().backward()
        sync()

    memory = {"forward": None, "train": None}
    if device == "cuda":
        for mode, run in (("forward", forward), ("train", train)):
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            run()
            memory[mode] = int(torch.cuda.max_memory_allocated() - base)
    else:
        memory["train"] = _torch_saved_bytes(torch, module, xs)
    return Bench(forward, train, memory)


# --------------------------------------------------------------------------- registry


def competitors(device: str, quick: bool) -> dict[str, Callable[[Shape], Bench]]:
    """Name -> builder. rnnjax levers are separate entries so the table measures each of them."""
    # the non-default placement of the input projection (rnn hoists it out of the loop except on CPU)
    other_placement = "rnnjax_in_loop" if device == "gpu" else "rnnjax_hoisted"
    table: dict[str, Callable[[Shape], Bench]] = {
        "rnnjax": rnnjax_scan,
        "rnnjax_unroll4": functools.partial(rnnjax_scan, unroll=4),
        other_placement: functools.partial(rnnjax_scan, hoist=device == "cpu"),
        "rnnjax_manual_vjp": rnnjax_manual_vjp,
        "flax": flax_linen,
        "equinox": equinox_scan,
        "torch": functools.partial(torch_rnn, device="cuda" if device == "gpu" else "cpu"),
    }
    if not quick:
        table["rnnjax_unroll16"] = functools.partial(rnnjax_scan, unroll=16)
        table["rnnjax_manual_vjp_unroll4"] = functools.partial(rnnjax_manual_vjp, unroll=4)
    if device == "gpu":
        table["rnnjax_highest"] = functools.partial(rnnjax_scan, precision="highest")
        table["jax_cudnn"] = jax_cudnn
    return table
