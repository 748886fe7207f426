"""One sensor sample as a device uploads it: the body of ``POST /dc/<dataset>`` on the LwM2M server.

The agent encodes, the server decodes; both sides share this module so the format has one definition.
The body is a CBOR map (Content-Format 60, application/cbor) with text keys:

    id     text      the device's own id for this sample, unique per dataset: the server stores each id
                     once, so a device that never heard the answer can send the same body again safely
    ep     text      the LwM2M endpoint name of the device that captured it
    label  text|null the class the device was told it is recording; null for an unlabelled sample
    dtype  text      numpy dtype name of the values, one of ``DTYPES``; the bytes are little-endian
    shape  [uint]    the array's shape, 1 to 4 positive dimensions
    data   bytes     the values, C order
    t      number    capture time, seconds since the Unix epoch

Keys the decoder does not know are ignored, so a newer device can add fields an older server skips.
Values keep their units: the server converts to float32 without scaling, so a device sends what the
dataset holds (pixels in [0, 1], audio in [-1, 1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cbor2
import numpy as np

from tinymlaas.errors import InvalidInput

__all__ = [
    "CBOR_CONTENT_FORMAT",
    "COLLECT_ROOT",
    "DTYPES",
    "MAX_UPLOAD_BYTES",
    "SampleUpload",
]

COLLECT_ROOT = "dc"  # first Uri-Path segment of the upload resource: /dc/<dataset>
CBOR_CONTENT_FORMAT = 60  # application/cbor (RFC 8949)
MAX_UPLOAD_BYTES = 1 << 20  # one encoded sample; a 96x96x3 float32 image is 108 KiB
DTYPES = frozenset({"float16", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32"})
_MAX_TEXT = 128  # characters of an id, endpoint name or label; the columns that keep them are this wide
_MAX_RANK = 4


def _text(body: dict[Any, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT or not value.isprintable():
        raise InvalidInput(f"sample upload: {key!r} must be 1-{_MAX_TEXT} printable characters")
    return value


@dataclass(frozen=True)
class SampleUpload:
    """One captured window. ``x`` keeps the device's dtype; the server casts it to float32."""

    sample_id: str
    endpoint: str
    label: str | None
    x: np.ndarray
    captured_at: float

    def encode(self) -> bytes:
        dtype = np.dtype(self.x.dtype)
        if dtype.name not in DTYPES:
            raise InvalidInput(f"sample upload: dtype {dtype.name} is not one of {', '.join(sorted(DTYPES))}")
        data = np.ascontiguousarray(self.x, dtype=dtype.newbyteorder("<")).tobytes()
        return cbor2.dumps(
            {
                "id": self.sample_id,
                "ep": self.endpoint,
                "label": self.label,
                "dtype": dtype.name,
                "shape": list(self.x.shape),
                "data": data,
                "t": float(self.captured_at),
            }
        )

    @classmethod
    def decode(cls, payload: bytes) -> SampleUpload:
        """The upload in ``payload``; InvalidInput naming the first field that is wrong."""
        try:
            body = cbor2.loads(payload)
        except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
            raise InvalidInput(f"sample upload: not valid CBOR ({exc})") from None
        if not isinstance(body, dict):
            raise InvalidInput(f"sample upload: the body must be a CBOR map, got {type(body).__name__}")
        sample_id = _text(body, "id")
        endpoint = _text(body, "ep")
        label = None if body.get("label") is None else _text(body, "label")
        dtype_name = body.get("dtype")
        if dtype_name not in DTYPES:
            raise InvalidInput(
                f"sample upload: 'dtype' {dtype_name!r} is not one of {', '.join(sorted(DTYPES))}"
            )
        shape = body.get("shape")
        if (
            not isinstance(shape, list)
            or not 0 < len(shape) <= _MAX_RANK
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise InvalidInput(
                f"sample upload: 'shape' must be 1-{_MAX_RANK} positive integers, got {shape!r}"
            )
        data = body.get("data")
        dtype = np.dtype(dtype_name).newbyteorder("<")
        expected = math.prod(shape) * dtype.itemsize
        if not isinstance(data, bytes) or len(data) != expected:
            got = f"{len(data)} bytes" if isinstance(data, bytes) else type(data).__name__
            raise InvalidInput(
                f"sample upload: 'data' must be {expected} bytes for {dtype_name} {tuple(shape)}, got {got}"
            )
        captured_at = body.get("t")
        if (
            not isinstance(captured_at, int | float)
            or isinstance(captured_at, bool)
            or not math.isfinite(captured_at)
        ):
            raise InvalidInput(f"sample upload: 't' must be seconds since the epoch, got {captured_at!r}")
        x = np.frombuffer(data, dtype=dtype).reshape(shape)
        return cls(sample_id, endpoint, label, x, float(captured_at))
