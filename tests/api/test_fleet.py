"""The fleet's health: the same verdicts over the API, in the CLI and on the dashboard."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tinymlaas.cli.app import app
from tinymlaas.services.auth import Role


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


def test_campaigns_carry_the_verdicts_of_their_state(api) -> None:
    campaign = api.client.get("/campaigns/cmp_seed", headers=api.auth(Role.VIEWER)).json()
    assert campaign["state"] == "running"
    assert (campaign["can_cancel"], campaign["can_rollback"], campaign["active"]) == (True, True, True)
    assert campaign["in_flight"] is False
    assert [i["in_flight"] for i in campaign["installations"]] == [False]


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
