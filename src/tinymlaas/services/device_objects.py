"""A device's LwM2M object tree, and reading or executing a resource of it through the running server.

The tree is what the device registered (its object and instance links, kept in its row) joined with
the object definitions the server speaks (``lwm2m.core.objects``): each resource with its name, type
and operations. Read and Execute go to the device over the running LwM2M server's session with it
(``DeviceLink``) and only to what it registered, so a typed path cannot reach an object the device
never offered; whether the caller may execute is the adapter's permission check, not decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.lwm2m.core import OBJECTS, Path, Value
from tinymlaas.services.context import Context
from tinymlaas.services.device_link import DeviceLink
from tinymlaas.storage.repositories import DeviceRepository

__all__ = [
    "ObjectNode",
    "ReadValue",
    "ResourceNode",
    "execute_resource",
    "object_tree",
    "read_path",
]

_SHOWN_BYTES = 32  # of an opaque value, in hex; the rest is counted


@dataclass(frozen=True)
class ResourceNode:
    path: str
    name: str
    operations: str  # "R", "W", "RW" or "E", as the OMA registry defines the resource
    type: str | None
    multiple: bool
    units: str | None
    readable: bool
    executable: bool
    observed: bool  # the server holds a live observation on it (only known with a running server)


@dataclass(frozen=True)
class InstanceNode:
    path: str
    resources: list[ResourceNode]


@dataclass(frozen=True)
class ObjectNode:
    id: int
    path: str
    name: str | None  # None: an object the server has no definition of; it is listed, not opened
    version: str | None
    instances: list[InstanceNode]


@dataclass(frozen=True)
class ReadValue:
    """One value the device answered, with the resource's name and units for people."""

    path: str
    name: str
    value: str
    units: str | None


def _registered(ctx: Context, endpoint: str) -> list[Path]:
    """The object and instance paths the device registered; links that do not parse are left out."""
    with ctx.session() as session:
        objects = DeviceRepository(session).device(endpoint).objects
    paths = []
    for link in objects:
        try:
            paths.append(Path.parse(link))
        except InvalidInput:
            continue
    return sorted(paths)


def _followed(resource: Path, observed: frozenset[Path]) -> bool:
    """Whether an observation covers ``resource``: its own, or one of the instance or object holding it."""
    return any(Path(*resource.ids[:depth]) in observed for depth in range(1, len(resource.ids) + 1))


def object_tree(ctx: Context, endpoint: str, observed: frozenset[Path] = frozenset()) -> list[ObjectNode]:
    """The device's registered objects and instances, each instance with its defined resources."""
    instances: dict[int, list[int]] = {}
    for path in _registered(ctx, endpoint):
        listed = instances.setdefault(path.object_id, [])
        if path.instance_id is not None and path.instance_id not in listed:
            listed.append(path.instance_id)
    tree = []
    for object_id, ids in instances.items():
        definition = OBJECTS.get(object_id)
        nodes = []
        for instance_id in ids if definition is not None else ():
            resources = [
                ResourceNode(
                    path=str(Path(object_id, instance_id, resource.id)),
                    name=resource.name,
                    operations=resource.operations,
                    type=resource.type.value if resource.type is not None else None,
                    multiple=resource.multiple,
                    units=resource.units,
                    readable=resource.readable,
                    executable=resource.executable,
                    observed=_followed(Path(object_id, instance_id, resource.id), observed),
                )
                for resource in definition.resources.values()
            ]
            nodes.append(InstanceNode(str(Path(object_id, instance_id)), resources))
        tree.append(
            ObjectNode(
                id=object_id,
                path=str(Path(object_id)),
                name=definition.name if definition is not None else None,
                version=definition.version if definition is not None else None,
                instances=nodes,
            )
        )
    return tree


def _target(ctx: Context, endpoint: str, text: str) -> Path:
    """``text`` as a path inside an object instance the device registered; InvalidInput if it is not."""
    path = Path.parse(text.strip())
    registered = _registered(ctx, endpoint)
    if not any(path.ids[: len(link.ids)] == link.ids for link in registered if link.instance_id is not None):
        listed = ", ".join(str(link) for link in registered) or "none"
        raise InvalidInput(f"{path} is not inside an object instance {endpoint} registered ({listed})")
    if path.object_id not in OBJECTS:
        raise InvalidInput(f"{path}: object {path.object_id} is not one this server can decode")
    return path


def _shown(value: Value) -> str:
    if isinstance(value, bytes):
        head = value[:_SHOWN_BYTES].hex()
        return f"{len(value)} bytes: {head}" + ("…" if len(value) > _SHOWN_BYTES else "")
    return str(value)


def read_path(ctx: Context, link: DeviceLink, endpoint: str, text: str) -> list[ReadValue]:
    """Read an instance or a resource of the device now; its answer, in path order.

    A write-only or executable resource is refused before anything is sent; a device that is not
    registered with this server is NotFound, one that does not answer PeerUnreachable.
    """
    path = _target(ctx, endpoint, text)
    if path.is_object:
        raise InvalidInput(f"{path}: read an instance or a resource, not a whole object")
    if path.resource_id is not None:
        resource = OBJECTS.resource(path)
        if not resource.readable:
            raise InvalidInput(f"{path}: {resource.name} cannot be read (operations {resource.operations})")
    values = link.read(endpoint, path)
    found = []
    for answered in sorted(values):
        try:
            resource = OBJECTS.resource(answered)
        except NotFound:
            continue
        found.append(ReadValue(str(answered), resource.name, _shown(values[answered]), resource.units))
    return found


def execute_resource(ctx: Context, link: DeviceLink, endpoint: str, text: str) -> None:
    """Execute one executable resource of the device, refusing any other before anything is sent."""
    path = _target(ctx, endpoint, text)
    if not path.is_resource:
        raise InvalidInput(f"{path}: execute names one resource, /object/instance/resource")
    resource = OBJECTS.resource(path)
    if not resource.executable:
        raise InvalidInput(f"{path}: {resource.name} is not executable (operations {resource.operations})")
    link.execute(endpoint, path)
