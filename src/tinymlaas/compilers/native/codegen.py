"""Generate the C99 module (``tmn_model.h/.c`` plus runtime kernels) from the IR and memory plan.

Output is deterministic: the same ``.tflite`` and scaling always give the same bytes, so module
hashes in manifests are stable and a rebuild can be verified.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from tinymlaas.compilers.native.graph import read_graph
from tinymlaas.compilers.native.ir import Graph, Node, Tensor
from tinymlaas.compilers.native.lowering import ALIASING_OPS, lowerings
from tinymlaas.compilers.native.plan import ALIGNMENT, MemoryPlan, plan_memory
from tinymlaas.compilers.native.qmath import activation_range
from tinymlaas.data.scaling import InputScaling, ScalingMethod
from tinymlaas.errors import UnsupportedModel

__all__ = ["RUNTIME_FILES", "Compiled", "compile_graph", "generate"]

_CTYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t"}
_NUMPY = {"int8": "<i1", "uint8": "<u1", "int16": "<i2", "int32": "<i4", "int64": "<i8"}
RUNTIME_FILES = ("tmn_kernels.h", "tmn_kernels.c", "tmn_extra.h", "tmn_extra.c")


def _runtime_file(name: str) -> bytes | None:
    path = resources.files("tinymlaas.compilers.native").joinpath("runtime", name)
    return path.read_bytes() if path.is_file() else None


def _c_identifier(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", text)[:40]


def _one_line(text: str) -> str:
    return " ".join(text.replace("*/", "* /").split())


def _float_literal(value: float) -> str:
    # The float32 value's own decimal form, so the C compiler cannot round it differently.
    return repr(float(np.float32(value))) + "f"


def _array_body(values: Sequence[int], per_line: int) -> str:
    lines = [
        "    " + ", ".join(str(int(v)) for v in values[i : i + per_line]) + ","
        for i in range(0, len(values), per_line)
    ]
    return "\n".join(lines)


class _Emitter:
    """Collects constant arrays and resolves tensor storage for the lowerings."""

    def __init__(self, graph: Graph, plan: MemoryPlan) -> None:
        self.graph = graph
        self.plan = plan
        self.arrays: list[str] = []
        self._tensor_arrays: dict[int, str] = {}
        self._names: set[str] = set()

    def _new_name(self, hint: str) -> str:
        base = f"tmn_{_c_identifier(hint)}"
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name

    def const_array(self, ctype: str, values: Sequence[int], hint: str) -> str:
        name = self._new_name(hint)
        per_line = 20 if ctype.endswith("8_t") else 8
        body = _array_body(list(values), per_line) if len(values) else "    0,"
        self.arrays.append(f"static const {ctype} {name}[] = {{\n{body}\n}};")
        return name

    def tensor(self, index: int) -> str:
        tensor = self.graph.tensors[index]
        if tensor.data is not None:
            if index not in self._tensor_arrays:
                if tensor.dtype not in _CTYPES:
                    raise UnsupportedModel(
                        f"constant tensor {tensor.name!r} has unsupported type {tensor.dtype}"
                    )
                values = np.frombuffer(tensor.data, _NUMPY[tensor.dtype]).tolist()
                self._tensor_arrays[index] = self.const_array(_CTYPES[tensor.dtype], values, f"t{index}")
            return self._tensor_arrays[index]
        buffer = self.plan.storage.get(index)
        if buffer is None:
            raise UnsupportedModel(f"tensor {tensor.name!r} has no storage (never produced)")
        if buffer.kind == "input":
            return "input"
        if buffer.kind == "output":
            return "output"
        return f"(tmn_scratch + {buffer.offset})"

    def activation_range(self, node: Node, out: Tensor) -> tuple[int, int]:
        assert out.quant is not None
        activation = str(node.options.get("fused_activation_function", "NONE"))
        try:
            return activation_range(activation, out.quant.scale[0], out.quant.zero_point[0])
        except UnsupportedModel as exc:
            raise UnsupportedModel(f"node {node.index} ({node.op}): {exc.detail}") from None


@dataclass(frozen=True)
class Compiled:
    """A generated module and the facts a benchmark or manifest wants without parsing JSON."""

    files: dict[str, bytes]
    graph: Graph
    plan: MemoryPlan
    scratch_bytes: int
    layer_ops: tuple[str, ...]
    layer_macs: tuple[int, ...]


def _macs(node: Node, graph: Graph) -> int:
    if not node.outputs or len(node.inputs) < 2 or node.inputs[1] < 0:
        return 0
    out = graph.tensors[node.outputs[0]].elements
    weights = graph.tensors[node.inputs[1]].shape
    if node.op == "CONV_2D" and len(weights) == 4:
        return out * weights[1] * weights[2] * weights[3]
    if node.op == "DEPTHWISE_CONV_2D" and len(weights) == 4:
        return out * weights[1] * weights[2]
    if node.op == "FULLY_CONNECTED" and len(weights) == 2:
        return out * weights[1]
    return 0


def _scaling_arrays(scaling: InputScaling, channels: int) -> tuple[list[float], list[float]]:
    if scaling.method is ScalingMethod.NONE:
        return [0.0], [1.0]
    if scaling.channels != channels:
        raise UnsupportedModel(
            f"the input scaling has {scaling.channels} channels but input 0 has {channels} on its last axis"
        )
    return list(scaling.offset), list(scaling.scale)


def _header(title: str, digest: str, graph: Graph, scratch: int, layer_count: int) -> str:
    inp = graph.tensors[graph.inputs[0]]
    out = graph.tensors[graph.outputs[0]]
    return f"""/*
 * tmn_model.h - native inference module for "{_one_line(title)}".
 * Generated by TinyMLaaS from model.tflite, sha256 {digest}. Do not edit.
 */
