"""Device Management and Information Reporting towards registered devices (TS Core 1.1 §6.3, §6.4).

Requests go to the address a device registered from (``Registration.address``), as LwM2M requires; the
device is named by its endpoint name, so callers never handle addresses. Every value that comes back is
decoded by ``lwm2m.core`` and checked against the object model before a caller sees it; every value that
goes out is checked before it is sent.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping

from tinymlaas.errors import InvalidInput, NotFound, TinymlaasError
from tinymlaas.lwm2m.core import (
    OBJECTS,
    ContentFormat,
    Link,
    ObjectRegistry,
    Path,
    RegistrationStore,
    ResourceType,
    Value,
    format_text,
    parse_links,
    parse_text,
    senml,
)
from tinymlaas.lwm2m.transport import DEFAULT_TIMEOUT, CoapEndpoint, CoapResponse, Observation

__all__ = ["ClientRequests", "DeviceObservation", "DeviceRequestFailed", "ValuesCallback"]

_log = logging.getLogger(__name__)

ValuesCallback = Callable[[dict[Path, Value]], Awaitable[None] | None]


class DeviceRequestFailed(TinymlaasError):
    """The device answered with an error code other than 4.04; ``code`` is the device's CoAP code."""

    http_status = 502
    coap_code = "5.02"
    title = "Device request failed"

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.code = code


def _path(path: Path | str) -> Path:
    return path if isinstance(path, Path) else Path.parse(path)


def _check(response: CoapResponse, expected: str, what: str) -> None:
    if response.code == expected:
        return
    detail = f"{what}: the device answered {response.code}"
    if response.payload:
        detail += f" ({response.diagnostic})"
    if response.code == "4.04":
        raise NotFound(detail)
    raise DeviceRequestFailed(detail, response.code)


class DeviceObservation:
    """An Observe on one path of one device; ``values`` holds the answer that started it."""

    def __init__(
        self, endpoint: str, path: Path, values: dict[Path, Value], observation: Observation
    ) -> None:
        self.endpoint = endpoint
        self.path = path
        self.values = values
        self._observation = observation

    @property
    def active(self) -> bool:
        return self._observation.active

    def cancel(self) -> None:
        """Stop delivering notifications; the device learns it from the Reset to its next one."""
        self._observation.cancel()


