"""A real agent collecting into datasets on a real fleet server over CoAP/UDP on loopback."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tinymlaas.agent import Agent, AgentEvent, Collection, SensorSource
from tinymlaas.agent.buffer import SampleBuffer
from tinymlaas.agent.uploader import OUTBOX_DIR
from tinymlaas.catalog import load_catalog
from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.data.upload import SampleUpload
from tinymlaas.deploy import SigningKey
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.transport import CoapEndpoint
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import DatasetRepository
from tinymlaas.storage.tables import SampleRow

from .conftest import MCU_BOARD

KEY = SigningKey.generate().public_key_bytes()


class Windows(SensorSource):
    """A sensor that gives these windows, one per read, then nothing more."""

    def __init__(self, windows: Iterable[np.ndarray]) -> None:
        self._windows = list(windows)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._windows[0].shape)

    def read(self) -> np.ndarray | None:
        return self._windows.pop(0) if self._windows else None


def windows(count: int, shape: tuple[int, ...] = (64, 3), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype(np.float32) for _ in range(count)]


@pytest.fixture
def context(tmp_path: Path) -> Context:
    """A store for a server that takes these NoSec agents' uploads (the development setting)."""
    context = Context(Settings(data_dir=tmp_path / "data", allow_nosec=True))
    service = DatasetService(context)
    for name, kind, shape in (
        ("field", SampleKind.TIMESERIES, (64, 3)),
        ("images", SampleKind.IMAGE, (32, 32, 3)),
    ):
        service.create(name, DatasetSpec(Task.CLASSIFICATION, kind, shape), open_classes=True)
    return context


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


async def eventually(check: Callable[[], bool], timeout: float = 8.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_agent(
    server_uri: str,
    state_dir: Path,
    source: SensorSource,
    collection: Collection,
    endpoint: str = "pico-1",
    events: list[AgentEvent] | None = None,
) -> Agent:
    return await Agent.start(
        load_catalog().board(MCU_BOARD),
        endpoint,
        server_uri,
        state_dir,
        KEY,
        sensor=source,
        rate_hz=50,
        request_timeout=1,
        collect=collection,
        on_event=events.append if events is not None else None,
    )


def stored(context: Context, dataset: str) -> list[tuple[str | None, str, np.ndarray]]:
    """(label, source, array) of every sample in the dataset, oldest first."""
    with context.session() as session:
        row = DatasetRepository(session).get(dataset)
        found = session.execute(
            select(SampleRow.label, SampleRow.source, SampleRow.blob)
            .where(SampleRow.dataset_id == row.id)
            .order_by(SampleRow.created_at)
        ).all()
    return [(label, source, np.load(io.BytesIO(context.blobs.get(blob)))) for label, source, blob in found]


def outbox_files(state_dir: Path) -> int:
    return len(list((state_dir / OUTBOX_DIR).glob("*.sample")))


def test_labelled_and_unlabelled_windows_land_in_the_dataset(context: Context, tmp_path: Path) -> None:
    labelled, unlabelled = windows(4, seed=1), windows(3, seed=2)

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        agents = [
            await start_agent(
                fleet.nosec_uri, tmp_path / "a", Windows(labelled), Collection("field", label="wave"), "a"
            ),
            await start_agent(fleet.nosec_uri, tmp_path / "b", Windows(unlabelled), Collection("field"), "b"),
        ]
        try:
            await eventually(lambda: [a.collect_stats().delivered for a in agents] == [4, 3])
            assert agents[0].slots.active() is None  # no model installed: collecting needs none
        finally:
            for agent in agents:
                await agent.stop()
            await fleet.stop()

    run(scenario)
    summary = DatasetService(context).show("field")
    assert (summary.sample_count, summary.unlabelled, summary.label_counts) == (7, 3, {"wave": 4})
    samples = stored(context, "field")
    for label, source, expected in (("wave", "device:a", labelled), (None, "device:b", unlabelled)):
        mine = [x for got_label, got_source, x in samples if (got_label, got_source) == (label, source)]
        assert len(mine) == len(expected)
        for x, sent in zip(mine, expected, strict=True):
            np.testing.assert_array_equal(x, sent)
    assert outbox_files(tmp_path / "a") == outbox_files(tmp_path / "b") == 0


def test_every_nth_window_is_taken_and_large_ones_arrive_whole(context: Context, tmp_path: Path) -> None:
    images = windows(7, shape=(32, 32, 3), seed=3)  # 12 KiB each: block-wise uploads

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        agent = await start_agent(
            fleet.nosec_uri, tmp_path, Windows(images), Collection("images", label="cat", every=3)
        )
        try:
            await eventually(lambda: agent.collect_stats().delivered == 3)
            assert agent.collect_stats().taken == 3
        finally:
            await agent.stop()
            await fleet.stop()

    run(scenario)
    samples = stored(context, "images")
    assert len(samples) == 3
    for (label, _, x), sent in zip(samples, (images[0], images[3], images[6]), strict=True):
        assert label == "cat"
        np.testing.assert_array_equal(x, sent)


def test_samples_wait_on_disk_while_the_server_is_down_and_land_once(
    context: Context, tmp_path: Path
) -> None:
    port = free_udp_port()
    taken = windows(6, seed=4)
    events: list[AgentEvent] = []

    async def scenario() -> None:
        agent = await start_agent(
            f"coap://127.0.0.1:{port}",
            tmp_path,
            Windows(taken),
            Collection("field", label="wave", max_backoff=0.2),
            events=events,
        )
        fleet = None
        try:
            await eventually(lambda: agent.collect_stats().buffered == 6)
            assert outbox_files(tmp_path) == 6
            assert agent.collect_stats().delivered == 0
            fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=port, request_timeout=3)
            await eventually(lambda: agent.collect_stats().delivered == 6)
            assert agent.collect_stats().buffered == 0 and outbox_files(tmp_path) == 0
        finally:
            await agent.stop()
            if fleet is not None:
                await fleet.stop()

    run(scenario)
    kinds = [event.kind for event in events]
    assert "collect-paused" in kinds and "collect-resumed" in kinds
    assert kinds.index("collect-paused") < kinds.index("collect-resumed")
    samples = stored(context, "field")
    assert len(samples) == len(taken) == DatasetService(context).show("field").collected
    for (_, _, x), sent in zip(samples, taken, strict=True):
        np.testing.assert_array_equal(x, sent)


