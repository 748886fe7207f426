"""The agent's LwM2M request dispatch: Read, Write, Execute, Discover and Observe over object providers.

This is generic LwM2M client logic written by hand on top of the aiocoap-free core: it parses the path,
checks it against the object definitions (``OBJECTS``), picks the provider that owns the object id and
speaks the content formats (SenML JSON/CBOR, plain text for single resources, link format for
Discover). Observe needs nothing here: the CoAP endpoint re-runs the Read for each notification.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tinymlaas.agent.objects import ObjectProvider
from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.lwm2m.core import OBJECTS, ContentFormat, Link, Path, Value, format_text, parse_text, senml
from tinymlaas.lwm2m.transport import CoapRequest, CoapResponse

__all__ = ["ObjectDispatcher", "with_ancestors"]


def _below(values: Mapping[Path, Value], path: Path) -> dict[Path, Value]:
    return {key: value for key, value in values.items() if key.ids[: len(path.ids)] == path.ids}


def with_ancestors(paths: Iterable[Path]) -> set[Path]:
    """The paths and every instance and object holding them: what an observer of a change may watch."""
    found: set[Path] = set()
    for path in paths:
        ids = path.ids
        found.update(Path(*ids[:depth]) for depth in range(1, len(ids) + 1))
    return found


def _links(links: list[Link]) -> CoapResponse:
    return CoapResponse("2.05", ",".join(str(link) for link in links).encode(), ContentFormat.LINK_FORMAT)


class ObjectDispatcher:
    """Answers CoAP requests on the object instances of ``providers``, one provider per object id."""

    def __init__(self, providers: Iterable[ObjectProvider]) -> None:
        self._providers = {provider.definition.id: provider for provider in providers}

    @property
    def instances(self) -> tuple[Path, ...]:
        """The instances this device registers."""
        return tuple(provider.instance for provider in self._providers.values())

    async def handle(self, request: CoapRequest) -> CoapResponse:
        try:
            path = Path.parse(request.uri_path)
        except InvalidInput:
            raise NotFound(f"{request.uri_path}: not an LwM2M path this device serves") from None
        provider = self._providers.get(path.object_id)
        if provider is None or path.instance_id not in (None, provider.instance.instance_id):
            raise NotFound(f"{path}: this device has no such object or instance")
        if path.resource_id is not None:
            OBJECTS.resource(path)  # NotFound for a resource the object does not define
        match request.method:
            case "GET" if request.accept == ContentFormat.LINK_FORMAT:
                return self._discover(provider, path)
            case "GET":
                return self._read(provider, path, request.accept)
            case "PUT":
                return await self._write(provider, path, request)
            case "POST" if path.is_resource and OBJECTS.resource(path).executable:
                return await provider.execute(path, request.payload)
            case "POST" if path.is_instance:
                return await self._write(provider, path, request)
        return CoapResponse("4.05", f"{request.method} is not allowed on {path}".encode())

    def _read(self, provider: ObjectProvider, path: Path, accept: int | None) -> CoapResponse:
        if path.resource_id is not None and not OBJECTS.resource(path).readable:
            return CoapResponse("4.05", f"{path} is not readable".encode())
        values = _below(provider.values(), path)
        if not values:
            raise NotFound(f"{path}: no value here")
        single = path in values and (path.is_resource_instance or not OBJECTS.resource(path).multiple)
        fmt = accept
        if fmt is None:
            fmt = ContentFormat.TEXT_PLAIN if single else ContentFormat.SENML_CBOR
        if fmt in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR):
            return CoapResponse("2.05", senml.encode(values, fmt), fmt)
        if fmt == ContentFormat.TEXT_PLAIN and single:
            resource_type = OBJECTS.resource(path).type
            assert resource_type is not None  # readable resources have a type
            return CoapResponse("2.05", format_text(resource_type, values[path]).encode(), fmt)
        return CoapResponse("4.06", f"{path} cannot be read in content format {fmt}".encode())

    def _discover(self, provider: ObjectProvider, path: Path) -> CoapResponse:
        """Link format for ``path``; an object or instance path also lists the resources present."""
        instance = provider.instance
        links = [Link(str(path))] if path != instance else []
        if instance.ids[: len(path.ids)] != path.ids:
            return _links(links)
        links.append(Link(str(instance)))
        counts: dict[int, int] = {}
        for key in _below(provider.values(), instance):
            counts[key.resource_id or 0] = counts.get(key.resource_id or 0, 0) + 1
        for resource_id, resource in sorted(provider.definition.resources.items()):
            target = Path(instance.object_id, instance.instance_id, resource_id)
            if resource_id in counts or resource.executable or target in provider.writable:
                params = {"dim": str(counts.get(resource_id, 0))} if resource.multiple else {}
                links.append(Link(str(target), params))
        return _links(links)

    def _decode_write(self, path: Path, request: CoapRequest) -> dict[Path, Value] | None:
        """The values a Write carries; None when its content format cannot carry them."""
        fmt = request.content_format
        if fmt in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR):
            values = OBJECTS.coerce_all(senml.decode(request.payload, fmt))
            outside = [str(key) for key in values if key.ids[: len(path.ids)] != path.ids]
            if outside:
                raise InvalidInput(f"write {path}: the payload names {', '.join(outside)}, outside it")
            return values
        if fmt in (None, ContentFormat.TEXT_PLAIN) and path.is_resource:
            resource_type = OBJECTS.resource(path).type
            if resource_type is None:
                raise InvalidInput(f"write {path}: the resource is executable")
            try:
                text = request.payload.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"write {path}: the plain-text payload is not UTF-8") from None
            return {path: OBJECTS.coerce(path, parse_text(resource_type, text, where=str(path)))}
        return None

    async def _write(self, provider: ObjectProvider, path: Path, request: CoapRequest) -> CoapResponse:
        values = self._decode_write(path, request)
        if values is None:
            detail = f"write {path}: content format {request.content_format} is not SenML or plain text"
            return CoapResponse("4.15", detail.encode())
        refused = sorted(str(key) for key in values if key not in provider.writable)
        if refused or not values:
            return CoapResponse("4.05", f"not writable on this device: {', '.join(refused) or path}".encode())
        return await provider.write(values)
