"""The package download with several blocks in flight: intact over loss, resumable, never corrupted."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tinymlaas.agent.download import PackageDownload, UpdateFailed, download_package
from tinymlaas.agent.update import UpdateResult
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.linkemu import LinkProfile, UdpLinkEmulator
from tinymlaas.lwm2m.server import Lwm2mServer
from tinymlaas.lwm2m.transport import CoapEndpoint
from tinymlaas.lwm2m.transport.coap import CoapBlock

BLOCK = 1024
PACKAGE = random.Random(7).randbytes(20 * BLOCK + 300)  # 21 blocks, the last one short
BLOCKS = 21
LOSSY = LinkProfile("lossy", latency_ms=3, jitter_ms=2, bandwidth_bps=10_000_000, loss=0.1, duplicate=0.02)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


class Rig:
    """A real LwM2M server publishing PACKAGE to ``dev``, reached through a lossy emulated link."""

    def __init__(self, server: Lwm2mServer, link: UdpLinkEmulator, client: CoapEndpoint, uri: str) -> None:
        self.server, self.link, self.client, self.uri = server, link, client, uri
        self.asked: list[int] = []

    @classmethod
    async def start(cls, seed: int) -> Rig:
        server = await Lwm2mServer.start("127.0.0.1", 0)
        link = await UdpLinkEmulator.start(("127.0.0.1", server.port), LOSSY, seed=seed)
        client = await CoapEndpoint.bind("127.0.0.1", 0)
        # The package is served only to a registered endpoint, from the address it registered from.
        answer = await client.request(
            "POST", f"coap://127.0.0.1:{link.port}/rd", b"</3/0>", 40, query=("ep=dev", "lt=300", "lwm2m=1.1")
        )
        assert answer.code == "2.01", answer
        path = server.publish("v1", PACKAGE, endpoints=["dev"])
        return cls(server, link, client, f"coap://127.0.0.1:{link.port}{path}")

    async def request_block(self, uri: str, num: int, szx: int) -> CoapBlock:
        self.asked.append(num)
        return await self.client.request_block(uri, num, szx, timeout=20)

    async def close(self) -> None:
        await self.client.close()
        self.link.close()
        await self.server.stop()


async def _nothing(num: int) -> None:
    return None


@pytest.mark.parametrize("window", [1, 4, 16])
def test_a_windowed_download_over_a_lossy_link_arrives_intact(tmp_path: Path, window: int) -> None:
    async def scenario() -> None:
        rig = await Rig.start(seed=window)
        try:
            download = PackageDownload(tmp_path)
            download.begin(rig.uri)
            heard: list[int] = []

            async def on_block(num: int) -> None:
                heard.append(num)

            await download_package(
                download, rig.request_block, max_bytes=1 << 20, on_block=on_block, window=window
            )
            assert download.complete and download.data() == PACKAGE
            assert sorted(heard) == list(range(BLOCKS))  # each block told once, duplicates or not
            assert rig.link.stats.uplink.dropped + rig.link.stats.downlink.dropped > 0
            saved = json.loads((tmp_path / "download" / "progress.json").read_text())
            assert (saved["blocks"], saved["total"], saved["complete"]) == (
                list(range(BLOCKS)),
                len(PACKAGE),
                True,
            )
        finally:
            await rig.close()

    run(scenario)


def test_a_restarted_download_fetches_only_the_blocks_it_lacks(tmp_path: Path) -> None:
    held = {0, 1, 2, 5, 9, 20}

    async def scenario() -> None:
        rig = await Rig.start(seed=11)
        try:
            before = PackageDownload(tmp_path)
            before.begin(rig.uri)
            for num in sorted(held, reverse=True):  # out of order, the short last block first
                chunk = PACKAGE[num * BLOCK : (num + 1) * BLOCK]
                assert before.write_block(num, chunk, szx=6, more=num < BLOCKS - 1, total=len(PACKAGE))
            # A power cut: a block written to the file but not yet listed in progress.json is not held.
            with open(tmp_path / "download" / "package.part", "r+b") as part:
                part.seek(3 * BLOCK)
                part.write(b"\xff" * BLOCK)

            after = PackageDownload(tmp_path)  # the agent starts again
            assert (after.blocks, after.total, after.offset, after.complete) == (
                held,
                len(PACKAGE),
                3 * BLOCK,
                False,
            )
            assert after.received == 5 * BLOCK + 300
            await download_package(after, rig.request_block, max_bytes=1 << 20, on_block=_nothing, window=4)
            assert after.complete and after.data() == PACKAGE
            assert set(rig.asked) == set(range(BLOCKS)) - held
        finally:
            await rig.close()

    run(scenario)


def test_out_of_order_and_duplicate_blocks_never_corrupt_the_package(tmp_path: Path) -> None:
    download = PackageDownload(tmp_path)
    download.begin("coap://127.0.0.1:5683/pkg/v1")
    order = list(range(BLOCKS)) * 2
    random.Random(3).shuffle(order)
    fresh = []
    for num in order:
        chunk = PACKAGE[num * BLOCK : (num + 1) * BLOCK]
        fresh.append(download.write_block(num, chunk, szx=6, more=num < BLOCKS - 1, total=len(PACKAGE)))
        # A late duplicate that differs (a stale copy, or a corrupted one) never overwrites what is held.
        assert not download.write_block(num, b"\0" * len(chunk), szx=6, more=num < BLOCKS - 1, total=None)
    assert fresh.count(True) == BLOCKS
    assert download.complete and download.data() == PACKAGE
    assert PackageDownload(tmp_path).data() == PACKAGE


def test_blocks_kept_together_are_written_in_groups_and_the_last_returns_once_all_are_on_disk(
    tmp_path: Path,
) -> None:
    def chunk(num: int) -> bytes:
        return PACKAGE[num * BLOCK : (num + 1) * BLOCK]

    async def keep(download: PackageDownload, num: int) -> bool:
        return await download.keep_block(num, chunk(num), szx=6, more=num < BLOCKS - 1, total=len(PACKAGE))

    async def scenario() -> None:
        download = PackageDownload(tmp_path)
        download.begin("coap://127.0.0.1:5683/pkg/v1")
        # Blocks arriving together: each counts as held at once, the disk takes them in groups.
        assert all(await asyncio.gather(*(keep(download, num) for num in range(BLOCKS - 1))))
        assert download.blocks == frozenset(range(BLOCKS - 1))
        assert download.block(3) == chunk(3)
        await download.flush()  # a clean stop
        restarted = PackageDownload(tmp_path)
        assert restarted.blocks == frozenset(range(BLOCKS - 1)) and restarted.block(7) == chunk(7)
        assert not await keep(download, 5)  # a duplicate is still refused
        assert await keep(download, BLOCKS - 1)  # completes the package: returns once it is all on disk
        assert download.complete
        on_disk = PackageDownload(tmp_path)
        assert on_disk.complete and on_disk.data() == PACKAGE
        assert json.loads((tmp_path / "download" / "progress.json").read_text())["blocks"] == list(
            range(BLOCKS)
        )

    run(scenario)


def test_a_block_that_cannot_reach_the_disk_fails_the_download(tmp_path: Path) -> None:
    async def scenario() -> None:
        download = PackageDownload(tmp_path)
        download.begin("coap://127.0.0.1:5683/pkg/v1")
        (tmp_path / "download" / "package.part").unlink()
        (tmp_path / "download" / "package.part").mkdir()  # the write of any group fails
        with pytest.raises(OSError):
            for num in range(BLOCKS):
                await download.keep_block(
                    num,
                    PACKAGE[num * BLOCK : (num + 1) * BLOCK],
                    szx=6,
                    more=num < BLOCKS - 1,
                    total=len(PACKAGE),
                )

    run(scenario)


@pytest.mark.parametrize(
    ("num", "data", "szx", "more", "total", "message"),
    [
        (1, b"x" * 512, 6, True, None, "holds 512 bytes"),
        (1, b"x" * 1024, 5, True, None, "blocks of 512 bytes"),
        (1, b"x" * 1024, 6, True, 5000, "says the package is 5000"),
        (4, b"x" * 10, 6, False, None, "says the package is 4106"),
        (9, b"x" * 1024, 6, True, None, "more follows past"),
    ],
)
def test_a_block_that_contradicts_the_blocks_held_is_refused(
    tmp_path: Path, num: int, data: bytes, szx: int, more: bool, total: int | None, message: str
) -> None:
    download = PackageDownload(tmp_path)
    download.begin("coap://127.0.0.1:5683/pkg/v1")
    download.write_block(0, b"a" * BLOCK, szx=6, more=True, total=None)
    download.write_block(3, b"a" * BLOCK, szx=6, more=True, total=None)
    download.write_block(7, b"b" * 100, szx=6, more=False, total=7 * BLOCK + 100)
    with pytest.raises(InvalidInput, match=message):
        download.write_block(num, data, szx=szx, more=more, total=total)
    assert download.blocks == {0, 3, 7}


def test_a_window_outside_its_bounds_is_refused(tmp_path: Path) -> None:
    download = PackageDownload(tmp_path)
    download.begin("coap://127.0.0.1:5683/pkg/v1")

    async def never(uri: str, num: int, szx: int) -> CoapBlock:
        raise AssertionError("no block may be asked for")

    for window in (0, 17):
        with pytest.raises(InvalidInput, match="window"):
            asyncio.run(
                download_package(download, never, max_bytes=1 << 20, on_block=_nothing, window=window)
            )


def test_a_package_that_outgrows_the_slot_fails_as_its_size_is_learnt(tmp_path: Path) -> None:
    async def scenario() -> None:
        rig = await Rig.start(seed=5)
        try:
            download = PackageDownload(tmp_path)
            download.begin(rig.uri)
            with pytest.raises(UpdateFailed) as failed:
                await download_package(
                    download, rig.request_block, max_bytes=len(PACKAGE) - 1, on_block=_nothing
                )
            assert failed.value.result is UpdateResult.NOT_ENOUGH_STORAGE
            assert rig.asked == [0] * len(rig.asked)  # Size2 on block 0 says it all
        finally:
            await rig.close()

    run(scenario)
