"""Tokens that expire, and the audit trail of every state-changing request, refusals included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from helpers.servers import Api, serve
from tinymlaas.cli.app import app
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.tables import ApiTokenRow


@pytest.fixture
def own_api(tmp_path) -> Iterator[Api]:
    with serve(Context(Settings(data_dir=tmp_path / "data"))) as api:
        yield api


def test_a_token_made_with_an_expiry_says_when_and_is_refused_after(own_api, problem) -> None:
    made = own_api.client.post(
        "/tokens",
        json={"role": "viewer", "name": "temp", "expires_in": "30d"},
        headers=own_api.auth(Role.ADMIN),
    )
    assert made.status_code == 201, made.text
    token = made.json()
    expires = datetime.fromisoformat(token["expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    bearer = {"Authorization": f"Bearer {token['secret']}"}
    assert own_api.client.get("/datasets", headers=bearer).status_code == 200
    listed = own_api.client.get("/tokens", headers=own_api.auth(Role.ADMIN)).json()["data"]
    assert {t["name"]: t["expires_at"] for t in listed}["temp"] == token["expires_at"]
    with own_api.context.session() as session:
        session.get(ApiTokenRow, token["id"]).expires_at = datetime.now(UTC) - timedelta(minutes=1)
    refused = problem(own_api.client.get("/datasets", headers=bearer), 401)
    assert "token expired" in refused["detail"]


def test_a_token_without_an_expiry_never_expires_and_a_bad_one_is_named(own_api, problem) -> None:
    made = own_api.client.post("/tokens", json={"role": "viewer"}, headers=own_api.auth(Role.ADMIN))
    assert made.json()["expires_at"] is None
    for text in ("soon", "30x", "0d", "-1d"):
        bad = own_api.client.post(
            "/tokens", json={"role": "viewer", "expires_in": text}, headers=own_api.auth(Role.ADMIN)
        )
        assert problem(bad, 422)["detail"], text


def test_changes_and_refusals_are_in_the_audit_trail_for_admins(own_api, problem) -> None:
    client = own_api.client
    created = client.post(
        "/datasets",
        json={"name": "audited", "generator": "gestures", "samples": 5},
        headers=own_api.auth(Role.DATA_SCIENTIST),
    )
    assert created.status_code == 201, created.text
    problem(client.post("/datasets", json={"name": "nope", "generator": "gestures"}), 401)
    problem(
        client.post(
            "/datasets", json={"name": "nope", "generator": "gestures"}, headers=own_api.auth(Role.VIEWER)
        ),
        403,
    )
    assert (
        client.get("/datasets", headers=own_api.auth(Role.VIEWER)).status_code == 200
    )  # reads are not recorded

    problem(client.get("/audit", headers=own_api.auth(Role.VIEWER)), 403)
    trail = client.get("/audit", headers=own_api.auth(Role.ADMIN))
    assert trail.status_code == 200, trail.text
    body = trail.json()
    assert body["count"] == 3
    forbidden, anonymous, dataset = body["data"]  # newest first
    assert dataset["action"] == "api:create_dataset" and dataset["target"] == "/api/v1/datasets"
    assert (
        dataset["actor"].startswith("token test data-scientist (tok_") and dataset["role"] == "data-scientist"
    )
    assert dataset["detail"] == {"method": "POST", "path": "/api/v1/datasets", "status": 201, "outcome": "ok"}
    assert anonymous["actor"] == "anonymous" and anonymous["detail"]["outcome"] == "denied"
    assert anonymous["detail"]["status"] == 401
    assert forbidden["actor"].startswith("token test viewer (") and forbidden["role"] == "viewer"
    assert forbidden["detail"]["outcome"] == "denied" and forbidden["detail"]["status"] == 403

    second = client.get("/audit", params={"limit": 1, "offset": 1}, headers=own_api.auth(Role.ADMIN)).json()
    assert second["count"] == 3 and [e["id"] for e in second["data"]] == [anonymous["id"]]


def test_the_cli_makes_expiring_tokens_lists_their_expiry_and_reads_the_trail(tmp_path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data"))
    create_token(context, Role.ADMIN, "forever")
    base = ["--data-dir", str(context.settings.data_dir)]
    runner = CliRunner()
    made = runner.invoke(
        app, [*base, "tokens", "create", "--role", "viewer", "--expires-in", "12h", "--json"]
    )
    assert made.exit_code == 0, made.output
    token = json.loads(made.output)
    assert datetime.fromisoformat(token["expires_at"]) - datetime.now(UTC) > timedelta(hours=11, minutes=59)
    table = runner.invoke(app, [*base, "tokens", "list"])
    assert "never" in table.output and token["expires_at"][:10] in table.output
    bad = runner.invoke(app, [*base, "tokens", "create", "--role", "viewer", "--expires-in", "forever"])
    assert bad.exit_code != 0
    trail = runner.invoke(app, [*base, "audit", "list", "--json"])
    assert trail.exit_code == 0, trail.output
    events = json.loads(trail.output)
    assert events["count"] == 1
    assert events["data"][0] | {"id": 0, "at": ""} == {
        "id": 0, "at": "", "actor": "cli", "role": "-", "action": "cli:tokens create", "target": token["id"],
        "detail": {"name": "viewer", "role": "viewer", "expires_at": token["expires_at"], "outcome": "ok"},
    }  # fmt: skip
    assert "Audit trail (1–1 of 1)" in runner.invoke(app, [*base, "audit", "list"]).output
