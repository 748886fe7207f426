"""A real int8 model, described by hand from what the flatbuffer and LiteRT report, and two boards."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from tinymlaas.catalog.board import Board, BoardClass
from tinymlaas.compilers.base import SelfTest, VariantArtifact
from tinymlaas.squeeze.info import ModelInfo, TensorInfo

MEASURED_ARENA = 3000  # bytes; any figure will do, the compiler only rounds it and adds the margin


@dataclass(frozen=True)
class RealModel:
    tflite: bytes
    info: ModelInfo


def _builtin_ops(data: bytes) -> tuple[str, ...]:
    import tflite

    names = {code: name for name, code in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}
    model = tflite.Model.GetRootAsModel(data, 0)
    used = set()
    for g in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(g)
        for i in range(subgraph.OperatorsLength()):
            code = model.OperatorCodes(subgraph.Operators(i).OpcodeIndex())
            used.add(names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    return tuple(sorted(used))


def _tensor(detail: dict) -> TensorInfo:
    scale, zero_point = detail["quantization"]
    quantized = scale != 0.0
    return TensorInfo(
        name=detail["name"],
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]).name,
        scale=float(scale) if quantized else None,
        zero_point=int(zero_point) if quantized else None,
    )


@pytest.fixture(scope="session")
def real_model() -> RealModel:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    keras = tf.keras
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((32, 3)),
            keras.layers.Conv1D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(7)

    def representative():
        for _ in range(16):
            yield [rng.normal(size=(1, 32, 3)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # int8 I/O without calibration statistics for the inputs is what we ask for.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        data = converter.convert()

    interpreter = Interpreter(model_content=data)
    info = ModelInfo(
        size_bytes=len(data),
        ops=_builtin_ops(data),
        inputs=tuple(_tensor(d) for d in interpreter.get_input_details()),
        outputs=tuple(_tensor(d) for d in interpreter.get_output_details()),
        layers=(),
        quantization="int8",
    )
    return RealModel(tflite=data, info=info)


@pytest.fixture(scope="session")
def variant(real_model: RealModel) -> VariantArtifact:
    selftest = SelfTest(runtime="tflm", inputs=((0,) * 96,), expected=((1, 2, 3, 4),), tolerance=2)
    return VariantArtifact(
        variant_id="var-1",
        model_id="mdl-1",
        model_name="gesture cnn",
        model_version=3,
        quantization="int8",
        tflite=real_model.tflite,
        info=real_model.info,
        arena_bytes=MEASURED_ARENA,
        selftests={"tflm": selftest},
        lineage={"snapshot": "snap-1", "training_run": "run-1"},
    )


def make_board(board_id: str, board_class: BoardClass, runtimes: tuple[str, ...], core: str) -> Board:
    return Board(
        id=board_id,
        name=f"Board {board_id}",
        board_class=board_class,
        soc="nRF52840" if board_class is BoardClass.MCU else "BCM2711",
        core=core,
        clock_mhz=64 if board_class is BoardClass.MCU else 1500,
        flash_bytes=1024 * 1024,
        ram_bytes=256 * 1024,
        usable_flash_bytes=800 * 1024,
        usable_ram_bytes=200 * 1024,
        runtimes=runtimes,
        accelerator=None,
        transports=("ble",),
        sensors=("imu",),
    )


@pytest.fixture(scope="session")
def mcu_board() -> Board:
    return make_board("nano-33-ble", BoardClass.MCU, ("tflm",), "cortex-m4f")


@pytest.fixture(scope="session")
def linux_board() -> Board:
    return make_board("rpi-4", BoardClass.LINUX, ("litert", "tflm"), "cortex-a72")
