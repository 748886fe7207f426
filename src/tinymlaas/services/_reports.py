"""What devices report over LwM2M, turned into JSON-ready values the store keeps and views show.

Shared by the fleet (devices) and the campaign runner (installations), so a device's Update Result
reads the same in ``devices show`` and ``campaigns show``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from tinymlaas.lwm2m.core import ObjectLink, Path, Value

__all__ = ["code_name", "iso", "resources"]


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    # SQLite hands back naive datetimes; every one the product stores is UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _json_value(value: Value) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, ObjectLink):
        return f"{value.object_id}:{value.instance_id}"
    return value


def resources(values: dict[Path, Value]) -> dict[int, Any]:
    """Resource id -> value; a multiple resource becomes the list of its instances in instance order."""
    found: dict[int, Any] = {}
    for path in sorted(values):
        if path.resource_id is None:
            continue
        value = _json_value(values[path])
        if path.resource_instance_id is None:
            found[path.resource_id] = value
        else:
            found.setdefault(path.resource_id, []).append(value)
    return found


def code_name(kind: type[IntEnum], code: Any) -> str | None:
    """``"installed"`` for Update Result 2; ``"code 77"`` for a code the object does not define."""
    if not isinstance(code, int):
        return None
    try:
        return kind(code).name.lower()
    except ValueError:
        return f"code {code}"
