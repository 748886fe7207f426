"""The LwM2M Registration interface (TS Core 1.1 §6.2, §8.2) served over CoAP, and presence.

Register, Update and De-register are parsed and validated by ``lwm2m.core``; this module adds the
request routing, registration ids, the clock and the listeners. Presence is lifetime-based: a
registration whose lifetime passed without an Update is removed and reported offline. Time comes from an
injected clock (seconds, ``time.time`` by default) so that tests expire registrations without sleeping.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from tinymlaas.errors import Forbidden, InvalidInput, NotFound
from tinymlaas.lwm2m.core import (
    ContentFormat,
    Registration,
    RegistrationStore,
    object_paths,
    parse_links,
    parse_registration_query,
    parse_update_query,
)
from tinymlaas.lwm2m.core.paths import Path
from tinymlaas.lwm2m.transport import CoapRequest, CoapResponse

__all__ = ["REGISTRATION_ROOT", "Authorizer", "Clock", "Listener", "RegistrationInterface", "same_peer"]

_log = logging.getLogger(__name__)

REGISTRATION_ROOT = "rd"  # Register goes to /rd; the server hands out /rd/<id> (Leshan and Wakaama do too)

Clock = Callable[[], float]
Listener = Callable[[Registration], Awaitable[None] | None]
# Decides whether ``request`` may act for the endpoint it names; raises Forbidden when not.
Authorizer = Callable[[CoapRequest, str], None]


def same_peer(request: CoapRequest, endpoint: str) -> None:
    """The rule every server keeps: a request proven to come from one endpoint acts only for that one.

    Over NoSec (``peer`` None) nothing is proven; the server's own ``Authorizer`` decides what it allows
    there, and ``Lwm2mServer`` refuses NoSec outright unless it was started to accept it.
    """
    if request.peer is not None and request.peer != endpoint:
        raise Forbidden(f"this client is authenticated as {request.peer!r}, not {endpoint!r}")


def _new_id() -> str:
    return secrets.token_hex(6)


def _objects(request: CoapRequest) -> tuple[Path, ...]:
    if request.content_format not in (None, ContentFormat.LINK_FORMAT):
        raise InvalidInput(
            f"registration payload: content format {request.content_format} is not link format (40)"
        )
    try:
        text = request.payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("registration payload: not UTF-8 link format") from None
    return object_paths(parse_links(text))


async def _call(listener: Listener | None, registration: Registration, what: str) -> None:
    """Run a listener; a failing listener is logged and never fails the device's request."""
    if listener is None:
        return
    try:
        result = listener(registration)
        if inspect.isawaitable(result):
            await result
    except Exception:
        _log.exception("%s listener failed for %s", what, registration.endpoint)


class RegistrationInterface:
    """Serves ``/rd`` and ``/rd/<id>`` on a ``RegistrationStore``, and expires lapsed registrations.

    A client that registers again (it rebooted) replaces its old registration; listeners see that as
    ``on_deregistered(old)`` then ``on_registered(new)``, so whatever hung on the old one (observations)
    is released.
    """

    def __init__(
        self,
        store: RegistrationStore,
        *,
        clock: Clock = time.time,
        new_id: Callable[[], str] = _new_id,
        on_registered: Listener | None = None,
        on_updated: Listener | None = None,
        on_deregistered: Listener | None = None,
        on_offline: Listener | None = None,
        authorize: Authorizer | None = None,
    ) -> None:
        self.store = store
        self._authorize = authorize
        self.clock = clock
        self._new_id = new_id
        self.on_registered = on_registered
        self.on_updated = on_updated
        self.on_deregistered = on_deregistered
        self.on_offline = on_offline

    async def handle(self, request: CoapRequest) -> CoapResponse:
        """Answer a request whose path starts with ``rd``; errors surface as TinymlaasError codes."""
        match (request.method, request.path[1:]):
            case ("POST", ()):
                return await self._register(request)
            case ("POST", (registration_id,)):
                return await self._update(registration_id, request)
            case ("DELETE", (registration_id,)):
                return await self._deregister(registration_id, request)
            case (_, () | (_,)):
                return CoapResponse("4.05", f"{request.method} is not allowed on {request.uri_path}".encode())
        raise NotFound(f"{request.uri_path}: no such registration resource")

    def _check(self, request: CoapRequest, endpoint: str) -> None:
        same_peer(request, endpoint)
        if self._authorize is not None:
            self._authorize(request, endpoint)

    async def _register(self, request: CoapRequest) -> CoapResponse:
        query = parse_registration_query(request.query)
        self._check(request, query.endpoint)
        registration = Registration.from_request(
            query,
            registration_id=self._new_id(),
            objects=_objects(request),
            now=self.clock(),
            address=request.remote,
        )
        previous = self.store.add(registration)
        if previous is not None:
            await _call(self.on_deregistered, previous, "deregistered")
        await _call(self.on_registered, registration, "registered")
        return CoapResponse("2.01", location_path=(REGISTRATION_ROOT, registration.registration_id))

    async def _update(self, registration_id: str, request: CoapRequest) -> CoapResponse:
        current = self.store.get(registration_id)
        if current is None:
            raise NotFound(f"registration {registration_id!r} does not exist")
        self._check(request, current.endpoint)
        update = parse_update_query(request.query)
        objects = _objects(request) if request.payload else None
        registration = current.with_update(self.clock(), update, objects=objects, address=request.remote)
        self.store.update(registration)
        await _call(self.on_updated, registration, "updated")
        return CoapResponse("2.04")

    async def _deregister(self, registration_id: str, request: CoapRequest) -> CoapResponse:
        current = self.store.get(registration_id)
        if current is None:
            raise NotFound(f"registration {registration_id!r} does not exist")
        self._check(request, current.endpoint)
        registration = self.store.remove(registration_id)
        await _call(self.on_deregistered, registration, "deregistered")
        return CoapResponse("2.02")

    async def expire(self) -> list[Registration]:
        """Remove every registration whose lifetime passed by the clock's now; report each offline."""
        now = self.clock()
        gone: list[Registration] = []
        for candidate in self.store.expired(now):
            # A listener awaited for an earlier one may have let this client update or deregister.
            current = self.store.get(candidate.registration_id)
            if current is None or not current.is_expired(now):
                continue
            registration = self.store.remove(candidate.registration_id)
            gone.append(registration)
            await _call(self.on_offline, registration, "offline")
        return gone

    async def run_presence(self, interval: float) -> None:
        """Check for lapsed registrations every ``interval`` seconds of real time, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire()
            except Exception:
                _log.exception("presence check failed")
