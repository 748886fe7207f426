"""MobileNetV1 for camera frames: the classic depthwise-separable network, scaled by a width multiplier.

The depthwise + pointwise split cuts MACs and weights by roughly the kernel area compared with plain
convolutions. At the default width (MobileNetV1's alpha 0.5) a 96×96 model has about 0.82 M weights,
more int8 bytes than a Nano 33 BLE's usable flash: the model a camera task wants but cannot run whole
on the smallest boards, so it is a candidate for a cascade or a split.

The network is one straight chain of layers, so it can be cut after any of them, and it uses only
layers the int8 converter turns into CONV_2D, DEPTHWISE_CONV_2D, MEAN, FULLY_CONNECTED and SOFTMAX
(BatchNorm folds into the convolution before it, ReLU6 into its activation, dropout disappears).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units

# MobileNetV1's alpha at width 1.0; the width multiplier scales it.
ALPHA = 0.5
STEM_FILTERS = 32
# (pointwise filters at alpha 1.0, depthwise stride) per block: MobileNetV1's table.
BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
# Keras' default of 0.99 lets the moving statistics trail the weights by ~100 steps: with a few hundred
# images (a dozen or two steps an epoch) inference-time BatchNorm is then far from the batches it was
# trained on and accuracy stays near chance, though the training loss falls.
BN_MOMENTUM = 0.9
# A million weights learn a thousand images by heart; decay on the dense kernels (not the depthwise
# ones, which have few weights, as in MobileNetV1) and heavy dropout before the head keep it general.
WEIGHT_DECAY = 1e-4
DROPOUT = 0.5


def build(spec: DatasetSpec, width: float, k: ModuleType) -> Any:
    alpha = ALPHA * width

    def conv_bn(x: Any, layer: Any, name: str) -> Any:
        x = layer(x)
        x = k.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        return k.layers.ReLU(6.0, name=f"{name}_relu")(x)

    def pointwise(filters: int, kernel: int, stride: int, name: str) -> Any:
        return k.layers.Conv2D(
            units(filters, alpha),
            kernel,
            strides=stride,
            padding="same",
            use_bias=False,
            kernel_regularizer=k.regularizers.L2(WEIGHT_DECAY),
            name=name,
        )

    inputs = k.Input(spec.input_shape, name="input")
    x = conv_bn(inputs, pointwise(STEM_FILTERS, 3, 2, "stem"), "stem")
    for i, (filters, stride) in enumerate(BLOCKS, start=1):
        depthwise = k.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw{i}")
        x = conv_bn(x, depthwise, f"dw{i}")
        x = conv_bn(x, pointwise(filters, 1, 1, f"pw{i}"), f"pw{i}")
    x = k.layers.GlobalAveragePooling2D(name="pool")(x)
    x = k.layers.Dropout(DROPOUT, name="dropout")(x)
    return k.Model(inputs, head(spec, x, k), name="mobilenet")
