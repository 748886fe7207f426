"""The four MLPerf Tiny reference architectures, as full-integer int8 ``.tflite`` with random weights.

The published latencies (``mlperf_tiny.toml``) are for these layer structures; building the same
shapes here lets the native compiler's instruction counts be set beside them without downloading
the trained models. Weights are random with fixed seeds: latency and memory depend on the shapes,
not on what the weights learned.

- kws: DS-CNN small on 49x10 MFCC: conv 10x4 stride 2 with 64 filters, 4 depthwise-separable
  blocks (3x3 depthwise, 1x1 pointwise 64), average pool, dense 12.
- ic: ResNet-8 on 32x32x3: conv 16, three residual stacks 16/32/64 with ADD skips (1x1 stride-2
  projections where the shape changes), average pool, dense 10.
- vww: MobileNetV1 alpha 0.25 on 96x96x3, 13 depthwise-separable blocks, average pool, dense 2.
- ad: fully connected autoencoder 640-128-128-128-128-8-128-128-128-128-640.

    python bench/mlperf_models.py   # builds each, checks it runs in TFLM, prints ops and sizes
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from tinymlaas.squeeze.convert import Quantization, convert

__all__ = ["BUILDERS", "INPUT_SHAPES", "PUBLISHED_PARAM_BYTES", "build_tflite"]

INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "kws": (49, 10, 1),
    "ic": (32, 32, 3),
    "vww": (96, 96, 3),
    "ad": (640,),
}
# Approximate int8 parameter sizes commonly quoted for the reference models; only a sanity check
# on the shapes built here, not a figure read from the results repositories.
PUBLISHED_PARAM_BYTES: dict[str, int] = {"kws": 53_000, "ic": 96_000, "vww": 325_000, "ad": 270_000}
SEED = 1234
REPRESENTATIVE = 32
# He-normal keeps activation variance through ReLU stacks; Keras' default Glorot init makes an
# untrained 27-layer MobileNet's activations shrink to ~1e-8, a range TFLM refuses to requantise.
HE = {"kernel_initializer": "he_normal"}
# Keras counts a depthwise kernel's fan-in as 9 x channels, but each output sees 9 inputs: He
# scaling for a 3x3 depthwise is stddev sqrt(2/9). A config dict gives every layer its own draw.
DW_HE = {"depthwise_initializer": {"class_name": "RandomNormal", "config": {"stddev": (2 / 9) ** 0.5}}}


def _keras():  # noqa: ANN202 - keras is imported late: building a table must not load TensorFlow
    import keras

    keras.utils.set_random_seed(SEED)
    return keras


def ds_cnn() -> object:
    """DS-CNN small for keyword spotting (MLPerf Tiny kws reference structure)."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=INPUT_SHAPES["kws"], batch_size=1)
    x = layers.Conv2D(64, (10, 4), strides=(2, 2), padding="same", use_bias=False, **HE)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for _ in range(4):
        x = layers.DepthwiseConv2D((3, 3), padding="same", use_bias=False, **DW_HE)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.Conv2D(64, (1, 1), padding="same", use_bias=False, **HE)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(12, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="kws_ds_cnn")


def resnet8() -> object:
    """ResNet-8 for image classification (MLPerf Tiny ic reference structure)."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=INPUT_SHAPES["ic"], batch_size=1)
    x = layers.Conv2D(16, 3, padding="same", **HE)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", **HE)(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", **HE)(y))
        shortcut = x if stride == 1 else layers.Conv2D(filters, 1, strides=stride, padding="same", **HE)(x)
        x = layers.ReLU()(layers.Add()([shortcut, y]))
    x = layers.AveragePooling2D(pool_size=int(x.shape[1]))(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="ic_resnet8")


def mobilenet_v1() -> object:
    """MobileNetV1 alpha 0.25 on 96x96x3 with 2 classes (MLPerf Tiny vww reference structure)."""
    keras = _keras()
    layers = keras.layers
    alpha = 0.25
    inputs = keras.Input(shape=INPUT_SHAPES["vww"], batch_size=1)
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, **HE)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
    blocks += [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for filters, stride in blocks:
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, **DW_HE)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.Conv2D(int(filters * alpha), 1, padding="same", use_bias=False, **HE)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.AveragePooling2D(pool_size=int(x.shape[1]))(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="vww_mobilenet_v1_025")


def fc_autoencoder() -> object:
    """Fully connected autoencoder on 640 inputs (MLPerf Tiny ad reference structure)."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=INPUT_SHAPES["ad"], batch_size=1)
    x = inputs
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = layers.ReLU()(layers.BatchNormalization()(layers.Dense(units, **HE)(x)))
    outputs = layers.Dense(640)(x)
    return keras.Model(inputs, outputs, name="ad_fc_autoencoder")


BUILDERS: dict[str, Callable[[], object]] = {
    "kws": ds_cnn,
    "ic": resnet8,
    "vww": mobilenet_v1,
    "ad": fc_autoencoder,
}


def build_tflite(name: str) -> bytes:
    """Build ``name`` (kws, ic, vww, ad) and convert it to full-integer int8 with int8 input/output.

    The representative set is seeded normal noise: with random weights there is no real input
    distribution to calibrate against, and the activation ranges only need to be plausible.
    """
    model = BUILDERS[name]()
    rng = np.random.default_rng(SEED)
    representative = rng.normal(size=(REPRESENTATIVE, *INPUT_SHAPES[name])).astype(np.float32)
    return convert(model, Quantization.INT8, representative)  # type: ignore[arg-type]


def op_list(tflite: bytes) -> list[str]:
    """Builtin operator names in execution order, read from the flatbuffer."""
    import tflite as schema

    model = schema.Model.GetRootAsModel(tflite, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.Subgraphs(0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    ops = []
    for i in range(graph.OperatorsLength()):
        code = codes[graph.Operators(i).OpcodeIndex()]
        ops.append(names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    return ops


def param_bytes(tflite: bytes) -> int:
    """Bytes of constant tensors (weights, biases): what the published model sizes count."""
    import tflite as schema

    model = schema.Model.GetRootAsModel(tflite, 0)
    graph = model.Subgraphs(0)
    total = 0
    for i in range(graph.TensorsLength()):
        buffer = model.Buffers(graph.Tensors(i).Buffer())
        total += buffer.DataLength() if buffer is not None else 0
    return total


def run_in_tflm(tflite: bytes, seed: int = 0) -> np.ndarray:
    """One random int8 input through the TFLM interpreter: proves the model runs there."""
    from tflite_micro import runtime as tflm

    interpreter = tflm.Interpreter.from_bytes(tflite, arena_size=4 * 1024 * 1024)
    shape = interpreter.get_input_details(0)["shape"]
    data = np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)
    interpreter.set_input(data, 0)
    interpreter.invoke()
    return interpreter.get_output(0)


def main() -> None:
    for name in BUILDERS:
        tflite = build_tflite(name)
        output = run_in_tflm(tflite)
        ops = Counter(op_list(tflite))
        params = param_bytes(tflite)
        ratio = params / PUBLISHED_PARAM_BYTES[name]
        print(
            f"{name}: .tflite {len(tflite):,} B, params {params:,} B "
            f"({ratio:.2f}x of ~{PUBLISHED_PARAM_BYTES[name]:,} B published), "
            f"TFLM output {output.shape} {output.dtype}"
        )
        print("   ops:", ", ".join(f"{op} x{n}" for op, n in ops.items()))


if __name__ == "__main__":
    main()
