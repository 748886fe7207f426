"""Fetching a model package over CoAP block-wise transfer, resumable across restarts.

The package is fetched one Block2 block at a time and every block is kept under ``state_dir/download/``
(the bytes, the offset reached, the URI), so a restarted agent continues where it stopped instead of at
block 0: on a link that loses power or coverage mid-download (NB-IoT), starting over may never finish.

A block that goes unanswered is asked for again with a backoff (1 s doubling to 10 s) for up to
``DOWNLOAD_STALL_S`` of silence. An agent that fails over to another server mid-download fetches the
package from that server instead (``locate``); as each server signs its own copy, with a sequence of
its own, the download starts over there rather than mix two copies, and that server's 4.04 counts as
silence too until it answers: it serves the package once it has taken the campaigns over.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from tinymlaas.agent.update import UpdateResult
from tinymlaas.errors import InvalidInput
from tinymlaas.files import fsync_dir, write_json_atomic
from tinymlaas.lwm2m.transport import PeerUnreachable
from tinymlaas.lwm2m.transport.coap import DEFAULT_BLOCK_SZX, CoapBlock

__all__ = [
    "BLOCK_TIMEOUT_S",
    "DOWNLOAD_DIR",
    "DOWNLOAD_STALL_S",
    "PackageDownload",
    "RequestBlock",
    "UpdateFailed",
    "download_package",
]

DOWNLOAD_DIR = "download"
# How long block requests may go unanswered in a row before the download fails with 52; it rides out a
# congested or briefly dead link, as on NB-IoT.
DOWNLOAD_STALL_S = 180.0
# One block request waits as long as CoAP retransmits a confirmable message (MAX_TRANSMIT_WAIT, 93 s
# with RFC 7252's defaults). A shorter wait would abandon a request the CoAP layer still retransmits,
# and the next block request would queue behind it (one outstanding request per peer).
BLOCK_TIMEOUT_S = 95.0

RequestBlock = Callable[[str, int, int], Awaitable[CoapBlock]]
"""GETs block ``num`` of ``uri`` at size exponent ``szx``, waiting up to ``BLOCK_TIMEOUT_S``."""


class UpdateFailed(Exception):
    """Ends an update in INITIAL with ``result``."""

    def __init__(self, result: UpdateResult, detail: str) -> None:
        super().__init__(detail)
        self.result = result
        self.detail = detail


class PackageDownload:
    """The package download in progress, persisted under ``state_dir/download/``.

    ``package.part`` holds the bytes received so far; ``progress.json`` the URI, the offset those bytes
    reach, the block size in use and whether the last block arrived. Bytes reach the disk (``fsync``)
    before the offset that counts them, so after a power cut the file may be longer than the offset but
    never shorter; opening trims it back.
    """

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / DOWNLOAD_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self._part = self.directory / "package.part"
        self._progress_path = self.directory / "progress.json"
        self.uri: str | None = None
        self.offset = 0
        self.szx = DEFAULT_BLOCK_SZX
        self.complete = False
        self._open()

    def _open(self) -> None:
        if not self._progress_path.exists():
            return
        try:
            saved = json.loads(self._progress_path.read_text())
            uri, offset, szx, complete = saved["uri"], saved["offset"], saved["szx"], saved["complete"]
        except (OSError, ValueError, KeyError, TypeError):
            self.clear()
            return
        size = self._part.stat().st_size if self._part.exists() else -1
        if not isinstance(uri, str) or not isinstance(offset, int) or size < offset:
            self.clear()
            return
        if size > offset:
            with open(self._part, "r+b") as handle:
                handle.truncate(offset)
        self.uri, self.offset, self.szx, self.complete = uri, offset, int(szx), bool(complete)

    def _save(self) -> None:
        write_json_atomic(
            self._progress_path,
            {"uri": self.uri, "offset": self.offset, "szx": self.szx, "complete": self.complete},
        )

    def begin(self, uri: str) -> None:
        """Start a new download of ``uri`` from its first byte."""
        self._part.write_bytes(b"")
        self.uri, self.offset, self.szx, self.complete = uri, 0, DEFAULT_BLOCK_SZX, False
        self._save()

    def write(self, offset: int, data: bytes, *, szx: int, complete: bool) -> None:
        """Keep ``data`` as the bytes from ``offset`` on (dropping any beyond), durably."""
        with open(self._part, "r+b") as handle:
            handle.truncate(offset)
            handle.seek(offset)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self.offset, self.szx, self.complete = offset + len(data), szx, complete
        self._save()

    def data(self) -> bytes:
        return self._part.read_bytes()[: self.offset]

    def clear(self) -> None:
        """Forget the download; a later one starts from nothing."""
        self._progress_path.unlink(missing_ok=True)
        self._part.unlink(missing_ok=True)
        fsync_dir(self.directory)
        self.uri, self.offset, self.szx, self.complete = None, 0, DEFAULT_BLOCK_SZX, False


class _Moved(Exception):
    """The agent now fetches the package elsewhere: the block is asked for there instead."""


async def _fetch_block(
    request_block: RequestBlock,
    uri: str,
    num: int,
    szx: int,
    *,
    locate: Callable[[str], str],
    moved: bool,
) -> CoapBlock:
    """One block, retried while the server does not answer; 4.04 and other errors end the update, but
    for a download that ``moved`` to another server, where 4.04 is retried as silence. Before each
    retry ``locate`` is asked again, and ``_Moved`` raised once it names another place."""
    silent_since = time.monotonic()
    pause = 1.0
    while True:
        try:
            block = await request_block(uri, num, szx)
        except PeerUnreachable as exc:
            reason = exc.detail
        except InvalidInput as exc:
            raise UpdateFailed(UpdateResult.INVALID_URI, exc.detail) from None
        else:
            if block.response.code != "4.04" or not moved:
                break
            reason = f"{uri}: no such package here yet"
        silent = time.monotonic() - silent_since
        if silent > DOWNLOAD_STALL_S:
            failure = UpdateResult.INVALID_URI if moved else UpdateResult.CONNECTION_LOST
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


async def download_package(
    download: PackageDownload,
    request_block: RequestBlock,
    *,
    max_bytes: int,
    on_block: Callable[[int], Awaitable[None]],
    locate: Callable[[str], str] = str,
) -> None:
    """Fetch the rest of ``download`` (``UpdateFailed`` ends it); ``on_block`` hears each block's number.

    ``max_bytes`` is a model slot's flash: a package that outgrows it fails with 50 while it arrives.
    ``locate`` names where the package is to be fetched from now, asked before every block: when the
    agent has failed over to another server, the download starts over from that server's copy.
    """
    uri = download.uri or ""
    parts = urlsplit(uri)
    if parts.scheme not in ("coap", "coaps") or not parts.hostname:
        raise UpdateFailed(UpdateResult.INVALID_URI, f"{uri!r} is not a coap:// or coaps:// URI")
    primed = False
    moved = False
    while not download.complete:
        located = locate(uri)
        if located != uri:
            download.begin(located)
            uri, primed, moved = located, False, True
        num = download.offset >> (download.szx + 4)
        try:
            block = await _fetch_block(request_block, uri, num, download.szx, locate=locate, moved=moved)
            if block.response.code == "4.08":
                # Request Entity Incomplete: an aiocoap server serves later blocks only to a client that
                # asked for block 0 first (its block-wise cache is per client), so a resumed download
                # fetches block 0 once more. It must equal the block 0 kept: else the package changed.
                if primed:
                    raise UpdateFailed(UpdateResult.CONNECTION_LOST, f"{uri}: the server refuses block {num}")
                primed = True
                block = await _fetch_block(request_block, uri, 0, download.szx, locate=locate, moved=moved)
                if block.response.success and download.data().startswith(block.response.payload):
                    continue
        except _Moved:
            continue
        # Block 0 starts over: the package changed, or the peer ignores Block2 and sent it whole.
        if block.num != 0 and block.offset != download.offset:
            raise UpdateFailed(
                UpdateResult.CONNECTION_LOST,
                f"{uri}: asked for the block at byte {download.offset}, got byte {block.offset}",
            )
        payload = block.response.payload
        if block.offset + len(payload) > max_bytes:
            raise UpdateFailed(
                UpdateResult.NOT_ENOUGH_STORAGE,
                f"{uri}: the package outgrows the {max_bytes} bytes of a model slot",
            )
        download.write(block.offset, payload, szx=block.szx, complete=not block.more)
        moved = False  # the server moved to answers: its 4.04 from now on means what it says
        await on_block(block.num)
