"""What every service needs, opened once: settings, database sessions, blob store, board catalog."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.orm import Session, sessionmaker

from tinymlaas.catalog import Catalog, load_catalog
from tinymlaas.files import make_private_dir
from tinymlaas.settings import Settings
from tinymlaas.storage.blobs import BlobStore, open_blob_store
from tinymlaas.storage.db import open_database

__all__ = ["Context", "new_id"]


def new_id(prefix: str) -> str:
    """Short, typed, unguessable ids (``mdl_3f9a2c1b7d04``): readable in a terminal, unique in practice."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@dataclass
class Context:
    settings: Settings

    @cached_property
    def _sessions(self) -> sessionmaker[Session]:
        make_private_dir(self.settings.data_dir)
        return open_database(self.settings.resolved_database_url)

    @cached_property
    def blobs(self) -> BlobStore:
        return open_blob_store(self.settings)

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog(self.settings.boards_dirs)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back whole on any error."""
        with self._sessions() as session, session.begin():
            yield session
