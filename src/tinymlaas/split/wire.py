"""The message one pipeline node sends the next: the cut tensor and the timings behind it.

A node that ran its stage POSTs the result to the next node at ``/hop/<pipeline>/<stage>``. The body
is a CBOR map (Content-Format 60) with short text keys, because every byte crosses a radio link:

    p   text        pipeline name
    s   text        the stage that produced the tensor
    n   uint        sequence number, per origin, increasing
    o   text        endpoint name of the first node (the one that read the sensor)
    c   number      unix ms when the origin read the sensor window
    x   bytes       the int8 tensor, C order, one byte per element
    d   [uint]      its shape
    q   number      its quantization scale (> 0)
    z   int         its zero point (-128..127)
    h   [[text, number, number]]  per node so far: endpoint, stage compute ms, unix ms it was sent
    l   text|null   ground truth when the window came from a labelled dataset (optional)

Unknown keys are ignored so a newer node can add fields an older one skips. This module needs only
``cbor2``: the device agent imports it on a gateway without TensorFlow or numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cbor2

from tinymlaas.errors import InvalidInput, TooLarge

__all__ = [
    "HOP_PATH",
    "MAX_HOPS",
    "MAX_HOP_BYTES",
    "MAX_NAME",
    "MAX_RANK",
    "HopMessage",
    "HopTiming",
    "decode",
    "encode",
]

HOP_PATH = "hop"  # POST coaps://next-node/hop/<pipeline>/<stage>
MAX_HOP_BYTES = 256 * 1024  # bound on an encoded message; a 64×64×48 int8 activation is 192 KiB
MAX_NAME = 128  # characters of a pipeline, stage, endpoint or label; the columns that keep them are this wide
MAX_RANK = 6  # TFLite kernels take tensors of at most rank 6 (TFLM's broadcast limit)
MAX_HOPS = 32  # nodes a message may pass; a pipeline is a handful of stages, never a loop
_CONTENT = "hop message"


@dataclass(frozen=True)
class HopTiming:
    """What one node spent on a message, so the last node can split end-to-end latency by cause."""

    node: str  # endpoint name
    compute_ms: float  # inference time of this node's stage (its latency basis applies)
    sent_at_ms: float  # unix ms when this node handed the message to CoAP


@dataclass(frozen=True)
class HopMessage:
    """One sensor window's activation on its way down a pipeline."""

    pipeline: str
    stage: str  # the stage that produced this tensor
    seq: int  # per origin, increasing
    origin: str  # endpoint of the first node
    created_at_ms: float  # unix ms when the origin read the sensor window
    tensor: bytes  # int8 bytes, C order
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    hops: tuple[HopTiming, ...] = ()
    label: str | None = None  # ground truth when the window came from a labelled dataset


