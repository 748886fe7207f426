"""Sending a pipeline stage's messages to the next nodes, through outboxes that outlive outages.

Each next hop has its own outbox (a ``SampleBuffer`` under ``state_dir/pipeline/outbox/<hop>``), so a
node that is down holds up only the messages meant for it, and a restart keeps what was waiting. A
message is stored encoded without this node's timing; the sender adds it (``HopTiming``, with the
moment the message is handed to CoAP) on every attempt, so the next node sees when it was really sent.

One sender per next hop sends its outbox oldest first over its own DTLS session, the PSK identity
being this node's endpoint name and the key the one the server wrote as Hop Key:

- 2.xx: delivered, removed;
- any other 4.xx: the next node will never take it (a tensor its model cannot read, a pipeline it
  does not run): removed, counted as a failure, told in a ``hop-refused`` event;
- no answer, an ICMP refusal or 5.xx: kept, counted as a failure, and sent again after a pause that
  doubles up to ``MAX_BACKOFF_S``; the session is opened afresh, as the next node may have restarted.

With a Hop Link set, the session runs through a ``UdpLinkEmulator`` with that profile, so the hop
pays a radio link's latency, bandwidth and losses although both nodes are on one host.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from tinymlaas.agent.buffer import BufferedSample, SampleBuffer
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.linkemu import LinkProfile, UdpLinkEmulator
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse, PeerUnreachable
from tinymlaas.split.transfer import BLOCK_BYTES
from tinymlaas.split.wire import HOP_PATH, HopTiming, decode, encode

__all__ = [
    "CBOR_CONTENT_FORMAT",
    "MAX_BACKOFF_S",
    "OUTBOX_MAX_BYTES",
    "OUTBOX_MAX_ITEMS",
    "HopOutbox",
    "HopSender",
    "HopTarget",
    "SendEvent",
    "stop_sender",
]

CBOR_CONTENT_FORMAT = 60
OUTBOX_MAX_BYTES = 16 * 1024 * 1024  # per next hop, as the sample outbox
OUTBOX_MAX_ITEMS = 10_000
MIN_BACKOFF_S = 0.2
MAX_BACKOFF_S = 10.0

SendEvent = Callable[[str, str], Awaitable[None]]  # (kind, message)


class HopOutbox:
    """One next hop's messages on disk; every operation runs in a worker thread, one at a time."""

    def __init__(self, directory: Path) -> None:
        self._buffer = SampleBuffer(directory, OUTBOX_MAX_BYTES, OUTBOX_MAX_ITEMS)
        self._lock = threading.Lock()
        self.waiting = self._buffer.stats().items
        self.stored = asyncio.Event()

    @staticmethod
    def directory_for(root: Path, uri: str) -> Path:
        """Where the outbox for ``uri`` lives: a digest, since a URI is no file name."""
        return root / hashlib.sha256(uri.encode()).hexdigest()[:16]

    def _put(self, message_id: str, payload: bytes, compute_ms: float) -> bool:
        with self._lock:
            stored = self._buffer.put(message_id, payload, {"compute_ms": compute_ms})
            self.waiting = self._buffer.stats().items
            return stored

    async def put(self, message_id: str, payload: bytes, compute_ms: float) -> bool:
        """Keep a message until the next hop acknowledges it; False if it already waits (a resend)."""
        stored = await asyncio.to_thread(self._put, message_id, payload, compute_ms)
        self.stored.set()
        return stored

    def _oldest(self) -> BufferedSample | None:
        with self._lock:
            waiting = self._buffer.peek(1)
        return waiting[0] if waiting else None

    async def oldest(self) -> BufferedSample | None:
        return await asyncio.to_thread(self._oldest)

    def _ack(self, message_id: str) -> None:
        with self._lock:
            self._buffer.ack([message_id])
            self.waiting = self._buffer.stats().items

    async def ack(self, message_id: str) -> None:
        await asyncio.to_thread(self._ack, message_id)


@dataclass(frozen=True)
class HopTarget:
    """How to reach one next hop: its URI, this node's PSK identity and key, the emulated link."""

    uri: str
    identity: str
    key: bytes
    link: LinkProfile | None


async def _refuse(request: CoapRequest) -> CoapResponse:
    return CoapResponse("4.03", b"a pipeline hop session carries no requests towards the sender")


