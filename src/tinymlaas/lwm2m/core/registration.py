"""The LwM2M Registration interface without a transport: query parsing, registration values, the store.

Written by hand (no Python library implements the LwM2M server side). Everything here is pure: time
comes in as ``now`` (float seconds) and registration ids come from the caller, so the server decides
the clock and the id scheme and tests need no sleeping. The store is an interface plus an in-memory
implementation, as Leshan has ``RegistrationStore``/``InMemoryRegistrationStore``; a shared store for
several front nodes implements the same ABC.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import unquote

from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.lwm2m.core.paths import Path
from tinymlaas.lwm2m.core.security import check_endpoint_name

__all__ = [
    "DEFAULT_LIFETIME",
    "SUPPORTED_VERSIONS",
    "InMemoryRegistrationStore",
    "Registration",
    "RegistrationRequest",
    "RegistrationStore",
    "RegistrationUpdate",
    "parse_registration_query",
    "parse_update_query",
]

DEFAULT_LIFETIME = 86400  # seconds; TS Core 1.1 §6.2.1 default when "lt" is absent
SUPPORTED_VERSIONS = ("1.0", "1.1")
MAX_LIFETIME = 2**32 - 1  # the Server object's Lifetime is an unsigned 32-bit value
# U UDP, M MQTT, H HTTP, T TCP, S SMS, N non-IP (1.1); a trailing Q is 1.0's way to ask for queue mode.
_BINDING_LETTERS = frozenset("UMHTSN")


def _query_items(query: str | Iterable[str]) -> dict[str, str | None]:
    """Split ``ep=a&lt=60`` or CoAP Uri-Query options (``["ep=a", "lt=60"]``) into a dict.

    A plain string is percent-decoded; CoAP options arrive decoded already.
    """
    raw = [unquote(part) for part in query.split("&") if part] if isinstance(query, str) else list(query)
    items: dict[str, str | None] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidInput(f"registration query: {item!r} has no parameter name")
        if key in items:
            raise InvalidInput(f"registration query: {key!r} appears twice")
        items[key] = value if sep else None
    return items


def _text(items: dict[str, str | None], key: str) -> str | None:
    if key not in items:
        return None
    value = items[key]
    if value is None or value == "":
        raise InvalidInput(f"registration query: {key!r} needs a value")
    return value


def _lifetime(items: dict[str, str | None]) -> int | None:
    text = _text(items, "lt")
    if text is None:
        return None
    if not (text.isascii() and text.isdecimal()) or not 1 <= int(text) <= MAX_LIFETIME:
        raise InvalidInput(f"registration query: lifetime 'lt={text}' is not a whole number of seconds >= 1")
    return int(text)


def _binding(items: dict[str, str | None]) -> tuple[str, bool] | None:
    """The binding letters and whether a 1.0-style ``Q`` asked for queue mode."""
    text = _text(items, "b")
    if text is None:
        return None
    letters = text.replace("Q", "")
    if not letters or not set(letters) <= _BINDING_LETTERS or len(set(letters)) != len(letters):
        raise InvalidInput(f"registration query: binding 'b={text}' is not a combination of U, M, H, T, S, N")
    return letters, "Q" in text


@dataclass(frozen=True)
class RegistrationRequest:
    """What a client asked for in its Register query (the payload's links are parsed separately)."""

    endpoint: str
    lifetime: int = DEFAULT_LIFETIME
    lwm2m_version: str = "1.0"
    binding: str = "U"
    sms: str | None = None
    queue_mode: bool = False


def parse_registration_query(query: str | Iterable[str]) -> RegistrationRequest:
    """Validate a Register query: ``ep`` (required), ``lt``, ``lwm2m``, ``b``, ``sms``, ``Q``.

    ``Q`` (LwM2M 1.1; ``q`` accepted too) or a ``Q`` inside ``b`` (1.0) turn queue mode on; the stored
    binding never contains ``Q``. Parameters LwM2M does not define here are ignored.
    """
    items = _query_items(query)
    endpoint = _text(items, "ep")
    if endpoint is None:
        raise InvalidInput("registration query: the endpoint name 'ep' is missing")
    check_endpoint_name(endpoint)
    version = _text(items, "lwm2m") or "1.0"
    if version not in SUPPORTED_VERSIONS:
        raise InvalidInput(f"registration query: LwM2M version {version!r} is not one of 1.0, 1.1")
    binding, binding_queue = _binding(items) or ("U", False)
    lifetime = _lifetime(items)
    return RegistrationRequest(
        endpoint=endpoint,
        lifetime=DEFAULT_LIFETIME if lifetime is None else lifetime,
        lwm2m_version=version,
        binding=binding,
        sms=_text(items, "sms"),
        queue_mode=binding_queue or "Q" in items or "q" in items,
    )


@dataclass(frozen=True)
class RegistrationUpdate:
    """What an Update query changes; None leaves the registration's value as it is."""

    lifetime: int | None = None
    binding: str | None = None
    sms: str | None = None
    queue_mode: bool | None = None


def parse_update_query(query: str | Iterable[str]) -> RegistrationUpdate:
    """Validate an Update query (``lt``, ``b``, ``sms``; all optional)."""
    items = _query_items(query)
    binding = _binding(items)
    return RegistrationUpdate(
        lifetime=_lifetime(items),
        binding=binding[0] if binding else None,
        sms=_text(items, "sms"),
        queue_mode=binding[1] if binding else None,
    )


@dataclass(frozen=True)
class Registration:
    """One client's registration as the server holds it. Times are seconds on the server's clock.

    ``address`` is the transport's peer address, opaque here: the core never interprets it.
    """

    endpoint: str
    registration_id: str
    lifetime: int
    binding: str
    objects: tuple[Path, ...]
    registered_at: float
    updated_at: float
    lwm2m_version: str = "1.0"
    sms: str | None = None
    queue_mode: bool = False
    address: str | None = None

    def __post_init__(self) -> None:
        if not self.endpoint or not self.registration_id:
            raise InvalidInput("a registration needs an endpoint name and a registration id")
        if self.lifetime < 1:
            raise InvalidInput(f"registration {self.endpoint}: lifetime {self.lifetime} s is not positive")
        if self.updated_at < self.registered_at:
            raise InvalidInput(f"registration {self.endpoint}: updated before it was registered")
        object.__setattr__(self, "objects", tuple(self.objects))

    @classmethod
    def from_request(
        cls,
        request: RegistrationRequest,
        *,
        registration_id: str,
        objects: Iterable[Path],
        now: float,
        address: str | None = None,
    ) -> Registration:
        """The registration a server stores for an accepted Register request."""
        return cls(
            endpoint=request.endpoint,
            registration_id=registration_id,
            lifetime=request.lifetime,
            binding=request.binding,
            objects=tuple(objects),
            registered_at=now,
            updated_at=now,
            lwm2m_version=request.lwm2m_version,
            sms=request.sms,
            queue_mode=request.queue_mode,
            address=address,
        )

    @property
    def expires_at(self) -> float:
        """When the registration lapses unless the client sends an Update first."""
        return self.updated_at + self.lifetime

    def is_expired(self, now: float) -> bool:
        return now > self.expires_at

    def with_update(
        self,
        now: float,
        update: RegistrationUpdate | None = None,
        *,
        objects: Iterable[Path] | None = None,
        address: str | None = None,
    ) -> Registration:
        """The registration after an Update at ``now``; an empty update still renews the lifetime."""
        update = update or RegistrationUpdate()
        return replace(
            self,
            updated_at=now,
            lifetime=self.lifetime if update.lifetime is None else update.lifetime,
            binding=self.binding if update.binding is None else update.binding,
            sms=self.sms if update.sms is None else update.sms,
            queue_mode=self.queue_mode if update.queue_mode is None else update.queue_mode,
            objects=self.objects if objects is None else tuple(objects),
            address=self.address if address is None else address,
        )


class RegistrationStore(ABC):
    """Where the server keeps registrations; one registration per endpoint at a time."""

    @abstractmethod
    def add(self, registration: Registration) -> Registration | None:
        """Store a new registration; return the one it replaced for the same endpoint, if any.

        A client that registers again (it rebooted) replaces its old registration: the caller cancels
        the observations of the returned one. Conflict if the registration id is already taken.
        """

    @abstractmethod
    def update(self, registration: Registration) -> Registration:
        """Replace the stored registration with the same id; return the previous value. NotFound if gone."""

    @abstractmethod
    def remove(self, registration_id: str) -> Registration:
        """Forget a registration (De-register) and return it; NotFound if unknown."""

    @abstractmethod
    def get(self, registration_id: str) -> Registration | None: ...

    @abstractmethod
    def get_by_endpoint(self, endpoint: str) -> Registration | None: ...

    @abstractmethod
    def all(self) -> list[Registration]: ...

    @abstractmethod
    def expired(self, now: float) -> list[Registration]:
        """Registrations whose lifetime ran out by ``now``; removing them is the caller's decision."""


class InMemoryRegistrationStore(RegistrationStore):
    """A process-local store for one server node, the embedded default and the one unit tests use."""

    def __init__(self) -> None:
        # The CoAP endpoint and HTTP handlers may run on different threads of one process.
        self._lock = threading.Lock()
        self._by_id: dict[str, Registration] = {}
        self._id_by_endpoint: dict[str, str] = {}

    def add(self, registration: Registration) -> Registration | None:
        with self._lock:
            if registration.registration_id in self._by_id:
                raise Conflict(f"registration id {registration.registration_id!r} is already in use")
            previous_id = self._id_by_endpoint.get(registration.endpoint)
            previous = self._by_id.pop(previous_id) if previous_id is not None else None
            self._by_id[registration.registration_id] = registration
            self._id_by_endpoint[registration.endpoint] = registration.registration_id
            return previous

    def update(self, registration: Registration) -> Registration:
        with self._lock:
            previous = self._by_id.get(registration.registration_id)
            if previous is None:
                raise NotFound(f"registration {registration.registration_id!r} does not exist")
            if previous.endpoint != registration.endpoint:
                raise Conflict(
                    f"registration {registration.registration_id!r} belongs to {previous.endpoint!r}, "
                    f"not {registration.endpoint!r}"
                )
            self._by_id[registration.registration_id] = registration
            return previous

    def remove(self, registration_id: str) -> Registration:
        with self._lock:
            registration = self._by_id.pop(registration_id, None)
            if registration is None:
                raise NotFound(f"registration {registration_id!r} does not exist")
            del self._id_by_endpoint[registration.endpoint]
            return registration

    def get(self, registration_id: str) -> Registration | None:
        with self._lock:
            return self._by_id.get(registration_id)

    def get_by_endpoint(self, endpoint: str) -> Registration | None:
        with self._lock:
            registration_id = self._id_by_endpoint.get(endpoint)
            return self._by_id.get(registration_id) if registration_id is not None else None

    def all(self) -> list[Registration]:
        with self._lock:
            return list(self._by_id.values())

    def expired(self, now: float) -> list[Registration]:
        with self._lock:
            return [registration for registration in self._by_id.values() if registration.is_expired(now)]
