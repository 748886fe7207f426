"""What the agent's dispatcher asks of the provider of one LwM2M object.

Providers hand-write the device side of an object on top of the aiocoap-free LwM2M core: the object's
definition comes from ``tinymlaas.lwm2m.core.objects``, and a provider supplies the values, Writes and
Executes of its one instance, ``/id/0``. Content formats, paths and permissions stay with the
dispatcher, so a provider only speaks in ``Path`` and ``Value``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from importlib import metadata
from typing import ClassVar

from tinymlaas.lwm2m.core import ObjectDef, Path, Value
from tinymlaas.lwm2m.transport import CoapResponse

__all__ = ["ObjectProvider", "package_version"]


class ObjectProvider(ABC):
    """One object's single instance. ``writable`` lists the resources a server may Write."""

    definition: ClassVar[ObjectDef]
    writable: ClassVar[frozenset[Path]] = frozenset()

    @property
    def instance(self) -> Path:
        return Path(self.definition.id, 0)

    @abstractmethod
    def values(self) -> dict[Path, Value]:
        """Every readable value of the instance now, keyed by resource (instance) path."""

    async def write(self, values: Mapping[Path, Value]) -> CoapResponse:
        """Apply a Write; the dispatcher passes only resources in ``writable``, at least one."""
        return CoapResponse("2.04")

    async def execute(self, path: Path, argument: bytes) -> CoapResponse:
        """Execute the executable resource ``path`` with the request's payload as argument."""
        return CoapResponse("4.05", f"this device does not implement {path}".encode())


def package_version(name: str) -> str:
    """The installed version of distribution ``name``; "unknown" when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"
