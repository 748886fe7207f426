"""Content-addressed blob stores: samples, models and packages kept by their SHA-256.

Two implementations behind one interface: files under the data directory, for one machine, and an
S3-compatible bucket (AWS, MinIO, Ceph), which job workers on other machines reach too. Both keep
identical content once, never show a half-written blob under a valid name, verify the hash on every
read, and keep a last-touched time per blob that a duplicate write refreshes: the start-up sweep and
the sandbox removal spare a recently touched blob, since a row about to name it may not be visible yet.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from tinymlaas.errors import InvalidInput, NotFound, RuntimeFailure
from tinymlaas.files import make_private_dir, write_atomic
from tinymlaas.settings import Settings

if TYPE_CHECKING:
    from botocore.client import BaseClient

__all__ = [
    "BlobStore",
    "FilesystemBlobStore",
    "S3BlobStore",
    "StoredObject",
    "open_blob_store",
    "parse_blob_url",
]

_HEX = frozenset("0123456789abcdef")
# AWS's rules for new buckets; MinIO and Ceph follow them too.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MAX_PREFIX = 512  # S3 keys stop at 1024 bytes; a digest's key needs 65 of them
_MAX_URL = 2048


def _is_digest(text: str) -> bool:
    return len(text) == 64 and all(c in _HEX for c in text)


def _checked(digest: str) -> str:
    """``digest`` itself, once known to be a blob id: it becomes a path or a key, so nothing else may."""
    if not _is_digest(digest):
        raise NotFound(f"{digest!r} is not a blob id (64 lowercase hex digits)")
    return digest


@dataclass(frozen=True)
class StoredObject:
    """One thing a store holds under its name space: a blob, or a leftover of a write that crashed."""

    location: Path | str  # the file, or the object's s3:// URL: what the sweep reports and removes
    digest: str | None  # None when not named for a blob (a half-written file)
    size: int
    touched_at: float  # POSIX time of the last write of this content, duplicates included


class BlobStore(ABC):
    """What the services need of a blob store, whatever keeps the bytes."""

    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store ``data`` and return its digest; stored already, it is touched instead (made fresh)."""

    @abstractmethod
    def get(self, digest: str) -> bytes:
        """The blob's bytes; NotFound when missing, RuntimeFailure when they no longer hash to it."""

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether the blob is stored, without reading it (its hash is not checked)."""

    @abstractmethod
    def discard(self, digest: str, *, untouched_since: float) -> int:
        """Remove the blob if no write touched it after ``untouched_since`` (a POSIX time); the bytes
        freed, 0 when it is gone already or was touched since.

        A write of the same content touches the blob before its row commits (``put``), so a blob
        touched later may be about to be named again and is left for the start-up sweep to judge.
        """

    @abstractmethod
    def stored(self) -> Iterator[StoredObject]:
        """Everything the store holds: every blob with its last-touched time, and crash leftovers."""

    @abstractmethod
    def remove(self, item: StoredObject, *, untouched_since: float) -> int | None:
        """Remove ``item`` (from ``stored``) unless touched after ``untouched_since``; the bytes freed,
        None when it was gone already or touched since.

        The time is checked again here: a listing of a large bucket takes a while, and a ``put`` may
        have touched the blob since it was listed.
        """


class FilesystemBlobStore(BlobStore):
    """Blobs as files ``root/ab/cdef…``, written atomically; the store and its files are private."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"FilesystemBlobStore({str(self.root)!r})"

    def _path(self, digest: str) -> Path:
        digest = _checked(digest)
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
        return self._unlink_untouched(self._path(digest), untouched_since) or 0

    def stored(self) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for path in self.root.glob("*/*"):
            try:
                stat = path.lstat()
            except FileNotFoundError:
                continue  # removed while listing
            if path.is_file():
                digest = path.parent.name + path.name
                yield StoredObject(path, digest if _is_digest(digest) else None, stat.st_size, stat.st_mtime)

    def remove(self, item: StoredObject, *, untouched_since: float) -> int | None:
        path = Path(item.location)
        if path.parent.parent != self.root:
            raise InvalidInput(f"{path} is not a file of the blob store under {self.root}")
        return self._unlink_untouched(path, untouched_since)

    @staticmethod
    def _unlink_untouched(path: Path, untouched_since: float) -> int | None:
        try:
            stat = path.lstat()
            if stat.st_mtime > untouched_since:
                return None
            path.unlink()
        except FileNotFoundError:
            return None
        return stat.st_size


