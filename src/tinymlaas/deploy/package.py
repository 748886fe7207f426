"""Signed model packages: what travels to a device and what a device checks before installing.

A package is a zip holding the module's files, its ``manifest.json``, and ``manifest.sig``, the raw
64-byte Ed25519 signature over those exact bytes. The signature covers only the manifest, and the
manifest pins every file by size and sha256, so a device that checks both installs exactly what the
server signed and nothing else; timestamps and other zip bookkeeping are deliberately left unsigned.

The signed manifest is the compiler's plus one field the server adds when it signs: ``sequence``, a
number that only grows per model line (``model_line``: the model's name). A validly signed package
stays valid forever, so without it anyone who kept an old package could replay it onto a device and
downgrade it; with it a device refuses every package not newer than the newest it confirmed, and an
operator who wants an older model back signs it again and gets a higher sequence. ``board``, the board
the module was built for, was already in the compiler's manifest and so is signed as well.

Every rejection raises ``PackageRejected`` with the LwM2M Object 9 Update Result the agent reports:
``NOT_ENOUGH_STORAGE`` when it is too big, ``INTEGRITY_CHECK_FAILURE`` when bytes do not verify (corrupt zip,
bad signature, file contents differing from the manifest), ``UNSUPPORTED_PACKAGE_TYPE`` when the
package is not a shape we accept (unsafe or duplicate names, links, encryption, no signature, a
malformed manifest).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from tinymlaas.compilers.base import MANIFEST_NAME, MANIFEST_SCHEMA
from tinymlaas.deploy.signing import SigningKey, verify_signature
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import UpdateResult

__all__ = [
    "MANIFEST_NAME",
    "SEQUENCE_FIELD",
    "SIGNATURE_NAME",
    "PackageRejected",
    "VerifiedPackage",
    "model_line",
    "sign_package",
    "verify_package",
]

SIGNATURE_NAME = "manifest.sig"
SEQUENCE_FIELD = "sequence"
_RESERVED_NAMES = frozenset({MANIFEST_NAME, SIGNATURE_NAME})
# Fixed entry timestamp and attributes so signing the same module always yields the same bytes.
_ZIP_EPOCH = (2020, 1, 1, 0, 0, 0)
_UNIX = 3  # zip "version made by" host system; makes the mode bits below meaningful to unzip tools
_FILE_ATTRIBUTES = (stat.S_IFREG | 0o644) << 16
_SUPPORTED_COMPRESSION = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# What zipfile and zlib raise on damaged or hostile archives; all of them mean "does not verify".
_CORRUPT_ARCHIVE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    KeyError,
    IndexError,
    OverflowError,
)


class PackageRejected(InvalidInput):
    """A package a device must not install; ``result`` is the Object 9 Update Result to report."""

    title = "Package rejected"

    def __init__(self, detail: str, result: UpdateResult) -> None:
        super().__init__(detail)
        self.result = result


@dataclass(frozen=True)
class VerifiedPackage:
    """A package whose signature, structure and every file were checked against the trusted key.

    ``files`` excludes ``manifest.json`` and ``manifest.sig``. ``manifest`` is read-only at the top
    level only; treat nested values as read-only too.
    """

    manifest: Mapping[str, Any]
    files: Mapping[str, bytes]

    def __post_init__(self) -> None:
        object.__setattr__(self, "manifest", MappingProxyType(dict(self.manifest)))
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))


def model_line(manifest: Mapping[str, Any]) -> str:
    """The line of models a sequence counts within: every version of one model shares it, so a device
    on version 3 refuses an old package of version 2 but not a freshly signed one."""
    model = manifest.get("model")
    if not isinstance(model, Mapping):
        raise InvalidInput("the manifest has no 'model' object, so it belongs to no model line")
    line = model.get("name") or model.get("id")
    if not _is_nonempty_str(line):
        raise InvalidInput("the manifest's model has neither a name nor an id to name its model line")
    return str(line)


def sign_package(module_zip: bytes, key: SigningKey, *, sequence: int) -> bytes:
    """Turn a module zip (``CompiledModule.to_zip()``) into a signed package carrying ``sequence``.

    The module is checked exactly as a device would check it first, so the server never signs a
    package that every device would then reject. ``sequence`` must be higher than any the server
    signed before for this model line (``signing.issue_sequence``), or devices that took a later
    package refuse this one.
    """
    if not _is_sequence(sequence):
        raise InvalidInput(f"a package sequence is a positive integer, got {sequence!r}")
    members = _read_archive(module_zip, max_bytes=None)
    if SIGNATURE_NAME in members:
        raise PackageRejected(
            f"module zip already contains {SIGNATURE_NAME}; sign the unsigned module",
            UpdateResult.UNSUPPORTED_PACKAGE_TYPE,
        )
    manifest_bytes = members.pop(MANIFEST_NAME, None)
    if manifest_bytes is None:
        raise PackageRejected(f"module zip has no {MANIFEST_NAME}", UpdateResult.UNSUPPORTED_PACKAGE_TYPE)
    manifest = _parse_manifest(manifest_bytes)
    _check_files(manifest, members)
    manifest[SEQUENCE_FIELD] = sequence
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    entries = {**members, MANIFEST_NAME: manifest_bytes, SIGNATURE_NAME: key.sign(manifest_bytes)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, _ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = _UNIX
            info.external_attr = _FILE_ATTRIBUTES
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def verify_package(package: bytes, public_key_raw: bytes, *, max_bytes: int) -> VerifiedPackage:
    """Check a downloaded package against the provisioned public key before anything is installed.

    ``max_bytes`` bounds both the package as downloaded and the sum of its unpacked files, so a small
    archive cannot inflate past the space the device has. A public key that is not 32 bytes raises
    plain ``InvalidInput``: that is a provisioning fault, not a bad package.
    """
    if len(package) > max_bytes:
        raise PackageRejected(
            f"package is {len(package)} bytes, more than the {max_bytes} bytes allowed",
            UpdateResult.NOT_ENOUGH_STORAGE,
        )
    members = _read_archive(package, max_bytes=max_bytes)
    manifest_bytes = members.pop(MANIFEST_NAME, None)
    signature = members.pop(SIGNATURE_NAME, None)
    if manifest_bytes is None or signature is None:
        absent = MANIFEST_NAME if manifest_bytes is None else SIGNATURE_NAME
        raise PackageRejected(
            f"package has no {absent}; only signed packages are accepted",
            UpdateResult.UNSUPPORTED_PACKAGE_TYPE,
        )
    if not verify_signature(public_key_raw, manifest_bytes, signature):
        raise PackageRejected(
            f"{SIGNATURE_NAME} does not verify {MANIFEST_NAME} under the provisioned public key "
            "(signed with another key, or the manifest or signature was altered)",
            UpdateResult.INTEGRITY_CHECK_FAILURE,
        )
    manifest = _parse_manifest(manifest_bytes)
    if not _is_sequence(manifest.get(SEQUENCE_FIELD)):
        raise _malformed(
            f"field {SEQUENCE_FIELD!r} is missing or not a positive integer; the server adds it when it "
            "signs, so this package was signed before devices refused replays, or by hand"
        )
    _check_files(manifest, members)
    return VerifiedPackage(manifest=manifest, files=members)


def _read_archive(blob: bytes, *, max_bytes: int | None) -> dict[str, bytes]:
    """Every member of a zip, after refusing anything that could escape or inflate on extraction."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except _CORRUPT_ARCHIVE as error:
        raise PackageRejected(
            f"not a readable zip archive: {error}", UpdateResult.INTEGRITY_CHECK_FAILURE
        ) from error
    with archive:
        infos = archive.infolist()
        _check_member_names([info.filename for info in infos])
        for info in infos:
            _check_entry(info)
        unpacked = sum(info.file_size for info in infos)
        if max_bytes is not None and unpacked > max_bytes:
            raise PackageRejected(
                f"package unpacks to {unpacked} bytes, more than the {max_bytes} bytes allowed",
                UpdateResult.NOT_ENOUGH_STORAGE,
            )
        members: dict[str, bytes] = {}
        for info in infos:
            try:
                # zipfile stops at the declared size and checks the CRC, so reading is bounded.
                members[info.filename] = archive.read(info)
            except _CORRUPT_ARCHIVE as error:
                raise PackageRejected(
                    f"member {info.filename!r} is corrupt: {error}", UpdateResult.INTEGRITY_CHECK_FAILURE
                ) from error
    return members


