"""The fleet's health: the same verdicts over the API, in the CLI and on the dashboard."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from helpers.seeding import add_campaign, add_model_chain, register_device
from helpers.servers import serve
from tinymlaas.cli.app import app
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
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
