import hashlib
import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from tinymlaas.errors import NotFound, RuntimeFailure
from tinymlaas.storage.blobs import FilesystemBlobStore
from tinymlaas.storage.db import open_database
from tinymlaas.storage.tables import Base


def test_blobs_are_content_addressed_and_verified(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    digest = store.put(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert store.put(b"hello") == digest and store.get(digest) == b"hello"
    path = tmp_path / digest[:2] / digest[2:]
    path.write_bytes(b"tampered")
    with pytest.raises(RuntimeFailure, match="corrupt"):
        store.get(digest)
    with pytest.raises(NotFound, match="missing"):
        store.get("0" * 64)
    with pytest.raises(NotFound, match="not a blob id"):
        store.get("../../etc/passwd")
    assert not list(tmp_path.rglob(".tmp-*"))


def test_migrations_create_exactly_the_declared_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    open_database(url)
    open_database(url)  # idempotent: already at head
    with create_engine(url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    tables = {r[0] for r in sqlite3.connect(tmp_path / "db.sqlite").execute("select name from sqlite_master")}
    assert {"datasets", "samples", "snapshots", "training_runs", "models", "variants", "modules"} <= tables
    assert {"devices", "device_events"} <= tables
