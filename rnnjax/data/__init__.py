"""Data sets shipped inside PyPI packages, and helpers shared by the loaders.

Each loader module (``weather``, ``sentiment``, ``speakers``, ``shakespeare``, ...) reads its files by
path from an installed package (or a cache folder, see :func:`cache_dir`), never from the network at
run time, and splits deterministically. Import the modules themselves: ``from rnnjax.data import weather``.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib

import numpy as np


def cache_dir(name: str) -> pathlib.Path:
    """``$RNNJAX_CACHE/<name>`` (default ``~/.cache/rnnjax/<name>``), created."""
    root = os.environ.get("RNNJAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rnnjax")
    path = pathlib.Path(root) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_dir(package: str) -> pathlib.Path:
    """Folder of an installed package, found without importing it (some are slow to import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the data package {package!r} is not installed; install the data extra: pip install -e '.[data]'"
        )
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def batch_indices(seed: int, step: int, num_examples: int, batch_size: int) -> np.ndarray:
    """Example indices of batch ``step``: a pure function of (seed, step), so runs resume exactly.

    Epoch ``e = step // (num_examples // batch_size)`` is a permutation seeded by ``(seed, e)``;
    the remainder of each epoch is dropped.
    """
    if not 0 < batch_size <= num_examples:
        raise ValueError(f"batch_size must be in [1, num_examples={num_examples}]; got {batch_size}")
    per_epoch = num_examples // batch_size
    epoch, position = divmod(int(step), per_epoch)
    order = np.random.default_rng([int(seed), epoch]).permutation(num_examples)
    return order[position * batch_size : (position + 1) * batch_size]


def split_indices(num_examples: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """A seeded shuffle of ``range(num_examples)`` cut into consecutive parts of the given fractions."""
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must sum to 1; got {fractions} (sum {sum(fractions)})")
    order = np.random.default_rng(seed).permutation(num_examples)
    bounds = np.round(np.cumsum((0.0, *fractions)) * num_examples).astype(int)
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]  # shuffled: any prefix is a fair sample


def device_batch_indices(key, step, num_examples: int, batch_size: int):
    """Jittable :func:`batch_indices`: epoch permutations from ``fold_in(key, epoch)`` (for ``fit_many``).

    ``step`` may be traced; sizes are Python ints. Returns int32 ``[batch_size]``.
    """
    import jax

    if not 0 < batch_size <= num_examples:
        raise ValueError(f"batch_size must be in [1, num_examples={num_examples}]; got {batch_size}")
    per_epoch = num_examples // batch_size
    epoch, position = step // per_epoch, step % per_epoch
    order = jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)
    return jax.lax.dynamic_slice_in_dim(order, position * batch_size, batch_size)


def subset_batch_indices(key, step, mask, batch_size: int):
    """:func:`device_batch_indices` over the examples where ``mask`` [examples] is True: int32 [batch_size] rows of
    an epoch permutation of that subset. Jittable, and vmappable over ``mask`` (each run of ``fit_many`` its own
    subset, e.g. a cross-validation fold)."""
    import jax
    import jax.numpy as jnp

    per_epoch = jnp.maximum(mask.sum() // batch_size, 1)
    epoch, position = step // per_epoch, step % per_epoch
    scores = jnp.where(mask, jax.random.uniform(jax.random.fold_in(key, epoch), mask.shape), 2.0)  # others last
    return jax.lax.dynamic_slice_in_dim(jnp.argsort(scores).astype(jnp.int32), position * batch_size, batch_size)
