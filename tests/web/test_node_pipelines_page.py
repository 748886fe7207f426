"""The Pipelines pages: declared pipelines listed, one drawn as a graph of its stages with each stage's
counts as its nodes reported them, Apply and Stop for operators only, and a refusal shown with why."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers.pages import texts
from helpers.seeding import add_model_chain, logged_in_client
from tinymlaas.deploy.pipelines import PipelineState
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.pipelines import create_pipeline, list_pipelines, record_progress, show_pipeline
from tinymlaas.settings import Settings
from tinymlaas.web.node_pipelines import pipeline_graph, stage_figures

DECLARATION = """
name = "{name}"
[[stages]]
name = "gate"
model = "wave"
nodes = ["{source}"]
condition = "not:background"
link = "ble"
[[stages]]
name = "classify"
model = "wave"
nodes = ["gw-1", "gw-2"]
"""

NODE_STATE = re.compile(r'data-testid="graph-node" data-node="([^"]+)" data-state="([^"]+)"')

# What the runner stores after reading the nodes: gw-2 is offline, so only two nodes report.
NODES: dict[str, Any] = {
    "mcu-1": {
        "online": True,
        "read_at": "2026-06-01T08:00:00+00:00",
        "latency_basis": "paced: the board's measured latency, 41 ms per inference",
        "counters": {
            "messages_in": 200, "messages_out": 50, "passed": 50, "filtered": 150, "send_failures": 1,
            "outbox": 3, "hop_latency_ms": 12.5, "compute_ms": 41.0, "end_to_end_ms": None,
            "last_result": "bell", "labelled": 0, "correct": 0, "messages_per_s": 2.0,
        },
    },
    "gw-1": {
        "online": True,
        "read_at": "2026-06-01T08:00:02+00:00",
        "latency_basis": "measured: wall time of the litert runtime on the emulating host",
        "counters": {
            "messages_in": 49, "messages_out": 0, "passed": 49, "filtered": 0, "send_failures": 0,
            "outbox": 0, "hop_latency_ms": None, "compute_ms": 3.25, "end_to_end_ms": 88.75,
            "last_result": "bell", "labelled": 40, "correct": 36, "messages_per_s": 0.5,
        },
    },
    "gw-2": {"online": False},
}  # fmt: skip


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Context:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("node-pipelines") / "data"))
    with context.session() as session:
        add_model_chain(session, model_id="mdl_w", variant_id="var_w", module_id="mod_w", board="pico")
    create_pipeline(context, DECLARATION.format(name="doorbell", source="mcu-1"), fmt="toml")
    create_pipeline(context, DECLARATION.format(name="ghosts", source="ghost-1"), fmt="toml")
    return context


@pytest.fixture(scope="module")
def operator(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.OPERATOR) as client:
        yield client


@pytest.fixture(scope="module")
def viewer(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.VIEWER) as client:
        yield client


def drawn(page: str, name: str) -> list[str]:
    """The text an SVG element marked ``name`` draws, its tooltip left out."""
    return texts(re.sub(r"<title>.*?</title>", "", page), name)


def _reported(context: Context) -> dict[str, Any]:
    """A running copy of the doorbell pipeline whose nodes reported what NODES says, stored the way
    the server's pipeline runner stores what it reads."""
    if not any(p["name"] == "doorbell-live" for p in list_pipelines(context)):
        spec = show_pipeline(context, "doorbell")["spec"]
        created = create_pipeline(context, json.dumps({**spec, "name": "doorbell-live"}), fmt="json")
        record_progress(
            context, created["id"], PipelineState.DRAFT, state="running", applied={"nodes": NODES}
        )
    return show_pipeline(context, "doorbell-live")


def test_the_list_shows_each_pipeline_its_stages_and_its_last_stage_results(viewer: TestClient) -> None:
    page = viewer.get("/pipelines")
    assert page.status_code == 200
    assert '<a href="/pipelines" class="current">Pipelines</a>' in page.text
    rows = texts(page.text, "pipeline-row")
    assert [r.split()[0] for r in rows] == ["ghosts", "doorbell"]  # newest first
    assert texts(page.text, "pipeline-stages") == ["gate → classify", "gate → classify"]
    assert texts(page.text, "pipeline-state") == ["draft", "draft"]
    assert texts(page.text, "pipeline-correct") == ["0 of 0 (—)", "0 of 0 (—)"]


def test_a_draft_is_drawn_with_its_stages_nodes_and_condition_and_zero_counts(viewer: TestClient) -> None:
    page = viewer.get("/pipelines/doorbell").text
    assert texts(page, "pipeline-state") == ["draft"]
    assert [s.split()[0] for s in drawn(page, "graph-stage")] == ["gate", "classify"]
    assert drawn(page, "graph-condition") == ["outputs not background"]
    nodes = dict(zip(drawn(page, "graph-node"), ["mcu-1", "gw-1", "gw-2"], strict=True))
    assert all(label.startswith("○") and label.endswith(name) for label, name in nodes.items())
    assert texts(page, "stage-in") == ["0", "0"] and texts(page, "stage-reported") == ["0 of 1", "0 of 2"]
    assert "the pipeline is declared, not applied" in texts(page, "pipeline-source")[0]
    assert texts(page, "stage-saving") == ["gate (condition not:background ): no output judged yet."]
    assert '<div id="live">' in page  # a draft does not change by itself


