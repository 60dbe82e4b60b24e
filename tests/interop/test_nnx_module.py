"""RNNLayer inside an NNX model trains (nnx.Optimizer) to the same params as the pure-function path
(plain optax on the params pytree), float64, 1e-9; rnnjax's features (padding, manual BPTT, resets) on."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from rnnjax.core.cells import gru, lstm
from rnnjax.core.unroll import RNN
from rnnjax.interop import RNNLayer, from_torch

TOLERANCE = 1e-9
INPUT, HIDDEN, BATCH, TIME, STEPS = 3, 4, 5, 7, 4


def make_batch(seed):
    generator = np.random.default_rng(seed)
    xs = jnp.asarray(generator.normal(size=(BATCH, TIME, INPUT)))
    lengths = jnp.asarray(generator.integers(1, TIME + 1, size=BATCH))
    reset = jnp.asarray(generator.random((BATCH, TIME)) < 0.2)
    targets = jnp.asarray(generator.normal(size=(BATCH,)))
    return xs, lengths, reset, targets


def pooled_prediction(network, rnn_params, head_kernel, head_bias, xs, lengths, reset):
    """The shared model maths: mean of the valid outputs, then a linear head."""
    options = {"lengths": lengths} if reset is None else {"lengths": lengths, "reset": reset}
    ys, _ = network.apply(rnn_params, xs, **options)
    pooled = ys.sum(1) / lengths[:, None]
    return (pooled @ head_kernel + head_bias)[:, 0]


class Model(nnx.Module):
    def __init__(self, network, rngs):
        self.rnn = RNNLayer(network, INPUT, rngs=rngs, dtype=jnp.float64)
        self.head = nnx.Linear(network.output_size(self.rnn.values()), 1, param_dtype=jnp.float64, rngs=rngs)

    def __call__(self, xs, lengths, reset):
        options = {"lengths": lengths} if reset is None else {"lengths": lengths, "reset": reset}
        ys, _ = self.rnn(xs, **options)
        return self.head(ys.sum(1) / lengths[:, None])[:, 0]


def nnx_loss(model, xs, lengths, reset, targets):
    return jnp.mean((model(xs, lengths, reset) - targets) ** 2)


@nnx.jit
def nnx_step(model, optimizer, xs, lengths, reset, targets):
    loss, grads = nnx.value_and_grad(nnx_loss)(model, xs, lengths, reset, targets)
    optimizer.update(model, grads)
    return loss


@pytest.mark.parametrize(
    "network, use_reset",
    [(RNN(lstm(), HIDDEN, num_layers=2, bidirectional=True, backward="manual"), False),
     (RNN(gru(), HIDDEN, learn_initial_carry=True), True)],
    ids=["bilstm_manual_bptt_padded", "gru_resets_learned_carry"],
)  # fmt: skip
def test_nnx_model_trains_like_the_pure_function_path(network, use_reset):
    model = Model(network, nnx.Rngs(0))
    params = {"rnn": model.rnn.values(), "kernel": model.head.kernel[...], "bias": model.head.bias[...]}
    transformation = optax.adam(0.05)
    optimizer = nnx.Optimizer(model, transformation, wrt=nnx.Param)
    opt_state = transformation.init(params)

    def pure_loss(params, xs, lengths, reset, targets):
        predictions = pooled_prediction(network, params["rnn"], params["kernel"], params["bias"], xs, lengths, reset)
        return jnp.mean((predictions - targets) ** 2)

    @jax.jit
    def pure_step(params, opt_state, xs, lengths, reset, targets):
        loss, grads = jax.value_and_grad(pure_loss)(params, xs, lengths, reset, targets)
        updates, opt_state = transformation.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    for step in range(STEPS):
        xs, lengths, reset, targets = make_batch(step)
        reset = reset if use_reset else None
        nnx_value = nnx_step(model, optimizer, xs, lengths, reset, targets)
        params, opt_state, pure_value = pure_step(params, opt_state, xs, lengths, reset, targets)
        assert abs(float(nnx_value) - float(pure_value)) <= TOLERANCE
    trained = {"rnn": model.rnn.values(), "kernel": model.head.kernel[...], "bias": model.head.bias[...]}
    assert max_difference(trained, params) <= TOLERANCE
    initial = Model(network, nnx.Rngs(0))
    assert max_difference(trained["rnn"], initial.rnn.values()) > 1e-3  # training moved the rnnjax params


def max_difference(a, b):
    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(jnp.max(jnp.abs(x - y))), a, b)))


def test_params_are_nnx_params_and_imported_weights_fit():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.GRU(INPUT, HIDDEN, num_layers=2, batch_first=True).double()
    net, params = from_torch(module)
    layer = RNNLayer(net.network, params=params)
    state = nnx.state(layer, nnx.Param)
    assert len(jax.tree.leaves(state)) == len(jax.tree.leaves(params)) == 8
    xs, lengths, _, _ = make_batch(9)
    ys, _ = layer(xs, lengths=lengths)
    expected, _ = net(params, xs, lengths)
    assert float(jnp.max(jnp.abs(ys - expected))) == 0.0  # the same params, the same network
    with pytest.raises(ValueError, match="rngs: expected nnx.Rngs"):
        RNNLayer(net.network, INPUT)
    with pytest.raises(TypeError, match="network: expected an rnnjax.core.unroll.RNN; got GRU"):
        RNNLayer(module, INPUT, rngs=nnx.Rngs(0))
