"""LwM2M path parsing: strict, canonical, ordered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import Path

ids = st.integers(0, 65535)
paths = st.lists(ids, min_size=1, max_size=4).map(lambda values: Path(*values))


@given(paths)
def test_str_and_parse_round_trip(path: Path) -> None:
    assert Path.parse(str(path)) == path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/3", Path(3)),
        ("/3/0", Path(3, 0)),
        ("/9/1/3", Path(9, 1, 3)),
        ("/3/0/11/2", Path(3, 0, 11, 2)),
        ("/65535/0", Path(65535, 0)),
    ],
)
def test_parse(text: str, expected: Path) -> None:
    assert Path.parse(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must start with '/'"),
        ("3/0", "must start with '/'"),
        ("/", "not a decimal id"),
        ("/3/", "not a decimal id"),
        ("//3", "not a decimal id"),
        ("/3//0", "not a decimal id"),
        ("/-1", "not a decimal id"),
        ("/3/+0", "not a decimal id"),
        ("/ 3", "not a decimal id"),
        ("/3/x", "not a decimal id"),
        ("/\uff13", "not a decimal id"),
        ("/65536", "outside 0..65535"),
        ("/3/0/99999999999999999999", "outside 0..65535"),
        ("/3/0/1/2/3", "more than 4 levels"),
        ("/03", "leading zero"),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Path.parse(text)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(InvalidInput):
        Path.parse(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None,), "object id is required"),
        ((3, None, 1), "gap"),
        ((-1,), "outside"),
        ((3, 65536), "outside"),
        ((True,), "not an integer"),
        (("3",), "not an integer"),
    ],
)
def test_constructor_validates(args: tuple, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Path(*args)


def test_levels_and_order() -> None:
    assert Path(3).is_object and Path(3, 0).is_instance
    assert Path(3, 0, 1).is_resource and Path(3, 0, 11, 0).is_resource_instance
    assert sorted([Path(26241, 0), Path(3, 0, 10), Path(3, 0, 9), Path(3), Path(3, 0, 9, 1)]) == [
        Path(3),
        Path(3, 0, 9),
        Path(3, 0, 9, 1),
        Path(3, 0, 10),
        Path(26241, 0),
    ]
    assert {Path(3, 0): 1}[Path.parse("/3/0")] == 1
