"""Receiving uploaded files: a size limit enforced while reading, and a name that cannot escape.

A client's file name is only a hint: it may hold directories (``../../etc/passwd``), NUL or control
characters, or a name the filesystem treats specially. ``safe_name`` keeps a plain base name of safe
characters, and ``receive`` writes the upload under a fresh directory of the server's choosing, so no
part of a request decides where a file lands. The limit is checked as bytes arrive, so an oversized
upload never fills the disk; it is answered with 413 and nothing of it is kept.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath

from fastapi import UploadFile

from tinymlaas.errors import InvalidInput, TooLarge
from tinymlaas.files import make_private_dir

__all__ = ["receive", "safe_name"]

_CHUNK = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120


def safe_name(name: str | None, *, suffixes: Iterable[str] = ()) -> str:
    """A plain file name from what the client sent, or InvalidInput saying why there is none.

    Directories are dropped (POSIX and Windows separators alike), accents folded to ASCII, anything
    but letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``; leading dots are removed so the
    name is never hidden or ``..``. With ``suffixes``, the name must end in one of them.
    """
    if not name or "\x00" in name:
        raise InvalidInput("the upload has no usable file name")
    base = PureWindowsPath(PurePosixPath(name).name).name
    folded = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", folded).lstrip(".")[-_MAX_NAME:]
    if not cleaned.strip("_."):
        raise InvalidInput(f"the file name {name!r} has nothing usable once directories are removed")
    allowed = tuple(s.lower() for s in suffixes)
    if allowed and not cleaned.lower().endswith(allowed):
        raise InvalidInput(f"{cleaned!r} is not one of the accepted kinds ({', '.join(allowed)})")
    return cleaned


@asynccontextmanager
async def receive(
    upload: UploadFile, *, limit: int, work_dir: Path, suffixes: Iterable[str] = ()
) -> AsyncIterator[Path]:
    """The upload written to a private directory under ``work_dir``; removed again on leaving.

    TooLarge (413) as soon as more than ``limit`` bytes arrive; InvalidInput for an empty file or a
    name with nothing usable in it.
    """
    name = safe_name(upload.filename, suffixes=suffixes)
    make_private_dir(work_dir)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=work_dir))
    try:
        path = folder / name
        written = 0
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            while chunk := await upload.read(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise TooLarge(f"{name} is larger than the {limit:,} bytes an upload may be")
                out.write(chunk)
        if written == 0:
            raise InvalidInput(f"{name} is empty")
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
