"""Collecting sensor samples into a dataset on the server, through an outbox that outlives outages.

Every ``every``-th window the inference loop reads becomes one upload (``data.upload``: a fresh id, the
label the agent was given or none, the capture time) and goes into the outbox (``SampleBuffer``) under
``state_dir/outbox``. A second task sends the oldest waiting upload to ``POST /dc/<dataset>`` and
acknowledges it only after a 2.xx answer:

- no answer, an ICMP refusal, 4.04 (a server without the upload resource, or a dataset not created
  yet), 4.29 (over the server's upload rate) or 5.xx: the upload stays and is sent again after a pause
  that doubles up to ``max_backoff`` seconds;
- an answer lost after the server stored the sample: the resend carries the same id, the server
  answers 2.04 and stores nothing, so every sample lands once;
- any other 4.xx: the server will never take it (a wrong shape, a label the dataset lacks); it leaves
  the outbox, counted as rejected, its diagnostic in a ``collect-rejected`` event;
- the outbox full: the oldest uploads are dropped and counted.

Windows reach the disk from a task of their own, in a worker thread, so neither an ``fsync`` nor a send
waiting out its timeout holds up sampling or inference. Each upload is stored encoded together with
its dataset, so what was captured for one dataset goes there even if the agent restarts collecting
into another.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinymlaas.agent.buffer import BufferedSample, BufferStats, SampleBuffer
from tinymlaas.data.types import check_dataset_name
from tinymlaas.data.upload import CBOR_CONTENT_FORMAT, COLLECT_ROOT, MAX_UPLOAD_BYTES, SampleUpload
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapResponse, PeerUnreachable

__all__ = ["OUTBOX_DIR", "CollectStats", "Collection", "SampleUploader", "ServerLink", "UploadEventCallback"]

_log = logging.getLogger(__name__)

OUTBOX_DIR = "outbox"
_PENDING_MAX = 256  # windows taken but not on disk yet; more means the disk cannot keep up
_MIN_BACKOFF = 0.5  # seconds before the first resend after a failed delivery

UploadEventCallback = Callable[[str, str], Awaitable[None]]  # (kind, message)
# The endpoint to send from and the server URI to send to, asked anew for every send: both change when
# the agent fails over to another server, and waiting uploads then go there.
ServerLink = Callable[[], tuple[CoapEndpoint, str]]


@dataclass(frozen=True)
class Collection:
    """What an agent collects: into which dataset, labelled how (None: unlabelled), every how many
    windows, and how much the outbox may hold while the server is away."""

    dataset: str
    label: str | None = None
    every: int = 1
    max_buffer_bytes: int = 16 * 1024 * 1024
    max_buffer_items: int = 10_000
    max_backoff: float = 30.0  # seconds

    def __post_init__(self) -> None:
        check_dataset_name(self.dataset)
        if self.label is not None and not (self.label.strip() and self.label.isprintable()):
            raise InvalidInput(f"A collection label is printable text, got {self.label!r}")
        if self.label is not None and len(self.label) > 128:
            raise InvalidInput(f"A collection label is at most 128 characters, got {len(self.label)}")
        if self.every < 1:
            raise InvalidInput(f"Collecting every N windows needs N >= 1, got {self.every}")
        if self.max_backoff <= 0:
            raise InvalidInput(f"The longest pause between resends is above 0 s, got {self.max_backoff}")


@dataclass(frozen=True)
class CollectStats:
    """Counts since the agent started, except the outbox's evictions in ``dropped``: those since the
    outbox was made, which is what a device lost across restarts."""

    taken: int  # windows that became uploads
    buffered: int  # uploads waiting in the outbox now
    buffered_bytes: int
    delivered: int  # acknowledged by the server (2.01 or 2.04)
    rejected: int  # refused by the server with a 4.xx that a resend cannot fix
    dropped: int  # evicted from the full outbox, or never written because the disk fell behind


def _retryable(response: CoapResponse) -> bool:
    """Whether a failure can pass: the server may gain the resource or dataset, let the device's upload
    rate refill, or recover from its own error."""
    return response.code in ("4.04", "4.29") or response.code.startswith("5.")


class SampleUploader:
    """Takes windows with ``offer``; ``run`` stores them and delivers them to the agent's server."""

    def __init__(
        self,
        collection: Collection,
        endpoint: str,
        directory: Path,
        *,
        request_timeout: float,
        on_event: UploadEventCallback | None = None,
    ) -> None:
        self.collection = collection
        self._endpoint = endpoint
        self._timeout = request_timeout
        self._on_event = on_event
        # The outbox is touched from worker threads, one operation at a time.
        self._buffer = SampleBuffer(directory, collection.max_buffer_bytes, collection.max_buffer_items)
        self._lock = threading.Lock()
        self._buffer_stats = self._buffer.stats()
        self._pending: deque[tuple[str, bytes]] = deque()
        self._offered = asyncio.Event()
        self._stored = asyncio.Event()
        self._windows = 0
        self._taken = 0
        self._delivered = 0
        self._rejected = 0
        self._lost = 0
        self._outage = False
        self._dropped_reported = self._buffer_stats.dropped
        self._last_rejection = ""

    def offer(self, window: np.ndarray) -> None:
        """Take ``window`` if it is the first or an ``every``-th one; it reaches the disk shortly after."""
        index = self._windows
        self._windows += 1
        if index % self.collection.every:
            return
        upload = SampleUpload(
            sample_id=uuid.uuid4().hex,
            endpoint=self._endpoint,
            label=self.collection.label,
            x=np.asarray(window, dtype=np.float32),
            captured_at=time.time(),
        )
        if len(self._pending) >= _PENDING_MAX:
            self._pending.popleft()
            self._lost += 1
        self._pending.append((upload.sample_id, upload.encode()))
        self._taken += 1
        self._offered.set()

    def stats(self) -> CollectStats:
        buffered = self._buffer_stats
        return CollectStats(
            taken=self._taken,
            buffered=buffered.items,
            buffered_bytes=buffered.bytes,
            delivered=self._delivered,
            rejected=self._rejected,
            dropped=buffered.dropped + self._lost,
        )

    async def run(self, link: ServerLink) -> None:
        """Store, and deliver through ``link``, until cancelled; windows taken but not yet stored are
        stored on the way out."""
        try:
            await asyncio.gather(self._spool(), self._deliver(link))
        finally:
            with self._lock:
                while self._pending:
                    if not self._store(*self._pending.popleft()):
                        self._lost += 1

    # -- the outbox, in worker threads ---------------------------------------------------------------

    def _store(self, sample_id: str, payload: bytes) -> bool:
        """Put one upload into the outbox, False if it cannot be kept; the caller holds the lock."""
        kept = False
        if len(payload) > MAX_UPLOAD_BYTES:
            _log.warning("%s: a %d-byte sample is over the upload limit", self._endpoint, len(payload))
        else:
            try:
                self._buffer.put(sample_id, payload, {"dataset": self.collection.dataset})
                kept = True
            except InvalidInput as exc:
                _log.warning("%s: %s", self._endpoint, exc.detail)
        self._buffer_stats = self._buffer.stats()
        return kept

    def _put(self, sample_id: str, payload: bytes) -> bool:
        with self._lock:
            return self._store(sample_id, payload)

    def _oldest(self) -> BufferedSample | None:
        with self._lock:
            waiting = self._buffer.peek(1)
        return waiting[0] if waiting else None

    def _ack(self, sample_id: str) -> BufferStats:
        with self._lock:
            self._buffer.ack([sample_id])
            self._buffer_stats = self._buffer.stats()
            return self._buffer_stats

    # -- the two tasks ---------------------------------------------------------------------------------

    async def _spool(self) -> None:
        while True:
            await self._offered.wait()
            self._offered.clear()
            while self._pending:
                if not await asyncio.to_thread(self._put, *self._pending.popleft()):
                    self._lost += 1
                self._stored.set()
            dropped = self._buffer_stats.dropped + self._lost
            if dropped > self._dropped_reported:
                self._dropped_reported = dropped
                await self._emit(
                    "collect-dropped",
                    f"the outbox is full: {dropped} samples dropped so far, "
                    f"{self._buffer_stats.items} waiting for the server",
                )

    async def _deliver(self, link: ServerLink) -> None:
        first_pause = min(_MIN_BACKOFF, self.collection.max_backoff)
        backoff = first_pause
        while True:
            self._stored.clear()
            sample = await asyncio.to_thread(self._oldest)
            if sample is None:
                await self._stored.wait()
                continue
            dataset = str(sample.meta.get("dataset", self.collection.dataset))
            coap, server_uri = link()
            uri = f"{server_uri.rstrip('/')}/{COLLECT_ROOT}/{dataset}"
            try:
                response = await coap.request(
                    "POST", uri, sample.payload, content_format=CBOR_CONTENT_FORMAT, timeout=self._timeout
                )
            except PeerUnreachable as exc:
                reason = exc.detail
            else:
                if response.success or not _retryable(response):
                    await self._settled(sample.sample_id, dataset, response)
                    backoff = first_pause
                    continue
                reason = f"the server answered {response.code}: {response.diagnostic}"
            if not self._outage:
                self._outage = True
                await self._emit(
                    "collect-paused",
                    f"cannot deliver to {dataset!r} ({reason}); "
                    f"{self._buffer_stats.items} samples wait in the outbox",
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.collection.max_backoff)

    async def _settled(self, sample_id: str, dataset: str, response: CoapResponse) -> None:
        """The server took the upload, or refused it for good: either way it leaves the outbox."""
        stats = await asyncio.to_thread(self._ack, sample_id)
        if response.success:
            self._delivered += 1
            if self._outage:
                self._outage = False
                await self._emit(
                    "collect-resumed", f"delivering to {dataset!r} again; {stats.items} samples wait"
                )
            return
        self._rejected += 1
        detail = f"{response.code} {response.diagnostic}"
        if detail != self._last_rejection:  # a reason is told once, not once per sample
            self._last_rejection = detail
            await self._emit("collect-rejected", f"the server refused a sample for {dataset!r}: {detail}")

    async def _emit(self, kind: str, message: str) -> None:
        if self._on_event is not None:
            await self._on_event(kind, message)
