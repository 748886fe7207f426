"""Content-addressed blob store: samples, models and packages kept by their SHA-256.

Writes go to a temporary file and are renamed into place, so a crash never leaves a half-written
blob under a valid name; identical content is stored once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tinymlaas.errors import NotFound, RuntimeFailure
from tinymlaas.files import write_atomic

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
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
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
