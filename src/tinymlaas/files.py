"""Durable file writes: after a crash or a power cut a reader finds the old file or the whole new one.

Slots, update state, the outbox, the signing key and the blob store all keep state that a half-written
file would corrupt, so they all write through here: a temporary file in the same directory (a rename
is only atomic within one file system), ``fsync``, ``os.replace``, then an ``fsync`` of the directory,
without which the rename itself may not survive the power cut.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "PRIVATE_DIR_MODE",
    "TEMP_SUFFIX",
    "fsync_dir",
    "make_private_dir",
    "write_atomic",
    "write_json_atomic",
]

TEMP_SUFFIX = ".tmp"
"""How every temporary file of ``write_atomic`` ends, so a directory's owner can sweep crash leftovers."""

PRIVATE_DIR_MODE = 0o700
"""The store holds models, samples, keys and session data: no other local user may list or read it."""


def make_private_dir(path: Path) -> Path:
    """``path`` and every missing directory above it, each created readable by its owner only.

    Directories that already exist keep their mode: the data directory may sit under one the
    operator chose and shares on purpose.
    """
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another process made it between the check and here
        os.chmod(directory, PRIVATE_DIR_MODE)  # exactly 0700, whatever the umask left of it
    return path


def fsync_dir(path: Path) -> None:
    """Make the names created, renamed or removed in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` durably; readers never see a prefix of it.

    The file gets ``mode`` when given, else 0600 (``mkstemp``'s): it exists under its final name only
    once its content and permissions are complete.
    """
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """``write_atomic`` of ``data`` as indented JSON with sorted keys (mapping proxies become objects)."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=dict).encode())
