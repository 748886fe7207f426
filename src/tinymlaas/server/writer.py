"""The server's database writer: one piece of work at a time in a worker thread, urgent work first.

Device reports, campaign moves and telemetry queue up behind each other; a device's Register waits
for its row, and in a registration storm (a server restart, a fleet powering up) it must not wait
behind every report queued before it, or the device times out and registers again, which only adds
to the storm. Urgent work therefore goes ahead of queued work (never ahead of the piece running);
within one urgency the order is the order of arrival, so a device's writes stay in order.

The worker thread takes the next piece itself as soon as one is done, rather than being handed each
piece by the event loop: a loop busy with thousands of devices' datagrams takes tens of milliseconds
per pass, and a writer that waited for a pass between pieces stored no more than a few dozen
registrations a second (measured: a Register waited up to 16 s for its row with 2,500 devices
registering, longer than the devices wait for an answer). Results reach their callers through the loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["Grouped", "Writer"]

T = TypeVar("T")
Item = TypeVar("Item")


@dataclass(order=True)
class _Piece:
    urgency: int  # 0 urgent, 1 normal
    arrival: int
    work: Callable[..., Any] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    result: asyncio.Future[Any] = field(compare=False)


class Writer:
    """Runs database work off the event loop, one piece at a time."""

    def __init__(self) -> None:
        self._order = itertools.count()
        self._lock = threading.Lock()  # the heap is filled on the loop and emptied on the worker thread
        self._waiting: list[_Piece] = []
        self._working = False  # a worker thread is taking pieces; changed under the lock only
        self._workers: set[asyncio.Future[None]] = set()

    async def __call__(self, work: Callable[..., T], *args: Any, urgent: bool = False) -> T:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[T] = loop.create_future()
        with self._lock:
            heapq.heappush(self._waiting, _Piece(0 if urgent else 1, next(self._order), work, args, result))
            start, self._working = not self._working, True
        if start:
            worker = loop.run_in_executor(None, self._work_off, loop)  # submitted now, not next pass
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        return await result  # cancelled before its turn, the piece is skipped

    def _work_off(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the waiting pieces, most urgent first, until none is left (on the worker thread)."""
        while True:
            with self._lock:
                if not self._waiting:
                    self._working = False  # the next piece added starts a worker again
                    return
                piece = heapq.heappop(self._waiting)
            if piece.result.cancelled():
                continue
            try:
                value = piece.work(*piece.args)
            except BaseException as exc:  # handed to the caller, whatever it is
                loop.call_soon_threadsafe(_settle, piece.result, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, piece.result, value, None)


def _settle(result: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if result.done():  # its caller gave up meanwhile
        return
    if error is not None:
        result.set_exception(error)
    else:
        result.set_result(value)


class Grouped(Generic[Item]):
    """Items stored together: every item waiting when the writer comes to the group goes into one call
    of ``store`` (one transaction), and each caller waits for the call holding its item.

    A transaction costs the writer about the same for one row as for a hundred: in a registration storm
    one transaction per Register kept the writer at about 150 a second, and the Registers queued
    behind each other for seconds. Should a group fail, its items are stored one by one, so one bad
    item fails its own caller only.
    """

    def __init__(self, writer: Writer, store: Callable[[list[Item]], None], *, urgent: bool = False) -> None:
        self._writer = writer
        self._store = store
        self._urgent = urgent
        self._waiting: list[tuple[Item, asyncio.Future[None]]] = []
        self._storing: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> None:
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, stored))
        if self._storing is None or self._storing.done():
            self._storing = asyncio.create_task(self._store_waiting(), name="store a group")
        await stored

    async def _store_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await self._writer(self._store, [item for item, _ in group], urgent=self._urgent)
            except Exception as exc:
                if len(group) == 1:
                    _settle(group[0][1], None, exc)
                else:
                    for item, stored in group:
                        await self._store_alone(item, stored)
            else:
                for _, stored in group:
                    _settle(stored, None, None)

    async def _store_alone(self, item: Item, stored: asyncio.Future[None]) -> None:
        try:
            await self._writer(self._store, [item], urgent=self._urgent)
        except Exception as exc:
            _settle(stored, None, exc)
        else:
            _settle(stored, None, None)