#ifndef TMN_MODEL_H
#define TMN_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

/* Input 0: int8, shape {list(inp.shape)}. Output 0: int8, shape {list(out.shape)}. */
#define TMN_INPUT_SIZE {inp.elements}
#define TMN_OUTPUT_SIZE {out.elements}
#define TMN_LAYER_COUNT {layer_count}
#define TMN_SCRATCH_BYTES {scratch}

/* Quantized input 0 -> quantized output 0. Returns 0 on success. */
int tmn_invoke(const int8_t *input, int8_t *output);

/* TFLite builtin operator name of each layer, in execution order. */
extern const char *const tmn_layer_ops[TMN_LAYER_COUNT];

/* Sensor-unit input (TMN_INPUT_SIZE floats) -> dequantized output 0 (TMN_OUTPUT_SIZE floats). */
int tmn_infer(const float *raw, float *out);

#ifdef __cplusplus
}}
#endif

#endif /* TMN_MODEL_H */
"""


def _infer_function(graph: Graph, scaling: InputScaling) -> str:
    inp = graph.tensors[graph.inputs[0]]
    out = graph.tensors[graph.outputs[0]]
    assert inp.quant is not None and out.quant is not None
    channels = inp.shape[-1] if inp.shape else 1
    offset, spread = _scaling_arrays(scaling, channels)
    return f"""/* Input scaling ({scaling.method.value}): the model sees (x - offset[c]) / spread[c]. */
static const float tmn_input_offset[{len(offset)}] = {{{", ".join(map(_float_literal, offset))}}};
static const float tmn_input_spread[{len(spread)}] = {{{", ".join(map(_float_literal, spread))}}};

