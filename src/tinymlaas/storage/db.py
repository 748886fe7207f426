"""Engine, sessions and schema migrations (Alembic, run programmatically on open)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DataError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tinymlaas.errors import InvalidInput, StoreUnavailable

__all__ = ["open_database"]

_MIGRATIONS = Path(__file__).parent / "migrations"
# A server-backed store is shared by the HTTP server, the LwM2M server, the campaign runner and every
# job worker process, each with its own pool: a few connections each, more in bursts, so a fleet of
# workers stays well inside PostgreSQL's default of 100 connections.
_SERVER_POOL: dict[str, Any] = {
    "pool_pre_ping": True,  # a restarted server or a dropped idle connection is noticed before use
    "pool_size": 5,
    "max_overflow": 10,
    "pool_timeout": 30,
    "pool_recycle": 1800,
}
# How long connecting to a store's server may take before the store counts as unreachable.
_CONNECT_TIMEOUT_S = 10


def _alembic_config() -> Config:
    # The migrations run on the connection handed over, so the URL (and its password) is not needed.
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets readers (CLI listings, a dashboard) work while a long job writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _create_private_file(database: str | None) -> None:
    """Make a new SQLite file readable by its owner only; SQLite gives its WAL and shared-memory files
    the database file's mode, so the whole store stays private."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise InvalidInput(
            "the database URL is not a URL: expected sqlite:///path or "
            "postgresql+psycopg://user:password@host:port/database"
        ) from None


def _refuse_bad_data(context: ExceptionContext) -> None:
    """A value PostgreSQL cannot store (a NUL character in text, text longer than its column, a number
    out of range) is the caller's input at fault, not the server: say so instead of failing with 500.
    SQLite stores such values as they are, so only PostgreSQL needs this."""
    if isinstance(context.sqlalchemy_exception, DataError):
        reason = str(context.original_exception).strip().splitlines()[0]
        raise InvalidInput(f"the store refused a value: {reason}") from None


def _create_engine(parsed: URL) -> Engine:
    shown = parsed.render_as_string(hide_password=True)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        options = {**_SERVER_POOL, "connect_args": {"connect_timeout": _CONNECT_TIMEOUT_S}}
    try:
        return create_engine(parsed, **options)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise InvalidInput(
            f"cannot open the store at {shown}: {_without_password(str(exc), parsed)}"
        ) from None


def _without_password(message: str, url: URL) -> str:
    return message.replace(url.password, "***") if isinstance(url.password, str) and url.password else message


def open_database(url: str) -> sessionmaker[Session]:
    """Connect, bring the schema to the newest migration, and return a session factory.

    Errors name the store by its URL without the password; the driver's words say what went wrong.
    """
    parsed = _parse(url)
    engine = _create_engine(parsed)
    if engine.dialect.name == "sqlite":
        _create_private_file(engine.url.database)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        event.listen(engine, "handle_error", _refuse_bad_data)
    try:
        with engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:  # no server, a refused login, an unknown database, a locked file
        engine.dispose()
        reason = _without_password(str(exc.orig).strip(), parsed)
        shown = parsed.render_as_string(hide_password=True)
        raise StoreUnavailable(f"cannot open the store at {shown}: {reason}") from None
    return sessionmaker(engine, expire_on_commit=False)
