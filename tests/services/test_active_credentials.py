"""A server's view of the active device credentials: read from the store in bulk, never more than a
few seconds behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinymlaas.errors import Forbidden
from tinymlaas.services.context import Context
from tinymlaas.services.provisioning import ActiveCredentials, provision_device, revoke_device
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import CredentialRepository


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def context(tmp_path: Path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data"))


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read of the credentials: "bulk" for the whole snapshot, "one" for a single identity."""
    reads: list[str] = []
    bulk, one = CredentialRepository.active_keys, CredentialRepository.active_key

    def counted_bulk(self: CredentialRepository) -> list[tuple[str, bytes, str]]:
        reads.append("bulk")
        return bulk(self)

    def counted_one(self: CredentialRepository, identity: str) -> tuple[bytes, str] | None:
        reads.append("one")
        return one(self, identity)

    monkeypatch.setattr(CredentialRepository, "active_keys", counted_bulk)
    monkeypatch.setattr(CredentialRepository, "active_key", counted_one)
    return reads


def test_keys_and_checks_come_from_one_read_until_it_is_too_old(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = provision_device(context, "pico-1", "pico")
    provision_device(context, "pico-2", "pico")
    reads = count_reads(monkeypatch)
    clock = Clock()
    credentials = ActiveCredentials(context, max_age_s=2.0, clock=clock)

    key, endpoint = credentials.psk(first.identity)
    assert endpoint == "pico-1" and len(key) >= 16
    for _ in range(100):
        credentials.authorize("pico-2", peer="127.0.0.1:5684")
        credentials.psk(first.identity)
    assert reads == ["bulk"]

    revoke_device(context, "pico-2")
    clock.now = 1.9
    credentials.authorize("pico-2", peer="127.0.0.1:5684")  # not seen yet: at most 2 s behind
    clock.now = 2.0
    with pytest.raises(Forbidden, match="no longer provisioned"):
        credentials.authorize("pico-2", peer="127.0.0.1:5684")
    assert reads == ["bulk", "bulk"]


def test_an_identity_the_snapshot_lacks_is_looked_up_alone(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    provision_device(context, "pico-1", "pico")
    reads = count_reads(monkeypatch)
    clock = Clock()
    credentials = ActiveCredentials(context, max_age_s=2.0, clock=clock)
    assert credentials.psk("nobody") is None
    late = provision_device(context, "pico-9", "pico")  # provisioned while the server runs
    assert credentials.psk(late.identity) is not None  # found at once, not 2 s later
    credentials.authorize("pico-9", peer="127.0.0.1:5684")
    assert credentials.psk(late.identity) is not None
    assert reads == ["bulk", "one", "one"]  # the second lookup of pico-9 found it in the snapshot
    # Not proven over DTLS, a provisioned endpoint is refused; one never provisioned is let through.
    with pytest.raises(Forbidden, match="coaps:// only"):
        credentials.authorize("pico-9", peer=None)
    credentials.authorize("bench-1", peer=None)
