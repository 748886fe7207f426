"""Handwritten digits, 8×8 pixels: scikit-learn's bundled copy of the UCI set, so nothing is downloaded.

A real (not synthetic) image set small enough for a microcontroller demo.
"""

from __future__ import annotations

import numpy as np

from tinymlaas.data.generators._seeded import seeded_rng
from tinymlaas.data.types import DatasetSpec, ImportedData, LabelledSample, SampleKind, Task

__all__ = ["DEFAULT_N", "NAME", "SIZE", "SPEC", "generate"]

NAME = "digits"
SIZE = 1797  # images in the bundled set
DEFAULT_N = SIZE
_MAX_VALUE = 16.0  # pixel values in the set are 0..16 (counts of set cells in a 4×4 block)

SPEC = DatasetSpec(
    task=Task.CLASSIFICATION,
    kind=SampleKind.IMAGE,
    input_shape=(8, 8, 1),
    labels=tuple(str(d) for d in range(10)),
)


def generate(n: int = DEFAULT_N, *, seed: int) -> ImportedData:
    """``min(n, 1797)`` digits; fewer than all are a random subset chosen by ``seed``.

    Sources keep the image's index in the bundled set (``generator:digits#123``), so the same image
    has the same source whatever subset it is drawn in.
    """
    # Imported here: scikit-learn takes seconds to import, and listing generators should not wait for it.
    from sklearn.datasets import load_digits

    rng = seeded_rng(NAME, n, seed)
    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / _MAX_VALUE)[..., np.newaxis]
    targets = np.asarray(bunch.target)
    chosen = np.arange(SIZE) if n >= SIZE else np.sort(rng.choice(SIZE, size=n, replace=False))
    samples = tuple(
        LabelledSample(x=images[i], source=f"generator:{NAME}#{i}", label=str(targets[i])) for i in chosen
    )
    return ImportedData(spec=SPEC, samples=samples)
