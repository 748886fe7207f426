"""Relative times on the dashboard: the same moment reads the same way whatever form it is stored in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tinymlaas.web.deps import templates
from tinymlaas.web.humanize import relative_time

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before", "said"),
    [
        (timedelta(seconds=20), "just now"),
        (timedelta(minutes=5, seconds=59), "5 min ago"),
        (timedelta(hours=3, minutes=10), "3 h ago"),
        (timedelta(days=2, hours=23), "2 d ago"),
        (-timedelta(hours=3), "in 3 h"),
    ],
)
def test_a_time_reads_as_how_long_ago_it_was(before: timedelta, said: str) -> None:
    assert relative_time(NOW - before, NOW) == said


def test_stored_forms_of_one_moment_read_alike() -> None:
    moment = NOW - timedelta(hours=3)
    naive_utc = moment.replace(tzinfo=None)  # as SQLite hands a stored time back
    elsewhere = moment.astimezone(timezone(timedelta(hours=-5)))
    said = {
        relative_time(m, NOW)
        for m in (moment, naive_utc, moment.isoformat(), naive_utc.isoformat(), elsewhere)
    }
    assert said == {"3 h ago"}
    assert relative_time(None, NOW) == relative_time("", NOW) == "—"


def test_templates_have_the_ago_filter() -> None:
    assert templates.env.filters["ago"] is relative_time
