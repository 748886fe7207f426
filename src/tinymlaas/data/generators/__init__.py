"""Built-in datasets for demos and tests, each deterministic for a seed so results can be reproduced."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from tinymlaas.data.generators import digits, gestures, scenes, sine
from tinymlaas.data.types import ImportedData
from tinymlaas.errors import NotFound

__all__ = ["GENERATORS", "generate"]

# name → generate(n, *, seed); each has a default n, so generate(seed=...) is a sensible size.
GENERATORS: Mapping[str, Callable[..., ImportedData]] = MappingProxyType(
    {
        sine.NAME: sine.generate,
        gestures.NAME: gestures.generate,
        digits.NAME: digits.generate,
        scenes.NAME: scenes.generate,
    }
)


def generate(name: str, n: int | None = None, *, seed: int = 0) -> ImportedData:
    """Run the generator ``name``; ``n=None`` uses its default size."""
    try:
        make = GENERATORS[name]
    except KeyError:
        raise NotFound(f"no generator {name!r}; the generators are {', '.join(sorted(GENERATORS))}") from None
    return make(seed=seed) if n is None else make(n, seed=seed)
