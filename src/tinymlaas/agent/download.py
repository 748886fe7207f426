"""Fetching a model package over CoAP block-wise transfer, resumable across restarts.

Up to ``window`` Block2 blocks are asked for at once (RFC 7959 §2.4 lets a client ask for any block), so
a lost datagram holds up one block while the others arrive, and every block is kept under
``state_dir/download/`` as it arrives, in whatever order (the bytes at their place, which blocks are
held, the URI), so a restarted agent asks only for the blocks it lacks instead of starting at block 0:
on a link that loses power or coverage mid-download (NB-IoT), starting over may never finish. The window
starts at one block and follows the round trips (``_fetch_window``). A server that does not send Size2
gets one block at a time, as the end of the package is then known only when its last block arrives.

A block that goes unanswered is asked for again with a backoff (1 s doubling to 10 s) for up to
``DOWNLOAD_STALL_S`` of silence. An agent that fails over to another server mid-download fetches the
package from that server instead (``locate``); as each server signs its own copy, with a sequence of
its own, the download starts over there rather than mix two copies, and that server's 4.04 counts as
silence too until it answers: it serves the package once it has taken the campaigns over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tinymlaas.agent.update import UpdateResult
from tinymlaas.errors import InvalidInput
from tinymlaas.files import fsync_dir, write_json_atomic
from tinymlaas.lwm2m.transport import PeerUnreachable
from tinymlaas.lwm2m.transport.coap import DEFAULT_BLOCK_SZX, CoapBlock

__all__ = [
    "BLOCK_TIMEOUT_S",
    "DEFAULT_WINDOW",
    "DOWNLOAD_DIR",
    "DOWNLOAD_STALL_S",
    "MAX_WINDOW",
    "UNWRITTEN_BLOCKS",
    "PackageDownload",
    "RequestBlock",
    "UpdateFailed",
    "download_package",
]

DOWNLOAD_DIR = "download"
# How long block requests may go unanswered in a row before the download fails with 52; it rides out a
# congested or briefly dead link, as on NB-IoT.
DOWNLOAD_STALL_S = 180.0
# One block request is retransmitted for as long as CoAP retransmits a confirmable message
# (MAX_TRANSMIT_WAIT, 93 s with RFC 7252's defaults) before it counts as unanswered.
BLOCK_TIMEOUT_S = 95.0
# How long a resumed download takes 4.03 for the server not knowing the restarted agent's address yet.
REFUSED_GRACE_S = 30.0
# A block answered within this many times the quickest one did not queue; a slower one did.
_QUEUED = 1.5
DEFAULT_WINDOW = 4  # Block2 requests in flight per download
# Blocks a download holds in memory, not yet on disk, before it waits for the disk.
UNWRITTEN_BLOCKS = 32
MAX_WINDOW = 16

RequestBlock = Callable[[str, int, int], Awaitable[CoapBlock]]
"""GETs block ``num`` of ``uri`` at size exponent ``szx``, waiting up to ``BLOCK_TIMEOUT_S``."""


class UpdateFailed(Exception):
    """Ends an update in INITIAL with ``result``."""

    def __init__(self, result: UpdateResult, detail: str) -> None:
        super().__init__(detail)
        self.result = result
        self.detail = detail


@dataclass(frozen=True)
class _Held:
    """What a download holds: replaced whole, never changed in place, so a snapshot of it can be
    written to disk by another thread while the event loop goes on."""

    uri: str | None = None
    szx: int = DEFAULT_BLOCK_SZX
    blocks: frozenset[int] = frozenset()
    total: int | None = None

    @property
    def block_size(self) -> int:
        return 1 << (self.szx + 4)

    def count(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // self.block_size))

    @property
    def complete(self) -> bool:
        return self.total is not None and len(self.blocks) == self.count()

    @property
    def offset(self) -> int:
        first_missing = next(num for num in range(len(self.blocks) + 1) if num not in self.blocks)
        reached = first_missing * self.block_size
        return reached if self.total is None else min(reached, self.total)

    def saved(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "szx": self.szx,
            "blocks": sorted(self.blocks),
            "total": self.total,
            "offset": self.offset,
            "complete": self.complete,
        }


class PackageDownload:
    """The package download in progress, persisted under ``state_dir/download/``.

    ``package.part`` holds each block received at its place in the package; ``progress.json`` the URI,
    the block size, which blocks are held, the package's size once known, and (for people and older
    readers) ``offset``, the bytes held from the start without a gap. A block's bytes reach the disk
    (``fsync``) before ``progress.json`` lists it, so after a power cut the file may hold a block not
    listed, never the reverse; a listed block is never written again, so a duplicate or a late answer
    cannot change it.

    ``keep_block`` commits blocks in groups, in a worker thread: the blocks that arrive while one group
    is being written (its block writes, one ``fsync`` of the package and the progress file's atomic
    replace) form the next group. A flash write per block is what a device does; an agent on a host
    that ``fsync``ed three times per block would be held to its disk's pace, and a process of many agents
    (``fleet spawn``) to a few hundred blocks a second. At most ``UNWRITTEN_BLOCKS`` wait in memory
    before ``keep_block`` waits for the disk, and the block that completes the package returns only once
    everything is on disk. A lock orders those writes with ``begin`` and ``clear``, and a group staged
    before either is dropped.
    """

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / DOWNLOAD_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self._part = self.directory / "package.part"
        self._progress_path = self.directory / "progress.json"
        self._held = _Held()
        self._lock = threading.Lock()
        self._generation = 0
        # Blocks held (listed in ``_held``) but not yet on disk, and the task writing them.
        self._unwritten: dict[int, bytes] = {}
        self._writing: dict[int, bytes] = {}  # the group on its way to disk
        self._flushing: asyncio.Task[None] | None = None
        self._write_failed: OSError | None = None  # a group of this download that did not reach the disk
        self._open()

    @property
    def uri(self) -> str | None:
        return self._held.uri

    @property
    def szx(self) -> int:
        return self._held.szx

    @property
    def blocks(self) -> frozenset[int]:
        return self._held.blocks

    @property
    def total(self) -> int | None:
        return self._held.total

    @property
    def block_size(self) -> int:
        return self._held.block_size

    @property
    def complete(self) -> bool:
        return self._held.complete

    @property
    def offset(self) -> int:
        """Bytes held from the package's first byte on, up to the first missing block."""
        return self._held.offset

    @property
    def received(self) -> int:
        """Bytes held in all, gaps or not."""
        held = self._held
        count = held.count()
        size = len(held.blocks) * held.block_size
        if held.total is not None and count is not None and count - 1 in held.blocks:
            size -= count * held.block_size - held.total
        return size

    def missing(self) -> list[int]:
        """The blocks still to fetch, in order; while the size is unknown, only the next one."""
        held = self._held
        count = held.count()
        if count is None:
            return [next(num for num in range(len(held.blocks) + 1) if num not in held.blocks)]
        return [num for num in range(count) if num not in held.blocks]

    def _open(self) -> None:
        if not self._progress_path.exists():
            return
        try:
            saved = json.loads(self._progress_path.read_text())
            uri, szx = saved["uri"], int(saved["szx"])
            if "blocks" in saved:
                blocks = frozenset(int(num) for num in saved["blocks"])
                total = None if saved["total"] is None else int(saved["total"])
            else:  # saved by a version that kept only a gapless prefix
                offset = int(saved["offset"])
                blocks = frozenset(range(-(-offset // (1 << (szx + 4)))))
                total = offset if saved["complete"] else None
        except (OSError, ValueError, KeyError, TypeError):
            self.clear()
            return
        size = self._part.stat().st_size if self._part.exists() else -1
        needed = 0 if not blocks else max(blocks) * (1 << (szx + 4)) + 1
        if not isinstance(uri, str) or not 0 <= szx <= 6 or min(blocks, default=0) < 0 or size < needed:
            self.clear()
            return
        self._held = _Held(uri, szx, blocks, total)

    def begin(self, uri: str) -> None:
        """Start a new download of ``uri`` from nothing."""
        with self._lock:
            self._generation += 1
            self._unwritten, self._write_failed = {}, None
            self._part.write_bytes(b"")
            self._held = _Held(uri)
            write_json_atomic(self._progress_path, self._held.saved())

    def _stage(self, num: int, data: bytes, szx: int, more: bool, total: int | None) -> _Held | None:
        """What the download holds once block ``num`` is kept; None for a block already held."""
        held = self._held
        if num < 0:
            raise InvalidInput(f"block number {num} is negative")
        if num in held.blocks:
            return None
        if szx != held.szx and held.blocks:
            raise InvalidInput(f"block {num} came in blocks of {1 << (szx + 4)} bytes, not {held.block_size}")
        size = 1 << (szx + 4)
        start = num * size
        if len(data) > size or (more and len(data) != size):
            raise InvalidInput(f"block {num} holds {len(data)} bytes; blocks are {size}")
        known = held.total
        for said in (total, None if more else start + len(data)):
            if said is None:
                continue
            if (known is not None and known != said) or said < start + len(data):
                raise InvalidInput(f"block {num} says the package is {said} bytes, earlier blocks {known}")
            known = said
        if known is not None and more and start + len(data) >= known:
            raise InvalidInput(f"block {num} says more follows past the package's {known} bytes")
        return _Held(held.uri, szx, held.blocks | {num}, known)

    def _persist(self, generation: int, blocks: dict[int, bytes], staged: _Held) -> bool:
        """Write the blocks, then the progress that lists them; False if ``begin`` or ``clear`` came first."""
        with self._lock:
            if generation != self._generation:
                return False
            with open(self._part, "r+b") as handle:
                for num, data in sorted(blocks.items()):
                    handle.seek(num * staged.block_size)
                    handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            write_json_atomic(self._progress_path, staged.saved())
            return True

    def write_block(self, num: int, data: bytes, *, szx: int, more: bool, total: int | None) -> bool:
        """Keep block ``num`` durably; False for a block already held, which is left as it was.

        ``more`` and ``total`` (Size2) are what the server said with the block; InvalidInput when they
        contradict what the blocks before said (the package changed under the download), or when a block
        has the wrong length or a block size other than the download's.
        """
        staged = self._stage(num, data, szx, more, total)
        if staged is None or not self._persist(self._generation, {num: data}, staged):
            return False
        self._held = staged
        return True

    async def keep_block(self, num: int, data: bytes, *, szx: int, more: bool, total: int | None) -> bool:
        """``write_block`` committed with the blocks around it, the disk work in a worker thread.

        The block counts as held at once; it reaches the disk with its group, and this waits for that
        only when ``UNWRITTEN_BLOCKS`` are waiting or the package is complete.
        """
        if self._write_failed is not None:
            raise self._write_failed
        staged = self._stage(num, data, szx, more, total)
        if staged is None:
            return False
        self._held = staged
        self._unwritten[num] = data
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())
        if staged.complete or len(self._unwritten) >= UNWRITTEN_BLOCKS:
            await asyncio.shield(self._flushing)
            if self._write_failed is not None:
                raise self._write_failed
        return True

    async def flush(self) -> None:
        """Wait until every block held is on disk (a clean stop)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        """Write groups of unwritten blocks until none is left; a group of an older download is dropped.

        A failed write is kept for ``keep_block`` to raise, as a write of its own block would have.
        """
        while self._unwritten:
            generation, blocks, held = self._generation, self._unwritten, self._held
            self._unwritten, self._writing = {}, blocks
            try:
                await asyncio.to_thread(self._persist, generation, blocks, held)
            except OSError as exc:
                if generation == self._generation:
                    self._write_failed = exc
                return
            finally:
                self._writing = {}

    def block(self, num: int) -> bytes:
        """Block ``num`` as held (empty when it is not)."""
        if num not in self._held.blocks:
            return b""
        for waiting in (self._unwritten, self._writing):
            if num in waiting:
                return waiting[num]
        with open(self._part, "rb") as handle:
            handle.seek(num * self._held.block_size)
            return handle.read(self._held.block_size)

    def data(self) -> bytes:
        """The whole package; only meaningful once ``complete`` (when every block is on disk, too)."""
        return self._part.read_bytes()[: self._held.total or 0]

    def clear(self) -> None:
        """Forget the download; a later one starts from nothing."""
        with self._lock:
            self._generation += 1
            self._unwritten, self._write_failed = {}, None
            self._progress_path.unlink(missing_ok=True)
            self._part.unlink(missing_ok=True)
            fsync_dir(self.directory)
            self._held = _Held()


class _Moved(Exception):
    """The agent now fetches the package elsewhere: the block is asked for there instead."""


async def _fetch_block(
    request_block: RequestBlock,
    uri: str,
    num: int,
    szx: int,
    *,
    locate: Callable[[str], str],
    run: _Run,
) -> CoapBlock:
    """One block, retried while the server does not answer; 4.04, 4.03 and other errors end the update,
    but for a download that moved to another server, where 4.04 is retried as silence, and one resumed
    after a restart, where 4.03 is retried for ``REFUSED_GRACE_S``: over NoSec the server recognises a
    device by the address it registered from, and the restarted agent registers anew while its download
    resumes. Before each retry ``locate`` is asked again, and ``_Moved`` raised once it names another
    place."""
    silent_since = time.monotonic()
    pause = 1.0
    while True:
        limit = DOWNLOAD_STALL_S
        try:
            block = await request_block(uri, num, szx)
        except PeerUnreachable as exc:
            reason = exc.detail
        except InvalidInput as exc:
            raise UpdateFailed(UpdateResult.INVALID_URI, exc.detail) from None
        else:
            code = block.response.code
            if code == "4.04" and run.moved:
                reason = f"{uri}: no such package here yet"
            elif code == "4.03" and run.resumed:
                reason, limit = f"{uri}: refused ({block.response.diagnostic})", REFUSED_GRACE_S
            else:
                break
        silent = time.monotonic() - silent_since
        if silent > limit:
            failure = UpdateResult.INVALID_URI if run.moved or run.resumed else UpdateResult.CONNECTION_LOST
            raise UpdateFailed(failure, f"{reason}; no answer for {silent:.0f} s")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 10.0)
        if locate(uri) != uri:
            raise _Moved
    code = block.response.code
    if code == "4.04":
        raise UpdateFailed(UpdateResult.INVALID_URI, f"{uri}: the server has no such package")
    if code == "4.03":
        # The package exists but is not this device's to fetch: a URI it should not have been given.
        reason = block.response.diagnostic or "no reason given"
        raise UpdateFailed(UpdateResult.INVALID_URI, f"{uri}: the server refuses this device ({reason})")
    if code != "4.08" and not block.response.success:
        raise UpdateFailed(UpdateResult.CONNECTION_LOST, f"{uri} block {num}: the server answered {code}")
    return block


class _Run:
    """Where one ``download_package`` call stands: the URI fetched from and what its server showed."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.moved = False  # fetching from a server failed over to, which has not answered yet
        self.resumed = False  # going on with blocks a previous run kept, no block answered yet
        self.primed = False  # block 0 was asked for again since the last block arrived


async def download_package(
    download: PackageDownload,
    request_block: RequestBlock,
    *,
    max_bytes: int,
    on_block: Callable[[int], Awaitable[None]],
    locate: Callable[[str], str] = str,
    window: int = DEFAULT_WINDOW,
) -> None:
    """Fetch the rest of ``download`` (``UpdateFailed`` ends it); ``on_block`` hears each block's number.

    ``max_bytes`` is a model slot's flash: a package that outgrows it fails with 50 while it arrives.
    ``locate`` names where the package is to be fetched from now, asked before every block: when the
    agent has failed over to another server, the download starts over from that server's copy.
    ``window`` (1..16) is how many block requests may be in flight at once.
    """
    if not 1 <= window <= MAX_WINDOW:
        raise InvalidInput(f"a download window of {window} blocks is outside 1..{MAX_WINDOW}")
    uri = download.uri or ""
    parts = urlsplit(uri)
    if parts.scheme not in ("coap", "coaps") or not parts.hostname:
        raise UpdateFailed(UpdateResult.INVALID_URI, f"{uri!r} is not a coap:// or coaps:// URI")
    run = _Run(uri)
    run.resumed = bool(download.blocks)
    while not download.complete:
        located = locate(run.uri)
        if located != run.uri:
            download.begin(located)
            run.uri, run.primed, run.moved = located, False, True
        try:
            await _fetch_window(download, request_block, run, max_bytes, on_block, locate, window)
        except _Moved:
            continue


async def _fetch_window(
    download: PackageDownload,
    request_block: RequestBlock,
    run: _Run,
    max_bytes: int,
    on_block: Callable[[int], Awaitable[None]],
    locate: Callable[[str], str],
    window: int,
) -> None:
    """Fetch missing blocks, up to ``window`` at once, until the package is whole or a fetch fails.

    How many are in flight follows the path, as TCP Vegas does: one more after each block answered
    about as fast as the quickest so far, one fewer after a slower one (it queued behind the others on
    a thin link, or was lost and asked for again). A lossy but fast path opens the whole window; on a
    link whose bandwidth one block already fills (NB-IoT), more blocks in flight would only queue there.
    """
    in_flight: dict[asyncio.Task[CoapBlock], int] = {}
    sent: dict[asyncio.Task[CoapBlock], float] = {}
    loop = asyncio.get_running_loop()
    allowed = 1
    quickest = float("inf")
    try:
        while not download.complete:
            if locate(run.uri) != run.uri:
                raise _Moved
            asked = set(in_flight.values())
            for num in _unasked(download.missing(), asked):
                if len(in_flight) >= allowed:
                    break
                fetch = _fetch_block(request_block, run.uri, num, download.szx, locate=locate, run=run)
                task = asyncio.ensure_future(fetch)
                in_flight[task], sent[task] = num, loop.time()
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=in_flight.__getitem__):
                num = in_flight.pop(task)
                took = loop.time() - sent.pop(task)
                block = task.result()
                if block.response.code == "4.08":
                    await _prime(download, request_block, run, locate, num)
                    continue
                await _keep(download, run, block, num, max_bytes, on_block)
                quickest = min(quickest, took)
                allowed = min(window, allowed + 1) if took <= _QUEUED * quickest else max(1, allowed - 1)
    finally:
        for task in in_flight:
            task.cancel()
        for task in in_flight:
            with contextlib.suppress(BaseException):
                await task


def _unasked(missing: Iterable[int], asked: set[int]) -> Iterable[int]:
    return (num for num in missing if num not in asked)


async def _prime(
    download: PackageDownload,
    request_block: RequestBlock,
    run: _Run,
    locate: Callable[[str], str],
    num: int,
) -> None:
    """Answer a 4.08 (Request Entity Incomplete) by asking for block 0 again, once per block received.

    A server on aiocoap's block-wise cache serves later blocks only to a client that asked for block 0
    first (the cache is per client), so a resumed download fetches block 0 once more. It must equal the
    block 0 kept: else the package changed.
    """
    if run.primed:
        raise UpdateFailed(UpdateResult.CONNECTION_LOST, f"{run.uri}: the server refuses block {num}")
    run.primed = True
    block = await _fetch_block(request_block, run.uri, 0, download.szx, locate=locate, run=run)
    if not (block.response.success and download.block(0) == block.response.payload):
        raise UpdateFailed(UpdateResult.CONNECTION_LOST, f"{run.uri}: block 0 is not the one kept")


async def _keep(
    download: PackageDownload,
    run: _Run,
    block: CoapBlock,
    num: int,
    max_bytes: int,
    on_block: Callable[[int], Awaitable[None]],
) -> None:
    """Write an answered block where it belongs, or end the update if it cannot belong to the package."""
    if block.num != num:
        raise UpdateFailed(
            UpdateResult.CONNECTION_LOST,
            f"{run.uri}: asked for block {num}, the server sent block {block.num}",
        )
    payload = block.response.payload
    if max(block.offset + len(payload), block.total or 0) > max_bytes:
        raise UpdateFailed(
            UpdateResult.NOT_ENOUGH_STORAGE,
            f"{run.uri}: the package outgrows the {max_bytes} bytes of a model slot",
        )
    try:
        fresh = await download.keep_block(num, payload, szx=block.szx, more=block.more, total=block.total)
    except InvalidInput as exc:
        raise UpdateFailed(UpdateResult.CONNECTION_LOST, f"{run.uri}: {exc.detail}") from None
    run.moved = run.resumed = False  # the server answers: its 4.04 and 4.03 now mean what they say
    run.primed = False
    if fresh:
        await on_block(num)
