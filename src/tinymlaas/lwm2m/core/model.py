"""The LwM2M object model: object and resource definitions, typed values, and their validation.

Written by hand: the Python CoAP stacks stop at CoAP, and no maintained Python library carries the
LwM2M object model. Definitions mirror the OMA registry's XML (ids, names, operations, types) so a peer
built on Leshan or Wakaama sees the same objects.

Every value crossing the wire is checked here against its resource's type before anything else sees it:
codecs only know JSON/CBOR types, and an ``int`` where a ``bool`` belongs must fail at the edge with the
path in the message, not deep in an installer.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.lwm2m.core.paths import MAX_ID, Path

__all__ = [
    "ObjectDef",
    "ObjectLink",
    "ObjectRegistry",
    "Operations",
    "ResourceDef",
    "ResourceType",
    "Value",
    "coerce_value",
    "format_text",
    "parse_text",
    "resource_table",
]

Operations = Literal["R", "W", "RW", "E"]
_OPERATIONS = frozenset({"R", "W", "RW", "E"})

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


class ResourceType(StrEnum):
    """LwM2M 1.1 data types (TS Core 1.1 Appendix C); executable resources have none."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    OPAQUE = "opaque"
    TIME = "time"
    OBJLNK = "objlnk"
    UNSIGNED = "unsigned"


@dataclass(frozen=True, order=True)
class ObjectLink:
    """An Objlnk value: a reference to an object instance, written ``3:0`` on the wire."""

    object_id: int
    instance_id: int

    def __post_init__(self) -> None:
        for value in (self.object_id, self.instance_id):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
                raise InvalidInput(f"object link id {value!r} is not an integer in 0..{MAX_ID}")

    @classmethod
    def parse(cls, text: str) -> ObjectLink:
        """Parse ``"3:0"``; ``65535:65535`` is the spec's null link and parses like any other."""
        left, sep, right = text.partition(":")
        if not sep or not all(part.isascii() and part.isdecimal() for part in (left, right)):
            raise InvalidInput(f"object link {text!r} is not 'object:instance'")
        return cls(int(left), int(right))

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"


Value = str | int | float | bool | bytes | ObjectLink
"""A resource value as the rest of the product sees it (time: int seconds since the Unix epoch)."""


@dataclass(frozen=True)
class ResourceDef:
    """One resource of an object, as the OMA registry defines it."""

    id: int
    name: str
    operations: Operations
    type: ResourceType | None
    multiple: bool = False
    mandatory: bool = False
    units: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.id <= MAX_ID:
            raise ValueError(f"resource id {self.id} is outside 0..{MAX_ID}")
        if self.operations not in _OPERATIONS:
            raise ValueError(f"resource {self.id} {self.name}: operations {self.operations!r} unknown")
        if (self.operations == "E") != (self.type is None):
            raise ValueError(f"resource {self.id} {self.name}: only executable resources have no type")

    @property
    def readable(self) -> bool:
        return "R" in self.operations

    @property
    def writable(self) -> bool:
        return "W" in self.operations

    @property
    def executable(self) -> bool:
        return self.operations == "E"

    def coerce(self, value: Any, path: Path | str | None = None) -> Value:
        """Validate one value (one instance, for a multiple resource) against this resource's type."""
        where = f"{path if path is not None else ''} {self.name}".strip()
        if self.type is None:
            raise InvalidInput(f"{where}: the resource is executable and carries no value")
        return coerce_value(self.type, value, where=where)


def resource_table(*resources: ResourceDef) -> Mapping[int, ResourceDef]:
    """Key resource definitions by id, refusing duplicates (a typo in an object module, not user input)."""
    table: dict[int, ResourceDef] = {}
    for resource in resources:
        if resource.id in table:
            raise ValueError(f"resource id {resource.id} defined twice")
        table[resource.id] = resource
    return MappingProxyType(table)


@dataclass(frozen=True)
class ObjectDef:
    """One LwM2M object: its identity, version, instance rules and resources."""

    id: int
    name: str
    version: str
    multiple_instances: bool
    mandatory: bool
    resources: Mapping[int, ResourceDef] = field(hash=False)

    def __post_init__(self) -> None:
        if not 0 <= self.id <= MAX_ID:
            raise ValueError(f"object id {self.id} is outside 0..{MAX_ID}")
        for key, resource in self.resources.items():
            if key != resource.id:
                raise ValueError(f"object {self.id}: resource {resource.id} filed under id {key}")
        object.__setattr__(self, "resources", MappingProxyType(dict(self.resources)))

    def resource(self, resource_id: int) -> ResourceDef:
        """The definition of one resource; NotFound (CoAP 4.04) when the object has no such resource."""
        try:
            return self.resources[resource_id]
        except KeyError:
            raise NotFound(f"object {self.id} ({self.name}) has no resource {resource_id}") from None


