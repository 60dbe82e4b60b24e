"""Image captioning: a small Flax CNN makes a "semantic vector" that starts an RNN decoder.

API (images float ``[batch, height, width, channels]``):
    cnn = ConvEncoder(channels=(16, 32), output_size=64)
    model = Captioner(cnn, Decoder(gru(), vocab_size=12, hidden_size=64, embed_size=16, init_size=64))
    params = model.init(key, image_shape=(28, 28, 1))      # {"cnn": ..., "decoder": ...}
    vectors = model.encode(params, images)                   # [batch, 64] semantic vectors
    loss = model.loss(params, images, captions, lengths)     # one pytree: CNN and RNN train jointly
    out = model.greedy(params, images, max_length=8)         # or sample / beam_search

``optax`` sees a single params pytree, so one optimizer updates the CNN and the
decoder together; gradients flow from the caption loss into the convolutions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp

try:  # flax is the optional extra rnnjax[vision]: the encoder below subclasses flax.linen.Module
    import flax.linen as nn
except ModuleNotFoundError as error:
    raise ImportError("rnnjax.tasks.vision needs flax; install it with pip install 'rnnjax[vision]'") from error

from rnnjax.checks import arguments
from rnnjax.tasks import decode
from rnnjax.tasks.losses import float_array
from rnnjax.tasks.seq2seq import Attention, Decoder


class ConvEncoder(nn.Module):
    """[conv3x3 -> relu -> maxpool2] per entry of ``channels``, global mean pool, dense -> vector."""

    channels: Sequence[int] = (16, 32)
    output_size: int = 64

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x = images
        for width in self.channels:
            x = nn.relu(nn.Conv(width, (3, 3), padding="SAME")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
        x = x.mean(axis=(-3, -2))
        return nn.Dense(self.output_size)(x)


@dataclasses.dataclass(frozen=True)
class Captioner:
    """caption ~ Decoder(carry_0 = tanh(W cnn(image) + b)).

    Attributes:
      cnn: a Flax module mapping ``[batch, H, W, C]`` images to ``[batch, features]``
        (e.g. :class:`ConvEncoder`).
      decoder: a :class:`~rnnjax.tasks.seq2seq.Decoder` with ``init_size`` equal to the
        CNN's output size and no attention.
    """

    cnn: nn.Module
    decoder: Decoder

    def __post_init__(self):
        if not isinstance(self.cnn, nn.Module):
            raise TypeError(f"cnn must be a Flax linen Module; got {type(self.cnn).__name__}")
        if not isinstance(self.decoder, Decoder):
            raise TypeError(f"decoder must be a Decoder; got {type(self.decoder).__name__}")
        if self.decoder.init_size is None:
            raise ValueError("decoder.init_size must be set to the CNN's output size; got None")
        if self.decoder.attention is not Attention.NONE:
            raise ValueError(f"decoder.attention must be 'none' for captioning; got {self.decoder.attention.value!r}")
        output_size = getattr(self.cnn, "output_size", None)
        if output_size is not None and output_size != self.decoder.init_size:
            raise ValueError(
                f"decoder.init_size: expected {output_size} (cnn.output_size); got {self.decoder.init_size}"
            )

    def init(self, key: jax.Array, image_shape: tuple[int, ...], dtype: Any = jnp.float32) -> dict[str, Any]:
        """Params for images of shape ``image_shape`` = (height, width, channels)."""
        if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 3:
            raise ValueError(f"image_shape must be (height, width, channels); got {image_shape!r}")
        for axis, size in zip(("height", "width", "channels"), image_shape):
            arguments.positive_int(f"image_shape {axis}", size)
        k_cnn, k_decoder = jax.random.split(key)
        cnn_params = self.cnn.init(k_cnn, jnp.zeros((1, *image_shape), dtype))["params"]
        cnn_params = jax.tree.map(lambda leaf: leaf.astype(dtype), cnn_params)
        features = jax.eval_shape(lambda: self.cnn.apply({"params": cnn_params}, jnp.zeros((1, *image_shape), dtype)))
        if features.shape[-1] != self.decoder.init_size:
            raise ValueError(
                f"decoder.init_size: expected {features.shape[-1]} (the CNN's output size); "
                f"got {self.decoder.init_size}"
            )
        return {"cnn": cnn_params, "decoder": self.decoder.init(k_decoder, dtype=dtype)}

    def encode(self, params: dict[str, Any], images: jax.Array) -> jax.Array:
        """The semantic vectors [batch, features]."""
        images = float_array("images", images)
        if images.ndim != 4:
            raise ValueError(
                f"images must have shape [batch, height, width, channels]; got {arguments.shape_str(images.shape)}"
            )
        if not isinstance(params, dict) or "cnn" not in params or "decoder" not in params:
            raise ValueError("params must hold keys ['cnn', 'decoder'] (from Captioner.init)")
        return self.cnn.apply({"params": params["cnn"]}, images)

    def initial_carry(self, params: dict[str, Any], images: jax.Array) -> Any:
        return self.decoder.carry_from_vector(params["decoder"], self.encode(params, images))

    def loss(self, params, images, captions, lengths, *, label_smoothing=0.0) -> jax.Array:
        """Teacher-forced caption cross-entropy (captions end with ``end_id``; lengths include it)."""
        self.decoder.check_targets(captions, lengths)  # fail before running the CNN
        carry = self.initial_carry(params, images)
        return self.decoder.loss(params["decoder"], carry, captions, lengths, label_smoothing=label_smoothing)

    def greedy(self, params, images, *, max_length: int) -> decode.Decoded:
        arguments.positive_int("max_length", max_length)
        return self.decoder.greedy(params["decoder"], self.initial_carry(params, images), max_length=max_length)

    def sample(self, params, images, *, key, max_length: int, temperature=1.0, top_k=None) -> decode.Decoded:
        arguments.positive_int("max_length", max_length)
        carry = self.initial_carry(params, images)
        return self.decoder.sample(params["decoder"], carry, key=key, max_length=max_length,
                                   temperature=temperature, top_k=top_k)  # fmt: skip

    def beam_search(self, params, images, *, beam_width: int, max_length: int, alpha=0.0) -> decode.Beams:
        arguments.positive_int("beam_width", beam_width)
        arguments.positive_int("max_length", max_length)
        carry = self.initial_carry(params, images)
        return self.decoder.beam_search(params["decoder"], carry, beam_width=beam_width, max_length=max_length,
                                        alpha=alpha)  # fmt: skip
