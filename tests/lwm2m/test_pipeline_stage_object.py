"""Object 26242, Pipeline Stage: the resource table the server and the agent share."""

from __future__ import annotations

import pytest

from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import OBJECTS, Path, ResourceType
from tinymlaas.lwm2m.core.objects import PIPELINE_STAGE

STR, INT, FLT = ResourceType.STRING, ResourceType.INTEGER, ResourceType.FLOAT

EXPECTED = {
    0: ("Pipeline", "RW", STR, False),
    1: ("Stage", "RW", STR, False),
    2: ("Role", "RW", STR, False),
    3: ("Next Hops", "RW", STR, True),
    4: ("Condition", "RW", STR, False),
    5: ("Hop Key", "W", STR, False),
    6: ("Upstream Keys", "W", STR, True),
    7: ("Listen URI", "R", STR, False),
    8: ("Hop Link", "RW", STR, False),
    9: ("Fan-out", "RW", STR, False),
    10: ("Messages In", "R", INT, False),
    11: ("Messages Out", "R", INT, False),
    12: ("Passed", "R", INT, False),
    13: ("Filtered", "R", INT, False),
    14: ("Send Failures", "R", INT, False),
    15: ("Outbox", "R", INT, False),
    16: ("Mean Hop Latency", "R", FLT, False),
    17: ("Mean Compute", "R", FLT, False),
    18: ("Mean End-to-End", "R", FLT, False),
    19: ("Last Result", "R", STR, False),
    20: ("Labelled", "R", INT, False),
    21: ("Correct", "R", INT, False),
    22: ("Messages/s", "R", FLT, False),
}


def test_the_object_is_registered_in_the_vendor_range_with_one_instance() -> None:
    assert OBJECTS[26242] is PIPELINE_STAGE
    assert PIPELINE_STAGE.name == "Pipeline Stage" and 26241 < PIPELINE_STAGE.id <= 32768
    assert not PIPELINE_STAGE.multiple_instances and not PIPELINE_STAGE.mandatory
    assert sorted(PIPELINE_STAGE.resources) == list(range(24))


@pytest.mark.parametrize(("resource_id", "expected"), sorted(EXPECTED.items()))
def test_each_resource_has_its_fixed_id_name_operations_and_type(resource_id: int, expected: tuple) -> None:
    resource = PIPELINE_STAGE.resource(resource_id)
    assert (resource.name, resource.operations, resource.type, resource.multiple) == expected


def test_keys_can_be_written_but_never_read_and_latencies_are_in_ms() -> None:
    assert not any(PIPELINE_STAGE.resource(r).readable for r in (5, 6))
    assert all(PIPELINE_STAGE.resource(r).units == "ms" for r in (16, 17, 18))


def test_values_are_checked_against_the_table() -> None:
    assert OBJECTS.coerce(Path(26242, 0, 3, 1), "coaps://10.0.0.2:5684") == "coaps://10.0.0.2:5684"
    assert OBJECTS.coerce(Path(26242, 0, 16), 12) == 12.0
    with pytest.raises(InvalidInput, match="multiple resource"):
        OBJECTS.coerce(Path(26242, 0, 6), "src=00")
    with pytest.raises(InvalidInput, match="expected integer"):
        OBJECTS.coerce(Path(26242, 0, 10), "many")
