"""Engine, sessions and schema migrations (Alembic, run programmatically on open)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["open_database"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
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


def open_database(url: str) -> sessionmaker[Session]:
    """Connect, bring the schema to the newest migration, and return a session factory."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        _create_private_file(engine.url.database)
        event.listen(engine, "connect", _sqlite_pragmas)
    with engine.begin() as connection:
        config = _alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return sessionmaker(engine, expire_on_commit=False)
