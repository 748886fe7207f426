"""What a person looks at to label a sample: a PNG for an image, per-channel lines for a window.

Pure functions over the stored array, so the API's preview and the dashboard's sample grid show the
same thing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from PIL import Image

from tinymlaas.data.types import SampleKind

__all__ = ["MAX_THUMBNAIL", "MIN_THUMBNAIL", "PreviewKind", "SamplePreview", "preview"]

MIN_THUMBNAIL = 16  # pixels on the longer side
MAX_THUMBNAIL = 512
_IMAGE_CHANNELS = (1, 3, 4)  # gray, RGB, RGBA: what a PNG can hold


class PreviewKind(StrEnum):
    IMAGE = "image"  # a PNG thumbnail
    SERIES = "series"  # one list of values per channel, in time order
    VALUES = "values"  # the array itself, as nested lists


@dataclass(frozen=True)
class SamplePreview:
    kind: PreviewKind
    shape: tuple[int, ...]
    png: bytes | None = None
    channels: list[list[float]] | None = None
    values: list[Any] | None = None


def _to_bytes(x: np.ndarray) -> np.ndarray:
    """Pixels as 0-255; values outside [0, 1] (a standardised import) are stretched to their range."""
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        x = (x - low) / (high - low) if high > low else np.zeros_like(x)
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _png(x: np.ndarray, size: int) -> bytes:
    pixels = _to_bytes(x)
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    longest = max(image.size)
    if longest > size:
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
    elif longest * 2 <= size:
        # Whole-pixel enlargement keeps an 8x8 digit's pixels crisp instead of blurring them.
        factor = size // longest
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def preview(kind: SampleKind, x: np.ndarray, *, size: int = 96) -> SamplePreview:
    """An image's PNG (longer side about ``size`` pixels), a window's channels, or the plain values."""
    shape = tuple(int(d) for d in x.shape)
    if kind is SampleKind.IMAGE and x.ndim == 3 and x.shape[-1] in _IMAGE_CHANNELS:
        return SamplePreview(PreviewKind.IMAGE, shape, png=_png(x, size))
    if kind in (SampleKind.TIMESERIES, SampleKind.AUDIO) and x.ndim == 2:
        channels = [x[:, c].astype(np.float64).tolist() for c in range(x.shape[1])]
        return SamplePreview(PreviewKind.SERIES, shape, channels=channels)
    return SamplePreview(PreviewKind.VALUES, shape, values=x.astype(np.float64).tolist())
