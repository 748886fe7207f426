"""The LwM2M server: one CoAP endpoint serving registration and packages, and talking to devices.

Packages are served by the server itself at ``/pkg/<token>`` rather than by a separate file server, so a
device needs only CoAP: it gets a Package URI in object 9 and pulls it block-wise (RFC 7959) from the
address it registered with. A package is held in memory from ``publish`` on and every block is cut from
it as asked for (``lwm2m.transport``), with no store access or logging per block. Tokens are
unguessable names chosen by the deploy layer; unpublishing one makes later blocks of an interrupted
download answer 4.04.

A package is the operator's model and the token travels in clear over NoSec, so a package is served
only to the endpoints it was published for, and anyone else gets 4.03: under DTLS the endpoint the
security layer authenticated (``CoapRequest.peer``); over NoSec, where that is all there is to go on,
a request from the address one of those endpoints is registered from.

Other resources on the same endpoint (sample upload at ``/dc/...``, say) are mounted by the layer that
owns them, by their first path segment, so this package needs no database to serve them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tinymlaas.errors import Forbidden, InvalidInput, NotFound
from tinymlaas.lwm2m.core import (
    OBJECTS,
    ContentFormat,
    InMemoryRegistrationStore,
    ObjectRegistry,
    Registration,
    RegistrationStore,
)
from tinymlaas.lwm2m.server.client_requests import ClientRequests
from tinymlaas.lwm2m.server.registrations import (
    REGISTRATION_ROOT,
    Authorizer,
    Clock,
    Listener,
    RegistrationInterface,
)
from tinymlaas.lwm2m.transport import (
    DEFAULT_TIMEOUT,
    CoapEndpoint,
    CoapRequest,
    CoapResponse,
    Handler,
    PskLookup,
)

__all__ = ["DEFAULT_PORT", "DEFAULT_SECURE_PORT", "PACKAGE_ROOT", "Lwm2mServer"]

DEFAULT_PORT = 5683  # IANA "coap"
DEFAULT_SECURE_PORT = 5684  # IANA "coaps"
PACKAGE_ROOT = "pkg"
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{1,128}")  # URI-unreserved, so a token is one path segment as is


@dataclass(frozen=True)
class _Package:
    data: bytes
    endpoints: frozenset[str]
    # NoSec: the endpoint each address fetching the package was last found registered as. Every block
    # is checked, so a check must not scan all the endpoints a campaign published the package for.
    fetchers: dict[str, str] = field(default_factory=dict)


class Lwm2mServer:
    """Registration, presence, device requests and package downloads on one CoAP endpoint.

    ``registrations`` is the Registration interface (its ``store``, ``expire()`` and listeners);
    ``devices`` sends Read/Write/Execute/Discover/Observe to registered devices by endpoint name. When a
    registration ends (De-register, re-register, lifetime lapse) its observations are cancelled before
    the caller's listener runs. Create one with ``start``.
    """

    devices: ClientRequests
    _coap: CoapEndpoint
    _presence: asyncio.Task[None]

    def __init__(self, registrations: RegistrationInterface) -> None:
        self.registrations = registrations
        self._packages: dict[str, _Package] = {}
        self._mounted: dict[str, Handler] = {}

    @classmethod
    async def start(
        cls,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        store: RegistrationStore | None = None,
        clock: Clock = time.time,
        objects: ObjectRegistry = OBJECTS,
        presence_interval: float = 1.0,
        request_timeout: float = DEFAULT_TIMEOUT,
        on_registered: Listener | None = None,
        on_updated: Listener | None = None,
        on_deregistered: Listener | None = None,
        on_offline: Listener | None = None,
        resources: Mapping[str, Handler] | None = None,
        psk_lookup: PskLookup | None = None,
        nosec_port: int | None = None,
        authorize: Authorizer | None = None,
    ) -> Lwm2mServer:
        """Bind and start the presence check (every ``presence_interval`` seconds of real time).

        ``resources`` are mounted (see ``mount``) before the socket opens, so no request finds them missing.
        With ``psk_lookup`` the server speaks DTLS-PSK (coaps://) on ``port`` and, only when
        ``nosec_port`` is given, plain CoAP there too; without it, plain CoAP on ``port``. ``authorize``
        decides, beyond "a DTLS identity acts only for its own endpoint", who may register, update and
        de-register.
        """
        registrations = RegistrationInterface(
            store if store is not None else InMemoryRegistrationStore(),
            clock=clock,
            on_registered=on_registered,
            on_updated=on_updated,
            authorize=authorize,
        )
        server = cls(registrations)
        for root, handler in (resources or {}).items():
            server.mount(root, handler)
        registrations.on_deregistered = server._released_then(on_deregistered)
        registrations.on_offline = server._released_then(on_offline)
        if psk_lookup is None:
            server._coap = await CoapEndpoint.bind(host, port, server._handle)
        else:
            server._coap = await CoapEndpoint.bind_secure(
                host, port, server._handle, psk_lookup, nosec_port=nosec_port
            )
        server.devices = ClientRequests(
            server._coap, registrations.store, objects=objects, timeout=request_timeout
        )
        server._presence = asyncio.create_task(
            registrations.run_presence(presence_interval), name="LwM2M presence"
        )
        return server

    def _released_then(self, listener: Listener | None) -> Listener:
        """A listener that first cancels the ended registration's observations, then calls ``listener``."""

        async def release(registration: Registration) -> None:
            self.devices.cancel_all(registration.endpoint)
            if listener is not None:
                result = listener(registration)
                if inspect.isawaitable(result):
                    await result

        return release

    @property
    def port(self) -> int:
        return self._coap.port

    @property
    def uri(self) -> str:
        """``coap[s]://host:port`` of the bound address, the ``--server`` value agents on this host use."""
        return self._coap.uri

    @property
    def nosec_uri(self) -> str | None:
        """The plain CoAP address of a secured server that also accepts NoSec, else None."""
        return self._coap.nosec_uri

    @property
    def store(self) -> RegistrationStore:
        return self.registrations.store

    def publish(self, token: str, data: bytes, *, endpoints: Iterable[str]) -> str:
        """Serve ``data`` at ``/pkg/<token>`` to ``endpoints`` only (replacing what was there); the path.

        The endpoints need not be registered yet: each request is checked against the registrations
        as they stand when it arrives.
        """
        if not _TOKEN.fullmatch(token):
            raise InvalidInput(f"package token {token!r} must be 1-128 of A-Z a-z 0-9 . _ ~ -")
        allowed = frozenset(endpoints)
        if not allowed:
            raise InvalidInput(f"package {token!r} is published for no endpoint, so no device could fetch it")
        self._packages[token] = _Package(bytes(data), allowed)
        return f"/{PACKAGE_ROOT}/{token}"

    def mount(self, root: str, handler: Handler) -> None:
        """Serve every request whose first Uri-Path segment is ``root`` with ``handler``.

        A handler's TinymlaasError answers with the error's CoAP code and its detail as diagnostic payload.
        """
        if not _TOKEN.fullmatch(root) or root in (REGISTRATION_ROOT, PACKAGE_ROOT):
            raise InvalidInput(
                f"cannot mount {root!r}: a root is one path segment other than "
                f"{REGISTRATION_ROOT!r} and {PACKAGE_ROOT!r}"
            )
        self._mounted[root] = handler

    def unpublish(self, token: str) -> None:
        if self._packages.pop(token, None) is None:
            raise NotFound(f"package {token!r} is not published")

    async def _handle(self, request: CoapRequest) -> CoapResponse:
        root = request.path[0] if request.path else ""
        if root == REGISTRATION_ROOT:
            return await self.registrations.handle(request)
        if root == PACKAGE_ROOT and len(request.path) == 2:
            if request.method != "GET":
                return CoapResponse("4.05", b"packages are read-only")
            package = self._packages.get(request.path[1])
            if package is None:
                raise NotFound(f"package {request.path[1]!r} is not published")
            self._check_fetcher(request, package)
            return CoapResponse("2.05", package.data, ContentFormat.OCTET_STREAM)
        mounted = self._mounted.get(root)
        if mounted is not None:
            return await mounted(request)
        raise NotFound(f"{request.uri_path}: not an LwM2M server resource")

    def _check_fetcher(self, request: CoapRequest, package: _Package) -> None:
        """Forbidden unless ``request`` comes from one of the package's endpoints; the answer names no
        endpoint. The transport asks this for every block, so it looks up one registration, not all."""
        token = request.path[1]
        if request.peer is not None:
            if request.peer not in package.endpoints:
                raise Forbidden(f"package {token!r} is not published for endpoint {request.peer!r}")
            return
        store = self.registrations.store
        known = package.fetchers.get(request.remote)
        if known is not None:
            registration = store.get_by_endpoint(known)
            if registration is not None and registration.address == request.remote:
                return
            del package.fetchers[request.remote]
        for endpoint in package.endpoints:
            registration = store.get_by_endpoint(endpoint)
            if registration is not None and registration.address == request.remote:
                if len(package.fetchers) >= len(package.endpoints):
                    package.fetchers.clear()
                package.fetchers[request.remote] = endpoint
                return
        raise Forbidden(
            f"package {token!r} is served only to the devices it was published for, and no such device "
            f"is registered from {request.remote or 'an unknown address'} (NoSec: the address is checked)"
        )

    async def stop(self) -> None:
        """Stop presence checks, cancel observations and release the socket."""
        self._presence.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._presence
        for registration in self.store.all():
            self.devices.cancel_all(registration.endpoint)
        await self._coap.close()
