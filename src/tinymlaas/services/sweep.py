"""Start-up housekeeping: upload spools and blobs that a crash or a deleted row left behind.

An upload is spooled under ``uploads_dir`` and removed once handled, so anything there that has not
changed for a while was left by a process that died mid-request. A blob no row names is garbage once
the import that wrote it has had time to commit: the grace period keeps a blob written a moment ago by
another process (whose row is not yet visible) out of reach.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import BlobReferenceRepository

__all__ = ["SWEEP_GRACE", "Swept", "sweep_leftovers"]

SWEEP_GRACE = timedelta(hours=1)  # far longer than any upload or import takes

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Swept:
    uploads: tuple[Path, ...]  # spool directories and files removed from uploads_dir
    blobs: tuple[Path | str, ...]  # unreferenced blobs and half-written files removed: paths, s3:// URLs
    freed_bytes: int


def _newest_change(path: Path) -> float:
    """The latest modification under ``path``, so a spool still being written counts as fresh."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            newest = max(newest, child.lstat().st_mtime)
    return newest


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(child.lstat().st_size for child in path.rglob("*") if child.is_file())
    return path.lstat().st_size


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def sweep_leftovers(ctx: Context, *, grace: timedelta = SWEEP_GRACE, now: float | None = None) -> Swept:
    """Remove upload leftovers and unreferenced blobs untouched for ``grace``; log and return what went.

    Safe to run while another process imports: nothing younger than ``grace`` is touched.
    """
    cutoff = (time.time() if now is None else now) - grace.total_seconds()
    uploads: list[Path] = []
    blobs: list[Path | str] = []
    freed = 0
    spool = ctx.settings.uploads_dir
    if spool.is_dir():
        for entry in sorted(spool.iterdir()):
            if _newest_change(entry) < cutoff:
                freed += _size(entry)
                _remove(entry)
                uploads.append(entry)
    with ctx.session() as session:
        referenced = BlobReferenceRepository(session).referenced()
    for item in sorted(ctx.blobs.stored(), key=lambda item: str(item.location)):
        if (item.digest is None or item.digest not in referenced) and item.touched_at < cutoff:
            removed = ctx.blobs.remove(item, untouched_since=cutoff)
            if removed is not None:
                freed += removed
                blobs.append(item.location)
    swept = Swept(tuple(uploads), tuple(blobs), freed)
    if uploads or blobs:
        _log.info(
            "start-up sweep removed %d upload leftover(s) and %d unreferenced blob(s), %d bytes: %s",
            len(uploads),
            len(blobs),
            freed,
            ", ".join(str(p) for p in (*uploads, *blobs)),
        )
    return swept