def _check_member_names(names: list[str]) -> None:
    seen: dict[str, str] = {}
    for name in names:
        reason = _unsafe_name_reason(name)
        if reason is not None:
            raise PackageRejected(
                f"unsafe member name {name!r}: {reason}", UpdateResult.UNSUPPORTED_PACKAGE_TYPE
            )
        folded = name.casefold()
        if folded in seen:
            detail = (
                f"duplicate member name {name!r}"
                if seen[folded] == name
                else f"member names {seen[folded]!r} and {name!r} differ only in case"
            )
            raise PackageRejected(detail, UpdateResult.UNSUPPORTED_PACKAGE_TYPE)
        seen[folded] = name


def _unsafe_name_reason(name: str) -> str | None:
    """Why ``name`` could land outside the install directory or clash on a device filesystem."""
    if not name:
        return "empty name"
    if any(ord(char) < 0x20 or char == "\x7f" for char in name):
        return "control character in name"
    if "\\" in name:
        return "backslash in name"
    if name.startswith("/"):
        return "absolute path"
    if _DRIVE_LETTER.match(name):
        return "drive letter"
    if name.endswith("/"):
        return "directory entry"
    parts = name.split("/")
    if ".." in parts:
        return "'..' path component"
    if any(part in ("", ".") for part in parts):
        return "empty or '.' path component"
    return None


