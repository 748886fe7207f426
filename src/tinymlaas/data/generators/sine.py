"""The TensorFlow Lite Micro "hello world": learn y = sin(x) from noisy samples.

Small enough to train in seconds and to fit any board, so it exercises the whole lifecycle quickly.
"""

from __future__ import annotations

import math

import numpy as np

from tinymlaas.data.generators._seeded import seeded_rng
from tinymlaas.data.types import DatasetSpec, ImportedData, LabelledSample, SampleKind, Task

__all__ = ["DEFAULT_N", "NAME", "SPEC", "generate"]

NAME = "sine"
DEFAULT_N = 1000
# Standard deviation of the gaussian noise added to sin(x): enough that a model must average, not
# memorise, as in the original example.
NOISE = 0.1

SPEC = DatasetSpec(task=Task.REGRESSION, kind=SampleKind.VECTOR, input_shape=(1,))


def generate(n: int = DEFAULT_N, *, seed: int) -> ImportedData:
    """``n`` samples of x uniform in [0, 2π) with target sin(x) plus noise; the same seed, the same data."""
    rng = seeded_rng(NAME, n, seed)
    x = rng.uniform(0.0, 2.0 * math.pi, size=n)
    y = np.sin(x) + rng.normal(0.0, NOISE, size=n)
    inputs = x.astype(np.float32).reshape(n, 1)
    samples = tuple(
        LabelledSample(x=inputs[i], source=f"generator:{NAME}#{i}", target=float(y[i])) for i in range(n)
    )
    return ImportedData(spec=SPEC, samples=samples)
