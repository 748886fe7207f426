"""The sample upload body: what the agent encodes the server decodes, and a bad body names its fault."""

from __future__ import annotations

import cbor2
import numpy as np
import pytest

from tinymlaas.data.upload import SampleUpload
from tinymlaas.errors import InvalidInput


def _upload(x: np.ndarray, label: str | None = "wave") -> SampleUpload:
    return SampleUpload("id-1", "pico-1", label, x, 1_750_000_000.25)


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", "int16"])
def test_an_upload_comes_back_as_it_was_sent(dtype):
    x = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    decoded = SampleUpload.decode(_upload(x).encode())
    assert (decoded.sample_id, decoded.endpoint, decoded.label) == ("id-1", "pico-1", "wave")
    assert decoded.captured_at == 1_750_000_000.25
    assert decoded.x.dtype == np.dtype(dtype) and decoded.x.shape == (2, 3, 4)
    np.testing.assert_array_equal(decoded.x, x)


def test_an_unlabelled_upload_has_no_label():
    assert SampleUpload.decode(_upload(np.zeros(3, np.float32), None).encode()).label is None


def test_unknown_fields_are_ignored():
    body = cbor2.loads(_upload(np.ones(2, np.float32)).encode())
    body["firmware"] = "2.1"
    assert SampleUpload.decode(cbor2.dumps(body)).x.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": ""}, "'id' must be"),
        ({"ep": 7}, "'ep' must be"),
        ({"label": "x" * 129}, "'label' must be"),
        ({"dtype": "complex64"}, "'dtype'"),
        ({"dtype": "float64"}, "'data' must be 64 bytes"),
        ({"shape": [2, 0]}, "'shape'"),
        ({"shape": [1, 1, 1, 1, 8]}, "'shape'"),
        ({"data": "text"}, "got str"),
        ({"t": True}, "'t' must be"),
    ],
)
def test_a_bad_field_is_named(change, message):
    body = cbor2.loads(_upload(np.zeros((2, 4), np.float32)).encode())
    body.update(change)
    with pytest.raises(InvalidInput, match=message):
        SampleUpload.decode(cbor2.dumps(body))


def test_a_body_that_is_not_a_cbor_map_is_refused():
    with pytest.raises(InvalidInput, match="not valid CBOR"):
        SampleUpload.decode(b"\xff\x00")
    with pytest.raises(InvalidInput, match="must be a CBOR map"):
        SampleUpload.decode(cbor2.dumps([1, 2]))
