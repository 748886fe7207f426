"""PostgreSQL as the store: the same schema as SQLite, clear errors, and the paths two writers race on.

Each race runs two real sessions on a real server: the first takes its step and holds its transaction
open while the second takes the same step; exactly one may win, and nothing the first wrote is lost.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, create_engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from helpers.postgres import PostgresServer
from helpers.seeding import add_campaign, add_model_chain, register_device
from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.data.upload import SampleUpload
from tinymlaas.errors import Conflict, InvalidInput, StoreUnavailable
from tinymlaas.services.auth import revoke_token
from tinymlaas.services.campaigns import cancel_campaign
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings
from tinymlaas.storage.db import open_database
from tinymlaas.storage.repositories import (
    CampaignRepository,
    DatasetRepository,
    DeviceRepository,
    JobRepository,
    TokenRepository,
)
from tinymlaas.storage.tables import ApiTokenRow, Base, DatasetRow, JobRow, SampleRow

pytestmark = pytest.mark.store_backends("postgresql")

# How long the first writer holds its transaction open once the second has started its step: long
# enough for the second to reach the database and wait there.
HOLD_S = 0.3


def _columns(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return {
            table: {column["name"] for column in inspector.get_columns(table)}
            for table in inspector.get_table_names()
        }
    finally:
        engine.dispose()


def test_migrations_give_postgresql_the_tables_and_columns_sqlite_gets(postgres, tmp_path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'parity.sqlite'}"
    open_database(sqlite_url)
    with postgres.database(empty=True) as url:
        assert _columns(url) == {}
        open_database(url).kw["bind"].dispose()
        open_database(url).kw["bind"].dispose()  # already at head: a second open migrates nothing
        assert _columns(url) == _columns(sqlite_url)
        engine = create_engine(url)
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
            # Histories are numbered past 32 bits on PostgreSQL, where INTEGER would overflow.
            for table in ("device_events", "audit_events"):
                key = next(c for c in inspect(connection).get_columns(table) if c["name"] == "id")
                assert isinstance(key["type"], BigInteger), table
        engine.dispose()


def test_an_unreachable_server_is_named_without_its_password(postgres: PostgresServer) -> None:
    closed = postgres.url("tinymlaas").replace(f":{postgres.port}/", ":1/")
    with pytest.raises(StoreUnavailable) as caught:
        open_database(closed)
    assert "127.0.0.1:1/tinymlaas" in caught.value.detail
    assert postgres.password not in caught.value.detail and "***" in caught.value.detail
    assert caught.value.http_status == 503


def test_a_wrong_password_or_database_is_refused_without_showing_the_password(postgres) -> None:
    wrong = postgres.url("tinymlaas").replace(postgres.password, "not-the-password")
    with pytest.raises(StoreUnavailable, match="password authentication failed") as caught:
        open_database(wrong)
    assert "not-the-password" not in caught.value.detail
    with pytest.raises(StoreUnavailable, match='database "no_such_store" does not exist'):
        open_database(postgres.url("no_such_store"))
    with pytest.raises(InvalidInput, match="not a URL"):
        open_database("a store")
    with pytest.raises(InvalidInput, match="cannot open the store at nosuchdb://"):
        open_database("nosuchdb://host/db")


def _race(
    sessions: sessionmaker[Session], first: Callable[[Session], Any], second: Callable[[Session], Any]
) -> tuple[Any, Any]:
    """``first`` in one session, then ``second`` in another thread while the first is still open; both
    commit. Returns what each returned, or the exception the second raised."""
    results: dict[str, Any] = {}
    started = threading.Event()

    def other() -> None:
        started.set()
        try:
            with sessions() as session, session.begin():
                results["second"] = second(session)
        except Exception as exc:  # the losing writer's error is the result under test
            results["second"] = exc

    with sessions() as session, session.begin():
        results["first"] = first(session)
        thread = threading.Thread(target=other)
        thread.start()
        started.wait()
        time.sleep(HOLD_S)
        assert thread.is_alive(), "the second writer did not wait for the first"
    thread.join(timeout=30)
    assert not thread.is_alive()
    return results["first"], results["second"]


def test_two_workers_claiming_one_job_exactly_one_wins(store) -> None:
    sessions = open_database(store)
    with sessions() as session, session.begin():
        JobRepository(session).add(JobRow(id="job_race", kind="train", params={}, state="queued"))

    def claim(pid: int) -> Callable[[Session], bool]:
        def step(session: Session) -> bool:
            values = {"state": "running", "worker_pid": pid}
            return JobRepository(session).update_if("job_race", ["queued"], values)

        return step

    assert _race(sessions, claim(101), claim(202)) == (True, False)
    with sessions() as session:
        job = session.get(JobRow, "job_race")
        assert job is not None and (job.state, job.worker_pid) == ("running", 101)


def test_concurrent_log_appends_are_all_kept(store) -> None:
    sessions = open_database(store)
    with sessions() as session, session.begin():
        JobRepository(session).add(JobRow(id="job_log", kind="train", params={}, state="running"))

    def append(line: str) -> Callable[[Session], bool]:
        return lambda session: JobRepository(session).append_log_if("job_log", ["running"], line, {})

    assert _race(sessions, append("one\n"), append("two\n")) == (True, True)
    with sessions() as session:
        assert session.scalar(select(JobRow.log).where(JobRow.id == "job_log")) == "one\ntwo\n"


def test_a_cancel_racing_a_campaign_step_waits_and_keeps_the_step(store, tmp_path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data", database_url=store))
    sessions = open_database(store)
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        add_model_chain(session, model_id="mdl_r", variant_id="var_r", module_id="mod_r", board="pico")
        register_device(DeviceRepository(session), "dev-r", now)
        add_campaign(
            session, campaign_id="cmp_r", module_id="mod_r", selector="board:pico", endpoint="dev-r",
            state="running", installation="pending", at=now,
        )  # fmt: skip

    def send(session: Session) -> None:
        repository = CampaignRepository(session)
        repository.campaign("cmp_r")
        repository.installations("cmp_r")["dev-r"].state = "sent"

    def cancel(_session: Session) -> str:
        return cancel_campaign(context, "cmp_r").installations[0].state

    # The cancel runs in its own session: it must see the device as sent, in flight, and leave it so.
    _, cancelled_view = _race(sessions, send, cancel)
    assert cancelled_view == "sent"
    with context.session() as session:
        repository = CampaignRepository(session)
        assert repository.campaign("cmp_r").state == "cancelled"
        assert repository.installations("cmp_r")["dev-r"].state == "sent"


def test_a_token_used_while_it_is_revoked_stays_revoked(store) -> None:
    sessions = open_database(store)
    with sessions() as session, session.begin():
        session.add(ApiTokenRow(id="tok_r", name="r", role="viewer", secret_sha256="a" * 64))
    with sessions() as using, using.begin():
        token = using.get(ApiTokenRow, "tok_r")
        assert token is not None and not token.revoked
        with sessions() as revoking, revoking.begin():
            revoked = revoking.get(ApiTokenRow, "tok_r")
            assert revoked is not None
            revoked.revoked = True
        token.last_used_at = datetime.now(UTC)  # the use writes its own column, not the whole row
    with sessions() as session:
        token = session.get(ApiTokenRow, "tok_r")
        assert token is not None and token.revoked and token.last_used_at is not None


def test_two_admins_revoked_at_once_leave_one_admin_token(store, tmp_path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data", database_url=store))
    sessions = open_database(store)
    with sessions() as session, session.begin():
        for name in ("a", "b"):
            session.add(ApiTokenRow(id=f"tok_{name}", name=name, role="admin", secret_sha256=name * 64))

    def revoke_a(session: Session) -> None:
        tokens = TokenRepository(session).tokens(lock=True)
        next(t for t in tokens if t.id == "tok_a").revoked = True

    def revoke_b(_session: Session) -> dict[str, Any]:
        return revoke_token(context, "tok_b")

    _, second = _race(sessions, revoke_a, revoke_b)
    assert isinstance(second, Conflict) and "last unrevoked admin token" in str(second)
    with sessions() as session:
        assert session.scalars(select(ApiTokenRow.id).where(ApiTokenRow.revoked.is_(False))).all() == [
            "tok_b"
        ]


def test_the_same_sample_stored_twice_at_once_is_kept_once(store) -> None:
    sessions = open_database(store)
    with sessions() as session, session.begin():
        session.add(
            DatasetRow(id="ds_r", name="race", task="classification", kind="timeseries",
                       input_shape=[3], labels=["a"])
        )  # fmt: skip

    def store_sample(sample_id: str) -> Callable[[Session], str]:
        def step(session: Session) -> str:
            session.add(SampleRow(id=sample_id, dataset_id="ds_r", blob="b" * 64, label="a", source="t"))
            session.flush()
            return sample_id

        return step

    first, second = _race(sessions, store_sample("smp_1"), store_sample("smp_2"))
    assert first == "smp_1"
    assert isinstance(second, IntegrityError) and "uq_sample_content" in str(second)
    with sessions() as session:
        assert list(session.scalars(select(SampleRow.id))) == ["smp_1"]


def test_a_device_sample_whose_content_arrives_twice_at_once_is_answered_as_stored(store, tmp_path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data", database_url=store))
    spec = DatasetSpec(Task.CLASSIFICATION, SampleKind.TIMESERIES, (4, 3))
    DatasetService(context).create("field", spec, open_classes=True)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    encoded = io.BytesIO()
    np.save(encoded, x, allow_pickle=False)
    digest = context.blobs.put(encoded.getvalue())
    sessions = open_database(store)

    def first_upload(session: Session) -> str:
        dataset = DatasetRepository(session).find("field")
        assert dataset is not None
        row = SampleRow(id="smp_first", dataset_id=dataset.id, blob=digest, label=None, source="t")
        return DatasetRepository(session).add_sample_once(row)[0].id

    def second_upload(_session: Session) -> Any:
        return DatasetService(context).collect("field", SampleUpload("u2", "pico-1", None, x, 0.0))

    first, second = _race(sessions, first_upload, second_upload)
    assert first == "smp_first"
    assert not isinstance(second, Exception), second
    assert (second.sample_id, second.stored) == ("smp_first", False)


def test_a_value_postgresql_cannot_store_is_the_callers_invalid_input(store) -> None:
    sessions = open_database(store)
    with pytest.raises(InvalidInput, match="NUL"), sessions() as session:
        session.scalar(select(DatasetRow).where(DatasetRow.name == "a\x00b"))
    with pytest.raises(InvalidInput, match="too long"), sessions() as session, session.begin():
        session.add(ApiTokenRow(id="tok_long", name="x" * 129, role="viewer", secret_sha256="c" * 64))
        session.flush()