class ObjectRegistry(Mapping[int, ObjectDef]):
    """The objects one side of the conversation understands, keyed by object id.

    A registry rather than a module-level dict so that the agent, the server and tests can each hold the
    set they speak without mutating a global.
    """

    def __init__(self, objects: Iterable[ObjectDef]) -> None:
        table: dict[int, ObjectDef] = {}
        for obj in objects:
            if obj.id in table:
                raise ValueError(f"object id {obj.id} registered twice")
            table[obj.id] = obj
        self._objects = table

    def __getitem__(self, object_id: int) -> ObjectDef:
        return self._objects[object_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._objects)

    def __len__(self) -> int:
        return len(self._objects)

    def object(self, object_id: int) -> ObjectDef:
        """The definition of one object; NotFound when this registry does not know it."""
        try:
            return self._objects[object_id]
        except KeyError:
            raise NotFound(f"object {object_id} is not supported") from None

    def resource(self, path: Path) -> ResourceDef:
        """The resource a resource or resource-instance path names, checking the instance level fits."""
        if path.resource_id is None:
            raise InvalidInput(f"{path}: a value needs a resource path, not an object or instance path")
        resource = self.object(path.object_id).resource(path.resource_id)
        if path.resource_instance_id is not None and not resource.multiple:
            raise InvalidInput(f"{path}: {resource.name} is a single resource and has no instances")
        return resource

    def coerce(self, path: Path, value: Any) -> Value:
        """Validate one value for the resource at ``path``."""
        resource = self.resource(path)
        if resource.multiple and path.resource_instance_id is None:
            raise InvalidInput(f"{path}: {resource.name} is a multiple resource; address its instances")
        return resource.coerce(value, path)

    def coerce_all(self, values: Mapping[Path, Any]) -> dict[Path, Value]:
        """Validate a decoded payload, e.g. what ``senml.decode_json`` returned."""
        return {path: self.coerce(path, value) for path, value in values.items()}


def _type_error(where: str, type_: ResourceType, value: Any) -> InvalidInput:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InvalidInput(f"{where}: expected {type_.value}, got {type(value).__name__} {shown}")


def _integral(value: Any) -> int | None:
    """Codecs may deliver ``3.0`` for an integer resource (SenML has one numeric ``v``); accept it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def coerce_value(type_: ResourceType, value: Any, *, where: str = "value") -> Value:
    """Return ``value`` as the Python type for ``type_`` or raise InvalidInput naming ``where``."""
    match type_:
        case ResourceType.STRING:
            if isinstance(value, str):
                return value
        case ResourceType.INTEGER | ResourceType.UNSIGNED | ResourceType.TIME:
            if type_ is ResourceType.TIME and isinstance(value, datetime):
                if value.tzinfo is None:
                    raise InvalidInput(f"{where}: a time needs a timezone-aware datetime")
                value = math.floor(value.timestamp())
            number = _integral(value)
            if number is not None:
                low, high = (0, UINT64_MAX) if type_ is ResourceType.UNSIGNED else (INT64_MIN, INT64_MAX)
                if not low <= number <= high:
                    raise InvalidInput(f"{where}: {number} is outside the {type_.value} range {low}..{high}")
                return number
        case ResourceType.FLOAT:
            if isinstance(value, int | float) and not isinstance(value, bool):
                number = float(value)
                if not math.isfinite(number):
                    raise InvalidInput(f"{where}: {number} is not a finite float")
                return number
        case ResourceType.BOOLEAN:
            if isinstance(value, bool):
                return value
        case ResourceType.OPAQUE:
            if isinstance(value, bytes | bytearray | memoryview):
                return bytes(value)
        case ResourceType.OBJLNK:
            if isinstance(value, ObjectLink):
                return value
            if isinstance(value, str):
                return ObjectLink.parse(value)
    raise _type_error(where, type_, value)


def parse_text(type_: ResourceType, text: str, *, where: str = "value") -> Value:
    """Decode a plain-text (content format 0) payload, per TS Core 1.1 §7.4.1.

    Booleans are ``0``/``1``, time is decimal seconds, Objlnk is ``3:0`` and opaque is base64.
    """
    match type_:
        case ResourceType.STRING:
            return text
        case ResourceType.INTEGER | ResourceType.UNSIGNED | ResourceType.TIME:
            stripped = text.strip()
            digits = stripped[1:] if stripped[:1] in "+-" else stripped
            if digits.isascii() and digits.isdecimal():
                return coerce_value(type_, int(stripped), where=where)
        case ResourceType.FLOAT:
            try:
                return coerce_value(type_, float(text), where=where)
            except ValueError:
                pass
        case ResourceType.BOOLEAN:
            if text.strip() in ("0", "1"):
                return text.strip() == "1"
        case ResourceType.OPAQUE:
            try:
                return base64.b64decode(text, validate=True)
            except binascii.Error:
                pass
        case ResourceType.OBJLNK:
            return ObjectLink.parse(text.strip())
    raise InvalidInput(f"{where}: {text[:60]!r} is not a plain-text {type_.value}")


def format_text(type_: ResourceType, value: Value) -> str:
    """Encode one value as plain text (content format 0), the inverse of ``parse_text``."""
    value = coerce_value(type_, value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float):
        return repr(value)
    return str(value)
