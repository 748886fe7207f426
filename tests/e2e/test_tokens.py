"""``tinymlaas tokens``: a secret printed once, never stored, and usable at once."""

from __future__ import annotations

from tinymlaas.services.auth import authenticate
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings


def test_tokens_create_prints_a_secret_that_list_never_shows(cli) -> None:
    created = cli.json("tokens", "create", "--role", "operator", "--name", "ops")
    assert created["role"] == "operator"
    assert "devices:write" in created["permissions"]
    listed = cli.json("tokens", "list")
    assert [t["id"] for t in listed] == [created["id"]]
    assert created["secret"] not in str(listed)
    assert authenticate(Context(Settings(data_dir=cli.data_dir)), created["secret"])["name"] == "ops"
    refused = cli("tokens", "create", "--role", "boss", ok=False)
    assert refused.returncode != 0
    assert "boss" in refused.stderr
