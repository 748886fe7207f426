"""``/tokens``: listed without secrets, made with a secret shown once, revoked for good."""

from __future__ import annotations

import os
import subprocess
import sys

from fastapi.testclient import TestClient

from tinymlaas.server.app import create_app
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings


def test_tokens_are_listed_without_secrets(api) -> None:
    response = api.client.get("/tokens", headers=api.auth(Role.ADMIN))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] >= len(Role)
    assert {"test viewer", "test admin"} <= {t["name"] for t in body["data"]}
    assert all("secret" not in t for t in body["data"])
    assert not any(secret in response.text for secret in api.tokens.values())


def test_tokens_page_in_order_without_overlap(api) -> None:
    for n in range(3):
        create_token(api.context, Role.VIEWER, f"paged {n}")
    everything = api.client.get("/tokens", headers=api.auth(Role.ADMIN)).json()
    total = everything["count"]
    assert total == len(everything["data"]) >= 3
    pages = []
    for offset in range(0, total, 2):
        body = api.client.get(f"/tokens?limit=2&offset={offset}", headers=api.auth(Role.ADMIN)).json()
        assert body["count"] == total and len(body["data"]) <= 2
        pages.extend(t["id"] for t in body["data"])
    assert pages == [t["id"] for t in everything["data"]]
    past = api.client.get(f"/tokens?limit=2&offset={total}", headers=api.auth(Role.ADMIN)).json()
    assert past == {"data": [], "count": total}


def test_a_made_token_works_at_once_and_its_secret_is_shown_once(api) -> None:
    made = api.client.post("/tokens", json={"role": "operator", "name": "ci"}, headers=api.auth(Role.ADMIN))
    assert made.status_code == 201, made.text
    token = made.json()
    assert token["role"] == "operator" and token["name"] == "ci"
    assert "devices:write" in token["permissions"]
    secret = token["secret"]
    assert api.client.get("/devices", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listed = api.client.get("/tokens", headers=api.auth(Role.ADMIN))
    assert token["id"] in listed.text and secret not in listed.text


def test_a_revoked_token_is_refused_from_then_on(api, problem) -> None:
    _, secret = create_token(api.context, Role.VIEWER, "short-lived")
    mine = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/devices", headers=mine).status_code == 200
    token_id = next(t["id"] for t in api.client.get("/tokens", headers=api.auth(Role.ADMIN)).json()["data"]
                    if t["name"] == "short-lived")  # fmt: skip
    revoked = api.client.post(f"/tokens/{token_id}/revoke", headers=api.auth(Role.ADMIN))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked"] is True
    problem(api.client.get("/devices", headers=mine), 401)
    again = api.client.post(f"/tokens/{token_id}/revoke", headers=api.auth(Role.ADMIN))
    assert again.status_code == 200 and again.json()["revoked"] is True
    assert "known" not in problem(
        api.client.post("/tokens/tok_nobody/revoke", headers=api.auth(Role.ADMIN)), 404
    )


def test_only_admins_manage_tokens(api, problem) -> None:
    problem(api.client.get("/tokens"), 401)
    for role in (Role.VIEWER, Role.OPERATOR, Role.DATA_SCIENTIST):
        assert "tokens:read" in problem(api.client.get("/tokens", headers=api.auth(role)), 403)["detail"]
        problem(api.client.post("/tokens", json={"role": "admin"}, headers=api.auth(role)), 403)
        problem(api.client.post("/tokens/tok_x/revoke", headers=api.auth(role)), 403)


def test_a_bad_token_request_is_named(api, problem) -> None:
    admin = api.auth(Role.ADMIN)
    body = problem(api.client.post("/tokens", json={"role": "boss"}, headers=admin), 422)
    assert body["errors"][0]["field"] == "role"
    assert "admin" in body["detail"]
    body = problem(api.client.post("/tokens", json={"role": "viewer", "name": "x" * 129}, headers=admin), 422)
    assert body["errors"][0]["field"] == "name"


def test_the_last_admin_token_cannot_be_revoked(tmp_path, problem) -> None:
    context = Context(Settings(data_dir=tmp_path / "data"))
    admin, secret = create_token(context, Role.ADMIN, "only admin")
    with TestClient(create_app(context)) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        body = problem(client.post(f"/api/v1/tokens/{admin['id']}/revoke", headers=headers), 409)
        assert "last unrevoked admin token" in body["detail"]
        assert client.get("/api/v1/tokens", headers=headers).status_code == 200


def test_the_cli_revokes_a_token_the_api_then_refuses(api, problem) -> None:
    made = api.client.post(
        "/tokens", json={"role": "viewer", "name": "cli"}, headers=api.auth(Role.ADMIN)
    ).json()
    env = {**os.environ, "TINYMLAAS_DATA_DIR": str(api.context.settings.data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "tinymlaas", "tokens", "revoke", made["id"], "--json"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"revoked": true' in done.stdout
    problem(api.client.get("/devices", headers={"Authorization": f"Bearer {made['secret']}"}), 401)
    unknown = subprocess.run(
        [sys.executable, "-m", "tinymlaas", "tokens", "revoke", "tok_nobody"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert unknown.returncode != 0 and "tok_nobody" in unknown.stderr
