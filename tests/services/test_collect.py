"""Sample upload into datasets over CoAP: a real fleet server on loopback, and a device that POSTs.

The device here speaks NoSec, so the server runs with the ``allow_nosec`` development setting.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.data.upload import CBOR_CONTENT_FORMAT, SampleUpload
from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapResponse
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import DatasetRepository
from tinymlaas.storage.tables import CollectedSampleRow, SampleRow


@pytest.fixture
def context(tmp_path: Path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data", allow_nosec=True))


def open_dataset(context: Context, name: str, kind: SampleKind, shape: tuple[int, ...]) -> None:
    """A classification dataset whose classes are the labels devices send, as field collection uses."""
    DatasetService(context).create(name, DatasetSpec(Task.CLASSIFICATION, kind, shape), open_classes=True)


class Uploader:
    """A device that sends uploads itself, so a test controls every resend."""

    def __init__(self, fleet: FleetService, coap: CoapEndpoint) -> None:
        self.fleet = fleet
        self.coap = coap

    async def post(
        self, dataset: str, body: bytes, content_format: int | None = CBOR_CONTENT_FORMAT
    ) -> CoapResponse:
        return await self.coap.request(
            "POST", f"{self.fleet.nosec_uri}/dc/{dataset}", body, content_format=content_format, timeout=5
        )


def with_server(context: Context, body: Callable[[Uploader], Awaitable[None]]) -> None:
    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        coap = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            await body(Uploader(fleet, coap))
        finally:
            await coap.close()
            await fleet.stop()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def upload(sample_id: str, x: np.ndarray, label: str | None = None, endpoint: str = "pico-1") -> bytes:
    return SampleUpload(sample_id, endpoint, label, x, 1_750_000_000.0).encode()


def stored(context: Context, dataset: str) -> list[tuple[str | None, str, np.ndarray]]:
    """(label, source, array) of every collected sample in the dataset, by upload id."""
    with context.session() as session:
        row = DatasetRepository(session).get(dataset)
        found = session.execute(
            select(SampleRow.label, SampleRow.source, SampleRow.blob)
            .join(CollectedSampleRow, CollectedSampleRow.sample_id == SampleRow.id)
            .where(SampleRow.dataset_id == row.id)
            .order_by(CollectedSampleRow.sample_key)
        ).all()
    return [(label, source, np.load(io.BytesIO(context.blobs.get(blob)))) for label, source, blob in found]


def window(seed: int, shape: tuple[int, ...] = (64, 3)) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_labelled_and_unlabelled_uploads_land_in_the_dataset(context: Context) -> None:
    open_dataset(context, "field", SampleKind.TIMESERIES, (64, 3))

    async def body(device: Uploader) -> None:
        first = await device.post("field", upload("a", window(1), "wave"))
        assert first.code == "2.01", first
        assert "stored as smp_" in first.diagnostic
        second = await device.post("field", upload("b", window(2)))
        assert second.code == "2.01", second

    with_server(context, body)
    summary = DatasetService(context).show("field")
    assert summary.spec == DatasetSpec(Task.CLASSIFICATION, SampleKind.TIMESERIES, (64, 3))
    assert (summary.sample_count, summary.unlabelled, summary.collected) == (2, 1, 2)
    assert summary.label_counts == {"wave": 1}
    (label_a, source, x_a), (label_b, _, x_b) = stored(context, "field")
    assert (label_a, label_b, source) == ("wave", None, "device:pico-1")
    np.testing.assert_array_equal(x_a, window(1))
    np.testing.assert_array_equal(x_b, window(2))


def test_a_sample_larger_than_a_block_arrives_intact(context: Context) -> None:
    image = np.random.default_rng(3).random((32, 32, 3)).astype(np.float32)  # 12 KiB: twelve Block1 blocks
    body_bytes = upload("big", image, "cat")
    assert len(body_bytes) > 8 * 1024
    open_dataset(context, "images", SampleKind.IMAGE, (32, 32, 3))

    async def body(device: Uploader) -> None:
        assert (await device.post("images", body_bytes)).code == "2.01"

    with_server(context, body)
    [(label, _, x)] = stored(context, "images")
    assert label == "cat" and DatasetService(context).show("images").spec.kind is SampleKind.IMAGE
    np.testing.assert_array_equal(x, image)


def test_a_resent_upload_is_stored_once(context: Context) -> None:
    open_dataset(context, "field", SampleKind.TIMESERIES, (64, 3))

    async def body(device: Uploader) -> None:
        sent = upload("same-id", window(4), "idle")
        assert (await device.post("field", sent)).code == "2.01"
        again = await device.post("field", sent)  # the device never saw the first answer
        assert again.code == "2.04" and "already stored" in again.diagnostic
        # The same content under another id is a sample already there too.
        assert (await device.post("field", upload("other-id", window(4), "idle"))).code == "2.04"

    with_server(context, body)
    summary = DatasetService(context).show("field")
    assert (summary.sample_count, summary.collected) == (1, 2)


def test_a_sample_the_dataset_cannot_take_is_refused_and_nothing_changes(context: Context) -> None:
    service = DatasetService(context)
    service.create(
        "gestures", DatasetSpec(Task.CLASSIFICATION, SampleKind.TIMESERIES, (64, 3), ("wave", "idle"))
    )
    service.create("levels", DatasetSpec(Task.REGRESSION, SampleKind.VECTOR, (4,)))

    async def body(device: Uploader) -> None:
        assert (await device.post("gestures", upload("ok", window(5), "wave"))).code == "2.01"
        wrong_shape = await device.post("gestures", upload("s1", window(6, (32, 3)), "wave"))
        assert wrong_shape.code == "4.22"
        assert "shape (32, 3) does not match the dataset's input shape (64, 3)" in wrong_shape.diagnostic
        unknown = await device.post("gestures", upload("s2", window(7), "jump"))
        assert unknown.code == "4.22" and "unknown label 'jump'" in unknown.diagnostic
        nan = window(8)
        nan[0, 0] = np.nan
        assert (await device.post("gestures", upload("s3", nan))).code == "4.22"
        labelled = await device.post("levels", upload("s4", window(9, (4,)), "high"))
        assert labelled.code == "4.22" and "regression" in labelled.diagnostic
        malformed = await device.post("gestures", b"\xa1\x62id\x00")
        assert malformed.code == "4.00" and "'id'" in malformed.diagnostic
        as_json = await device.post("gestures", b"{}", content_format=50)
        assert as_json.code == "4.15"
        bad_name = await device.post("no%20spaces", upload("s5", window(10)))
        assert bad_name.code == "4.00" and "dataset name" in bad_name.diagnostic
        read = await device.coap.request("GET", f"{device.fleet.nosec_uri}/dc/gestures", timeout=5)
        assert read.code == "4.05"

    with_server(context, body)
    summary = service.show("gestures")
    assert (summary.sample_count, summary.collected) == (1, 1)
    assert service.show("levels").sample_count == 0


def test_an_upload_over_the_limit_is_refused_with_4_13(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tinymlaas.services.collect.MAX_UPLOAD_BYTES", 2048)

    async def body(device: Uploader) -> None:
        response = await device.post("field", upload("big", window(11, (32, 32))))
        assert response.code == "4.13" and "at most 2048 bytes" in response.diagnostic

    with_server(context, body)
    assert "field" not in [s.name for s in DatasetService(context).list()]


def test_a_snapshot_takes_the_labelled_samples_and_their_classes(context: Context) -> None:
    open_dataset(context, "field", SampleKind.TIMESERIES, (64, 3))

    async def body(device: Uploader) -> None:
        for index, label in enumerate(["wave", "idle", None, "wave", None]):
            assert (await device.post("field", upload(f"s{index}", window(20 + index), label))).code == "2.01"

    with_server(context, body)
    service = DatasetService(context)
    snapshot = service.snapshot("field")
    loaded = service.load(snapshot, seed=1)
    assert loaded.spec.labels == ("idle", "wave")
    assert sum(loaded.split_counts.values()) == 3


def test_a_snapshot_needs_labelled_samples_of_two_classes(context: Context) -> None:
    service = DatasetService(context)
    open_dataset(context, "field", SampleKind.TIMESERIES, (64, 3))
    for index in range(2):
        service.collect("field", SampleUpload(f"u{index}", "pico-1", None, window(30 + index), 0.0))
    with pytest.raises(InvalidInput, match=r"no samples to snapshot \(2 unlabelled\)"):
        service.snapshot("field")
    service.collect("field", SampleUpload("l0", "pico-1", "wave", window(40), 0.0))
    with pytest.raises(InvalidInput, match="1 class \\(wave\\); a classifier needs at least two"):
        service.snapshot("field")
    with pytest.raises(NotFound, match="no dataset 'cube': an operator creates it"):
        service.collect("cube", SampleUpload("c", "pico-1", None, np.zeros((2, 2, 2, 2), np.float32), 0.0))
