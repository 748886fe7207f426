"""LwM2M paths: ``/object/instance/resource/resource-instance``.

Every payload, link and request in LwM2M names its target by such a path. Parsing is strict on purpose:
a path arrives from the network, and a lenient parser would let ``/3/+0`` and ``/3/0`` name the same
resource in one place and differ in another, so ``str(Path.parse(s)) == s`` holds for every accepted ``s``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from tinymlaas.errors import InvalidInput

__all__ = ["MAX_ID", "Path"]

# LwM2M ids are 16-bit unsigned integers (TS Core 1.1 §7.1).
MAX_ID = 65535


@functools.total_ordering
@dataclass(frozen=True)
class Path:
    """A path to an object, an object instance, a resource or a resource instance.

    Levels fill from the left: a resource id without an instance id is not a path. Ordering is numeric
    per level with shorter paths first, so sorted paths group by object and instance (what SenML base-name
    compression and registration links want).
    """

    object_id: int
    instance_id: int | None = None
    resource_id: int | None = None
    resource_instance_id: int | None = None

    def __post_init__(self) -> None:
        ids = (self.object_id, self.instance_id, self.resource_id, self.resource_instance_id)
        seen_none = False
        for level, value in enumerate(ids):
            if value is None:
                if level == 0:
                    raise InvalidInput("LwM2M path: the object id is required")
                seen_none = True
                continue
            if seen_none:
                raise InvalidInput(f"LwM2M path: ids {ids!r} leave a gap; levels fill from the left")
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"LwM2M path: id {value!r} is not an integer")
            if not 0 <= value <= MAX_ID:
                raise InvalidInput(f"LwM2M path: id {value} is outside 0..{MAX_ID}")

    @classmethod
    def parse(cls, text: str) -> Path:
        """Parse ``/3``, ``/3/0``, ``/3/0/1`` or ``/3/0/6/1``; anything else raises InvalidInput."""
        if not isinstance(text, str) or not text.startswith("/"):
            raise InvalidInput(f"LwM2M path {text!r} must start with '/'")
        parts = text[1:].split("/")
        if len(parts) > 4:
            raise InvalidInput(f"LwM2M path {text!r} has more than 4 levels")
        ids: list[int] = []
        for part in parts:
            # isdecimal() alone accepts non-ASCII digits; ids on the wire are ASCII.
            if not (part.isascii() and part.isdecimal()):
                raise InvalidInput(f"LwM2M path {text!r}: {part!r} is not a decimal id")
            if len(part) > 1 and part[0] == "0":
                raise InvalidInput(f"LwM2M path {text!r}: {part!r} has a leading zero")
            value = int(part)
            if value > MAX_ID:
                raise InvalidInput(f"LwM2M path {text!r}: id {value} is outside 0..{MAX_ID}")
            ids.append(value)
        return cls(*ids)

    @property
    def ids(self) -> tuple[int, ...]:
        """The ids that are set, outermost first."""
        full = (self.object_id, self.instance_id, self.resource_id, self.resource_instance_id)
        return tuple(value for value in full if value is not None)

    @property
    def is_object(self) -> bool:
        return self.instance_id is None

    @property
    def is_instance(self) -> bool:
        return self.instance_id is not None and self.resource_id is None

    @property
    def is_resource(self) -> bool:
        return self.resource_id is not None and self.resource_instance_id is None

    @property
    def is_resource_instance(self) -> bool:
        return self.resource_instance_id is not None

    def __str__(self) -> str:
        return "/" + "/".join(str(value) for value in self.ids)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Path):
            return NotImplemented
        return self.ids < other.ids
