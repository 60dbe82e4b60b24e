"""What every weight import shares about dtypes: 64-bit weights are refused while JAX runs in 32-bit mode, where
``jnp.asarray`` would round them to 32 bits without a word."""

from __future__ import annotations

from typing import Iterable

import jax


def require_x64_for(argument: str, dtypes: Iterable[str]) -> None:
    """ValueError naming ``argument`` when any of ``dtypes`` (names such as 'float64') is 64-bit and x64 is off."""
    wide = sorted({name for name in map(str, dtypes) if name.endswith("64") and "int" not in name})
    if wide and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"{argument}: its weights are {', '.join(wide)} but JAX runs in 32-bit mode, which would round them to "
            "32 bits without a word: call jax.config.update('jax_enable_x64', True) first, or convert the weights "
            "to float32"
        )
