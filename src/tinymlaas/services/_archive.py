"""Unpacking an uploaded zip of class folders without trusting anything the archive says.

A member's name could point outside the target folder (``../../x``, ``/etc/x``, ``C:\\x``), a member
could be a link, and the sizes in the directory could lie (a zip bomb). So names are checked part by
part before anything is written, links and encrypted members are refused, and the bytes actually
inflated are counted against a limit as they are written.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tinymlaas.errors import InvalidInput, TooLarge

__all__ = ["MAX_MEMBERS", "unpack_zip"]

MAX_MEMBERS = 100_000  # files and folders in one archive
_CHUNK = 1024 * 1024
# Folders archivers add beside the content (macOS Finder's resource forks); never samples.
_SKIPPED_TOP = frozenset({"__MACOSX"})
# What zipfile raises on a damaged or odd archive; the last two on members whose names clash.
_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    FileExistsError,
    NotADirectoryError,
)


def _parts(archive_name: str, member: str) -> tuple[str, ...]:
    """The member's path below the target folder, or InvalidInput if it would land anywhere else."""
    normalised = member.replace("\\", "/")
    parts = tuple(p for p in PurePosixPath(normalised).parts if p not in ("", "."))
    if normalised.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise InvalidInput(f"{archive_name}: member {member!r} would land outside the import folder; refused")
    return parts


def _check(archive_name: str, info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise InvalidInput(f"{archive_name}: member {info.filename!r} is encrypted; upload a plain zip")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise InvalidInput(f"{archive_name}: member {info.filename!r} is a link; links are refused")


def unpack_zip(path: Path, into: Path, *, max_bytes: int) -> None:
    """Unpack the zip at ``path`` into the empty or new folder ``into``.

    InvalidInput for a corrupt archive or a member that is a link, encrypted, or named to escape
    ``into``; TooLarge once more than ``max_bytes`` are inflated. On any error ``into`` is removed.
    """
    name = path.name
    into.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise InvalidInput(f"{name}: {len(members)} members; an import may hold {MAX_MEMBERS}")
            written = 0
            for info in members:
                _check(name, info)
                parts = _parts(name, info.filename)
                if not parts or parts[0] in _SKIPPED_TOP:
                    continue
                target = into.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, target.open("wb") as out:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise TooLarge(
                                f"{name} unpacks to more than the {max_bytes:,} bytes an import may be"
                            )
                        out.write(chunk)
    except _CORRUPT as exc:
        shutil.rmtree(into, ignore_errors=True)
        raise InvalidInput(f"{name}: not a readable zip archive ({exc})") from exc
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise
