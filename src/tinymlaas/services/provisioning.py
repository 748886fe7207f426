"""Device provisioning: each device gets a DTLS pre-shared key bound to its endpoint name.

A provisioned device proves its endpoint name by completing a DTLS-PSK handshake under that name as
PSK identity; the server refuses registrations for that endpoint in any other way. The key is made here,
stored for the server, and shown once: printed, returned by the API, or written straight into the agent's
state directory as its Security object (``lwm2m.core.DeviceCredentials``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, computed_field

from tinymlaas.errors import Conflict, Forbidden, NotFound
from tinymlaas.lwm2m.core import DeviceCredentials, check_endpoint_name, new_psk
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import CredentialRepository
from tinymlaas.storage.tables import DeviceCredentialRow

# How stale a server's view of the active credentials may be: a revocation takes effect within it.
CREDENTIALS_MAX_AGE_S = 2.0

__all__ = [
    "CREDENTIALS_MAX_AGE_S",
    "ActiveCredentials",
    "ProvisionedDevice",
    "authorize_endpoint",
    "default_server_uri",
    "provision_device",
    "provisioned_page",
    "revoke_device",
]


class ProvisionedDevice(BaseModel):
    """What a provisioned device is, without its key."""

    endpoint: str
    identity: str
    board: str | None
    created_at: datetime
    revoked_at: datetime | None

    @computed_field(description="False once revoked.")
    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _view(row: DeviceCredentialRow) -> ProvisionedDevice:
    return ProvisionedDevice(
        endpoint=row.endpoint,
        identity=row.identity,
        board=row.board_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def default_server_uri(ctx: Context) -> str:
    """Where a device on this host reaches the server's DTLS port, from the settings."""
    host = ctx.settings.coap_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    netloc = f"[{host}]" if ":" in host else host
    return f"coaps://{netloc}:{ctx.settings.coaps_port}"


def provision_device(
    ctx: Context,
    endpoint: str,
    board: str,
    *,
    server_uri: str | None = None,
    state_dir: Path | None = None,
    rotate: bool = False,
) -> DeviceCredentials:
    """Make ``endpoint``'s key (a new one with ``rotate``) and return its credentials, key included.

    With ``state_dir`` the credentials are also written there for an agent on this machine. A device
    already provisioned is a Conflict unless ``rotate``: its old key stops working, for a running
    server within ``CREDENTIALS_MAX_AGE_S`` (see ``ActiveCredentials``).
    """
    check_endpoint_name(endpoint)
    ctx.catalog.board(board)  # NotFound names the boards there are
    credentials = DeviceCredentials(
        endpoint=endpoint,
        server_uri=server_uri or default_server_uri(ctx),
        identity=endpoint,
        key=new_psk(),
    )
    with ctx.session() as session:
        repository = CredentialRepository(session)
        existing = repository.get(endpoint)
        if existing is not None and existing.revoked_at is None and not rotate:
            raise Conflict(f"device {endpoint!r} is already provisioned; rotate its key to provision it anew")
        if existing is not None:
            session.delete(existing)
            session.flush()
        repository.add(
            DeviceCredentialRow(
                endpoint=endpoint, identity=credentials.identity, psk=credentials.key, board_id=board
            )
        )
    if state_dir is not None:
        credentials.save(state_dir)
    return credentials


def revoke_device(ctx: Context, endpoint: str) -> ProvisionedDevice:
    """End a device's access: its key opens no new session and its registrations are refused."""
    with ctx.session() as session:
        row = CredentialRepository(session).get(endpoint)
        if row is None:
            raise NotFound(f"device {endpoint!r} is not provisioned")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        return _view(row)


def provisioned_page(
    ctx: Context, *, limit: int | None = None, offset: int = 0
) -> tuple[list[ProvisionedDevice], int]:
    with ctx.session() as session:
        rows, count = CredentialRepository(session).page(limit=limit, offset=offset)
        return [_view(row) for row in rows], count


def authorize_endpoint(ctx: Context, endpoint: str, peer: str | None) -> None:
    """Forbidden unless this request may act for ``endpoint``, by the store as it stands."""
    with ctx.session() as session:
        row = CredentialRepository(session).get(endpoint)
        _authorize(endpoint, peer, active=row is not None and row.revoked_at is None)


class ActiveCredentials:
    """The active device credentials as a server checks them, read from the store in bulk at most
    every ``max_age_s`` seconds.

    tinydtls asks for a key from inside a handshake, on the server's event loop, and every Register and
    Update checks that the device's credential is still active. Reading the store for each took a fifth
    of the server's event loop while 2,500 devices registered at once (profiled); this snapshot answers
    both. A revocation made anywhere (the CLI, the API, another server on the store) takes effect within
    ``max_age_s``. An identity or endpoint the snapshot lacks is looked up alone, so a device provisioned
    a moment ago gets in at once (and a stranger costs one indexed query, as every lookup did before).
    """

    def __init__(
        self,
        ctx: Context,
        max_age_s: float = CREDENTIALS_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ctx = ctx
        self._max_age_s = max_age_s
        self._clock = clock
        self._read_at = -math.inf
        self._keys: dict[str, tuple[bytes, str]] = {}
        self._endpoints: set[str] = set()

    def psk(self, identity: str) -> tuple[bytes, str] | None:
        """The key and endpoint of an active PSK identity; None for an unknown or revoked one."""
        self._refresh()
        found = self._keys.get(identity)
        if found is None:
            with self._ctx.session() as session:
                found = CredentialRepository(session).active_key(identity)
            if found is not None:
                self._keys[identity] = found
                self._endpoints.add(found[1])
        return found

    def authorize(self, endpoint: str, peer: str | None) -> None:
        """Forbidden unless this request may act for ``endpoint`` (see ``authorize_endpoint``)."""
        self._refresh()
        if endpoint in self._endpoints:
            _authorize(endpoint, peer, active=True)
        else:
            authorize_endpoint(self._ctx, endpoint, peer)

    def _refresh(self) -> None:
        if self._clock() - self._read_at < self._max_age_s:
            return
        with self._ctx.session() as session:
            keys = CredentialRepository(session).active_keys()
        self._keys = {identity: (psk, endpoint) for identity, psk, endpoint in keys}
        self._endpoints = {endpoint for _, _, endpoint in keys}
        self._read_at = self._clock()


def _authorize(endpoint: str, peer: str | None, *, active: bool) -> None:
    """Proven over DTLS (``peer``): the credential must still be active, as a revoked device keeps the
    session it opened before. Not proven (NoSec, a development setting): only endpoints that were never
    provisioned, so a provisioned device cannot be impersonated over plain CoAP.
    """
    if peer is not None and not active:
        raise Forbidden(f"device {endpoint!r} is no longer provisioned")
    if peer is None and active:
        raise Forbidden(f"device {endpoint!r} is provisioned: it registers over coaps:// only")
