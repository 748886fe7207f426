"""Content-addressed blob store: samples, models and packages kept by their SHA-256.

Writes go to a temporary file and are renamed into place, so a crash never leaves a half-written
blob under a valid name; identical content is stored once. Blobs and their directories are readable
by the server's user only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from tinymlaas.errors import NotFound, RuntimeFailure
from tinymlaas.files import make_private_dir, write_atomic

__all__ = ["BlobStore"]


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise NotFound(f"{digest!r} is not a blob id (64 lowercase hex digits)")
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        with contextlib.suppress(FileNotFoundError):
            # Stored already: made fresh again, since the start-up sweep spares recent blobs and this
            # one is about to be named by a row the sweep may not see yet.
            os.utime(path)
            return digest
        make_private_dir(path.parent)
        write_atomic(path, data, mode=0o600)
        return digest

    def get(self, digest: str) -> bytes:
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is missing from {self.root}") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeFailure(f"blob {digest} is corrupt on disk ({path})")
        return data

    def exists(self, digest: str) -> bool:
        return self._path(digest).exists()

    def discard(self, digest: str, *, untouched_since: float) -> int:
        """Remove the blob if no write touched it after ``untouched_since`` (a POSIX time); the bytes
        freed, 0 when it is gone already or was touched since.

        A write of the same content touches the file before its row commits (``put``), so a blob
        touched later may be about to be named again and is left for the start-up sweep to judge.
        """
        path = self._path(digest)
        try:
            stat = path.stat()
            if stat.st_mtime > untouched_since:
                return 0
            path.unlink()
        except FileNotFoundError:
            return 0
        return stat.st_size

    def files(self) -> Iterator[Path]:
        """Every file under the store, blobs and crash leftovers of ``write_atomic`` alike."""
        if self.root.is_dir():
            yield from (path for path in self.root.glob("*/*") if path.is_file())

    @staticmethod
    def digest_of(path: Path) -> str | None:
        """The digest a file in the store is named for; None for anything that is not a blob's name."""
        digest = path.parent.name + path.name
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            return digest
        return None
