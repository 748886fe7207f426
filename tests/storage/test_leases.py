"""The lease several servers on one store contend for: one holder at a time, taken over once it runs out."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tinymlaas.errors import InvalidInput
from tinymlaas.storage.db import open_database
from tinymlaas.storage.repositories import LeaseRepository

T0 = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
# How long the first contender holds its transaction open once the second has asked: long enough for
# the second to reach the database and wait there.
HOLD_S = 0.3


@pytest.fixture
def sessions(store: str) -> Iterator[sessionmaker[Session]]:
    made = open_database(store)
    yield made
    made.kw["bind"].dispose()


def _acquire(sessions: sessionmaker[Session], holder: str, now: datetime, ttl_s: float = 10.0) -> bool:
    with sessions() as session, session.begin():
        return LeaseRepository(session).acquire("campaigns", holder, now, ttl_s)


def _holder(sessions: sessionmaker[Session], now: datetime | None = None) -> str | None:
    with sessions() as session:
        return LeaseRepository(session).holder("campaigns", now)


def test_one_holder_renews_others_wait_until_it_runs_out_or_is_released(sessions) -> None:
    assert _holder(sessions) is None
    assert _acquire(sessions, "srv_a", T0)
    assert not _acquire(sessions, "srv_b", T0 + timedelta(seconds=1))
    assert _acquire(sessions, "srv_a", T0 + timedelta(seconds=9))  # renewed until 19 s
    assert not _acquire(sessions, "srv_b", T0 + timedelta(seconds=15))
    assert _holder(sessions) == "srv_a"
    assert _holder(sessions, T0 + timedelta(seconds=20)) is None  # ran out, not yet taken

    assert _acquire(sessions, "srv_b", T0 + timedelta(seconds=20))
    assert _holder(sessions) == "srv_b"
    assert not _acquire(sessions, "srv_a", T0 + timedelta(seconds=21))

    with sessions() as session, session.begin():
        assert not LeaseRepository(session).release("campaigns", "srv_a")  # not its lease to give up
        assert LeaseRepository(session).release("campaigns", "srv_b")
    assert _holder(sessions) is None
    assert _acquire(sessions, "srv_a", T0 + timedelta(seconds=22))  # at once, no term to wait out


def test_bad_names_terms_and_naive_times_are_refused(sessions) -> None:
    with sessions() as session:
        leases = LeaseRepository(session)
        with pytest.raises(InvalidInput, match="lease name"):
            leases.acquire("", "srv_a", T0, 10)
        with pytest.raises(InvalidInput, match="lease holder"):
            leases.acquire("campaigns", "x" * 65, T0, 10)
        with pytest.raises(InvalidInput, match="lease term"):
            leases.acquire("campaigns", "srv_a", T0, 0)
        with pytest.raises(InvalidInput, match="time zone"):
            leases.acquire("campaigns", "srv_a", T0.replace(tzinfo=None), 10)


@pytest.mark.store_backends("postgresql")
@pytest.mark.parametrize("taken_before", [False, True], ids=["new", "expired"])
def test_two_sessions_racing_for_the_lease_leave_exactly_one_holder(sessions, taken_before) -> None:
    """The first contender takes the lease and keeps its transaction open while the second asks: the
    second waits on the row (or the key) and, once the first commits, finds it held."""
    if taken_before:
        assert _acquire(sessions, "srv_old", T0 - timedelta(seconds=60))
    results: dict[str, object] = {}
    asked = threading.Event()

    def second() -> None:
        asked.set()
        try:
            results["b"] = _acquire(sessions, "srv_b", T0)
        except Exception as exc:  # the loser's error would be the result under test
            results["b"] = exc

    with sessions() as session, session.begin():
        results["a"] = LeaseRepository(session).acquire("campaigns", "srv_a", T0, 10)
        thread = threading.Thread(target=second)
        thread.start()
        asked.wait()
        time.sleep(HOLD_S)
        assert thread.is_alive(), "the second contender did not wait for the first"
    thread.join(timeout=30)
    assert results == {"a": True, "b": False}
    assert _holder(sessions) == "srv_a"
