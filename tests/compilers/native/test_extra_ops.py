"""The extra ops (ADD, MUL, PAD, CONCATENATION, LOGISTIC, QUANTIZE) are bit-exact with TFLM.

Each tiny model is converted to full-integer int8 by TensorFlow, read into the IR, lowered node by
node with ``lowerings()`` into one C function, compiled with ``tmn_extra.c`` into a shared library
and run via ctypes on the same random int8 inputs as the TFLM interpreter; every output byte must
match. No model is trained: calibration ranges are chosen per input so operands differ in scale.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tinymlaas.compilers.native import extra
from tinymlaas.compilers.native.graph import read_graph
from tinymlaas.compilers.native.ir import Graph, Node, Quant, Tensor
from tinymlaas.compilers.native.lowering import lowerings
from tinymlaas.compilers.native.qmath import activation_range
from tinymlaas.errors import UnsupportedModel

# QUANTIZE models: factor on the output scale the converter chose, new output zero point
REQUANTIZE = {"quantize_down": (1.7, 5), "quantize_up": (0.3, -20), "quantize_zero_point": (1.0, -60)}
RUNTIME = Path(extra.__file__).parent / "runtime"
SAMPLES = 64
HOST_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
ARM_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16"]
ARM_FLAGS += ["-mfloat-abi=hard", "-mthumb", "-Os"]


@dataclass(frozen=True)
class Case:
    """A single-op model: its float function, input shapes and the calibration range of each input."""

    fn: Callable
    shapes: tuple[tuple[int, ...], ...]
    ranges: tuple[float, ...]
    ops: frozenset[str]


def _cases() -> dict[str, Case]:
    import tensorflow as tf

    const = np.array([0.5, -2.0, 1.5], dtype=np.float32).reshape(1, 1, 1, 3)
    nhwc = (1, 4, 5, 3)
    return {
        "add_same": Case(lambda a, b: a + b, (nhwc, nhwc), (1.0, 6.0), frozenset({"ADD"})),
        "add_relu_bcast_channels": Case(
            lambda a, b: tf.nn.relu(a + b), (nhwc, (1, 1, 1, 3)), (3.0, 0.5), frozenset({"ADD"})
        ),
        "add_bcast_both": Case(
            lambda a, b: a + b, ((1, 4, 1, 3), (1, 1, 5, 1)), (2.0, 1.0), frozenset({"ADD"})
        ),
        "mul_same": Case(lambda a, b: a * b, (nhwc, nhwc), (1.0, 5.0), frozenset({"MUL"})),
        "mul_relu6_bcast": Case(
            lambda a, b: tf.nn.relu6(a * b), ((1, 4, 5, 3), (1, 4, 1, 1)), (4.0, 2.0), frozenset({"MUL"})
        ),
        "mul_const": Case(lambda a: a * const, (nhwc,), (3.0,), frozenset({"MUL"})),
        "pad_nhwc": Case(
            lambda a: tf.pad(a, [[0, 0], [1, 2], [2, 0], [0, 1]]), ((1, 3, 4, 2),), (2.0,), frozenset({"PAD"})
        ),
        "pad_rank2": Case(lambda a: tf.pad(a, [[0, 0], [3, 1]]), ((1, 10),), (0.7,), frozenset({"PAD"})),
        "concat_channels": Case(
            lambda a, b: tf.concat([a, b], axis=-1),
            ((1, 4, 5, 2), (1, 4, 5, 3)),
            (1.0, 4.0),
            frozenset({"CONCATENATION"}),
        ),
        "concat_rows_three": Case(
            lambda a, b, c: tf.concat([a, b, c], axis=1),
            ((1, 2, 3, 2), (1, 1, 3, 2), (1, 3, 3, 2)),
            (2.0, 2.0, 2.0),
            frozenset({"CONCATENATION"}),
        ),
        "logistic_narrow": Case(tf.sigmoid, ((1, 256),), (2.0,), frozenset({"LOGISTIC"})),
        "logistic_wide": Case(tf.sigmoid, ((1, 256),), (40.0,), frozenset({"LOGISTIC"})),
    }


def _convert(case: Case) -> bytes:
    import tensorflow as tf

    specs = [tf.TensorSpec(shape, tf.float32) for shape in case.shapes]
    concrete = tf.function(case.fn, input_signature=specs).get_concrete_function()
    rng = np.random.default_rng(3)

    def representative():
        for _ in range(32):
            yield [
                rng.uniform(-r, r, size=s).astype(np.float32)
                for s, r in zip(case.shapes, case.ranges, strict=True)
            ]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


def _requantize_model(scale_factor: float, zero_point: int) -> bytes:
    """A one-op int8 -> int8 QUANTIZE model: the converter never emits one for these graphs (it unifies
    scales instead), so a RELU model's op code and output quantization are patched in place."""
    import tensorflow as tf
    import tflite

    data = bytearray(_convert(Case(tf.nn.relu, ((1, 256),), (3.0,), frozenset())))
    model = tflite.Model.GetRootAsModel(data, 0)
    for k in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(k)
        # deprecated_builtin_code (int8) and builtin_code (int32) fields of OperatorCode
        for slot, fmt in ((4, "<b"), (10, "<i")):
            offset = code._tab.Offset(slot)
            if offset:
                struct.pack_into(fmt, data, code._tab.Pos + offset, tflite.BuiltinOperator.QUANTIZE)
    graph = model.Subgraphs(0)
    quant = graph.Tensors(graph.Outputs(0)).Quantization()
    scale_at = quant._tab.Vector(quant._tab.Offset(8))
    struct.pack_into("<f", data, scale_at, quant.Scale(0) * scale_factor)
    struct.pack_into("<q", data, quant._tab.Vector(quant._tab.Offset(10)), zero_point)
    return bytes(data)


