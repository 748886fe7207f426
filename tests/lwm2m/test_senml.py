"""SenML JSON (110) and CBOR (112) as LwM2M 1.1 uses them: round trips, the spec's example, bad payloads."""

from __future__ import annotations

import json

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import OBJECTS, ContentFormat, ObjectLink, Path, Record
from tinymlaas.lwm2m.core.senml import decode, decode_records, encode, encode_records

JSON = ContentFormat.SENML_JSON
CBOR = ContentFormat.SENML_CBOR

# Building Hypothesis's Unicode tables can make the very first draw slow on a cold cache.
relaxed = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
ids = st.integers(0, 65535)
resource_paths = st.builds(Path, ids, ids, ids, st.none() | ids)
values = st.one_of(
    st.text(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.binary(),
    st.builds(ObjectLink, ids, ids),
)


def typed(mapping: dict) -> list:
    """Compare values with their types: True == 1 and 1 == 1.0 must not pass for a round trip."""
    return sorted((path, type(value).__name__, value) for path, value in mapping.items())


@pytest.mark.parametrize("content_format", [JSON, CBOR])
@relaxed
@given(snapshot=st.dictionaries(resource_paths, values, max_size=12))
def test_snapshot_round_trip(content_format: ContentFormat, snapshot: dict) -> None:
    assert typed(decode(encode(snapshot, content_format), content_format)) == typed(snapshot)


@pytest.mark.parametrize("content_format", [JSON, CBOR])
@relaxed
@given(
    records=st.lists(
        st.builds(
            Record,
            resource_paths,
            st.none() | values,
            st.none() | st.floats(0, 2e9, allow_nan=False),
        ),
        max_size=8,
    )
)
def test_records_round_trip(content_format: ContentFormat, records: list[Record]) -> None:
    decoded = decode_records(encode_records(records, content_format), content_format)
    assert [(r.path, type(r.value), r.value, r.time) for r in decoded] == [
        (r.path, type(r.value), r.value, r.time) for r in records
    ]


# TS Core 1.1 §7.4.4: a Read of /3/0 answered in SenML JSON (a multiple resource's instances as "6/0").
SPEC_DEVICE_READ = """[
  {"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},
  {"n":"1","vs":"Lightweight M2M Client"},
  {"n":"2","vs":"345000123"},
  {"n":"3","vs":"1.0"},
  {"n":"6/0","v":1},
  {"n":"6/1","v":5},
  {"n":"7/0","v":3800},
  {"n":"7/1","v":5000},
  {"n":"8/0","v":125},
  {"n":"8/1","v":900},
  {"n":"9","v":100},
  {"n":"10","v":15},
  {"n":"11/0","v":0},
  {"n":"13","v":1367491215},
  {"n":"14","vs":"+02:00"},
  {"n":"16","vs":"U"}
]"""


def test_spec_example_decodes_and_encodes_back() -> None:
    values = decode(SPEC_DEVICE_READ, JSON)
    assert values[Path(3, 0, 0)] == "Open Mobile Alliance"
    assert values[Path(3, 0, 6, 1)] == 5
    assert values[Path(3, 0, 13)] == 1367491215
    assert len(values) == 16
    assert OBJECTS.coerce_all(values)[Path(3, 0, 16)] == "U"
    assert json.loads(encode(values, JSON)) == json.loads(SPEC_DEVICE_READ)


def test_rfc8428_base_time_and_base_value() -> None:
    payload = '[{"bn":"/26241/0/","bt":1.32e9,"bv":10,"n":"10","v":5,"t":-2},{"n":"10","v":7}]'
    records = decode_records(payload, JSON)
    assert [(r.path, r.value, r.time) for r in records] == [
        (Path(26241, 0, 10), 15, 1.32e9 - 2),
        (Path(26241, 0, 10), 17, 1.32e9),
    ]


def test_a_new_base_name_applies_to_the_records_after_it() -> None:
    payload = '[{"bn":"/3/0/","n":"0","vs":"a"},{"bn":"/9/1/","n":"7","v":2},{"n":"9","v":0}]'
    assert list(decode(payload, JSON)) == [Path(3, 0, 0), Path(9, 1, 7), Path(9, 1, 9)]


def test_base_name_compression() -> None:
    one_object = json.loads(encode({Path(9, 1, 7): 3, Path(9, 1, 9): 0}, JSON))
    assert one_object == [{"bn": "/9/1/", "n": "7", "v": 3}, {"n": "9", "v": 0}]
    two_objects = json.loads(encode({Path(3, 0, 0): "a", Path(4, 0, 0): 21}, JSON))
    assert two_objects == [{"n": "/3/0/0", "vs": "a"}, {"n": "/4/0/0", "v": 21}]
    assert json.loads(encode({}, JSON)) == []


def test_cbor_uses_rfc8428_integer_labels_and_text_vlo() -> None:
    assert cbor2.loads(encode({Path(3, 0, 0): "a", Path(3, 0, 13): 5}, CBOR)) == [
        {-2: "/3/0/", 0: "0", 3: "a"},
        {0: "13", 2: 5},
    ]
    payload = {Path(3, 0, 1): True, Path(9, 0, 2): b"\x01", Path(9, 0, 5): ObjectLink(3, 0)}
    assert cbor2.loads(encode(payload, CBOR)) == [
        {0: "/3/0/1", 4: True},
        {0: "/9/0/2", 8: b"\x01"},
        {0: "/9/0/5", "vlo": "3:0"},
    ]
    timed = cbor2.loads(encode_records([Record(Path(3, 0, 13), 1.5, 1e9)], CBOR))
    assert timed == [{-2: "/3/0/", 0: "13", 6: 1e9, 2: 1.5}]


def test_json_opaque_is_base64url_without_padding() -> None:
    assert json.loads(encode({Path(9, 0, 2): b"\xfb\xff"}, JSON)) == [{"bn": "/9/0/", "n": "2", "vd": "-_8"}]
    assert decode('[{"n":"/9/0/2","vd":"-_8="}]', JSON) == {Path(9, 0, 2): b"\xfb\xff"}


def test_name_only_records_for_composite_requests() -> None:
    records = decode_records('[{"n":"/3/0/0"},{"n":"/26241/0/10"}]', JSON)
    assert records == [Record(Path(3, 0, 0)), Record(Path(26241, 0, 10))]
    with pytest.raises(InvalidInput, match="has no value"):
        decode('[{"n":"/3/0/0"}]', JSON)


def test_cbor_ignores_unknown_integer_labels() -> None:
    assert decode(cbor2.dumps([{0: "/3/0/9", 2: 5, 23: "x"}]), CBOR) == {Path(3, 0, 9): 5}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ('{"n":"/3/0/0"}', "must be an array"),
        ("[1]", "not a map"),
        ('[{"n":"/3/0/0","v":NaN}]', "NaN is not a number"),
        ('[{"n":"3/0/0","v":1}]', "record 0: LwM2M path '3/0/0'"),
        ('[{"n":"/3/0","v":1}]', "not a resource"),
        ('[{"bn":"/3/0/","n":"x","v":1}]', "not a decimal id"),
        ('[{"bn":3,"n":"/3/0/1","v":1}]', "'bn' must be a string"),
        ('[{"n":5,"v":1}]', "'n' must be a string"),
        ('[{"n":"/3/0/0","v":1,"vs":"a"}]', "several values"),
        ('[{"n":"/3/0/0","v":"1"}]', "'v' must be a number"),
        ('[{"n":"/3/0/0","v":true}]', "'v' must be a number"),
        ('[{"n":"/3/0/0","vb":1}]', "'vb' has the wrong type"),
        ('[{"n":"/9/0/2","vd":"*"}]', "not base64url"),
        ('[{"n":"/9/0/5","vlo":"3"}]', "object link"),
        ('[{"n":"/3/0/0","vs":"a","t":"now"}]', "'t' must be a number"),
        ('[{"n":"/3/0/0","vs":"a","x_":1}]', "must-understand"),
        ('[{"n":"/3/0/0","v":1},{"n":"/3/0/0","v":2}]', "appears twice"),
    ],
)
def test_json_decode_errors(payload: str | bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode(payload, JSON)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff", "not valid CBOR"),
        (b"", "not valid CBOR"),
        (cbor2.dumps([]) + b"\x00", "1 bytes follow the array"),
        (cbor2.dumps({0: "/3/0/0"}), "must be an array"),
        (cbor2.dumps([{0: "/9/0/2", 8: "AAE"}]), "'vd' has the wrong type"),
        (cbor2.dumps([{1.5: "x"}]), "has the label"),
    ],
)
def test_cbor_decode_errors(payload: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode(payload, CBOR)


def test_cbor_refuses_text_input() -> None:
    with pytest.raises(InvalidInput, match="expected bytes"):
        decode("[]", CBOR)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({Path(3, 0): 1}, "name resources"),
        ({Path(3, 0, 9): 2**64}, "64 bits"),
        ({Path(3, 0, 9): float("inf")}, "cannot carry the float"),
        ({Path(3, 0, 9): [1]}, "cannot carry a list"),
    ],
)
def test_encode_errors(values: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        encode(values, JSON)


@pytest.mark.parametrize("content_format", [ContentFormat.TEXT_PLAIN, ContentFormat.LWM2M_TLV, 50])
def test_other_content_formats_are_refused(content_format: int) -> None:
    with pytest.raises(InvalidInput, match="not SenML"):
        encode({Path(3, 0, 9): 1}, content_format)
    with pytest.raises(InvalidInput, match="not SenML"):
        decode(b"[]", content_format)


def test_content_format_numbers() -> None:
    assert [(f.name, int(f)) for f in ContentFormat] == [
        ("TEXT_PLAIN", 0),
        ("LINK_FORMAT", 40),
        ("OCTET_STREAM", 42),
        ("SENML_JSON", 110),
        ("SENML_CBOR", 112),
        ("LWM2M_TLV", 11542),
    ]