def test_reported_counts_are_drawn_per_stage_and_hop(context: Context, viewer: TestClient) -> None:
    _reported(context)
    page = viewer.get("/pipelines/doorbell-live").text
    assert 'id="live" data-poll' in page
    assert dict(NODE_STATE.findall(page)) == {"mcu-1": "online", "gw-1": "online", "gw-2": "offline"}
    assert drawn(page, "graph-node")[-1] == "✕ gw-2 (offline)"
    assert texts(page, "stage-reported") == ["1 of 1", "1 of 2"]
    assert texts(page, "stage-in") == ["200", "49"] and texts(page, "stage-out") == ["50", "0"]
    assert texts(page, "stage-filtered") == ["150", "0"] and texts(page, "stage-outbox") == ["3", "0"]
    assert texts(page, "stage-rate") == ["2.00", "0.50"]
    assert texts(page, "stage-hop")[0] == "12.50 ms" and texts(page, "stage-compute") == [
        "41.00 ms",
        "3.25 ms",
    ]
    assert texts(page, "stage-end-to-end")[1] == "88.75 ms"
    assert texts(page, "stage-correct")[1] == "36 of 40 (90.0 %)"
    assert texts(page, "stage-saving") == [
        "gate (condition not:background ): filtered 150 of 200 = 75.0 % never left this stage."
    ]
    bases = texts(page, "stage-basis")
    assert bases == [
        "gate, latencies: " + NODES["mcu-1"]["latency_basis"],
        "classify, latencies: " + NODES["gw-1"]["latency_basis"],
    ]
    assert texts(page, "pipeline-results") == ["49"] and texts(page, "pipeline-latency") == ["88.75 ms"]
    assert "last" in texts(page, "pipeline-source")[0] and "26242" in texts(page, "pipeline-source")[0]


def test_the_graph_puts_stages_left_to_right_and_grows_with_the_busiest_stage(context: Context) -> None:
    stages = stage_figures(_reported(context))
    graph = pipeline_graph(stages)
    gate, classify = graph["boxes"]
    assert gate["x"] + gate["w"] < classify["x"] and gate["h"] == classify["h"]
    assert [n["y"] for n in classify["nodes"]] == sorted(n["y"] for n in classify["nodes"])
    assert classify["nodes"][-1]["y"] < classify["y"] + classify["h"]
    (edge,) = graph["edges"]
    assert (edge["x1"], edge["label"]) == (gate["x"] + gate["w"], "outputs not background")
    assert [u["text"] for u in edge["under"]] == ["ble link", "fanout: round-robin"]


def test_a_viewer_sees_no_apply_and_is_refused(context: Context, viewer: TestClient) -> None:
    page = viewer.get("/pipelines/doorbell").text
    assert 'data-testid="pipeline-apply"' not in page and 'data-testid="pipeline-stop"' not in page
    denied = viewer.post("/pipelines/doorbell/apply")
    assert denied.status_code == 403 and "deployments:write" in denied.text
    assert show_pipeline(context, "doorbell")["state"] == "draft"


def test_a_post_without_the_csrf_token_is_refused(context: Context, operator: TestClient) -> None:
    assert 'data-testid="pipeline-apply"' in operator.get("/pipelines/ghosts").text
    origin = operator.headers["Origin"]
    with TestClient(operator.app, cookies=operator.cookies) as bare:
        refused = bare.post("/pipelines/ghosts/stop", headers={"Origin": origin})
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert show_pipeline(context, "ghosts")["state"] == "draft"


def test_a_refused_apply_shows_every_reason_and_changes_nothing(
    context: Context, operator: TestClient
) -> None:
    refused = operator.post("/pipelines/ghosts/apply")
    assert refused.status_code == 422
    (reason,) = texts(refused.text, "flash-error")
    assert "the pipeline cannot be applied" in reason and "no device 'ghost-1' has registered" in reason
    assert "no device 'gw-1' has registered" in reason
    assert texts(refused.text, "pipeline-state") == ["draft"]
    assert show_pipeline(context, "ghosts")["state"] == "draft"


def test_stop_from_a_draft_is_refused_and_said_why(operator: TestClient) -> None:
    assert 'data-testid="pipeline-stop"' not in operator.get("/pipelines/ghosts").text
    refused = operator.post("/pipelines/ghosts/stop")
    assert refused.status_code >= 400
    assert "draft" in texts(refused.text, "flash-error")[0]