class _Emitter:
    """Maps activations to slots of a pointer table and constants to static arrays."""

    def __init__(self, graph: Graph, prefix: str = "m") -> None:
        self.graph = graph
        self.prefix = prefix
        self.decls: list[str] = []

    def tensor(self, index: int) -> str:
        tensor = self.graph.tensors[index]
        if tensor.data is not None:
            name = self.const_array("int8_t", np.frombuffer(tensor.data, np.int8).tolist(), f"w{index}")
            return f"((const int8_t *){name})"
        return f"((int8_t *)t[{index}])"

    def const_array(self, ctype: str, values: Sequence[int], hint: str) -> str:
        name = f"{self.prefix}_{len(self.decls)}_{hint}"
        self.decls.append(f"static const {ctype} {name}[] = {{{', '.join(str(v) for v in values)}}};")
        return name

    def activation_range(self, node: Node, out: Tensor) -> tuple[int, int]:
        assert out.quant is not None
        act = node.options.get("fused_activation_function", "NONE")
        return activation_range(act, out.quant.scale[0], out.quant.zero_point[0])


def _c_function(name: str, graph: Graph) -> str:
    emit = _Emitter(graph, name)
    table = lowerings()
    body = [table[node.op](node, graph, emit) for node in graph.nodes]
    lines = "\n    ".join(body)
    return "\n".join(emit.decls) + f"\nvoid run_{name}(void *const *t)\n{{\n    {lines}\n}}\n"