class ClientRequests:
    """Read, Write, Execute, Discover and Observe on the devices a ``RegistrationStore`` knows.

    Errors: NotFound for an unregistered endpoint or a device's 4.04; DeviceRequestFailed for any other
    device error code; PeerUnreachable when the device does not answer within ``timeout`` seconds;
    InvalidInput when a value does not fit its resource, either way.
    """

    def __init__(
        self,
        coap: CoapEndpoint,
        store: RegistrationStore,
        *,
        objects: ObjectRegistry = OBJECTS,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._coap = coap
        self._store = store
        self._objects = objects
        self._timeout = timeout
        self._observations: dict[str, set[DeviceObservation]] = {}

    def _uri(self, endpoint: str, path: Path) -> str:
        registration = self._store.get_by_endpoint(endpoint)
        if registration is None or registration.address is None:
            raise NotFound(f"device {endpoint!r} is not registered")
        return registration.address + str(path)

    def _decode(self, path: Path, response: CoapResponse, accept: int) -> dict[Path, Value]:
        fmt = accept if response.content_format is None else response.content_format
        if fmt in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR):
            return self._objects.coerce_all(senml.decode(response.payload, fmt))
        if fmt == ContentFormat.TEXT_PLAIN:
            resource = self._objects.resource(path)
            if resource.type is None:
                raise InvalidInput(f"{path}: {resource.name} is executable and has no value to read")
            try:
                text = response.payload.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{path}: the plain-text answer is not UTF-8") from None
            return {path: self._objects.coerce(path, parse_text(resource.type, text, where=str(path)))}
        if fmt == ContentFormat.OCTET_STREAM:
            return {path: self._objects.coerce(path, response.payload)}
        raise InvalidInput(
            f"{path}: the device answered in content format {fmt}, which the server cannot read"
        )

    async def read(
        self, endpoint: str, path: Path | str, accept: int = ContentFormat.SENML_CBOR
    ) -> dict[Path, Value]:
        """Read an object, instance or resource; the device may answer in any format it supports."""
        target = _path(path)
        response = await self._coap.request(
            "GET", self._uri(endpoint, target), accept=accept, timeout=self._timeout
        )
        _check(response, "2.05", f"read {endpoint} {target}")
        return self._decode(target, response, accept)

    async def write(
        self,
        endpoint: str,
        path: Path | str,
        value: Value | Mapping[Path, Value],
        *,
        content_format: int | None = None,
    ) -> None:
        """Write one resource (Replace, PUT), or several resources of an instance (Partial Update, POST).

        One value goes as plain text (opaque resources as octets) unless ``content_format`` says
        otherwise; a mapping of resource paths to values goes as SenML (CBOR by default).
        """
        target = _path(path)
        if isinstance(value, Mapping):
            values = self._objects.coerce_all(value)
            outside = [str(item) for item in values if item.ids[: len(target.ids)] != target.ids]
            if target.resource_id is not None or outside:
                raise InvalidInput(
                    f"write {target}: a multi-value write names an instance holding every path"
                )
            fmt = content_format or ContentFormat.SENML_CBOR
            payload, method = senml.encode(values, fmt), "POST"
        else:
            coerced = self._objects.coerce(target, value)
            resource = self._objects.resource(target)
            default = (
                ContentFormat.OCTET_STREAM
                if resource.type is ResourceType.OPAQUE
                else ContentFormat.TEXT_PLAIN
            )
            fmt = content_format or default
            method = "PUT"
            if fmt in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR):
                payload = senml.encode({target: coerced}, fmt)
            elif fmt == ContentFormat.TEXT_PLAIN and resource.type is not None:
                payload = format_text(resource.type, coerced).encode()
            elif fmt == ContentFormat.OCTET_STREAM and isinstance(coerced, bytes):
                payload = coerced
            else:
                raise InvalidInput(
                    f"write {target}: content format {fmt} cannot carry a {resource.type} value"
                )
        response = await self._coap.request(
            method, self._uri(endpoint, target), payload, content_format=fmt, timeout=self._timeout
        )
        _check(response, "2.04", f"write {endpoint} {target}")

    async def execute(self, endpoint: str, path: Path | str, args: str = "") -> None:
        """Execute a resource; ``args`` is the LwM2M argument list (``0='v1',1``) as text."""
        target = _path(path)
        if target.object_id in self._objects:
            resource = self._objects.resource(target)
            if not resource.executable:
                raise InvalidInput(f"execute {target}: {resource.name} is not executable")
        response = await self._coap.request(
            "POST",
            self._uri(endpoint, target),
            args.encode(),
            content_format=ContentFormat.TEXT_PLAIN if args else None,
            timeout=self._timeout,
        )
        _check(response, "2.04", f"execute {endpoint} {target}")

    async def discover(self, endpoint: str, path: Path | str) -> list[Link]:
        """The links (with attributes) the device reports below an object, instance or resource."""
        target = _path(path)
        response = await self._coap.request(
            "GET", self._uri(endpoint, target), accept=ContentFormat.LINK_FORMAT, timeout=self._timeout
        )
        _check(response, "2.05", f"discover {endpoint} {target}")
        try:
            return parse_links(response.payload.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(f"discover {endpoint} {target}: the answer is not UTF-8") from None

    async def observe(
        self,
        endpoint: str,
        path: Path | str,
        on_values: ValuesCallback,
        accept: int = ContentFormat.SENML_CBOR,
    ) -> DeviceObservation:
        """Observe a path; ``on_values`` (plain or async) gets each notification's decoded values.

        A notification that does not decode is logged and skipped. Observations end with ``cancel``,
        when the device stops them, or via ``cancel_all`` when its registration ends.
        """
        target = _path(path)

        async def deliver(notification: CoapResponse) -> None:
            if not notification.success:
                return
            try:
                values = self._decode(target, notification, accept)
            except TinymlaasError as exc:
                _log.warning("notification from %s for %s dropped: %s", endpoint, target, exc.detail)
                return
            result = on_values(values)
            if inspect.isawaitable(result):
                await result

        observation = await self._coap.observe(
            self._uri(endpoint, target), deliver, accept=accept, timeout=self._timeout
        )
        try:
            _check(observation.response, "2.05", f"observe {endpoint} {target}")
            if not observation.active:
                raise DeviceRequestFailed(
                    f"observe {endpoint} {target}: the device answered but did not accept the observation",
                    observation.response.code,
                )
            values = self._decode(target, observation.response, accept)
        except TinymlaasError:
            observation.cancel()
            raise
        device_observation = DeviceObservation(endpoint, target, values, observation)
        observations = self._observations.setdefault(endpoint, set())
        observations.add(device_observation)
        observation.add_done_callback(lambda _done: observations.discard(device_observation))
        return device_observation

    def observations(self, endpoint: str) -> list[DeviceObservation]:
        """The live observations on one device."""
        return [item for item in self._observations.get(endpoint, ()) if item.active]

    def cancel_all(self, endpoint: str) -> None:
        """Cancel every observation on a device, e.g. when its registration ends."""
        for observation in self._observations.pop(endpoint, set()):
            observation.cancel()
