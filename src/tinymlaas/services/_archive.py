"""Unpacking an uploaded zip of class folders without trusting anything the archive says.

A member's name could point outside the target folder (``../../x``, ``/etc/x``, ``C:\\x``), a member
could be a link, and a small archive could inflate to gigabytes (a zip bomb). So the whole directory
is checked before anything is written: names part by part, links and encrypted members refused, the
member count, the total size the members declare and each member's compression ratio bounded. The
declared sizes also bound what is inflated (zipfile stops at a member's declared size and checks its
CRC), and the bytes actually written are counted against the limit all the same.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tinymlaas.errors import InvalidInput, TooLarge

__all__ = ["MAX_MEMBERS", "MAX_RATIO", "unpack_zip"]

MAX_MEMBERS = 100_000  # files and folders in one archive
# Deflate rarely shrinks real samples (PNG, WAV, CSV) by more than this; a bomb shrinks by 1000 or more.
MAX_RATIO = 100
# Members smaller than this are never refused for their ratio: a tiny file of zeros costs nothing.
_RATIO_FLOOR = 1024 * 1024
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


def _check_sizes(archive_name: str, members: list[zipfile.ZipInfo], max_bytes: int) -> None:
    """TooLarge, naming the limit, when what the directory declares is too much to unpack."""
    if len(members) > MAX_MEMBERS:
        raise TooLarge(f"{archive_name}: {len(members):,} members; an import may hold {MAX_MEMBERS:,}")
    total = sum(info.file_size for info in members)
    if total > max_bytes:
        raise TooLarge(
            f"{archive_name} would unpack to {total:,} bytes, over the {max_bytes:,} bytes an import may be"
        )
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR and ratio > MAX_RATIO:
            raise TooLarge(
                f"{archive_name}: member {info.filename!r} inflates {ratio:,.0f} times "
                f"({info.compress_size:,} to {info.file_size:,} bytes); at most {MAX_RATIO} times is accepted"
            )


def unpack_zip(path: Path, into: Path, *, max_bytes: int) -> None:
    """Unpack the zip at ``path`` into the empty or new folder ``into``.

    InvalidInput for a corrupt archive or a member that is a link, encrypted, or named to escape
    ``into``; TooLarge, before anything is written, for too many members, more than ``max_bytes``
    declared in all or a member compressed suspiciously well. On any error ``into`` is removed.
    """
    name = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_sizes(name, members, max_bytes)
            for info in members:
                _check(name, info)
                _parts(name, info.filename)
            into.mkdir(parents=True, exist_ok=True)
            written = 0
            for info in members:
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