@dataclass(frozen=True)
class Built:
    tflite: bytes
    graph: Graph


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Built], ctypes.CDLL]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    models: dict[str, Built] = {}
    sources = ["#include <stdint.h>", '#include "tmn_extra.h"']
    converted = {name: (_convert(case), case.ops) for name, case in _cases().items()}
    for name, (scale_factor, zero_point) in REQUANTIZE.items():
        converted[name] = (_requantize_model(scale_factor, zero_point), frozenset({"QUANTIZE"}))
    for name, (data, expected_ops) in converted.items():
        graph = read_graph(data)
        ops = {node.op for node in graph.nodes}
        assert expected_ops <= ops, f"{name}: converter produced {ops}"
        models[name] = Built(data, graph)
        sources.append(_c_function(name, graph))
    work = tmp_path_factory.mktemp("extra_ops")
    (work / "models.c").write_text("\n".join(sources))
    lib = work / "libextra.so"
    cmd = ["cc", *HOST_FLAGS, "-shared", "-fPIC", f"-I{RUNTIME}", str(work / "models.c")]
    result = subprocess.run(
        [*cmd, str(RUNTIME / "tmn_extra.c"), "-o", str(lib)], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    return models, ctypes.CDLL(str(lib))


def _run_c(lib: ctypes.CDLL, name: str, graph: Graph, inputs: Sequence[np.ndarray]) -> np.ndarray:
    buffers: dict[int, np.ndarray] = {}
    for tensor in graph.tensors:
        if tensor.data is None:
            buffers[tensor.index] = np.zeros(tensor.elements, dtype=np.int8)
    for index, array in zip(graph.inputs, inputs, strict=True):
        buffers[index][:] = array.reshape(-1)
    table = (ctypes.c_void_p * len(graph.tensors))()
    for index, array in buffers.items():
        table[index] = array.ctypes.data
    getattr(lib, f"run_{name}")(table)
    return buffers[graph.outputs[0]].copy()


def _run_tflm(data: bytes, graph: Graph, inputs: Sequence[np.ndarray]) -> np.ndarray:
    from tflite_micro import runtime as tflm

    interpreter = tflm.Interpreter.from_bytes(data, arena_size=64 * 1024)
    for k, (index, array) in enumerate(zip(graph.inputs, inputs, strict=True)):
        interpreter.set_input(array.reshape(graph.tensors[index].shape), k)
    interpreter.invoke()
    return np.asarray(interpreter.get_output(0), dtype=np.int8).reshape(-1)


@pytest.mark.parametrize("name", [*_cases(), *REQUANTIZE])
def test_bit_exact_with_tflm(built: tuple[dict[str, Built], ctypes.CDLL], name: str) -> None:
    models, lib = built
    model = models[name]
    rng = np.random.default_rng(11)
    for sample in range(SAMPLES):
        inputs = []
        for index in model.graph.inputs:
            size = model.graph.tensors[index].elements
            if sample == 0 and size == 256:
                inputs.append(np.arange(-128, 128, dtype=np.int8))  # every int8 value once
            else:
                inputs.append(rng.integers(-128, 128, size=size, dtype=np.int8))
        want = _run_tflm(model.tflite, model.graph, inputs)
        got = _run_c(lib, name, model.graph, inputs)
        assert got.tobytes() == want.tobytes(), f"{name}, sample {sample}: {np.flatnonzero(got != want)[:8]}"


def test_kernels_compile_for_cortex_m4(tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    cmd = ["arm-none-eabi-gcc", *ARM_FLAGS, f"-I{RUNTIME}", "-c", str(RUNTIME / "tmn_extra.c")]
    result = subprocess.run([*cmd, "-o", str(tmp_path / "tmn_extra.o")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("shape1", "shape2", "out", "dims", "stride1", "stride2"),
    [
        ((1, 4, 5, 3), (1, 4, 5, 3), (1, 4, 5, 3), (60,), (1,), (1,)),
        ((1, 4, 5, 3), (3,), (1, 4, 5, 3), (20, 3), (3, 1), (0, 1)),
        ((1, 4, 5, 3), (), (1, 4, 5, 3), (60,), (1,), (0,)),
        ((1, 4, 1, 3), (1, 1, 5, 1), (1, 4, 5, 3), (4, 5, 3), (3, 0, 1), (0, 1, 0)),
    ],
)
def test_broadcast_merges_dimensions(shape1, shape2, out, dims, stride1, stride2) -> None:
    b = extra.broadcast(shape1, shape2, out)
    pad = extra.BCAST_DIMS - len(dims)
    assert b.dims == (1,) * pad + dims
    assert b.stride1 == (0,) * pad + stride1
    assert b.stride2 == (0,) * pad + stride2


def test_broadcast_refuses_mismatched_shapes() -> None:
    with pytest.raises(UnsupportedModel, match="do not broadcast"):
        extra.broadcast((1, 4, 3), (1, 5, 3), (1, 4, 3))


def _int8(index: int, shape: tuple[int, ...], scale: float, zero_point: int) -> Tensor:
    return Tensor(index, f"t{index}", shape, "int8", Quant((scale,), (zero_point,), 0), None)


def test_unsupported_cases_name_the_op_and_node() -> None:
    table = lowerings()
    float_out = Tensor(1, "out", (1, 4), "float32", None, None)
    graph = Graph((_int8(0, (1, 4), 0.1, 0), float_out), (), (0,), (1,))
    dequantize = Node(5, "DEQUANTIZE", (0,), (1,), {})
    with pytest.raises(UnsupportedModel, match=r"DEQUANTIZE \(node 5\)"):
        table["DEQUANTIZE"](dequantize, graph, _Emitter(graph))

    graph = Graph((_int8(0, (1, 4), 0.1, 0), _int8(1, (1, 4), 1 / 256, 0)), (), (0,), (1,))
    logistic = Node(2, "LOGISTIC", (0,), (1,), {})
    with pytest.raises(UnsupportedModel, match=r"LOGISTIC \(node 2\).*-128"):
        table["LOGISTIC"](logistic, graph, _Emitter(graph))

    graph = Graph(
        (_int8(0, (1, 4), 0.1, 0), _int8(1, (1, 4), 0.1, 0), _int8(2, (1, 8), 0.1, 0)), (), (0,), (2,)
    )
    concat = Node(3, "CONCATENATION", (0, 1), (2,), {"axis": 1, "fused_activation_function": "RELU"})
    with pytest.raises(UnsupportedModel, match=r"CONCATENATION \(node 3\)"):
        table["CONCATENATION"](concat, graph, _Emitter(graph))

    float_in = Tensor(0, "in", (1, 4), "float32", None, None)
    graph = Graph((float_in, _int8(1, (1, 4), 0.1, 0)), (), (0,), (1,))
    quantize = Node(0, "QUANTIZE", (0,), (1,), {})
    with pytest.raises(UnsupportedModel, match=r"QUANTIZE \(node 0\).*float32"):
        table["QUANTIZE"](quantize, graph, _Emitter(graph))


def _resnet_block():
    import keras

    x = keras.Input((8, 8, 4))
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(4, 3, padding="same")(y)
    z = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    return keras.Model(x, z)


def _pad_concat_gate():
    import keras

    x = keras.Input((6, 6, 3))
    p = keras.layers.ZeroPadding2D(((1, 2), (2, 1)))(x)
    a = keras.layers.Conv2D(3, 1)(p)
    b = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(p)
    c = keras.layers.Concatenate()([a, b])
    gated = keras.layers.Multiply()([c, keras.layers.Activation("sigmoid")(c)])
    return keras.Model(x, keras.layers.Conv2D(2, 1)(gated))


@pytest.fixture(scope="module")
def end_to_end() -> dict[str, bytes]:
    import keras

    from tinymlaas.squeeze.convert import Quantization, convert

    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    models = {}
    for name, build in (("resnet_block", _resnet_block), ("pad_concat_gate", _pad_concat_gate)):
        model = build()
        representative = rng.normal(size=(32, *model.input_shape[1:])).astype(np.float32)
        models[name] = convert(model, Quantization.INT8, representative)
    return models


@pytest.mark.parametrize(
    ("name", "ops"),
    [
        ("resnet_block", {"ADD"}),
        ("pad_concat_gate", {"PAD", "CONCATENATION", "LOGISTIC", "MUL"}),
    ],
)
def test_generated_module_is_bit_exact_with_tflm(
    end_to_end: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory, name: str, ops: set[str]
) -> None:
    from tinymlaas.compilers.native.codegen import generate
    from tinymlaas.compilers.native.host import HostModule

    data = end_to_end[name]
    graph = read_graph(data)
    assert ops <= {node.op for node in graph.nodes}
    module = HostModule(generate(data), cache_dir=tmp_path_factory.mktemp(name))
    rng = np.random.default_rng(13)
    for sample in range(SAMPLES):
        x = rng.integers(-128, 128, size=graph.tensors[graph.inputs[0]].elements, dtype=np.int8)
        want = _run_tflm(data, graph, [x])
        got = module.run(x)
        assert got.tobytes() == want.tobytes(), f"{name}, sample {sample}: {np.flatnonzero(got != want)[:8]}"