def test_a_full_outbox_drops_the_oldest_and_counts_them(context: Context, tmp_path: Path) -> None:
    port = free_udp_port()
    taken = windows(7, seed=5)
    events: list[AgentEvent] = []

    async def scenario() -> None:
        agent = await start_agent(
            f"coap://127.0.0.1:{port}",
            tmp_path,
            Windows(taken),
            Collection("field", max_buffer_items=3, max_backoff=0.2),
            events=events,
        )
        fleet = None
        try:
            await eventually(lambda: agent.collect_stats().taken == 7 and agent.collect_stats().buffered == 3)
            assert agent.collect_stats().dropped == 4
            fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=port, request_timeout=3)
            await eventually(lambda: agent.collect_stats().delivered == 3)
            assert agent.collect_stats().dropped == 4
        finally:
            await agent.stop()
            if fleet is not None:
                await fleet.stop()

    run(scenario)
    assert any(event.kind == "collect-dropped" for event in events)
    samples = stored(context, "field")
    assert len(samples) == 3
    for (_, _, x), sent in zip(samples, taken[4:], strict=True):  # the newest three
        np.testing.assert_array_equal(x, sent)
    assert SampleBuffer(tmp_path / OUTBOX_DIR, max_bytes=1 << 20, max_items=3).stats().dropped == 4


def test_a_sample_stored_before_its_answer_was_lost_is_not_stored_again(
    context: Context, tmp_path: Path
) -> None:
    """The agent stopped after the server stored a sample but before it heard so: the sample is still
    in its outbox, and the restarted agent sends it again."""
    sample = SampleUpload("lost-answer", "pico-1", "wave", windows(1, seed=6)[0], 1_750_000_000.0)
    SampleBuffer(tmp_path / OUTBOX_DIR, max_bytes=1 << 20, max_items=10).put(
        sample.sample_id, sample.encode(), {"dataset": "field"}
    )

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        device = await CoapEndpoint.bind("127.0.0.1", 0)
        agent = None
        try:
            first = await device.request("POST", f"{fleet.nosec_uri}/dc/field", sample.encode(), timeout=5)
            assert first.code == "2.01"
            agent = await start_agent(
                fleet.nosec_uri, tmp_path, Windows([]), Collection("field", label="wave")
            )
            await eventually(lambda: agent.collect_stats().delivered == 1)
            assert outbox_files(tmp_path) == 0
        finally:
            if agent is not None:
                await agent.stop()
            await device.close()
            await fleet.stop()

    run(scenario)
    summary = DatasetService(context).show("field")
    assert (summary.sample_count, summary.collected) == (1, 1)


def test_samples_the_dataset_refuses_are_counted_and_the_dataset_is_unchanged(
    context: Context, tmp_path: Path
) -> None:
    service = DatasetService(context)
    service.create("narrow", DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (10,), ("a", "b")))
    events: list[AgentEvent] = []

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        agent = await start_agent(
            fleet.nosec_uri, tmp_path, Windows(windows(3)), Collection("narrow"), events=events
        )
        try:
            await eventually(lambda: agent.collect_stats().rejected == 3)
            assert agent.collect_stats().delivered == 0 and outbox_files(tmp_path) == 0
            assert agent.registered  # the device carries on
        finally:
            await agent.stop()
            await fleet.stop()

    run(scenario)
    rejected = [event.message for event in events if event.kind == "collect-rejected"]
    assert len(rejected) == 1  # the same diagnostic is told once
    assert "4.22" in rejected[0] and "does not match the dataset's input shape (10,)" in rejected[0]
    assert service.show("narrow").sample_count == 0


def test_collecting_needs_a_sensor_and_a_sensible_collection(tmp_path: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidInput, match="needs a sensor"):
            await Agent.start(
                load_catalog().board(MCU_BOARD),
                "x",
                "coap://127.0.0.1:1",
                tmp_path,
                KEY,
                collect=Collection("d"),
            )

    run(scenario)
    with pytest.raises(InvalidInput, match="N >= 1"):
        Collection("d", every=0)
    with pytest.raises(InvalidInput, match="dataset name"):
        Collection("has space")
    with pytest.raises(InvalidInput, match="printable"):
        Collection("d", label="two\nlines")
