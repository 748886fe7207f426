"""Times as people glance at them: "3 h ago" in a table cell, with the exact time kept for a tooltip.

Registered as the Jinja filter ``ago``. A page that shows a relative time also puts the ISO time in
the element's ``title``, since "2 d ago" alone cannot be compared or quoted. Stored times without a
zone are UTC (SQLite drops the zone), so they are read as such rather than as the server's local time.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["exact_time", "relative_time"]

_NOTHING = "—"
_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60))


def _as_datetime(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def relative_time(dt: datetime | str | None, now: datetime | None = None) -> str:
    """``just now``, ``5 min ago``, ``3 h ago``, ``2 d ago`` (or ``in 3 h`` for a time ahead);
    a dash for no time at all. ``dt`` may be an ISO 8601 string, as the services' views give times."""
    if dt is None or dt == "":
        return _NOTHING
    moment = _as_datetime(dt)
    current = _as_datetime(now) if now is not None else datetime.now(UTC)
    seconds = (current - moment).total_seconds()
    distance = abs(seconds)
    for unit, size in _UNITS:
        if distance >= size:
            amount = f"{int(distance // size)} {unit}"
            return f"{amount} ago" if seconds > 0 else f"in {amount}"
    return "just now"


def exact_time(dt: datetime | str | None) -> str:
    """The ISO 8601 time in UTC to the second, for a relative time's ``title``: microseconds are noise
    to a person; empty for no time at all."""
    if dt is None or dt == "":
        return ""
    return _as_datetime(dt).astimezone(UTC).replace(microsecond=0).isoformat()