int tmn_infer(const float *raw, float *out)
{{
    static int8_t q_in[TMN_INPUT_SIZE];
    static int8_t q_out[TMN_OUTPUT_SIZE];
    const float in_scale = {_float_literal(inp.quant.scale[0])};
    const float out_scale = {_float_literal(out.quant.scale[0])};
    int i;
    int status;
    for (i = 0; i < TMN_INPUT_SIZE; ++i) {{
        const int c = {"i % " + str(channels) if len(offset) > 1 else "0"};
        float v = (raw[i] - tmn_input_offset[c]) / tmn_input_spread[c];
        v = v / in_scale + (float){inp.quant.zero_point[0]};
        if (!(v > -256.0f)) {{
            v = -256.0f;
        }} else if (v > 256.0f) {{
            v = 256.0f;
        }}
        /* Round half to even in float32, as numpy.round does; no libm needed. */
        v = (v + 12582912.0f) - 12582912.0f;
        q_in[i] = (int8_t)(v < -128.0f ? -128 : (v > 127.0f ? 127 : (int)v));
    }}
    status = tmn_invoke(q_in, q_out);
    for (i = 0; i < TMN_OUTPUT_SIZE; ++i) {{
        out[i] = ((float)q_out[i] - (float){out.quant.zero_point[0]}) * out_scale;
    }}
    return status;
}}
"""


def compile_graph(tflite: bytes, *, scaling: InputScaling | None = None, title: str = "model") -> Compiled:
    """Read, plan and generate; the one entry point behind ``compile_tflite`` and ``memory_plan``."""
    table = lowerings()
    graph = read_graph(tflite, frozenset(table))
    if len(graph.inputs) != 1:
        raise UnsupportedModel(
            f"the model has {len(graph.inputs)} inputs; only single-input models are supported"
        )
    plan = plan_memory(graph)
    emitter = _Emitter(graph, plan)
    digest = hashlib.sha256(tflite).hexdigest()
    scratch = max(plan.scratch_bytes, ALIGNMENT)
    body: list[str] = []
    for node in graph.nodes:
        statement = table[node.op](node, graph, emitter)
        if node.op in ALIASING_OPS and not statement:
            statement = "/* shares its input's storage */"
        indented = "\n".join("    " + line if line else "" for line in statement.splitlines())
        body.append(
            f"    /* layer {node.index}: {node.op} */\n    TMN_LAYER_BEGIN({node.index});\n"
            f"{indented}\n    TMN_LAYER_END({node.index});"
        )
    out_tensor = graph.tensors[graph.outputs[0]]
    if plan.storage[graph.outputs[0]].kind == "input":
        body.append(f"    memcpy(output, input, {out_tensor.elements});")
    layer_ops = tuple(node.op for node in graph.nodes)
    extra = _runtime_file("tmn_extra.h") is not None
    ops_list = ",\n".join(f'    "{op}"' for op in layer_ops) if layer_ops else '    ""'
    model_c = f"""/*
 * tmn_model.c - native inference module for "{_one_line(title)}".
 * Generated by TinyMLaaS from model.tflite, sha256 {digest}. Do not edit.
 * Weights are const (flash); activations share one static scratch buffer at offsets fixed at
 * compile time (see memory_plan.json); input 0 and output 0 live in the caller's buffers.
 */
#include <string.h>

#include "tmn_model.h"
#include "tmn_kernels.h"
{'#include "tmn_extra.h"' + chr(10) if extra else ""}
#ifndef TMN_LAYER_BEGIN
#define TMN_LAYER_BEGIN(i)
#endif
#ifndef TMN_LAYER_END
#define TMN_LAYER_END(i)
#endif

static int8_t tmn_scratch[TMN_SCRATCH_BYTES] __attribute__((aligned(8)));

const char *const tmn_layer_ops[TMN_LAYER_COUNT] = {{
{ops_list}
}};

{chr(10).join(emitter.arrays)}

int tmn_invoke(const int8_t *input, int8_t *output)
{{
    (void)tmn_scratch;
    (void)input;
    (void)output;
{chr(10).join(body)}
    return 0;
}}

