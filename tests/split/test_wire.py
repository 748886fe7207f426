"""The hop message: a round trip keeps every field, and each malformed body is refused by name."""

from __future__ import annotations

import math
from dataclasses import replace

import cbor2
import pytest

from tinymlaas.errors import InvalidInput, TooLarge
from tinymlaas.split.wire import (
    MAX_HOP_BYTES,
    MAX_HOPS,
    MAX_NAME,
    HopMessage,
    HopTiming,
    decode,
    encode,
)

MESSAGE = HopMessage(
    pipeline="kws",
    stage="head",
    seq=41,
    origin="dev-1",
    created_at_ms=1_760_000_000_123.5,
    tensor=bytes(range(256))[:60],
    shape=(1, 3, 4, 5),
    scale=0.0235,
    zero_point=-128,
    hops=(HopTiming("dev-1", 12.5, 1_760_000_000_140.0), HopTiming("gw-1", 3.0, 1_760_000_000_190.25)),
    label="yes",
)


def _body(**changes: object) -> dict[str, object]:
    body = cbor2.loads(encode(MESSAGE))
    for key, value in changes.items():
        if value is _MISSING:
            del body[key]
        else:
            body[key] = value
    return body


_MISSING = object()


def test_round_trip_keeps_every_field() -> None:
    assert decode(encode(MESSAGE)) == MESSAGE
    bare = replace(MESSAGE, hops=(), label=None)
    assert decode(encode(bare)) == bare
    assert "l" not in cbor2.loads(encode(bare))


def test_the_keys_are_compact_and_unknown_ones_are_ignored() -> None:
    body = cbor2.loads(encode(MESSAGE))
    assert set(body) == set("psnocxdqzhl")
    assert len(encode(MESSAGE)) < len(MESSAGE.tensor) + 160
    assert decode(cbor2.dumps({**body, "future": [1, 2]})) == MESSAGE


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"p": _MISSING}, r"missing 'p' \(pipeline\)"),
        ({"x": _MISSING}, r"missing 'x' \(tensor\)"),
        ({"p": ""}, "pipeline must be 1-128 printable"),
        ({"s": "x" * (MAX_NAME + 1)}, "stage must be 1-128 printable"),
        ({"o": 7}, "origin must be 1-128 printable"),
        ({"l": "a\nb"}, "label must be 1-128 printable"),
        ({"n": -1}, "seq must be a non-negative integer"),
        ({"n": "1"}, r"'n' \(seq\) must be an integer"),
        ({"n": True}, r"'n' \(seq\) must be an integer"),
        ({"c": math.inf}, r"'c' \(created_at_ms\) must be a finite number"),
        ({"q": 0.0}, "scale must be a finite number > 0"),
        ({"q": -0.5}, "scale must be a finite number > 0"),
        ({"q": math.nan}, r"'q' \(scale\) must be a finite number"),
        ({"z": 128}, r"zero_point must be an int8 value"),
        ({"z": 1.0}, r"'z' \(zero_point\) must be an integer"),
        ({"d": "1x60"}, r"'d' \(shape\) must be an array"),
        ({"d": []}, "shape must be 1-6 positive integers"),
        ({"d": [1, 0, 60]}, "shape must be 1-6 positive integers"),
        ({"d": [1] * 7 + [60]}, "shape must be 1-6 positive integers"),
        ({"d": [1, 61]}, r"tensor holds 60 bytes but shape \(1, 61\) needs 61"),
        ({"x": "not bytes"}, "tensor must be bytes"),
        ({"h": {}}, r"'h' \(hops\) must be an array"),
        ({"h": [["gw", 1.0]]}, r"hops\[0\] must be \[node, compute_ms, sent_at_ms\]"),
        ({"h": [["gw", "1", 2.0]]}, r"hops\[0\] timings must be finite numbers"),
        ({"h": [["", 1.0, 2.0]]}, r"hops\[0\].node must be 1-128"),
        ({"h": [["gw", -1.0, 2.0]]}, r"hops\[0\].compute_ms must be a finite number >= 0"),
        ({"h": [["gw", 1.0, 2.0]] * (MAX_HOPS + 1)}, "33 hops, more than 32"),
    ],
)
def test_each_malformed_field_is_refused_by_name(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=f"^hop message: {message}"):
        decode(cbor2.dumps(_body(**changes)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\x00", "not valid CBOR"),
        (b"", "not valid CBOR"),
        (cbor2.dumps([1, 2, 3]), "the body must be a CBOR map, got list"),
    ],
)
def test_what_is_not_a_cbor_map_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=f"^hop message: {message}"):
        decode(data)


def test_too_large_is_refused_before_decoding_and_never_encoded() -> None:
    with pytest.raises(TooLarge, match=f"more than {MAX_HOP_BYTES}"):
        decode(b"\xa0" + bytes(MAX_HOP_BYTES))
    big = replace(MESSAGE, tensor=bytes(MAX_HOP_BYTES), shape=(MAX_HOP_BYTES,))
    with pytest.raises(TooLarge, match=f"more than {MAX_HOP_BYTES}"):
        encode(big)
    fits = replace(MESSAGE, tensor=bytes(MAX_HOP_BYTES - 1024), shape=(MAX_HOP_BYTES - 1024,))
    assert decode(encode(fits)) == fits


def test_encode_refuses_what_decode_would() -> None:
    for broken in (
        replace(MESSAGE, seq=-1),
        replace(MESSAGE, scale=0.0),
        replace(MESSAGE, shape=(2, 31)),
        replace(MESSAGE, origin=""),
        replace(MESSAGE, hops=(HopTiming("gw", math.nan, 0.0),)),
    ):
        with pytest.raises(InvalidInput):
            encode(broken)


def test_the_wire_format_needs_neither_numpy_nor_tensorflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import tinymlaas.split.wire; "
        "print(sorted(m for m in ('numpy', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
