"""The vision families on the scenes task: sizes that decide where they can run, and that they learn."""

import numpy as np
import pytest

from tinymlaas.data.generators import scenes
from tinymlaas.data.types import Arrays
from tinymlaas.training import zoo
from tinymlaas.training.trainer import Recipe, train

NANO33BLE_USABLE_FLASH = 760 * 1024


def _int8_weight_bytes(model) -> int:
    """One byte per weight once BatchNorm is folded into the layer before it and dropped."""
    return sum(
        int(np.prod(w.shape))
        for layer in model.layers
        if "batch_normalization" not in type(layer).__name__.lower()
        for w in layer.weights
    )


def _arrays(n: int, seed: int) -> Arrays:
    data = scenes.generate(n, seed=seed)
    x = np.stack([s.x for s in data.samples])
    y = np.array([scenes.LABELS.index(s.label) for s in data.samples], dtype=np.int32)
    train_end, val_end = int(n * 0.7), int(n * 0.85)
    return Arrays(
        x[:train_end], y[:train_end], x[train_end:val_end], y[train_end:val_end], x[val_end:], y[val_end:]
    )


def test_mobilenet_at_default_width_does_not_fit_a_nano_33_ble():
    model = zoo.build("mobilenet", scenes.SPEC)
    assert _int8_weight_bytes(model) > NANO33BLE_USABLE_FLASH
    assert _int8_weight_bytes(model) < 1.6e6
    depthwise = [layer for layer in model.layers if type(layer).__name__ == "DepthwiseConv2D"]
    assert len(depthwise) == 13  # MobileNetV1's block table
    assert model.get_layer("pw13").filters == 512  # 1024 at alpha 0.5


@pytest.mark.parametrize("arch", ["mobilenet", "gate"])
def test_vision_models_are_straight_chains(arch):
    """A chain can be cut after any layer: every layer has one producer and one consumer."""
    model = zoo.build(arch, scenes.SPEC)
    producers = [layer for layer in model.layers if layer is not model.layers[0]]
    for before, layer in zip(model.layers, producers, strict=False):
        assert len(layer._inbound_nodes) == 1
        inbound = layer._inbound_nodes[0].input_tensors
        assert len(inbound) == 1
        assert inbound[0] is before.output


def test_gate_fits_beside_an_application():
    model = zoo.build("gate", scenes.SPEC)
    assert _int8_weight_bytes(model) < 32 * 1024
    # Every convolution halves the frame, so the first activation is the largest.
    activations = [int(np.prod(layer.output.shape[1:])) for layer in model.layers[1:]]
    assert max(activations) + 96 * 96 < 100 * 1024


def test_gate_builds_the_same_weights_in_tf_keras():
    import tf_keras

    twin = zoo.build("gate", scenes.SPEC, keras_module=tf_keras)
    assert [w.shape for w in twin.get_weights()] == [
        w.shape for w in zoo.build("gate", scenes.SPEC).get_weights()
    ]


def test_gate_learns_scenes():
    result = train(scenes.SPEC, _arrays(1200, 0), Recipe(arch="gate", epochs=40, patience=8))
    confusion = np.array(result.confusion)
    assert result.test_metric.value >= 0.85
    # Its job in a cascade: tell empty frames from busy ones.
    binary_right = confusion[1:, 1:].sum() + confusion[0, 0]
    assert binary_right / confusion.sum() >= 0.95


def test_mobilenet_learns_scenes():
    result = train(
        scenes.SPEC, _arrays(1200, 0), Recipe(arch="mobilenet", epochs=10, batch_size=16, patience=8)
    )
    assert result.test_metric.value >= 0.85
