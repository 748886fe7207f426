"""The argument checks and random source every generator shares."""

from __future__ import annotations

import numpy as np

from tinymlaas.errors import InvalidInput

__all__ = ["seeded_rng"]


def seeded_rng(name: str, n: int, seed: int) -> np.random.Generator:
    """A fresh generator for ``seed``, so the same (n, seed) always yields the same samples."""
    if n < 1:
        raise InvalidInput(f"generator {name}: n must be at least 1, got {n}")
    if seed < 0:
        raise InvalidInput(f"generator {name}: seed must not be negative, got {seed}")
    return np.random.default_rng(seed)
