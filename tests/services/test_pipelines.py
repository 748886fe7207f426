"""Declaring and applying pipelines in the store: every node gated before anything is sent, one
campaign per stage, and the per-stage view joining what the nodes reported."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tinymlaas.errors import Conflict, InvalidInput
from tinymlaas.services.context import Context
from tinymlaas.services.pipelines import (
    apply_pipeline,
    create_pipeline,
    list_pipelines,
    pipeline_status,
    show_pipeline,
    stop_pipeline,
)
from tinymlaas.services.splitting import build_split, plan_model_split
from tinymlaas.storage.repositories import DeviceRepository

DECLARATION = """
name = "{name}"
[[stages]]
name = "gate"
model = "digits-cnn"
nodes = ["{source}"]
condition = "not:0"
link = "ble"
[[stages]]
name = "classify"
model = "digits-cnn"
nodes = ["{relay}"]
"""


def _device(context: Context, endpoint: str, board: str, capabilities: dict[str, Any]) -> None:
    with context.session() as session:
        repository = DeviceRepository(session)
        repository.upsert_registration(
            endpoint,
            new_id=f"dev_{endpoint}",
            registration_id=f"r_{endpoint}",
            address="coap://127.0.0.1:9",
            lifetime=60,
            lwm2m_version="1.1",
            objects=["/9/0", "/26241/0", "/26242/0"],
            registered_at=datetime.now(UTC),
        )
        repository.set_reported(endpoint, board_id=board, capabilities=capabilities)


def _caps(runtime: str, ops: list[str]) -> dict[str, Any]:
    return {
        "runtime": runtime,
        "runtime_version": "1",
        "ops": ops,
        "arena_bytes_available": 1 << 20,
        "slot_flash_bytes": 1 << 22,
    }


ALL_OPS = ["CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE", "QUANTIZE"]


def test_a_pipeline_is_declared_listed_and_its_name_kept_unique(digits_cnn_store) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    created = create_pipeline(context, DECLARATION.format(name="listed", source="a", relay="b"), fmt="toml")
    assert created["state"] == "draft" and [s["name"] for s in created["stages"]] == ["gate", "classify"]
    assert show_pipeline(context, "listed")["id"] == created["id"]
    assert "listed" in [p["name"] for p in list_pipelines(context)]
    with pytest.raises(Conflict, match="exists"):
        create_pipeline(context, DECLARATION.format(name="listed", source="a", relay="b"), fmt="toml")


def test_unknown_nodes_refuse_the_pipeline_and_it_stays_a_draft(digits_cnn_store) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    create_pipeline(context, DECLARATION.format(name="ghosts", source="ghost-1", relay="ghost-2"), fmt="toml")
    with pytest.raises(
        InvalidInput, match=r"stage 'gate': no device 'ghost-1'.*stage 'classify': no device 'ghost-2'"
    ):
        apply_pipeline(context, "ghosts")
    assert show_pipeline(context, "ghosts")["state"] == "draft"


def test_a_node_lacking_an_op_gets_the_gate_refusing_the_whole_pipeline(digits_cnn_store) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    _device(context, "lack-mcu", "nano33ble", _caps("native", ALL_OPS))
    _device(context, "lack-gw", "rpi4", _caps("litert", ["FULLY_CONNECTED"]))
    create_pipeline(
        context, DECLARATION.format(name="lacking", source="lack-mcu", relay="lack-gw"), fmt="toml"
    )
    with pytest.raises(
        InvalidInput, match=r"gate refuses the pipeline: stage 'classify', node lack-gw:.*CONV_2D"
    ):
        apply_pipeline(context, "lacking")
    assert show_pipeline(context, "lacking")["state"] == "draft"


def test_applying_starts_one_campaign_per_stage_and_keeps_the_keys_private(digits_cnn_store) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    _device(context, "ok-mcu", "nano33ble", _caps("native", ALL_OPS))
    _device(context, "ok-gw", "rpi4", _caps("litert", ALL_OPS))
    create_pipeline(context, DECLARATION.format(name="fine", source="ok-mcu", relay="ok-gw"), fmt="toml")
    applied = apply_pipeline(context, "fine")
    assert applied["state"] == "applying"
    assert set(applied["campaigns"]) == {"gate", "classify"}
    assert "keys" not in str(applied) and all(len(ids) == 1 for ids in applied["campaigns"].values())
    with pytest.raises(InvalidInput, match="cannot become applying"):
        apply_pipeline(context, "fine")
    assert stop_pipeline(context, "fine")["state"] == "stopped"


def test_a_stage_joins_its_nodes_reports_and_names_the_silent_ones() -> None:
    spec = {"stages": [{"name": "classify", "nodes": ["gw-1", "gw-2", "gw-3"]}]}
    nodes = {
        "gw-1": {"online": True, "counters": {"messages_in": 10, "passed": 10, "compute_ms": 2.0,
                                              "end_to_end_ms": 100.0, "labelled": 10, "correct": 9,
                                              "messages_per_s": 1.5, "last_result": "7"}},
        "gw-2": {"online": True, "counters": {"messages_in": 30, "passed": 30, "compute_ms": 4.0,
                                              "end_to_end_ms": 200.0, "labelled": 30, "correct": 30,
                                              "messages_per_s": 2.5, "last_result": "3"}},
        "gw-3": {"online": False},
    }  # fmt: skip
    (stage,) = pipeline_status(spec, nodes)
    assert stage["reported"] == 2 and stage["offline"] == ["gw-3"]
    assert stage["messages_in"] == 40 and (stage["correct"], stage["labelled"]) == (39, 40)
    assert stage["compute_ms"] == pytest.approx((2.0 * 10 + 4.0 * 30) / 40)
    assert stage["end_to_end_ms"] == pytest.approx((100.0 * 10 + 200.0 * 30) / 40)
    assert stage["messages_per_s"] == pytest.approx(4.0)
    assert stage["last_results"] == {"gw-1": "7", "gw-2": "3"}


def test_a_cascade_stage_that_cannot_read_the_window_passed_on_is_refused(digits_cnn_store) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    plan = plan_model_split(context, "digits-cnn", "nano33ble:wifi:rpi4")
    interior = next(c["index"] for c in plan["candidates"] if 0 < c["index"] < plan["operators"])
    tail = build_split(context, plan["id"], cut=interior)["build"]["tail"]["model"]
    _device(context, "shape-mcu", "nano33ble", _caps("native", ALL_OPS))
    _device(context, "shape-gw", "rpi4", _caps("litert", ALL_OPS))
    declaration = DECLARATION.format(name="misread", source="shape-mcu", relay="shape-gw").replace(
        'name = "classify"\nmodel = "digits-cnn"', f'name = "classify"\nmodel = "{tail}"'
    )
    create_pipeline(context, declaration, fmt="toml")
    with pytest.raises(
        InvalidInput, match=r"stage 'classify' looks at the window stage 'gate' passes on, but"
    ):
        apply_pipeline(context, "misread")
    assert show_pipeline(context, "misread")["state"] == "draft"
