"""Provisioning over the REST API: operators make keys, shown once; viewers see who is provisioned."""

from __future__ import annotations

from helpers.servers import serve
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.provisioning import ActiveCredentials
from tinymlaas.settings import Settings


def test_an_operator_provisions_and_revokes_and_the_key_is_shown_once(tmp_path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data"))
    with serve(context) as api:
        made = api.client.post(
            "/provisioning", json={"endpoint": "pico-7", "board": "pico"}, headers=api.auth(Role.OPERATOR)
        )
        assert made.status_code == 201, made.text
        key = made.json()["psk_key"]
        assert made.json()["psk_identity"] == "pico-7" and len(key) == 16
        assert ActiveCredentials(context).psk("pico-7") == (key.encode(), "pico-7")

        again = api.client.post(
            "/provisioning", json={"endpoint": "pico-7", "board": "pico"}, headers=api.auth(Role.OPERATOR)
        )
        assert again.status_code == 409 and "rotate" in again.json()["detail"]

        listed = api.client.get("/provisioning", headers=api.auth(Role.VIEWER)).json()
        assert listed["count"] == 1 and listed["data"][0]["active"] is True
        assert key not in str(listed)

        denied = api.client.post(
            "/provisioning", json={"endpoint": "x-1", "board": "pico"}, headers=api.auth(Role.VIEWER)
        )
        assert denied.status_code == 403
        bad = api.client.post(
            "/provisioning", json={"endpoint": "<img>", "board": "pico"}, headers=api.auth(Role.OPERATOR)
        )
        assert bad.status_code == 422 and "endpoint name" in bad.json()["detail"]
        unknown = api.client.post(
            "/provisioning", json={"endpoint": "x-2", "board": "abacus"}, headers=api.auth(Role.OPERATOR)
        )
        assert unknown.status_code == 404

        revoked = api.client.delete("/provisioning/pico-7", headers=api.auth(Role.OPERATOR))
        assert revoked.status_code == 200 and revoked.json()["active"] is False
        assert ActiveCredentials(context).psk("pico-7") is None
