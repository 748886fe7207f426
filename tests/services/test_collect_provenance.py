"""Who may upload samples, into which datasets, with which labels, and how fast.

A real fleet server on loopback answers real clients: provisioned devices over DTLS-PSK, and, where the
development setting allows it, unprovisioned ones over plain CoAP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.data.upload import CBOR_CONTENT_FORMAT, COLLECT_ROOT, SampleUpload
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse
from tinymlaas.ratelimit import TokenBuckets
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.collect import SampleCollector
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService, FieldLabels
from tinymlaas.services.provisioning import provision_device
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import DatasetRepository
from tinymlaas.storage.tables import CollectedSampleRow, SampleRow

SPEC = DatasetSpec(Task.CLASSIFICATION, SampleKind.TIMESERIES, (8, 3), ("wave", "idle"))


def context_with(tmp_path: Path, **settings: object) -> Context:
    context = Context(Settings(data_dir=tmp_path / "data", **settings))
    DatasetService(context).create("field", SPEC)
    return context


def body(sample_id: str, endpoint: str = "pico-1", label: str | None = "wave", seed: int = 0) -> bytes:
    x = np.random.default_rng(seed).normal(size=(8, 3)).astype(np.float32)
    return SampleUpload(sample_id, endpoint, label, x, 1_750_000_000.0).encode()


def over_nosec(
    context: Context, scenario: Callable[[Callable[..., Awaitable[CoapResponse]]], Awaitable[None]]
) -> None:
    async def run() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        coap = await CoapEndpoint.bind("127.0.0.1", 0)

        async def post(dataset: str, payload: bytes) -> CoapResponse:
            return await coap.request(
                "POST",
                f"{fleet.nosec_uri}/dc/{dataset}",
                payload,
                content_format=CBOR_CONTENT_FORMAT,
                timeout=5,
            )

        try:
            await scenario(post)
        finally:
            await coap.close()
            await fleet.stop()

    asyncio.run(asyncio.wait_for(run(), 20))


Post = Callable[[str, str, bytes], Awaitable[CoapResponse]]


def over_dtls(context: Context, peers: list[str], scenario: Callable[[Post], Awaitable[None]]) -> None:
    """Run ``scenario(post)`` where ``post(peer, dataset, payload)`` uploads as a provisioned device."""
    credentials = {peer: provision_device(context, peer, "pico") for peer in peers}

    async def run() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        clients: dict[str, CoapEndpoint] = {}

        async def post(peer: str, dataset: str, payload: bytes) -> CoapResponse:
            if peer not in clients:
                own = credentials[peer]
                clients[peer] = await CoapEndpoint.connect_secure(fleet.uri, own.identity, own.key, _refuse)
            return await clients[peer].request(
                "POST", f"{fleet.uri}/dc/{dataset}", payload, content_format=CBOR_CONTENT_FORMAT, timeout=5
            )

        try:
            await scenario(post)
        finally:
            for client in clients.values():
                await client.close()
            await fleet.stop()

    asyncio.run(asyncio.wait_for(run(), 30))


async def _refuse(request: CoapRequest) -> CoapResponse:
    return CoapResponse("4.03", b"a test client serves nothing")


def collected(context: Context, dataset: str) -> list[tuple[str, str | None, str]]:
    """(endpoint recorded, label, source) of every collected sample, by upload id."""
    with context.session() as session:
        row = DatasetRepository(session).get(dataset)
        return [
            (endpoint, label, source)
            for endpoint, label, source in session.query(
                CollectedSampleRow.endpoint, SampleRow.label, SampleRow.source
            )
            .join(SampleRow, SampleRow.id == CollectedSampleRow.sample_id)
            .where(CollectedSampleRow.dataset_id == row.id)
            .order_by(CollectedSampleRow.sample_key)
        ]


def dataset_names(context: Context) -> list[str]:
    return [summary.name for summary in DatasetService(context).list()]


def test_without_the_development_setting_plain_coap_is_not_even_opened(tmp_path: Path) -> None:
    context = context_with(tmp_path)  # allow_nosec off, as in production
    with pytest.raises(InvalidInput, match="allow_nosec"):
        over_nosec(context, lambda post: asyncio.sleep(0))


def test_an_unauthenticated_upload_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    context = context_with(tmp_path)  # a server holding plain CoAP sessions never takes them as devices
    request = CoapRequest("POST", (COLLECT_ROOT, "field"), payload=body("s1"), remote="coap://127.0.0.1:1")
    refused = asyncio.run(SampleCollector(DatasetService(context)).handle(request))
    assert refused.code == "4.01", refused
    assert "authenticated device" in refused.diagnostic
    assert DatasetService(context).show("field").sample_count == 0


def test_the_development_setting_takes_nosec_uploads_as_the_endpoint_they_name(tmp_path: Path) -> None:
    context = context_with(tmp_path, allow_nosec=True)

    async def scenario(post: Callable[..., Awaitable[CoapResponse]]) -> None:
        assert (await post("field", body("s1", endpoint="bench-7"))).code == "2.01"

    over_nosec(context, scenario)
    assert collected(context, "field") == [("bench-7", "wave", "device:bench-7")]


def test_an_authenticated_upload_is_recorded_as_its_peer_and_may_not_name_another(tmp_path: Path) -> None:
    context = context_with(tmp_path)

    async def scenario(post: Post) -> None:
        stored = await post("pico-1", "field", body("s1", endpoint="pico-1"))
        assert stored.code == "2.01", stored
        forged = await post("pico-1", "field", body("s2", endpoint="pico-2", seed=1))
        assert forged.code == "4.03", forged
        assert "'ep' 'pico-2' is not the authenticated device 'pico-1'" in forged.diagnostic

    over_dtls(context, ["pico-1", "pico-2"], scenario)
    assert collected(context, "field") == [("pico-1", "wave", "device:pico-1")]


def test_over_nosec_nobody_may_upload_in_a_provisioned_devices_name(tmp_path: Path) -> None:
    context = context_with(tmp_path, allow_nosec=True)
    provision_device(context, "pico-1", "pico")

    async def scenario(post: Callable[..., Awaitable[CoapResponse]]) -> None:
        refused = await post("field", body("s1", endpoint="pico-1"))
        assert refused.code == "4.03" and "coaps" in refused.diagnostic, refused

    over_nosec(context, scenario)
    assert DatasetService(context).show("field").sample_count == 0


def test_an_upload_to_an_unknown_dataset_is_404_and_creates_none(tmp_path: Path) -> None:
    context = context_with(tmp_path, allow_nosec=True)

    async def scenario(post: Callable[..., Awaitable[CoapResponse]]) -> None:
        missing = await post("poisoned", body("s1"))
        assert missing.code == "4.04", missing
        assert "no dataset 'poisoned'" in missing.diagnostic
        assert "field" not in missing.diagnostic  # a device is not told which datasets exist

    over_nosec(context, scenario)
    assert dataset_names(context) == ["field"]

    async def authenticated(post: Post) -> None:
        assert (await post("pico-1", "other", body("s2"))).code == "4.04"

    over_dtls(context, ["pico-1"], authenticated)
    assert dataset_names(context) == ["field"]


def test_a_dataset_taking_field_samples_unlabelled_drops_the_label_and_says_so(tmp_path: Path) -> None:
    context = context_with(tmp_path)
    service = DatasetService(context)
    assert service.set_field_labels("field", FieldLabels.UNLABELLED).field_labels is FieldLabels.UNLABELLED

    async def scenario(post: Post) -> None:
        answer = await post("pico-1", "field", body("s1", label="wave"))
        assert answer.code == "2.01", answer
        assert "label 'wave' dropped" in answer.diagnostic
        # A label outside the classes is dropped too, not refused: it never reaches the dataset.
        assert (await post("pico-1", "field", body("s2", label="jump", seed=1))).code == "2.01"
        assert collected(context, "field") == [("pico-1", None, "device:pico-1")] * 2
        summary = service.show("field")
        assert (summary.unlabelled, summary.label_counts) == (2, {})
        service.set_field_labels("field", FieldLabels.ACCEPT)
        assert (await post("pico-1", "field", body("s3", label="idle", seed=2))).code == "2.01"

    over_dtls(context, ["pico-1"], scenario)
    assert service.show("field").label_counts == {"idle": 1}


def test_a_device_over_its_upload_rate_gets_4_29_and_others_carry_on(tmp_path: Path) -> None:
    context = context_with(tmp_path, upload_burst=3, upload_rate_per_s=0.01)

    async def scenario(post: Post) -> None:
        answers = [(await post("pico-1", "field", body(f"s{i}", seed=i))).code for i in range(4)]
        assert answers == ["2.01", "2.01", "2.01", "4.29"]
        refused = await post("pico-1", "field", body("s9", seed=9))
        assert refused.code == "4.29"
        assert "over the upload rate of 0.01/s (burst 3)" in refused.diagnostic
        other = await post("pico-2", "field", body("t0", endpoint="pico-2", seed=20))
        assert other.code == "2.01"

    over_dtls(context, ["pico-1", "pico-2"], scenario)
    assert DatasetService(context).show("field").collected == 4


def test_a_device_over_its_rate_over_nosec_gets_4_29_from_the_server(tmp_path: Path) -> None:
    context = context_with(tmp_path, allow_nosec=True, upload_burst=2, upload_rate_per_s=0.01)

    async def scenario(post: Callable[..., Awaitable[CoapResponse]]) -> None:
        codes = [(await post("field", body(f"s{i}", seed=i))).code for i in range(3)]
        assert codes == ["2.01", "2.01", "4.29"]

    over_nosec(context, scenario)
    assert DatasetService(context).show("field").collected == 2


def test_the_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    rate = TokenBuckets(rate=2.0, burst=2, clock=lambda: now[0])
    assert (rate.take("a"), rate.take("a")) == (0.0, 0.0)
    assert rate.take("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert rate.take("a") == 0.0
    assert rate.take("a") > 0.0


def test_the_policy_is_set_when_a_dataset_is_made(tmp_path: Path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data"))
    service = DatasetService(context)
    made = service.create("quiet", SPEC, field_labels=FieldLabels.UNLABELLED)
    assert made.field_labels is FieldLabels.UNLABELLED
    assert service.create("plain", SPEC).field_labels is FieldLabels.ACCEPT
