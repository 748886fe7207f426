"""Input scaling learnt from the train split and kept with the model, per feature or per channel.

A model takes its input in sensor units; the scaling maps those units to the range the network was
trained on. It lives outside the network on purpose: an int8 input tensor has one scale for all its
values, so a network that normalizes inside itself quantizes a feature measured in thousands and one
measured in tenths with the same step, and the small one collapses to a few levels. Scaling first and
quantizing second gives every feature the full int8 range. The same numbers are applied in training,
in evaluation, in the TFLM and LiteRT measurements, on the emulated devices and in the generated C
modules, and travel in the package manifest.

Statistics are taken over every axis but the last: per feature for a vector, per channel for a time
series, audio or an image (the last axis is the channel in every sample kind).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from tinymlaas.errors import InvalidInput

__all__ = ["MAX_CHANNELS", "InputScaling", "ScalingMethod", "fit_scaling"]

# A manifest is read on the device before anything is verified against it; bound what it may declare.
MAX_CHANNELS = 65_536


class ScalingMethod(StrEnum):
    NONE = "none"  # values go to the model as measured (the model was trained that way)
    STANDARDIZE = "standardize"  # (x - mean) / std per feature or channel
    MINMAX = "minmax"  # (x - min) / (max - min): the train split maps to [0, 1]


@dataclass(frozen=True)
class InputScaling:
    """``scaled = (x - offset[c]) / scale[c]`` for channel ``c`` (the last axis), in float32."""

    method: ScalingMethod
    offset: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    # Why a channel passes through unscaled (constant in the train split), for the user to see.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if len(self.offset) != len(self.scale):
            raise InvalidInput(f"input scaling: {len(self.offset)} offsets but {len(self.scale)} scales")
        if self.method is ScalingMethod.NONE and self.offset:
            raise InvalidInput("input scaling 'none' carries no offsets or scales")
        if self.method is not ScalingMethod.NONE and not self.offset:
            raise InvalidInput(f"input scaling {self.method.value!r} needs one offset and scale per channel")
        if len(self.offset) > MAX_CHANNELS:
            raise InvalidInput(f"input scaling: {len(self.offset)} channels, at most {MAX_CHANNELS}")
        for value in (*self.offset, *self.scale):
            if not math.isfinite(value):
                raise InvalidInput("input scaling: offsets and scales must be finite numbers")
        if any(s <= 0 for s in self.scale):
            raise InvalidInput("input scaling: every scale must be positive")

    @property
    def channels(self) -> int:
        return len(self.offset)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Raw values (one sample, or a batch on axis 0) to the model's input units, float32."""
        x = np.asarray(x, dtype=np.float32)
        if self.method is ScalingMethod.NONE:
            return x
        self._check_channels(x)
        return (x - np.asarray(self.offset, np.float32)) / np.asarray(self.scale, np.float32)

    def invert(self, scaled: np.ndarray) -> np.ndarray:
        """Model input units back to raw values (for inputs made up in model units, e.g. self-tests)."""
        scaled = np.asarray(scaled, dtype=np.float32)
        if self.method is ScalingMethod.NONE:
            return scaled
        self._check_channels(scaled)
        return scaled * np.asarray(self.scale, np.float32) + np.asarray(self.offset, np.float32)

    def _check_channels(self, x: np.ndarray) -> None:
        if x.ndim == 0 or x.shape[-1] != self.channels:
            raise InvalidInput(
                f"input scaling has {self.channels} channels; the input's last axis is "
                f"{x.shape[-1] if x.ndim else 'missing'}"
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method.value,
            "offset": list(self.offset),
            "scale": list(self.scale),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> InputScaling:
        """Read a stored or manifest scaling; None (a model from before scaling existed) is ``none``."""
        if data is None:
            return cls(ScalingMethod.NONE)
        if not isinstance(data, Mapping):
            raise InvalidInput("input scaling is malformed: not an object")
        try:
            method = ScalingMethod(data["method"])
            offset = tuple(float(v) for v in data.get("offset", ()))
            scale = tuple(float(v) for v in data.get("scale", ()))
            warnings = tuple(str(w) for w in data.get("warnings", ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"input scaling is malformed: {exc}") from exc
        return cls(method, offset, scale, warnings)


def fit_scaling(method: ScalingMethod, x_train: np.ndarray) -> InputScaling:
    """Learn ``method`` from the train split (a batch on axis 0).

    A channel that is constant in the train split cannot be scaled by its spread; it keeps scale 1
    (only its offset is removed) and the scaling says so in ``warnings``.
    """
    if method is ScalingMethod.NONE:
        return InputScaling(ScalingMethod.NONE)
    x = np.asarray(x_train, dtype=np.float64)
    if x.ndim < 2 or len(x) == 0:
        raise InvalidInput("input scaling is learnt from a non-empty batch of samples")
    if not np.all(np.isfinite(x)):
        raise InvalidInput("input scaling: the train split contains NaN or infinite values")
    flat = x.reshape(-1, x.shape[-1])
    if method is ScalingMethod.STANDARDIZE:
        offset, spread = flat.mean(axis=0), flat.std(axis=0)
    else:
        offset = flat.min(axis=0)
        spread = flat.max(axis=0) - offset
    constant = [c for c, s in enumerate(spread) if not s > 1e-12 * max(1.0, abs(offset[c]))]
    scale = spread.copy()
    scale[constant] = 1.0
    warnings = tuple(
        f"{'feature' if x.ndim == 2 else 'channel'} {c} is constant in the train split "
        f"(value {offset[c]:.6g}); it reaches the model unscaled and carries no information"
        for c in constant
    )
    return InputScaling(
        method,
        tuple(float(np.float32(v)) for v in offset),
        tuple(float(np.float32(v)) for v in scale),
        warnings,
    )