def _check_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    if info.flag_bits & 0x1:
        raise PackageRejected(f"member {name!r} is encrypted", UpdateResult.UNSUPPORTED_PACKAGE_TYPE)
    if info.compress_type not in _SUPPORTED_COMPRESSION:
        raise PackageRejected(
            f"member {name!r} uses unsupported compression method {info.compress_type}",
            UpdateResult.UNSUPPORTED_PACKAGE_TYPE,
        )
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        raise PackageRejected(f"member {name!r} is a symbolic link", UpdateResult.UNSUPPORTED_PACKAGE_TYPE)
    if file_type not in (0, stat.S_IFREG):
        raise PackageRejected(
            f"member {name!r} is not a regular file (mode {file_type:#o})",
            UpdateResult.UNSUPPORTED_PACKAGE_TYPE,
        )


def _malformed(detail: str) -> PackageRejected:
    return PackageRejected(f"malformed {MANIFEST_NAME}: {detail}", UpdateResult.UNSUPPORTED_PACKAGE_TYPE)


def _parse_manifest(data: bytes) -> dict[str, Any]:
    """The manifest, after checking every field a device relies on to install and self-test."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise _malformed(f"not UTF-8 JSON ({error})") from error
    if not isinstance(manifest, dict):
        raise _malformed("top level is not a JSON object")
    schema = manifest.get("schema", MANIFEST_SCHEMA)
    if schema != MANIFEST_SCHEMA:
        raise _malformed(f"schema {schema!r} is not supported (expected {MANIFEST_SCHEMA})")
    model = manifest.get("model")
    if not isinstance(model, dict):
        raise _malformed("field 'model' is missing or not an object")
    if not _is_nonempty_str(model.get("id")):
        raise _malformed("field 'model.id' is missing or not a non-empty string")
    version = model.get("version")
    if not (_is_nonempty_str(version) or (isinstance(version, int) and not isinstance(version, bool))):
        raise _malformed("field 'model.version' is missing or not an integer or string")
    for field_name in ("board", "runtime"):
        if not _is_nonempty_str(manifest.get(field_name)):
            raise _malformed(f"field {field_name!r} is missing or not a non-empty string")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise _malformed("field 'files' is missing, empty or not an object")
    for name, entry in files.items():
        reason = _unsafe_name_reason(name)
        if reason is not None:
            raise _malformed(f"file name {name!r} is unsafe: {reason}")
        if name in _RESERVED_NAMES:
            raise _malformed(f"file name {name!r} is reserved for the package itself")
        if not isinstance(entry, dict):
            raise _malformed(f"entry for {name!r} is not an object")
        if not (isinstance(entry.get("sha256"), str) and _SHA256_HEX.match(entry["sha256"])):
            raise _malformed(f"entry for {name!r} has no sha256 as 64 lowercase hex digits")
        size = entry.get("size")
        if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0):
            raise _malformed(f"entry for {name!r} has no size as a non-negative integer")
    return manifest


def _is_nonempty_str(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _is_sequence(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_files(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> None:
    """Every listed file present with its size and digest, and nothing unlisted beside them."""
    listed: Mapping[str, Mapping[str, Any]] = manifest["files"]
    missing = sorted(set(listed) - set(files))
    if missing:
        raise PackageRejected(
            f"{MANIFEST_NAME} lists files the package lacks: {', '.join(map(repr, missing))}",
            UpdateResult.INTEGRITY_CHECK_FAILURE,
        )
    extra = sorted(set(files) - set(listed))
    if extra:
        raise PackageRejected(
            f"package holds files {MANIFEST_NAME} does not list: {', '.join(map(repr, extra))}",
            UpdateResult.INTEGRITY_CHECK_FAILURE,
        )
    for name in sorted(listed):
        data, entry = files[name], listed[name]
        if len(data) != entry["size"]:
            raise PackageRejected(
                f"file {name!r} is {len(data)} bytes, {MANIFEST_NAME} says {entry['size']} bytes",
                UpdateResult.INTEGRITY_CHECK_FAILURE,
            )
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"]:
            raise PackageRejected(
                f"file {name!r} has sha256 {digest}, {MANIFEST_NAME} says {entry['sha256']}",
                UpdateResult.INTEGRITY_CHECK_FAILURE,
            )
