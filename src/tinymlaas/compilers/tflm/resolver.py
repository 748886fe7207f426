"""Which ``MicroMutableOpResolver`` method registers each TFLite builtin operator.

A generated resolver registers exactly the model's operators: each registered kernel costs flash,
and a missing one makes ``AllocateTensors`` fail on the device. Method names follow TFLM's
``tensorflow/lite/micro/micro_mutable_op_resolver.h`` (the revision whose kernels the
tflite-micro Python wheel carries); most are the builtin name in CamelCase
(``FULLY_CONNECTED`` -> ``AddFullyConnected``), the exceptions are listed in ``_IRREGULAR``.
"""

from __future__ import annotations

from collections.abc import Iterable

from tinymlaas.errors import UnsupportedModel

__all__ = ["TFLM_BUILTIN_OPS", "resolver_method", "resolver_methods"]

# Builtin operators TFLM's MicroMutableOpResolver can register (custom ops such as the signal
# library or Ethos-U are not builtins and cannot appear in ModelInfo.ops).
TFLM_BUILTIN_OPS: frozenset[str] = frozenset(
    {
        "ABS",
        "ADD",
        "ADD_N",
        "ARG_MAX",
        "ARG_MIN",
        "ASSIGN_VARIABLE",
        "AVERAGE_POOL_2D",
        "BATCH_MATMUL",
        "BATCH_TO_SPACE_ND",
        "BROADCAST_ARGS",
        "BROADCAST_TO",
        "CALL_ONCE",
        "CAST",
        "CEIL",
        "CONCATENATION",
        "CONV_2D",
        "COS",
        "CUMSUM",
        "DEPTHWISE_CONV_2D",
        "DEPTH_TO_SPACE",
        "DEQUANTIZE",
        "DIV",
        "DYNAMIC_UPDATE_SLICE",
        "ELU",
        "EMBEDDING_LOOKUP",
        "EQUAL",
        "EXP",
        "EXPAND_DIMS",
        "FILL",
        "FLOOR",
        "FLOOR_DIV",
        "FLOOR_MOD",
        "FULLY_CONNECTED",
        "GATHER",
        "GATHER_ND",
        "GREATER",
        "GREATER_EQUAL",
        "HARD_SWISH",
        "IF",
        "L2_NORMALIZATION",
        "L2_POOL_2D",
        "LEAKY_RELU",
        "LESS",
        "LESS_EQUAL",
        "LOG",
        "LOGICAL_AND",
        "LOGICAL_NOT",
        "LOGICAL_OR",
        "LOGISTIC",
        "LOG_SOFTMAX",
        "MAXIMUM",
        "MAX_POOL_2D",
        "MEAN",
        "MINIMUM",
        "MIRROR_PAD",
        "MUL",
        "NEG",
        "NOT_EQUAL",
        "PACK",
        "PAD",
        "PADV2",
        "PRELU",
        "QUANTIZE",
        "READ_VARIABLE",
        "REDUCE_ALL",
        "REDUCE_MAX",
        "REDUCE_MIN",
        "RELU",
        "RELU6",
        "RESHAPE",
        "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR",
        "REVERSE_V2",
        "ROUND",
        "RSQRT",
        "SELECT_V2",
        "SHAPE",
        "SIN",
        "SLICE",
        "SOFTMAX",
        "SPACE_TO_BATCH_ND",
        "SPACE_TO_DEPTH",
        "SPLIT",
        "SPLIT_V",
        "SQRT",
        "SQUARE",
        "SQUARED_DIFFERENCE",
        "SQUEEZE",
        "STRIDED_SLICE",
        "SUB",
        "SUM",
        "SVDF",
        "TANH",
        "TRANSPOSE",
        "TRANSPOSE_CONV",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "UNPACK",
        "VAR_HANDLE",
        "WHILE",
        "ZEROS_LIKE",
    }
)

# Where TFLM's method name is not the mechanical CamelCase of the builtin name.
_IRREGULAR: dict[str, str] = {
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul",
    "CONV_2D": "AddConv2D",
    "CUMSUM": "AddCumSum",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "L2_POOL_2D": "AddL2Pool2D",
    "MAX_POOL_2D": "AddMaxPool2D",
    "PADV2": "AddPadV2",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
}


def resolver_method(op: str) -> str:
    """The resolver method that registers ``op``; UnsupportedModel if TFLM has no kernel for it."""
    if op not in TFLM_BUILTIN_OPS:
        raise UnsupportedModel(
            f"Operator {op!r} has no TensorFlow Lite Micro kernel, so this model cannot be compiled "
            "for the tflm runtime"
        )
    return _IRREGULAR.get(op) or "Add" + "".join(part.capitalize() for part in op.split("_"))


def resolver_methods(ops: Iterable[str]) -> tuple[str, ...]:
    """Methods for a model's distinct operators, in a stable order; names every unsupported op at once."""
    distinct = sorted(set(ops))
    unsupported = [op for op in distinct if op not in TFLM_BUILTIN_OPS]
    if unsupported:
        raise UnsupportedModel(
            f"Operator(s) {', '.join(unsupported)} have no TensorFlow Lite Micro kernel, so this model "
            "cannot be compiled for the tflm runtime"
        )
    return tuple(resolver_method(op) for op in distinct)