{_infer_function(graph, scaling or InputScaling(ScalingMethod.NONE))}"""
    files: dict[str, bytes] = {
        "tmn_model.h": _header(title, digest, graph, scratch, len(layer_ops)).encode(),
        "tmn_model.c": model_c.encode(),
    }
    for name in RUNTIME_FILES:
        data = _runtime_file(name)
        if data is not None:
            files[name] = data
    macs = tuple(_macs(node, graph) for node in graph.nodes)
    files["memory_plan.json"] = _plan_json(graph, plan, scratch, layer_ops, macs)
    files["README.md"] = _readme(title, digest, graph, scratch, layer_ops, macs).encode()
    return Compiled(files, graph, plan, scratch, layer_ops, macs)


def _plan_json(
    graph: Graph, plan: MemoryPlan, scratch: int, layer_ops: tuple[str, ...], macs: tuple[int, ...]
) -> bytes:
    tensors = [
        {
            "tensor": index,
            "name": graph.tensors[index].name,
            "storage": buffer.kind,
            "offset": buffer.offset,
            "size": graph.tensors[index].elements,
            "shares_with": plan.roots[index] if plan.roots[index] != index else None,
        }
        for index, buffer in sorted(plan.storage.items())
    ]
    document = {
        "scratch_bytes": scratch,
        "alignment": ALIGNMENT,
        "tensors": tensors,
        "layers": [
            {"index": i, "op": op, "macs": m} for i, (op, m) in enumerate(zip(layer_ops, macs, strict=True))
        ],
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def _readme(
    title: str, digest: str, graph: Graph, scratch: int, layer_ops: tuple[str, ...], macs: tuple[int, ...]
) -> str:
    inp = graph.tensors[graph.inputs[0]]
    out = graph.tensors[graph.outputs[0]]
    layers = "\n".join(f"| {i} | {op} | {m} |" for i, (op, m) in enumerate(zip(layer_ops, macs, strict=True)))
    return f"""# Native inference module: {_one_line(title)}

Plain C99 generated from `model.tflite` (sha256 `{digest}`): the weights are `static const`
arrays, the network is one function calling int8 kernels in order, and all memory is planned at
compile time. There is no interpreter, no allocator and no floating point in the kernels. The
kernels reproduce TensorFlow Lite Micro's reference integer arithmetic, so outputs are bit-exact
with the TFLM interpreter running the same `model.tflite`.

## API (`tmn_model.h`)

- `int tmn_invoke(const int8_t *input, int8_t *output);` quantized input 0
  ({_shape(inp.shape)}, `TMN_INPUT_SIZE` = {inp.elements} bytes) to quantized output 0
  ({_shape(out.shape)}, `TMN_OUTPUT_SIZE` = {out.elements} bytes). Returns 0 on success.
  Not reentrant: the scratch buffer is static.
- `int tmn_infer(const float *raw, float *out);` sensor-unit values in: applies the input
  scaling learnt at training time, quantizes, invokes and dequantizes output 0.
- `tmn_layer_ops[TMN_LAYER_COUNT]`: the TFLite operator name of each layer.
- `TMN_LAYER_BEGIN(i)` / `TMN_LAYER_END(i)`: empty hooks around layer `i`; define them with
  `-D` or `-include` to profile per layer.

## Build

Compile every `.c` file of the module together with the application:

    gcc -std=c99 -Wall -Wextra -O2 -c tmn_*.c
    arm-none-eabi-gcc -std=c99 -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -mthumb -Os -c tmn_*.c

No library is needed beyond `memcpy`.

## Memory plan

Activations share one static buffer, `tmn_scratch[TMN_SCRATCH_BYTES]` = {scratch} bytes,
8-byte aligned. Each tensor's live interval (from the layer producing it to the last layer
reading it) is known at compile time; tensors are placed largest first at the lowest offset that
does not overlap any tensor live at the same time. Reshapes share their input's bytes. Input 0
is read from the caller's buffer and output 0 written straight into the caller's buffer, so they
take no scratch. `memory_plan.json` lists every tensor's storage, offset and size.

## Layers

| # | op | MACs |
|---|----|------|
{layers}
"""


def _shape(shape: tuple[int, ...]) -> str:
    return "shape [" + ", ".join(map(str, shape)) + "]"


def generate(tflite: bytes, *, scaling: InputScaling | None = None, title: str = "model") -> dict[str, bytes]:
    """The module's files for a raw ``.tflite``, ``model.tflite`` included."""
    files = compile_graph(tflite, scaling=scaling, title=title).files
    files["model.tflite"] = bytes(tflite)
    return files
