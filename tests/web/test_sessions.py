"""A dashboard session lives only as long as the token it was opened with."""

from __future__ import annotations

from helpers.seeding import logged_in_client
from tinymlaas.services.auth import Role, list_tokens, revoke_token
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings


def test_revoking_the_token_ends_its_dashboard_session(tmp_path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data"))
    with logged_in_client(context, Role.ADMIN, name="first admin"):
        pass  # the first admin token, kept so the one under test may be revoked
    with logged_in_client(context, Role.VIEWER, name="viewer") as client:
        assert client.get("/", follow_redirects=False).status_code == 200
        viewer = next(t for t in list_tokens(context) if t["name"] == "viewer")
        revoke_token(context, viewer["id"])
        after = client.get("/", follow_redirects=False)
    assert after.status_code == 303
    assert after.headers["location"].startswith("/login")
