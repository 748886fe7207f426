from datetime import UTC, datetime, timedelta

import pytest

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.storage.db import open_database
from tinymlaas.storage.repositories import DeviceRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path):
    return open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")


def register(repository: DeviceRepository, endpoint: str, registration_id: str, at: datetime) -> None:
    repository.upsert_registration(
        endpoint,
        new_id=f"dev_{endpoint}",
        registration_id=registration_id,
        address="coap://127.0.0.1:5000",
        lifetime=60,
        lwm2m_version="1.1",
        objects=["/3/0"],
        registered_at=at,
    )


def test_a_device_keeps_what_it_is_across_registrations_but_not_what_it_was_doing(sessions):
    with sessions() as session, session.begin():
        repository = DeviceRepository(session)
        register(repository, "a", "r1", T0)
        repository.set_reported(
            "a",
            board_id="pico",
            capabilities={"runtime": "tflm"},
            identity={"manufacturer": "Raspberry Pi"},
            installed={"name": "kws"},
            telemetry={"inference_count": 42},
        )
        repository.set_tags("a", ["wave-1"])
        repository.record_event("a", "reported", {"board": "pico"}, at=T0)
        repository.mark_offline("a")
    with sessions() as session, session.begin():
        repository = DeviceRepository(session)
        register(repository, "a", "r2", T0 + timedelta(minutes=5))
        row = repository.device("a")
        assert (row.id, row.registration_id, row.online) == ("dev_a", "r2", True)
        assert (row.board_id, row.capabilities, row.identity, row.tags) == (
            "pico",
            {"runtime": "tflm"},
            {"manufacturer": "Raspberry Pi"},
            ["wave-1"],
        )
        assert (row.installed, row.telemetry) == ({}, {})
        assert [event.kind for event in repository.events("a")] == ["reported"]
        repository.seen("a", T0 + timedelta(minutes=6), lifetime=120)
        assert repository.device("a").lifetime == 120
        assert repository.device("a").address == "coap://127.0.0.1:5000"


def test_unknown_endpoints_name_the_known_ones_and_presence_resets(sessions):
    with sessions() as session, session.begin():
        repository = DeviceRepository(session)
        with pytest.raises(NotFound, match="no device has registered yet"):
            repository.device("x")
        for name in ("b", "a", "c"):
            register(repository, name, f"r-{name}", T0)
        repository.mark_offline("c")
        with pytest.raises(NotFound, match="known: a, b, c"):
            repository.device("x")
        assert repository.mark_all_offline() == ["a", "b"]
        assert [row.online for row in repository.devices()] == [False, False, False]
        assert repository.devices(online=True) == []
        with pytest.raises(InvalidInput):
            repository.set_tags("a", ["ok", " "])


def test_events_come_back_newest_first_and_go_with_their_device(sessions):
    with sessions() as session, session.begin():
        repository = DeviceRepository(session)
        register(repository, "a", "r1", T0)
        for kind in ("registered", "read_failed", "offline"):
            repository.record_event("a", kind, {"n": kind}, at=T0)  # same instant: order by insertion
        assert [event.kind for event in repository.events("a")] == ["offline", "read_failed", "registered"]
        assert [event.kind for event in repository.events("a", limit=1)] == ["offline"]
        session.delete(repository.device("a"))
        session.flush()
        assert repository.events("a") == []
