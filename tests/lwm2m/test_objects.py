"""Object definitions against the OMA registry, value validation, and the Object 9 update state machine."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.lwm2m.core import (
    OBJECTS,
    TRANSITIONS,
    ObjectDef,
    ObjectLink,
    ObjectRegistry,
    Path,
    ResourceDef,
    ResourceType,
    UpdateState,
    can_transition,
    coerce_value,
    format_text,
    parse_text,
)
from tinymlaas.lwm2m.core.model import resource_table

STR, INT, FLT, BOOL, OPQ, TIME, LNK = (
    ResourceType.STRING,
    ResourceType.INTEGER,
    ResourceType.FLOAT,
    ResourceType.BOOLEAN,
    ResourceType.OPAQUE,
    ResourceType.TIME,
    ResourceType.OBJLNK,
)

# (object id, resource id) -> (name, operations, type, multiple), copied from the OMA registry XML.
EXPECTED = {
    (3, 0): ("Manufacturer", "R", STR, False),
    (3, 1): ("Model Number", "R", STR, False),
    (3, 2): ("Serial Number", "R", STR, False),
    (3, 3): ("Firmware Version", "R", STR, False),
    (3, 4): ("Reboot", "E", None, False),
    (3, 9): ("Battery Level", "R", INT, False),
    (3, 10): ("Memory Free", "R", INT, False),
    (3, 11): ("Error Code", "R", INT, True),
    (3, 13): ("Current Time", "RW", TIME, False),
    (3, 16): ("Supported Binding and Modes", "R", STR, False),
    (3, 17): ("Device Type", "R", STR, False),
    (3, 18): ("Hardware Version", "R", STR, False),
    (3, 19): ("Software Version", "R", STR, False),
    (3, 21): ("Memory Total", "R", INT, False),
    (4, 0): ("Network Bearer", "R", INT, False),
    (4, 1): ("Available Network Bearer", "R", INT, True),
    (4, 2): ("Radio Signal Strength", "R", INT, False),
    (4, 3): ("Link Quality", "R", INT, False),
    (4, 4): ("IP Addresses", "R", STR, True),
    (4, 5): ("Router IP Addresses", "R", STR, True),
    (4, 6): ("Link Utilization", "R", INT, False),
    (4, 7): ("APN", "R", STR, True),
    (4, 8): ("Cell ID", "R", INT, False),
    (4, 9): ("SMNC", "R", INT, False),
    (4, 10): ("SMCC", "R", INT, False),
    (9, 0): ("PkgName", "R", STR, False),
    (9, 1): ("PkgVersion", "R", STR, False),
    (9, 2): ("Package", "W", OPQ, False),
    (9, 3): ("Package URI", "W", STR, False),
    (9, 4): ("Install", "E", None, False),
    (9, 5): ("Checkpoint", "R", LNK, False),
    (9, 6): ("Uninstall", "E", None, False),
    (9, 7): ("Update State", "R", INT, False),
    (9, 8): ("Update Supported Objects", "RW", BOOL, False),
    (9, 9): ("Update Result", "R", INT, False),
    (9, 10): ("Activate", "E", None, False),
    (9, 11): ("Deactivate", "E", None, False),
    (9, 12): ("Activation State", "R", BOOL, False),
    (9, 13): ("Package Settings", "RW", LNK, False),
    (9, 14): ("User Name", "W", STR, False),
    (9, 15): ("Password", "W", STR, False),
    (9, 16): ("Status Reason", "R", STR, False),
    (9, 17): ("Software Component Link", "R", LNK, True),
    (9, 18): ("Software Component tree length", "R", INT, False),
    (26241, 0): ("Runtime Name", "R", STR, False),
    (26241, 1): ("Runtime Version", "R", STR, False),
    (26241, 2): ("Supported Ops", "R", STR, True),
    (26241, 3): ("Arena RAM Available", "R", INT, False),
    (26241, 4): ("Slot Flash Available", "R", INT, False),
    (26241, 5): ("Accelerator", "R", STR, False),
    (26241, 6): ("Board", "R", STR, False),
    (26241, 10): ("Inference Count", "R", INT, False),
    (26241, 11): ("Mean Latency", "R", FLT, False),
    (26241, 12): ("P95 Latency", "R", FLT, False),
    (26241, 13): ("Last Result", "R", STR, False),
    (26241, 14): ("Confidence Histogram", "R", INT, True),
    (26241, 15): ("Inference Rate", "RW", FLT, False),
}


def test_registry_holds_the_five_objects() -> None:
    assert sorted(OBJECTS) == [3, 4, 9, 26241, 26242]
    assert [OBJECTS[i].name for i in (3, 4, 9, 26241, 26242)] == [
        "Device",
        "Connectivity Monitoring",
        "LWM2M Software Management",
        "TinyML Runtime",
        "Pipeline Stage",
    ]
    assert OBJECTS[9].multiple_instances and not OBJECTS[3].multiple_instances
    assert 26241 <= OBJECTS[26241].id <= 32768


@pytest.mark.parametrize(("key", "expected"), sorted(EXPECTED.items()))
def test_resource_matches_the_registry(key: tuple[int, int], expected: tuple) -> None:
    resource = OBJECTS[key[0]].resource(key[1])
    assert (resource.name, resource.operations, resource.type, resource.multiple) == expected


def test_software_management_lists_resources_0_to_18_and_units_are_set() -> None:
    assert sorted(OBJECTS[9].resources) == list(range(19))
    assert OBJECTS[4].resource(2).units == "dBm"
    assert OBJECTS[26241].resource(11).units == "ms"
    assert OBJECTS[26241].resource(15).units == "Hz"
    assert OBJECTS[26241].resource(3).units == "B"


def test_definitions_reject_their_own_mistakes() -> None:
    with pytest.raises(ValueError, match="only executable"):
        ResourceDef(0, "Reboot", "E", STR)
    with pytest.raises(ValueError, match="operations"):
        ResourceDef(0, "X", "RWX", STR)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        resource_table(ResourceDef(0, "A", "R", STR), ResourceDef(0, "B", "R", STR))
    with pytest.raises(ValueError, match="filed under"):
        ObjectDef(1, "X", "1.0", False, False, {1: ResourceDef(0, "A", "R", STR)})
    with pytest.raises(ValueError, match="registered twice"):
        ObjectRegistry([OBJECTS[3], OBJECTS[3]])


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        (STR, "abc", "abc"),
        (INT, 3, 3),
        (INT, 3.0, 3),
        (INT, -(2**63), -(2**63)),
        (ResourceType.UNSIGNED, 2**64 - 1, 2**64 - 1),
        (FLT, 2, 2.0),
        (FLT, 0.5, 0.5),
        (BOOL, True, True),
        (OPQ, bytearray(b"\x00\x01"), b"\x00\x01"),
        (TIME, 1700000000, 1700000000),
        (TIME, datetime(2024, 1, 1, tzinfo=UTC), 1704067200),
        (TIME, datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))), 1704067200),
        (LNK, "3:0", ObjectLink(3, 0)),
        (LNK, ObjectLink(9, 1), ObjectLink(9, 1)),
    ],
)
def test_coerce_accepts(type_: ResourceType, value: object, expected: object) -> None:
    result = coerce_value(type_, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (STR, b"abc"),
        (INT, True),
        (INT, "3"),
        (INT, 1.5),
        (INT, 2**63),
        (ResourceType.UNSIGNED, -1),
        (FLT, float("nan")),
        (FLT, float("inf")),
        (FLT, False),
        (BOOL, 1),
        (BOOL, "true"),
        (OPQ, "AAE="),
        (TIME, datetime(2024, 1, 1)),
        (TIME, "2024-01-01"),
        (LNK, "3-0"),
        (LNK, "70000:0"),
        (LNK, 3),
    ],
)
def test_coerce_rejects(type_: ResourceType, value: object) -> None:
    with pytest.raises(InvalidInput):
        coerce_value(type_, value)


def test_errors_name_the_path_and_the_type() -> None:
    with pytest.raises(InvalidInput, match=r"/3/0/9 Battery Level: expected integer, got str"):
        OBJECTS.coerce(Path(3, 0, 9), "full")


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        (Path(5, 0, 1), NotFound, "object 5 is not supported"),
        (Path(3, 0, 99), NotFound, "no resource 99"),
        (Path(3, 0), InvalidInput, "needs a resource path"),
        (Path(3, 0, 9, 0), InvalidInput, "single resource"),
        (Path(3, 0, 11), InvalidInput, "multiple resource"),
        (Path(3, 0, 4), InvalidInput, "executable"),
    ],
)
def test_registry_checks_paths(path: Path, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        OBJECTS.coerce(path, 1)


def test_coerce_all_returns_typed_values() -> None:
    decoded = {Path(3, 0, 9): 80.0, Path(3, 0, 11, 0): 0, Path(9, 0, 5): "3:0", Path(26241, 0, 11): 4}
    assert OBJECTS.coerce_all(decoded) == {
        Path(3, 0, 9): 80,
        Path(3, 0, 11, 0): 0,
        Path(9, 0, 5): ObjectLink(3, 0),
        Path(26241, 0, 11): 4.0,
    }


@pytest.mark.parametrize(
    ("type_", "value", "text"),
    [
        (STR, "héllo, world", "héllo, world"),
        (INT, -42, "-42"),
        (ResourceType.UNSIGNED, 7, "7"),
        (FLT, 0.1, "0.1"),
        (BOOL, True, "1"),
        (BOOL, False, "0"),
        (OPQ, b"\x00\xfe", "AP4="),
        (TIME, 1700000000, "1700000000"),
        (LNK, ObjectLink(3, 0), "3:0"),
    ],
)
def test_plain_text_round_trip(type_: ResourceType, value: object, text: str) -> None:
    assert format_text(type_, value) == text
    assert parse_text(type_, text) == value


@pytest.mark.parametrize(
    ("type_", "text"),
    [(INT, "1.5"), (INT, "x"), (FLT, "nan"), (FLT, "fast"), (BOOL, "true"), (OPQ, "@@"), (LNK, "3")],
)
def test_plain_text_rejects(type_: ResourceType, text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_text(type_, text)


# The Package Installation State Machine of OMA-TS-LWM2M_SwMgmt-V1_0 §5.1.2, written out independently.
SPEC_EDGES = {
    (UpdateState.INITIAL, UpdateState.DOWNLOAD_STARTED),
    (UpdateState.DOWNLOAD_STARTED, UpdateState.DOWNLOADED),
    (UpdateState.DOWNLOAD_STARTED, UpdateState.INITIAL),
    (UpdateState.DOWNLOADED, UpdateState.DELIVERED),
    (UpdateState.DOWNLOADED, UpdateState.INITIAL),
    (UpdateState.DELIVERED, UpdateState.INSTALLED),
    (UpdateState.DELIVERED, UpdateState.INITIAL),
    (UpdateState.INSTALLED, UpdateState.INITIAL),
    # Uninstall "ForUpdate" and the next download in one step (A/B slots keep the model running).
    (UpdateState.INSTALLED, UpdateState.DOWNLOAD_STARTED),
    # Uninstall with A/B slots: the fallback slot's package, tested when installed, is installed now.
    (UpdateState.INSTALLED, UpdateState.INSTALLED),
}


def test_update_state_values_follow_the_spec() -> None:
    assert [(state.name, state.value) for state in UpdateState] == [
        ("INITIAL", 0),
        ("DOWNLOAD_STARTED", 1),
        ("DOWNLOADED", 2),
        ("DELIVERED", 3),
        ("INSTALLED", 4),
    ]
    assert set(TRANSITIONS) == set(UpdateState)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(UpdateState, repeat=2)))
def test_every_update_state_pair(current: UpdateState, target: UpdateState) -> None:
    assert can_transition(current, target) == ((current, target) in SPEC_EDGES)
    assert can_transition(current, target) == (target in TRANSITIONS[current])


def test_every_state_is_reachable_and_can_return_to_initial() -> None:
    reachable = {UpdateState.INITIAL}
    frontier = [UpdateState.INITIAL]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(UpdateState)
    assert all(
        UpdateState.INITIAL in TRANSITIONS[state] for state in UpdateState if state != UpdateState.INITIAL
    )
