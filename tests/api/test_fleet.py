"""The fleet's health: the same verdicts over the API, in the CLI and on the dashboard."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from helpers.seeding import add_campaign, add_model_chain, register_device
from helpers.servers import serve
from tinymlaas.cli.app import app
from tinymlaas.services.audit import audit_page
from tinymlaas.services.auth import Role, list_tokens
from tinymlaas.services.context import Context
from tinymlaas.services.fleet_health import DEVICES_LISTED
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import DeviceRepository


def test_fleet_health_names_offline_devices_and_needs_a_token(api, problem) -> None:
    response = api.client.get("/fleet/health", headers=api.auth(Role.VIEWER))
    assert response.status_code == 200, response.text
    health = response.json()
    assert health["devices"] == health["online"] + health["offline"] >= 2
    assert {"kind": "offline", "endpoint": "dev-b"}.items() <= next(
        a for a in health["alerts"] if a["endpoint"] == "dev-b"
    ).items()
    assert "dev-a" not in health["silent"]
    assert isinstance(health["activity"], list)
    problem(api.client.get("/fleet/health"), 401)


def _token_id(api, role: Role) -> str:
    return next(t["id"] for t in list_tokens(api.context) if t["name"] == f"test {role}")


@pytest.mark.parametrize(
    ("state", "verdicts"),
    [
        ("running", (True, True, True)),
        ("completed", (False, True, False)),
        ("rolled_back", (False, False, False)),
    ],
)
def test_campaigns_carry_the_verdicts_of_their_state(tmp_path, state, verdicts) -> None:
    """can_cancel, can_rollback and active follow the campaign's transition table, on its own store."""
    context = Context(Settings(data_dir=tmp_path / "data"))
    now = datetime.now(UTC)
    with context.session() as session:
        add_model_chain(session, model_id="mdl_v", variant_id="var_v", module_id="mod_v", board="pico")
        register_device(DeviceRepository(session), "dev-v", now)
        add_campaign(
            session, campaign_id="cmp_v", module_id="mod_v", selector="board:pico", endpoint="dev-v",
            state=state, installation="sent" if state == "running" else "succeeded", at=now,
        )  # fmt: skip
    with serve(context) as api:
        campaign = api.client.get("/campaigns/cmp_v", headers=api.auth(Role.VIEWER)).json()
    assert campaign["state"] == state
    assert (campaign["can_cancel"], campaign["can_rollback"], campaign["active"]) == verdicts
    in_flight = state == "running"
    assert campaign["in_flight"] is in_flight
    assert [i["in_flight"] for i in campaign["installations"]] == [in_flight]


def test_cli_devices_health_prints_the_same_health(api) -> None:
    base = ["--data-dir", str(api.context.settings.data_dir), "devices", "health"]
    runner = CliRunner()
    as_json = runner.invoke(app, [*base, "--json"])
    assert as_json.exit_code == 0, as_json.output
    health = json.loads(as_json.output)
    assert any(a["kind"] == "offline" and a["endpoint"] == "dev-b" for a in health["alerts"])
    table = runner.invoke(app, base)
    assert table.exit_code == 0, table.output
    assert f"{health['devices']} devices: {health['online']} online" in table.output
    assert "dev-b" in table.output and "offline" in table.output


def test_an_alert_is_acknowledged_over_the_api_by_a_token_that_may_change_devices(api, problem) -> None:
    health = api.client.get("/fleet/health", headers=api.auth(Role.VIEWER)).json()
    alert = next(a for a in health["alerts"] if a["kind"] == "offline" and a["endpoint"] == "dev-b")
    assert alert["active"] is True and alert["acknowledged_by"] is None
    path = f"/fleet/alerts/{alert['id']}/ack"
    problem(api.client.post(path), 401)
    problem(api.client.post(path, headers=api.auth(Role.VIEWER)), 403)

    acked = api.client.post(path, headers=api.auth(Role.OPERATOR))
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert (body["id"], body["active"]) == (alert["id"], True)
    assert body["acknowledged_by"] == f"token test operator ({_token_id(api, Role.OPERATOR)})"
    assert datetime.fromisoformat(body["acknowledged_at"]) <= datetime.now(UTC)
    again = problem(api.client.post(path, headers=api.auth(Role.ADMIN)), 409)
    assert "acknowledged by token test operator" in again["detail"]
    problem(api.client.post("/fleet/alerts/alr_missing/ack", headers=api.auth(Role.OPERATOR)), 404)
    listed = api.client.get("/fleet/health", headers=api.auth(Role.VIEWER)).json()
    assert (
        next(a for a in listed["alerts"] if a["id"] == alert["id"])["acknowledged_by"]
        == body["acknowledged_by"]
    )
    (event,) = [
        e
        for e in audit_page(api.context)[0]
        if e["target"] == f"/api/v1{path}" and e["detail"]["status"] == 200
    ]
    assert event["actor"] == body["acknowledged_by"]


def test_cli_devices_ack_acknowledges_an_alert_and_health_lists_who(tmp_path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data"))
    with context.session() as session:
        devices = DeviceRepository(session)
        register_device(devices, "dev-c", datetime.now(UTC))
        devices.mark_offline("dev-c")
    base = ["--data-dir", str(tmp_path / "data"), "devices"]
    runner = CliRunner()
    (alert,) = json.loads(runner.invoke(app, [*base, "health", "--json"]).output)["alerts"]
    acked = runner.invoke(app, [*base, "ack", alert["id"], "--by", "olga", "--json"])
    assert acked.exit_code == 0, acked.output
    assert json.loads(acked.output)["acknowledged_by"] == "cli olga"
    table = runner.invoke(app, [*base, "health"])
    assert alert["id"] in table.output and "cli olga" in table.output
    again = runner.invoke(app, [*base, "ack", alert["id"]])
    assert again.exit_code == 1 and "acknowledged by cli olga" in str(again.exception)
    (event,) = [e for e in audit_page(context)[0] if e["action"] == "cli:devices ack"]
    assert (event["actor"], event["target"]) == ("cli olga", alert["id"])


def test_cli_devices_health_says_how_many_alerts_it_did_not_list(tmp_path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data"))
    with context.session() as session:
        devices = DeviceRepository(session)
        for i in range(DEVICES_LISTED + 3):
            register_device(devices, f"dev-{i:04d}", datetime.now(UTC))
            devices.mark_offline(f"dev-{i:04d}")
    table = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "devices", "health"])
    assert table.exit_code == 0, table.output
    total = DEVICES_LISTED + 3
    assert f"{total} devices: 0 online, {total} offline, 0 silent" in table.output
    assert f"Alerts: {DEVICES_LISTED} of {total} listed" in table.output
