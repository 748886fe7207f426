from __future__ import annotations

from tinymlaas.services.auth import Role


def test_campaigns_list_filter_and_show(api, problem) -> None:
    listed = api.client.get("/campaigns", headers=api.auth(Role.VIEWER)).json()
    assert "cmp_seed" in [c["id"] for c in listed["data"]]
    shown = api.client.get("/campaigns/cmp_seed", headers=api.auth(Role.VIEWER)).json()
    assert [i["endpoint"] for i in shown["installations"]] == ["dev-a"]
    none = api.client.get("/campaigns", params={"state": "completed"}, headers=api.auth(Role.VIEWER)).json()
    assert "cmp_seed" not in [c["id"] for c in none["data"]]


def test_changes_need_an_operator_or_admin(api, problem) -> None:
    problem(api.client.post("/campaigns/cmp_seed/cancel"), 401)
    for role in (Role.VIEWER, Role.DATA_SCIENTIST):
        problem(api.client.post("/campaigns/cmp_seed/cancel", headers=api.auth(role)), 403)
        body = {"module": "mod_seed", "selector": "board:pico"}
        problem(api.client.post("/campaigns", json=body, headers=api.auth(role)), 403)
    assert api.client.get("/campaigns/cmp_seed", headers=api.auth(Role.VIEWER)).json()["state"] == "running"


def test_create_reaches_the_service_and_reports_its_refusal(api, problem) -> None:
    body = {"module": "mod_seed", "selector": "board:pico"}
    refused = problem(api.client.post("/campaigns", json=body, headers=api.auth(Role.OPERATOR)), 422)
    assert refused["type"] == "urn:tinymlaas:problem:invalid-input"
    assert "mod_seed" in refused["detail"]
    missing = {"module": "mod_missing", "selector": "board:pico"}
    problem(api.client.post("/campaigns", json=missing, headers=api.auth(Role.OPERATOR)), 404)
    bad = {"module": "mod_seed", "stages": [], "max_failures": "many"}
    problem = problem(api.client.post("/campaigns", json=bad, headers=api.auth(Role.OPERATOR)), 422)
    assert {"selector", "stages"} <= {e["field"] for e in problem["errors"]}


def test_an_operator_cancels_and_then_rolls_back(api, problem) -> None:
    cancelled = api.client.post("/campaigns/cmp_seed/cancel", headers=api.auth(Role.OPERATOR))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["installations"][0]["state"] == "cancelled"
    rolled = api.client.post("/campaigns/cmp_seed/rollback", headers=api.auth(Role.ADMIN))
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["state"] == "rolled_back"
    problem(api.client.post("/campaigns/cmp_missing/rollback", headers=api.auth(Role.ADMIN)), 404)
