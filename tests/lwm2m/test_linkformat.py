"""CoRE Link Format for registration payloads: our output, real-world input, and malformed input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import (
    OBJECTS,
    Link,
    ObjectDef,
    ObjectRegistry,
    Path,
    format_links,
    object_paths,
    object_versions,
    parse_links,
)


def test_registration_payload() -> None:
    paths = [Path(26241, 0), Path(9, 1), Path(1, 0), Path(3, 0), Path(9, 0), Path(3, 0)]
    assert format_links(paths) == '</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</9/0>,</9/1>,</26241/0>'
    assert format_links([Path(3, 0)], content_format=None) == '</>;rt="oma.lwm2m",</3/0>'


def test_objects_newer_than_1_0_announce_their_version_once() -> None:
    device_1_1 = ObjectDef(3, "Device", "1.1", False, True, OBJECTS[3].resources)
    registry = ObjectRegistry([device_1_1, OBJECTS[9]])
    text = format_links([Path(3, 0), Path(3), Path(9), Path(5, 0)], objects=registry, content_format=112)
    assert text == '</>;rt="oma.lwm2m";ct=112,</3>;ver=1.1,</3/0>,</5/0>,</9>'


def test_format_refuses_resource_paths() -> None:
    with pytest.raises(InvalidInput, match="not resources"):
        format_links([Path(3, 0, 1)])


def test_our_payload_round_trips() -> None:
    paths = (Path(1, 0), Path(3, 0), Path(9, 0), Path(9, 1), Path(26241, 0))
    text = format_links(paths)
    links = parse_links(text)
    assert ",".join(str(link) for link in links) == text
    assert links[0] == Link("/", {"rt": "oma.lwm2m", "ct": "110"})
    assert object_paths(links) == paths


def test_leshan_style_payload_with_whitespace_quotes_and_flags() -> None:
    text = (
        '</>;rt="oma.lwm2m";ct="60 110 112 11543",\n'
        ' </1/0>, </3/0>;obs , </5>;ver=1.1,</3303/0>;title="Temp, \\"inside\\"; ";ct=110,\r\n'
        "</9/0>, </9/1>"
    )
    links = parse_links(text)
    assert [link.target for link in links] == ["/", "/1/0", "/3/0", "/5", "/3303/0", "/9/0", "/9/1"]
    assert links[0].params["ct"] == "60 110 112 11543"
    assert links[2].params == {"obs": None}
    assert links[4].params == {"title": 'Temp, "inside"; ', "ct": "110"}
    assert links[4].path == Path(3303, 0)
    assert links[0].path is None
    assert object_paths(links) == (Path(1, 0), Path(3, 0), Path(5), Path(9, 0), Path(9, 1), Path(3303, 0))
    assert object_versions(links) == {5: "1.1"}


def test_alternate_root() -> None:
    links = parse_links('</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>;ver=1.1')
    assert object_paths(links) == (Path(1, 0), Path(3, 0))
    assert object_versions(links) == {3: "1.1"}
    with pytest.raises(InvalidInput, match="outside the LwM2M root"):
        object_paths(parse_links('</lwm2m>;rt="oma.lwm2m",</3/0>'))


def test_attribute_names_are_case_insensitive_and_first_wins() -> None:
    (link,) = parse_links("</3/0>;CT=110;ct=112")
    assert link.params == {"ct": "110"}


def test_empty_payload_has_no_links() -> None:
    assert parse_links("  \n") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/3/0", "expected '<'"),
        ("</3/0", "unterminated '<'"),
        ("</3/0>;", "empty attribute name"),
        ("</3/0>;=1", "empty attribute name"),
        ('</3/0>;title="open', "unterminated quoted string"),
        ("</3/0> </4/0>", "unexpected '<'"),
        ("</3/0>,", "expected '<'"),
        ("</3/0>x", "unexpected 'x'"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_links(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [("</3/0/1>", "names a resource"), ("</rd>", "not an object link")],
)
def test_registration_link_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        object_paths(parse_links(text))


def test_malformed_version() -> None:
    with pytest.raises(InvalidInput, match=r"not 'major\.minor'"):
        object_versions(parse_links("</3/0>;ver=one"))


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
param_values = st.none() | st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
links = st.builds(
    Link,
    st.lists(st.integers(0, 65535), min_size=1, max_size=2).map(lambda ids: str(Path(*ids))),
    st.dictionaries(names, param_values, max_size=4),
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(links, max_size=5))
def test_any_links_round_trip(generated: list[Link]) -> None:
    assert parse_links(",".join(str(link) for link in generated)) == generated
