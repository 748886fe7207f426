"""Pipeline declarations: what a valid graph of stages is, and a clear error for each way it is not."""

from __future__ import annotations

import pytest

from tinymlaas.deploy.pipelines import (
    PIPELINE_TRANSITIONS,
    PipelineState,
    check_condition,
    parse_pipeline,
    transition,
)
from tinymlaas.errors import InvalidInput

CASCADE = """
name = "doorbell"
[[stages]]
name = "gate"
model = "scenes-gate"
nodes = ["mcu-1"]
condition = "not:background"
link = "ble"
[[stages]]
name = "classify"
model = "scenes"
nodes = ["gw-1", "gw-2"]
condition = "score>=0.8"
link = "wifi"
[[stages]]
name = "identify"
model = "faces"
nodes = ["cloud-1"]
"""


def test_a_three_stage_cascade_with_a_parallel_stage_parses() -> None:
    spec = parse_pipeline(CASCADE, fmt="toml")
    assert [s.name for s in spec.stages] == ["gate", "classify", "identify"]
    assert spec.stages[1].nodes == ["gw-1", "gw-2"] and spec.stages[1].fanout == "round-robin"
    assert spec.next_stage("gate") is spec.stages[1] and spec.next_stage("identify") is None
    assert parse_pipeline(spec.model_dump_json(), fmt="json") == spec


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('condition = "not:background"', 'condition = "maybe"'), "condition"),
        (('link = "ble"', 'link = "pigeon"'), "unknown link"),
        (('nodes = ["cloud-1"]', 'nodes = ["gw-1"]'), "a node runs one stage"),
        (('name = "classify"', 'name = "gate"'), "unique"),
        (
            ('model = "faces"', 'model = "faces"\nsplit = "spl_1"\npart = "tail"'),
            "exactly one of model or split",
        ),
        (('nodes = ["cloud-1"]', 'nodes = ["cloud-1"]\ncondition = "not:x"'), "last stage"),
        (('nodes = ["cloud-1"]', "nodes = []"), "nodes"),
        (('name = "doorbell"', 'name = "door bell"'), "letters, digits"),
        (('model = "scenes-gate"', 'model = "scenes-gate"\ncolour = "red"'), "colour"),
    ],
)
def test_a_bad_declaration_names_the_field_at_fault(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in CASCADE
    with pytest.raises(InvalidInput, match=message):
        parse_pipeline(CASCADE.replace(old, new, 1), fmt="toml")


def test_a_split_head_must_be_followed_by_its_tail_and_carries_no_condition() -> None:
    split = """
name = "split"
[[stages]]
name = "head"
split = "spl_1"
part = "head"
nodes = ["mcu-1"]
[[stages]]
name = "tail"
split = "spl_1"
part = "tail"
nodes = ["gw-1"]
"""
    assert parse_pipeline(split, fmt="toml").stages[0].part == "head"
    with pytest.raises(InvalidInput, match="must run its tail"):
        parse_pipeline(split.replace('split = "spl_1"\npart = "tail"', 'model = "other"'), fmt="toml")
    with pytest.raises(InvalidInput, match="no condition"):
        parse_pipeline(split.replace('part = "head"', 'part = "head"\ncondition = "not:x"'), fmt="toml")


def test_input_is_bounded_and_malformed_text_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at most"):
        parse_pipeline("#" * 70_000, fmt="toml")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        parse_pipeline("name = ", fmt="toml")
    with pytest.raises(InvalidInput, match="format"):
        parse_pipeline(CASCADE, fmt="yaml")
    with pytest.raises(InvalidInput, match="stages"):
        parse_pipeline('name = "one"\n[[stages]]\nname = "a"\nmodel = "m"\nnodes = ["x"]', fmt="toml")


def test_conditions() -> None:
    for good in ("", "not:background", "label:face", "score>=0.75", "score>=1"):
        assert check_condition(good) == good
    for bad in ("score>=2", "not:", "label:a b", "always"):
        with pytest.raises(InvalidInput):
            check_condition(bad)


def test_the_state_machine_is_a_table() -> None:
    assert transition(PipelineState.DRAFT, PipelineState.APPLYING) is PipelineState.APPLYING
    with pytest.raises(InvalidInput, match="cannot become"):
        transition(PipelineState.DRAFT, PipelineState.RUNNING)
    assert set(PIPELINE_TRANSITIONS) == set(PipelineState)
