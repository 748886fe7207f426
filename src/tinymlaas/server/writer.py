"""The server's database writer: one piece of work at a time in a worker thread, urgent work first.

Device reports, campaign moves and telemetry queue up behind each other; a device's Register waits
for its row, and in a registration storm (a server restart, a fleet powering up) it must not wait
behind every report queued before it, or the device times out and registers again, which only adds
to the storm. Urgent work therefore goes ahead of queued work (never ahead of the piece running);
within one urgency the order is the order of arrival, so a device's writes stay in order.

The event loop hands the thread one piece per pass, so a loop busy with thousands of devices' datagrams
keeps precedence over the store (a worker that took the queued pieces itself competed with the loop
for the interpreter, and in one 4,000-device run the fleet online fell from 3,777 to 2,617 while it
sent its Updates). Work that comes in many small pieces is grouped instead (``Grouped``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Grouped", "Writer"]

T = TypeVar("T")
Item = TypeVar("Item")


class Writer:
    """Runs database work off the event loop, one piece at a time."""

    def __init__(self) -> None:
        self._busy = False
        self._order = itertools.count()
        # (0 urgent / 1 normal, arrival, future set when it is that waiter's turn)
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []

    async def __call__(self, work: Callable[..., T], *args: Any, urgent: bool = False) -> T:
        if self._busy:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (0 if urgent else 1, next(self._order), turn))
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._pass_on()  # the turn came with the cancellation: hand it to the next
                raise
        self._busy = True
        try:
            return await asyncio.to_thread(work, *args)
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        """Give the turn to the first waiter still waiting, or free the writer."""
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)
                return
        self._busy = False


def _settle(stored: asyncio.Future[None], error: BaseException | None = None) -> None:
    if stored.done():  # its caller gave up meanwhile
        return
    if error is not None:
        stored.set_exception(error)
    else:
        stored.set_result(None)


class Grouped(Generic[Item]):
    """Items stored together: every item waiting when the writer comes to the group goes into one call
    of ``store`` (one transaction), and each caller waits for the call holding its item.

    A transaction costs the writer about the same for one row as for a hundred: with one transaction
    per Register, one per pass of a busy event loop, a Register of 2,500 devices registering at once
    waited up to 16 s for its row, longer than the device waits for an answer, and the device
    registered again. Should a group fail, its items are stored one by one, so one bad item fails its
    own caller only.
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
                    _settle(group[0][1], exc)
                else:
                    for item, stored in group:
                        await self._store_alone(item, stored)
            else:
                for _, stored in group:
                    _settle(stored)

    async def _store_alone(self, item: Item, stored: asyncio.Future[None]) -> None:
        try:
            await self._writer(self._store, [item], urgent=self._urgent)
        except Exception as exc:
            _settle(stored, exc)
        else:
            _settle(stored)
