"""Running async scenarios from plain pytest functions, with every wait bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


def run(test: Callable[[], Awaitable[None]], timeout: float = 15) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout))


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
