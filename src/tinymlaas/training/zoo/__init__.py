"""The model zoo: one small architecture family per kind of input, chosen from the dataset spec."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tinymlaas.data.types import DatasetSpec, SampleKind
from tinymlaas.errors import InvalidInput
from tinymlaas.training.search_space import check_hyperparameters

if TYPE_CHECKING:
    from types import ModuleType

    import keras

__all__ = ["ARCHITECTURES", "build", "choose"]

# Family name -> input rank it takes. Each family is a module of this package with a ``build``
# function, imported only when used so that commands that never train do not load TensorFlow.
ARCHITECTURES: dict[str, int] = {"dense": 1, "cnn1d": 2, "cnn2d": 3, "mobilenet": 3, "gate": 3}
# Images up to this many pixels get the plain CNN; larger ones the depthwise-separable one.
SMALL_IMAGE_PIXELS = 32 * 32


def choose(spec: DatasetSpec) -> str:
    """The architecture that suits the input: what an engineer would try first."""
    if spec.kind is SampleKind.VECTOR:
        return "dense"
    if spec.kind in (SampleKind.TIMESERIES, SampleKind.AUDIO):
        return "cnn1d"
    height, width = spec.input_shape[:2]
    return "cnn2d" if height * width <= SMALL_IMAGE_PIXELS else "mobilenet"


def build(
    arch: str,
    spec: DatasetSpec,
    width: float = 1.0,
    *,
    keras_module: ModuleType | None = None,
    hyper: Mapping[str, int] | None = None,
) -> keras.Model:
    """Build ``arch`` for ``spec`` with Keras 3, or with ``keras_module`` (``tf_keras``, whose layers
    the quantization-aware trainer wraps); inputs arrive already scaled (``data.scaling``).

    ``hyper`` holds a search's hyperparameters beyond the width (``training.search_space`` says
    which each family takes and their bounds); without them every family builds its default model.
    """
    if arch not in ARCHITECTURES:
        raise InvalidInput(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    rank = ARCHITECTURES[arch]
    if len(spec.input_shape) != rank:
        raise InvalidInput(
            f"architecture {arch!r} needs inputs of rank {rank}, the dataset's shape is {spec.input_shape}"
        )
    if width <= 0:
        raise InvalidInput(f"width multiplier must be positive, got {width}")
    checked = check_hyperparameters(arch, hyper or {})
    if keras_module is None:
        import keras as keras_module
    family = importlib.import_module(f"tinymlaas.training.zoo.{arch}")
    return family.build(spec, width, keras_module, **checked)