def _missing(exc: ClientError) -> bool:
    """A 404 for the key or bucket asked about; a HEAD's reply has no body to tell the two apart."""
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404 or exc.response.get(
        "Error", {}
    ).get("Code") in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def _touched_at(last_modified: datetime) -> float:
    """S3 keeps last-modified to the second, so a touch may have come up to a second after the time
    it reports: counting it that late spares a blob refreshed in the same second as a cut-off."""
    return last_modified.timestamp() + 1.0


class S3BlobStore(BlobStore):
    """Blobs as objects ``prefix + ab/cdef…`` in one bucket of an S3-compatible server.

    A PUT is all or nothing, so there are no half-written objects to sweep, and only keys named for a
    blob are ever listed or removed: the bucket may hold other things beside the prefix. A duplicate
    write copies the object onto itself (S3 has no utime), which renews its last-modified time.
    Credentials come from boto3's usual chain (``AWS_*`` variables, ``~/.aws``, instance roles).
    """

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.url = f"s3://{bucket}/{prefix}"
        config = Config(
            connect_timeout=10,
            read_timeout=120,
            retries={"mode": "standard", "max_attempts": 5},
            # Path-style requests: MinIO, Ceph and test servers rarely resolve bucket.host names.
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        session = boto3.session.Session()
        self._client: BaseClient = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._open()

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r}, endpoint_url={self.endpoint_url!r})"

    @property
    def _server(self) -> str:
        return self.endpoint_url or "AWS"

    def _open(self) -> None:
        """Fail at start-up, naming the bucket and server, rather than at the first blob a job writes."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _missing(exc):
                raise InvalidInput(
                    f"blob_url names bucket {self.bucket!r}, which does not exist on {self._server}"
                ) from exc
            raise RuntimeFailure(f"cannot open bucket {self.bucket!r} on {self._server}: {exc}") from exc
        except BotoCoreError as exc:
            raise RuntimeFailure(f"cannot open bucket {self.bucket!r} on {self._server}: {exc}") from exc

    def _key(self, digest: str) -> str:
        digest = _checked(digest)
        return f"{self.prefix}{digest[:2]}/{digest[2:]}"

    def _failure(self, action: str, key: str, exc: Exception) -> RuntimeFailure:
        return RuntimeFailure(f"S3 {action} of s3://{self.bucket}/{key} on {self._server} failed: {exc}")

    def _call(self, action: str, key: str, operation: str, *, missing_ok: bool = True, **kwargs: Any) -> Any:
        """One request for ``key``: its reply, None when the key is missing and ``missing_ok``, else
        RuntimeFailure naming the object and server."""
        try:
            return getattr(self._client, operation)(Bucket=self.bucket, Key=key, **kwargs)
        except ClientError as exc:
            if missing_ok and _missing(exc):
                return None
            raise self._failure(action, key, exc) from exc
        except BotoCoreError as exc:
            raise self._failure(action, key, exc) from exc

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        key = self._key(digest)
        # Metadata and type are restated because REPLACE is what lets an object be copied onto itself.
        attributes: dict[str, Any] = {
            "ContentType": "application/octet-stream",
            "Metadata": {"sha256": digest},
        }
        touch = {"CopySource": {"Bucket": self.bucket, "Key": key}, "MetadataDirective": "REPLACE"}
        if self._call("touch", key, "copy_object", **touch, **attributes):
            return digest
        self._call("upload", key, "put_object", missing_ok=False, Body=data, **attributes)
        return digest

    def get(self, digest: str) -> bytes:
        key = self._key(digest)
        response = self._call("read", key, "get_object")
        if response is None:
            raise NotFound(f"blob {digest} is missing from {self.url} on {self._server}")
        try:
            data: bytes = response["Body"].read()
        except BotoCoreError as exc:
            raise self._failure("read", key, exc) from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeFailure(f"blob {digest} is corrupt in s3://{self.bucket}/{key} on {self._server}")
        return data

    def exists(self, digest: str) -> bool:
        key = self._key(digest)
        return self._call("look-up", key, "head_object") is not None

    def discard(self, digest: str, *, untouched_since: float) -> int:
        return self._delete_untouched(self._key(digest), untouched_since) or 0

    def stored(self) -> Iterator[StoredObject]:
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for entry in page.get("Contents", ()):
                    digest = self._digest_of(entry["Key"])
                    if digest is not None:
                        yield StoredObject(
                            f"s3://{self.bucket}/{entry['Key']}",
                            digest,
                            entry["Size"],
                            _touched_at(entry["LastModified"]),
                        )
        except (BotoCoreError, ClientError) as exc:
            raise self._failure("listing", self.prefix, exc) from exc

    def remove(self, item: StoredObject, *, untouched_since: float) -> int | None:
        head = f"s3://{self.bucket}/"
        key = str(item.location).removeprefix(head)
        if not str(item.location).startswith(head) or self._digest_of(key) is None:
            raise InvalidInput(f"{item.location} is not a blob of the store at {self.url}")
        return self._delete_untouched(key, untouched_since)

    def _digest_of(self, key: str) -> str | None:
        if not key.startswith(self.prefix):
            return None
        directory, _, name = key[len(self.prefix) :].partition("/")
        digest = directory + name
        return digest if len(directory) == 2 and _is_digest(digest) else None

    def _delete_untouched(self, key: str, untouched_since: float) -> int | None:
        """Delete after a fresh look at the time: S3 has no delete-if-unmodified that MinIO, Ceph and
        AWS share, so a ``put`` between the look and the delete is the one window left, as on disk."""
        head = self._call("look-up", key, "head_object")
        if head is None or _touched_at(head["LastModified"]) > untouched_since:
            return None
        self._call("removal", key, "delete_object", missing_ok=False)
        return int(head["ContentLength"])


def parse_blob_url(url: str) -> tuple[str, str]:
    """The bucket and key prefix (empty, or ending in ``/``) of ``s3://bucket`` or ``s3://bucket/prefix``."""
    if len(url) > _MAX_URL:
        raise InvalidInput(f"blob_url is {len(url)} characters long; at most {_MAX_URL} are accepted")
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise InvalidInput(f"blob_url {url!r} is not an s3://bucket[/prefix] URL (leave it empty for files)")
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise InvalidInput(
            f"blob_url {url!r} may name only a bucket and a prefix: credentials come from the AWS "
            "variables or files, and a server other than AWS from s3_endpoint_url"
        )
    if not parts.netloc:
        raise InvalidInput(f"blob_url {url!r} names no bucket (s3://bucket[/prefix])")
    if not _BUCKET.fullmatch(parts.netloc) or ".." in parts.netloc:
        raise InvalidInput(
            f"blob_url {url!r}: {parts.netloc!r} is not a bucket name (3 to 63 lowercase letters, digits, "
            "dots and hyphens)"
        )
    segments = [s for s in parts.path.split("/") if s]
    if any(s in {".", ".."} for s in segments):
        raise InvalidInput(f"blob_url {url!r}: the prefix may not contain '.' or '..' segments")
    prefix = "".join(f"{s}/" for s in segments)
    if len(prefix.encode()) > _MAX_PREFIX:
        raise InvalidInput(f"blob_url {url!r}: the prefix is over {_MAX_PREFIX} bytes")
    return parts.netloc, prefix


def _endpoint(url: str) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc or len(url) > _MAX_URL:
        raise InvalidInput(f"s3_endpoint_url {url!r} is not an http:// or https:// server address")
    return url


def open_blob_store(settings: Settings) -> BlobStore:
    """The store ``blob_url`` names: empty for files under the data directory, else an S3 bucket."""
    if not settings.blob_url:
        return FilesystemBlobStore(settings.blob_dir)
    bucket, prefix = parse_blob_url(settings.blob_url)
    return S3BlobStore(bucket, prefix, endpoint_url=_endpoint(settings.s3_endpoint_url))