def _bad(detail: str) -> InvalidInput:
    return InvalidInput(f"{_CONTENT}: {detail}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME or not value.isprintable():
        raise _bad(f"{field} must be 1-{MAX_NAME} printable characters, got {_show(value)}")
    return value


def _number(value: object, field: str) -> float:
    if not _is_number(value):
        raise _bad(f"{field} must be a finite number, got {_show(value)}")
    return float(value)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{type(value).__name__} of {len(text)} characters"


def _check(message: HopMessage) -> None:
    """Every rule a message obeys, applied on both sides so neither end can produce what the other refuses."""
    _name(message.pipeline, "pipeline")
    _name(message.stage, "stage")
    _name(message.origin, "origin")
    if message.label is not None:
        _name(message.label, "label")
    if not _is_int(message.seq) or message.seq < 0:
        raise _bad(f"seq must be a non-negative integer, got {_show(message.seq)}")
    _number(message.created_at_ms, "created_at_ms")
    if not _is_number(message.scale) or message.scale <= 0:
        raise _bad(f"scale must be a finite number > 0, got {_show(message.scale)}")
    if not _is_int(message.zero_point) or not -128 <= message.zero_point <= 127:
        raise _bad(f"zero_point must be an int8 value (-128..127), got {_show(message.zero_point)}")
    shape = message.shape
    if (
        not isinstance(shape, tuple)
        or not 0 < len(shape) <= MAX_RANK
        or not all(_is_int(d) and d > 0 for d in shape)
    ):
        raise _bad(f"shape must be 1-{MAX_RANK} positive integers, got {_show(shape)}")
    if not isinstance(message.tensor, bytes):
        raise _bad(f"tensor must be bytes, got {type(message.tensor).__name__}")
    if len(message.tensor) != math.prod(shape):
        raise _bad(f"tensor holds {len(message.tensor)} bytes but shape {shape} needs {math.prod(shape)}")
    if len(message.hops) > MAX_HOPS:
        raise _bad(f"{len(message.hops)} hops, more than {MAX_HOPS}")
    for i, hop in enumerate(message.hops):
        _name(hop.node, f"hops[{i}].node")
        if not _is_number(hop.compute_ms) or hop.compute_ms < 0:
            raise _bad(f"hops[{i}].compute_ms must be a finite number >= 0, got {_show(hop.compute_ms)}")
        _number(hop.sent_at_ms, f"hops[{i}].sent_at_ms")


def encode(message: HopMessage) -> bytes:
    """The CBOR body for ``message``; refuses what ``decode`` would refuse so a node never sends it."""
    _check(message)
    body: dict[str, Any] = {
        "p": message.pipeline,
        "s": message.stage,
        "n": message.seq,
        "o": message.origin,
        "c": float(message.created_at_ms),
        "x": message.tensor,
        "d": list(message.shape),
        "q": float(message.scale),
        "z": message.zero_point,
        "h": [[h.node, float(h.compute_ms), float(h.sent_at_ms)] for h in message.hops],
    }
    if message.label is not None:
        body["l"] = message.label
    data = cbor2.dumps(body)
    if len(data) > MAX_HOP_BYTES:
        raise TooLarge(f"{_CONTENT}: {len(data)} bytes encoded, more than {MAX_HOP_BYTES}")
    return data


def _hops(value: object) -> tuple[HopTiming, ...]:
    if not isinstance(value, list):
        raise _bad(f"'h' (hops) must be an array, got {_show(value)}")
    if len(value) > MAX_HOPS:
        raise _bad(f"{len(value)} hops, more than {MAX_HOPS}")
    hops = []
    for i, entry in enumerate(value):
        if not isinstance(entry, list) or len(entry) != 3:
            raise _bad(f"hops[{i}] must be [node, compute_ms, sent_at_ms], got {_show(entry)}")
        node, compute_ms, sent_at_ms = entry
        if not _is_number(compute_ms) or not _is_number(sent_at_ms):
            raise _bad(f"hops[{i}] timings must be finite numbers, got {_show(entry)}")
        hops.append(HopTiming(node=node, compute_ms=float(compute_ms), sent_at_ms=float(sent_at_ms)))
    return tuple(hops)


def decode(data: bytes) -> HopMessage:
    """The message in ``data``; InvalidInput (TooLarge for size) naming the first thing that is wrong."""
    if len(data) > MAX_HOP_BYTES:
        raise TooLarge(f"{_CONTENT}: {len(data)} bytes, more than {MAX_HOP_BYTES}")
    try:
        body = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError, EOFError) as exc:
        raise _bad(f"not valid CBOR ({exc})") from None
    if not isinstance(body, dict):
        raise _bad(f"the body must be a CBOR map, got {type(body).__name__}")
    required = {"p": "pipeline", "s": "stage", "n": "seq", "o": "origin", "c": "created_at_ms"}
    required |= {"x": "tensor", "d": "shape", "q": "scale", "z": "zero_point"}
    for key, field in required.items():
        if key not in body:
            raise _bad(f"missing {key!r} ({field})")
    shape = body["d"]
    if not isinstance(shape, list):
        raise _bad(f"'d' (shape) must be an array, got {_show(shape)}")
    for key, field, kind in (("n", "seq", "integer"), ("z", "zero_point", "integer")):
        if not _is_int(body[key]):
            raise _bad(f"{key!r} ({field}) must be an {kind}, got {_show(body[key])}")
    for key, field in (("c", "created_at_ms"), ("q", "scale")):
        _number(body[key], f"{key!r} ({field})")
    message = HopMessage(
        pipeline=body["p"],
        stage=body["s"],
        seq=body["n"],
        origin=body["o"],
        created_at_ms=float(body["c"]),
        tensor=body["x"],
        shape=tuple(shape),
        scale=float(body["q"]),
        zero_point=body["z"],
        hops=_hops(body.get("h", [])),
        label=body.get("l"),
    )
    _check(message)
    return message
