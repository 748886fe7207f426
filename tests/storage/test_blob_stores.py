"""Both blob stores keep one contract: files under the data directory, and an S3 bucket on a real
S3-API server (moto's, started here on loopback)."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tinymlaas.errors import InvalidInput, NotFound, RuntimeFailure
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.sweep import sweep_leftovers
from tinymlaas.settings import Settings
from tinymlaas.storage.blobs import BlobStore, FilesystemBlobStore, S3BlobStore, open_blob_store
from tinymlaas.storage.repositories import BlobReferenceRepository

# Blobs are the same on any database; the one test that also keeps rows runs on every backend.
pytestmark = pytest.mark.store_backends("sqlite")

_PREFIX = "tenant/blobs"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[str, Any]:
    """A new bucket, and a client that works behind the store's back; credentials are dummies, and no
    AWS profile or file of this machine is read."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    bucket = f"blobs-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=bucket)
    return bucket, client


@dataclass
class Store:
    """A store under test and the means to reach its bytes directly."""

    blobs: BlobStore
    overwrite: Any  # (digest, data) -> None, bypassing the store


@pytest.fixture(params=["filesystem", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "filesystem":
        blobs = open_blob_store(Settings(data_dir=tmp_path / "data"))
        assert isinstance(blobs, FilesystemBlobStore)

        def overwrite(digest: str, data: bytes) -> None:
            (blobs.root / digest[:2] / digest[2:]).write_bytes(data)

        return Store(blobs, overwrite)
    bucket, client = request.getfixturevalue("s3_bucket")
    endpoint = request.getfixturevalue("s3_endpoint")
    settings = Settings(
        data_dir=tmp_path / "data", blob_url=f"s3://{bucket}/{_PREFIX}", s3_endpoint_url=endpoint
    )
    s3 = open_blob_store(settings)
    assert isinstance(s3, S3BlobStore)

    def overwrite_object(digest: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"{_PREFIX}/{digest[:2]}/{digest[2:]}", Body=data)

    return Store(s3, overwrite_object)


def test_blobs_are_content_addressed_stored_once_and_read_back(blob_store: Store) -> None:
    blobs = blob_store.blobs
    digest = blobs.put(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert blobs.put(b"hello") == digest
    assert blobs.exists(digest) and blobs.get(digest) == b"hello"
    other = blobs.put(b"")
    assert blobs.get(other) == b""
    listed = {item.digest: item.size for item in blobs.stored()}
    assert listed == {digest: 5, other: 0}


def test_corruption_and_missing_blobs_are_reported(blob_store: Store) -> None:
    blobs = blob_store.blobs
    digest = blobs.put(b"model bytes")
    blob_store.overwrite(digest, b"tampered")
    with pytest.raises(RuntimeFailure, match=f"blob {digest} is corrupt"):
        blobs.get(digest)
    missing = "0" * 64
    with pytest.raises(NotFound, match=f"blob {missing} is missing"):
        blobs.get(missing)
    assert not blobs.exists(missing)
    assert blobs.discard(missing, untouched_since=time.time()) == 0
    for bad in ("../../etc/passwd", "A" * 64, "0" * 63):
        with pytest.raises(NotFound, match="not a blob id"):
            blobs.get(bad)


def test_discard_spares_a_blob_touched_since_and_a_duplicate_put_touches(blob_store: Store) -> None:
    blobs = blob_store.blobs
    digest = blobs.put(b"a sandbox sample")
    assert blobs.discard(digest, untouched_since=time.time() - 60) == 0  # written after that
    assert blobs.exists(digest)
    assert blobs.discard(digest, untouched_since=time.time() + 5) == len(b"a sandbox sample")
    assert not blobs.exists(digest)

    again = blobs.put(b"imported twice")
    time.sleep(1.2)  # S3 keeps last-modified times to the second
    cut = time.time() - 0.1  # a file's time comes from a clock that may lag time.time() by a tick
    assert blobs.put(b"imported twice") == again  # a production import names it again
    assert blobs.discard(again, untouched_since=cut) == 0
    assert blobs.get(again) == b"imported twice"


def test_the_listing_gives_every_blob_with_its_time_and_removal_rechecks_it(blob_store: Store) -> None:
    blobs = blob_store.blobs
    before = time.time()
    digests = {blobs.put(f"sample {i}".encode()) for i in range(3)}
    items = {item.digest: item for item in blobs.stored()}
    assert set(items) == digests
    for item in items.values():
        assert item.size == len(b"sample 0")
        assert before - 1 <= item.touched_at <= time.time() + 1
    first, second, _ = sorted(digests)
    assert blobs.remove(items[first], untouched_since=time.time() - 60) is None  # touched since
    assert blobs.remove(items[first], untouched_since=time.time() + 5) == len(b"sample 0")
    assert blobs.remove(items[first], untouched_since=time.time() + 5) is None  # gone already
    assert {item.digest for item in blobs.stored()} == digests - {first}
    assert blobs.exists(second)


def test_the_filesystem_listing_includes_crash_leftovers(tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    digest = blobs.put(b"whole")
    leftover = tmp_path / "blobs" / digest[:2] / f".{digest[2:]}.abc.tmp"
    leftover.write_bytes(b"half")
    items = {item.location: item for item in blobs.stored()}
    assert items[leftover].digest is None and items[leftover].size == 4
    assert blobs.remove(items[leftover], untouched_since=time.time() + 5) == 4
    assert not leftover.exists() and blobs.get(digest) == b"whole"


def test_the_bucket_listing_ignores_what_the_store_did_not_write(
    s3_bucket: tuple[str, Any], s3_endpoint: str
) -> None:
    bucket, client = s3_bucket
    blobs = S3BlobStore(bucket, f"{_PREFIX}/", endpoint_url=s3_endpoint)
    digest = blobs.put(b"ours")
    foreign = [f"{_PREFIX}/ab/not-a-digest", f"{_PREFIX}/readme.txt", f"elsewhere/{digest[:2]}/{digest[2:]}"]
    for key in foreign:
        client.put_object(Bucket=bucket, Key=key, Body=b"someone else's")
    assert [(item.location, item.digest) for item in blobs.stored()] == [
        (f"s3://{bucket}/{_PREFIX}/{digest[:2]}/{digest[2:]}", digest)
    ]
    keys = {entry["Key"] for entry in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {*foreign, f"{_PREFIX}/{digest[:2]}/{digest[2:]}"}


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("/srv/blobs", "not an s3://bucket"),
        ("gs://bucket/prefix", "not an s3://bucket"),
        ("file:///srv/blobs", "not an s3://bucket"),
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("s3://Not_A_Bucket", "not a bucket name"),
        ("s3://key:secret@bucket", "only a bucket and a prefix"),
        ("s3://bucket/a/../b", "'.' or '..'"),
        ("s3://bucket/" + "p" * 600, "over 512 bytes"),
    ],
)
def test_a_bad_blob_url_is_refused_naming_the_setting(tmp_path: Path, url: str, complaint: str) -> None:
    with pytest.raises(InvalidInput, match="blob_url") as raised:
        open_blob_store(Settings(data_dir=tmp_path, blob_url=url))
    assert complaint in raised.value.detail


def test_a_bad_endpoint_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="s3_endpoint_url 'minio:9000'"):
        open_blob_store(Settings(data_dir=tmp_path, blob_url="s3://bucket", s3_endpoint_url="minio:9000"))


def test_a_missing_bucket_is_reported_when_the_store_opens(
    s3_bucket: tuple[str, Any], s3_endpoint: str
) -> None:
    settings = Settings(blob_url="s3://no-such-bucket/x", s3_endpoint_url=s3_endpoint)
    with pytest.raises(InvalidInput, match=f"bucket 'no-such-bucket', which does not exist on {s3_endpoint}"):
        open_blob_store(settings)


def test_missing_credentials_are_reported_when_the_store_opens(
    s3_bucket: tuple[str, Any], s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, _ = s3_bucket
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance to ask on this machine
    settings = Settings(blob_url=f"s3://{bucket}", s3_endpoint_url=s3_endpoint)
    with pytest.raises(
        RuntimeFailure, match=f"cannot open bucket '{bucket}' on {s3_endpoint}: .*credentials"
    ):
        open_blob_store(settings)


@pytest.mark.store_backends("sqlite", "postgresql")
def test_a_dataset_lives_in_the_bucket_and_the_sweep_works_there(
    s3_bucket: tuple[str, Any], s3_endpoint: str, tmp_path: Path
) -> None:
    bucket, client = s3_bucket
    settings = Settings(
        data_dir=tmp_path / "data", blob_url=f"s3://{bucket}/{_PREFIX}", s3_endpoint_url=s3_endpoint
    )
    context = Context(settings)
    datasets = DatasetService(context)
    datasets.generate("d", "gestures", samples=8, seed=1)
    loaded = datasets.load(datasets.snapshot("d"), seed=1)
    arrays = loaded.arrays
    assert len(arrays.x_train) + len(arrays.x_val) + len(arrays.x_test) == 8
    with context.session() as session:
        referenced = BlobReferenceRepository(session).referenced()
    keys = {entry["Key"] for entry in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"{_PREFIX}/{d[:2]}/{d[2:]}" for d in referenced} and len(keys) == 8
    assert not settings.blob_dir.exists()

    orphan = context.blobs.put(b"no row names this")
    swept = sweep_leftovers(context, now=time.time() + 2 * 3600)
    assert swept.blobs == (f"s3://{bucket}/{_PREFIX}/{orphan[:2]}/{orphan[2:]}",)
    assert swept.freed_bytes == len(b"no row names this")
    assert not context.blobs.exists(orphan)
    assert all(context.blobs.exists(d) for d in referenced)
    assert sweep_leftovers(context).blobs == ()
    assert not settings.blob_dir.exists()
