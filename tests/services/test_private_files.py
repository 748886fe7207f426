"""The store is private to the server's user: database, blobs, keys and upload spools."""

from __future__ import annotations

import asyncio
import io
import stat
from pathlib import Path

from fastapi import UploadFile

from tinymlaas.deploy.signing import PRIVATE_KEY_NAME, load_or_create_signing_key
from tinymlaas.httpio.uploads import receive
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_database_blobs_keys_and_uploads_are_private(tmp_path) -> None:
    context = Context(Settings(data_dir=tmp_path / "home" / "data"))
    create_token(context, Role.ADMIN)  # opens the database
    settings = context.settings
    assert _mode(settings.data_dir) == 0o700
    assert _mode(settings.data_dir.parent) == 0o700  # made for the data directory, so private too
    database = settings.data_dir / "tinymlaas.db"
    for path in (database, *database.parent.glob("tinymlaas.db-*")):
        assert _mode(path) == 0o600, path

    digest = context.blobs.put(b"a sample")
    blob = settings.blob_dir / digest[:2] / digest[2:]
    assert (_mode(settings.blob_dir), _mode(blob.parent), _mode(blob)) == (0o700, 0o700, 0o600)

    load_or_create_signing_key(settings.keys_dir)
    assert (_mode(settings.keys_dir), _mode(settings.keys_dir / PRIVATE_KEY_NAME)) == (0o700, 0o600)

    async def spool() -> tuple[int, int, int]:
        upload = UploadFile(io.BytesIO(b"x,y\n1,2\n"), filename="t.csv")
        async with receive(upload, limit=1024, work_dir=settings.uploads_dir) as path:
            return _mode(settings.uploads_dir), _mode(path.parent), _mode(path)

    uploads, folder, file = asyncio.run(spool())
    assert (uploads, folder) == (0o700, 0o700)
    assert file & 0o077 == 0  # inside a private folder, and itself unreadable to others


def test_an_existing_directory_keeps_its_mode(tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    context = Context(Settings(data_dir=shared / "data"))
    create_token(context, Role.ADMIN)
    assert _mode(shared) == 0o755
    assert _mode(shared / "data") == 0o700
