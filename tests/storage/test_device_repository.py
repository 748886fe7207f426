from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.storage.db import open_database
from tinymlaas.storage.repositories import DeviceRepository, ServerRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def sessions(store):
    return open_database(store)


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


def _varied_fleet(repository: DeviceRepository, now: datetime) -> None:
    """40 devices over boards, models, tags, presence and lifetimes, some never reporting anything."""
    boards = ("pico", "esp32s3", None)
    models = ({"name": "kws", "version": "1"}, {"name": "kws", "version": "2"}, {"name": "wave"}, {})
    tag_sets = ([], ["wave-1"], ["lab", "wave-1"], ["field"])
    for i in range(40):
        endpoint = f"d{i:02d}"
        register(repository, endpoint, f"r{i}", now - timedelta(seconds=10 * i))
        repository.seen(endpoint, now - timedelta(seconds=7 * i), lifetime=30 + 20 * (i % 3))
        board = boards[i % 3]
        if board:
            repository.set_reported(endpoint, board_id=board)
        repository.set_reported(endpoint, installed=models[i % 4])
        repository.set_tags(endpoint, tag_sets[i % 4])
        if i % 5 == 0:
            repository.mark_offline(endpoint)


def test_fleet_aggregates_counted_in_sql_equal_those_counted_over_every_device(sessions):
    now = T0 + timedelta(hours=1)
    with sessions() as session, session.begin():
        repository = DeviceRepository(session)
        _varied_fleet(repository, now)
        every = repository.devices()

        assert repository.presence() == {
            True: sum(1 for d in every if d.online),
            False: sum(1 for d in every if not d.online),
        }
        grouped = Counter(
            (d.board_id, d.installed.get("name"), d.installed.get("version"), d.online) for d in every
        )
        assert {
            (g.board, g.model_name, g.model_version, g.online): g.devices for g in repository.counts()
        } == dict(grouped)

        choices = repository.choices()
        assert choices.boards == dict(sorted(Counter(d.board_id for d in every if d.board_id).items()))
        assert choices.tags == dict(sorted(Counter(t for d in every for t in d.tags).items()))
        assert choices.models == dict(
            sorted(
                Counter(
                    f"{d.installed['name']}:{d.installed.get('version', '')}".rstrip(":")
                    for d in every
                    if d.installed.get("name")
                ).items()
            )
        )

        offline = sorted(d.endpoint for d in every if not d.online)
        assert [endpoint for endpoint, _, _ in repository.offline_devices(3)] == offline[:3]
        assert [endpoint for endpoint, _, _ in repository.offline_devices(None)] == offline
        silent = sorted(
            d.endpoint
            for d in every
            if d.online and d.last_seen.replace(tzinfo=UTC) + timedelta(seconds=d.lifetime) < now
        )
        assert silent, "the fleet should hold silent devices"
        listed, count = repository.silent_devices(now, 2)
        assert [endpoint for endpoint, _, _ in listed] == silent[:2] and count == len(silent)
        assert [endpoint for endpoint, _, _ in repository.silent_devices(now, None)[0]] == silent


def test_presence_follows_the_server_each_device_registered_with(sessions):
    with sessions() as session, session.begin():
        servers, repository = ServerRepository(session), DeviceRepository(session)
        servers.announce("srv_a", T0)
        servers.announce("srv_b", T0)
        for name, server in (("a1", "srv_a"), ("a2", "srv_a"), ("b1", "srv_b"), ("old", None)):
            register(repository, name, f"r-{name}", T0)
            repository.device(name).server_id = server
        # b1 failed over to srv_a: its Update names the server it now talks to.
        repository.seen("b1", T0 + timedelta(seconds=5), server_id="srv_a")
        register(repository, "b2", "r-b2", T0)
        repository.device("b2").server_id = "srv_b"
        session.flush()

        assert repository.mark_offline_served_by("srv_a") == ["a1", "a2", "b1"]
        assert [d.endpoint for d in repository.devices(online=True)] == ["b2", "old"]

        servers.renew("srv_b", T0 + timedelta(seconds=30))
        assert servers.alive(T0 + timedelta(seconds=40), 15) == ["srv_b"]
        # srv_b is alive: only the device of no known server goes (a server that starts asks this).
        assert repository.mark_offline_unless_served_by(["srv_b"], unknown=False) == []
        assert repository.mark_offline_unless_served_by(["srv_b"]) == ["old"]
        # srv_b was killed: no renewal, so the others set its devices offline.
        assert servers.alive(T0 + timedelta(seconds=60), 15) == []
        assert repository.mark_offline_unless_served_by([], unknown=False) == ["b2"]
        servers.leave("srv_b")
        servers.renew("srv_b", T0 + timedelta(seconds=61))  # a renewal after leaving announces it again
        assert servers.alive(T0 + timedelta(seconds=61), 15) == ["srv_b"]
        # A server long gone is forgotten once its devices are offline; a live one is kept.
        servers.forget_before(T0 + timedelta(seconds=46))
        assert servers.alive(T0 + timedelta(seconds=61), 3600) == ["srv_b"]
