"""The split and pipeline routes: permissions, problems naming bad input, and the pipeline lifecycle."""

from __future__ import annotations

from tinymlaas.services.auth import Role

DECLARATION = {
    "name": "api-cascade",
    "stages": [
        {"name": "gate", "model": "mdl_seed", "nodes": ["dev-a"], "condition": "not:idle", "link": "ble"},
        {"name": "classify", "model": "mdl_seed", "nodes": ["dev-b"]},
    ],
}


def test_planning_a_split_is_a_job_and_bad_chains_are_refused_by_name(api, problem) -> None:
    writer = api.auth(Role.DATA_SCIENTIST)
    unknown_link = api.client.post(
        "/splits", json={"model": "mdl_seed", "chain": "pico:smoke:rpi4"}, headers=writer
    )
    assert "Unknown link 'smoke'" in problem(unknown_link, 422)["detail"]
    three_nodes = api.client.post(
        "/splits", json={"model": "mdl_seed", "chain": "pico:ble:rpi4:wifi:x86-64-host"}, headers=writer
    )
    assert "first two nodes" in problem(three_nodes, 422)["detail"]
    missing = api.client.post("/splits", json={"model": "nope", "chain": "pico:ble:rpi4"}, headers=writer)
    problem(missing, 404)
    for role in (Role.VIEWER, Role.OPERATOR):  # splitting makes models: a data scientist's work
        refused = api.client.post(
            "/splits", json={"model": "mdl_seed", "chain": "pico:ble:rpi4"}, headers=api.auth(role)
        )
        problem(refused, 403)
    assert api.client.get("/splits", headers=api.auth(Role.VIEWER)).json() == []


def test_a_pipeline_is_declared_read_gated_and_stopped_over_the_api(api, problem) -> None:
    writer, viewer = api.auth(Role.OPERATOR), api.auth(Role.VIEWER)
    created = api.client.post("/pipelines", json=DECLARATION, headers=writer)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "draft"
    problem(api.client.post("/pipelines", json=DECLARATION, headers=writer), 409)
    bad = {**DECLARATION, "name": "bad", "stages": DECLARATION["stages"][:1]}
    assert "stages" in problem(api.client.post("/pipelines", json=bad, headers=writer), 422)["detail"]
    shown = api.client.get("/pipelines/api-cascade", headers=viewer).json()
    assert [s["name"] for s in shown["stages"]] == ["gate", "classify"]
    assert [s["messages_in"] for s in shown["stages"]] == [0, 0]
    problem(api.client.post("/pipelines/api-cascade/apply", headers=viewer), 403)
    # dev-b reported no runtime: the gate cannot judge it, so nothing is applied.
    refused = api.client.post("/pipelines/api-cascade/apply", headers=writer)
    assert "dev-b has not reported its board and runtime" in problem(refused, 422)["detail"]
    assert api.client.get("/pipelines/api-cascade", headers=viewer).json()["state"] == "draft"
    stopped = api.client.post("/pipelines/api-cascade/stop", headers=writer)
    assert "cannot become stopped" in problem(stopped, 422)["detail"]