class HopSender:
    """Delivers one outbox to one next hop until cancelled; ``on_delivered`` gets each hop latency in
    ms, ``on_failed`` is called once per attempt that did not deliver."""

    def __init__(
        self,
        target: HopTarget,
        outbox: HopOutbox,
        *,
        timeout: float,
        on_delivered: Callable[[float], None],
        on_failed: Callable[[], None],
        on_event: SendEvent,
    ) -> None:
        self.target = target
        self._outbox = outbox
        self._timeout = timeout
        self._on_delivered = on_delivered
        self._on_failed = on_failed
        self._on_event = on_event
        self._coap: CoapEndpoint | None = None
        self._link: UdpLinkEmulator | None = None
        self._outage = False

    async def _endpoint(self) -> tuple[CoapEndpoint, str]:
        """The session to the next hop (through the link emulator when one is set), opened if needed."""
        parts = urlsplit(self.target.uri)
        base = self.target.uri
        if self.target.link is not None:
            if self._link is None:
                upstream = (parts.hostname or "", parts.port or 5684)
                # A seed of its own per link and start, so no two hops (or restarts) lose the same datagrams.
                self._link = await UdpLinkEmulator.start(upstream, self.target.link, secrets.randbits(32))
            base = f"coaps://127.0.0.1:{self._link.port}"
        if self._coap is None:
            self._coap = await CoapEndpoint.connect_secure(
                base, self.target.identity, self.target.key, _refuse
            )
        return self._coap, base

    async def close(self) -> None:
        coap, self._coap = self._coap, None
        if coap is not None:
            await coap.close()
        link, self._link = self._link, None
        if link is not None:
            link.close()

    async def run(self) -> None:
        backoff = MIN_BACKOFF_S
        try:
            while True:
                self._outbox.stored.clear()
                waiting = await self._outbox.oldest()
                if waiting is None:
                    await self._outbox.stored.wait()
                    continue
                if await self._send(waiting):
                    backoff = MIN_BACKOFF_S
                    continue
                self._on_failed()
                await self.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            await self.close()

    async def _send(self, waiting: BufferedSample) -> bool:
        """One attempt; True when the message left the outbox (delivered or refused for good)."""
        try:
            stored = decode(waiting.payload)
        except InvalidInput as exc:  # written by this node, so only a damaged file gets here
            await self._outbox.ack(waiting.sample_id)
            self._on_failed()
            await self._on_event("hop-refused", f"dropped an unreadable message for {self.target.uri}: {exc}")
            return True
        compute_ms = float(waiting.meta.get("compute_ms", 0.0))
        try:
            coap, base = await self._endpoint()
            started = time.perf_counter()
            timing = HopTiming(self.target.identity, compute_ms, time.time() * 1000.0)
            payload = encode(replace(stored, hops=(*stored.hops, timing)))
            uri = f"{base}/{HOP_PATH}/{stored.pipeline}/{stored.stage}"
            # A large tensor goes Block1-wise, one exchange per block: allow each its own timeout, or a
            # message that takes longer than one on a slow link would be sent again for ever.
            blocks = max(1, math.ceil(len(payload) / BLOCK_BYTES))
            response = await coap.request(
                "POST", uri, payload, content_format=CBOR_CONTENT_FORMAT, timeout=self._timeout * blocks
            )
        except (PeerUnreachable, OSError) as exc:
            await self._paused(str(exc))
            return False
        if response.success:
            await self._outbox.ack(waiting.sample_id)
            self._on_delivered((time.perf_counter() - started) * 1000.0)
            if self._outage:
                self._outage = False
                await self._on_event(
                    "hop-resumed", f"delivering to {self.target.uri} again; {self._outbox.waiting} wait"
                )
            return True
        if response.code.startswith("4."):
            await self._outbox.ack(waiting.sample_id)
            self._on_failed()
            await self._on_event(
                "hop-refused",
                f"{self.target.uri} refused {waiting.sample_id}: {response.code} {response.diagnostic}",
            )
            return True
        await self._paused(f"{response.code} {response.diagnostic}")
        return False

    async def _paused(self, reason: str) -> None:
        if not self._outage:
            self._outage = True
            await self._on_event(
                "hop-paused",
                f"cannot deliver to {self.target.uri} ({reason}); {self._outbox.waiting} messages wait",
            )


async def stop_sender(task: asyncio.Task[None]) -> None:
    """Cancel a sender's task and wait until its session is closed."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
