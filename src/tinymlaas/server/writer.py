"""The server's database writer: one piece of work at a time in a worker thread, urgent work first.

Device reports, campaign moves and telemetry queue up behind each other; a device's Register waits
for its row, and in a registration storm (a server restart, a fleet powering up) it must not wait
behind every report queued before it, or the device times out and registers again, which only adds
to the storm. Urgent work therefore goes ahead of queued work (never ahead of the piece running);
within one urgency the order is the order of arrival, so a device's writes stay in order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Writer"]

T = TypeVar("T")


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
