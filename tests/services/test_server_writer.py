"""The server's database writer: one piece at a time, urgent work ahead of the queue, order kept."""

from __future__ import annotations

import asyncio
import threading

from tinymlaas.server.writer import Grouped, Writer


def test_urgent_work_goes_ahead_of_queued_work_but_not_of_the_piece_running() -> None:
    async def scenario() -> list[str]:
        writer = Writer()
        done: list[str] = []
        release = threading.Event()

        def first() -> None:
            release.wait(5)
            done.append("running")

        running = asyncio.create_task(writer(first))
        await asyncio.sleep(0.05)
        queued = [asyncio.create_task(writer(done.append, f"report {n}")) for n in range(3)]
        await asyncio.sleep(0)
        urgent = [asyncio.create_task(writer(done.append, f"register {n}", urgent=True)) for n in range(2)]
        await asyncio.sleep(0.05)
        assert done == []  # nothing overtakes the piece under way
        release.set()
        await asyncio.gather(running, *queued, *urgent)
        return done

    assert asyncio.run(scenario()) == [
        "running",
        "register 0",
        "register 1",
        "report 0",
        "report 1",
        "report 2",
    ]


def test_a_cancelled_waiter_leaves_its_turn_to_the_next() -> None:
    async def scenario() -> list[str]:
        writer = Writer()
        done: list[str] = []
        release = threading.Event()
        running = asyncio.create_task(writer(lambda: release.wait(5)))
        await asyncio.sleep(0.05)
        given_up = asyncio.create_task(writer(done.append, "given up"))
        kept = asyncio.create_task(writer(done.append, "kept"))
        await asyncio.sleep(0)
        given_up.cancel()
        release.set()
        await asyncio.gather(running, kept)
        await asyncio.gather(given_up, return_exceptions=True)
        # The writer is free again afterwards: a new piece runs at once.
        await asyncio.wait_for(writer(done.append, "after"), 1)
        return done

    assert asyncio.run(scenario()) == ["kept", "after"]


def test_work_that_raises_frees_the_writer_and_reaches_its_caller() -> None:
    async def scenario() -> str:
        writer = Writer()

        def broken() -> None:
            raise ValueError("no such row")

        try:
            await writer(broken)
        except ValueError as exc:
            message = str(exc)
        return message + " / " + await asyncio.wait_for(writer(str.upper, "next"), 1)

    assert asyncio.run(scenario()) == "no such row / NEXT"


def test_items_waiting_together_are_stored_in_one_call_and_each_caller_hears_its_own_outcome() -> None:
    async def scenario() -> tuple[list[list[int]], list[object]]:
        writer = Writer()
        calls: list[list[int]] = []
        release = threading.Event()

        def store(items: list[int]) -> None:
            calls.append(list(items))
            if 13 in items:
                raise ValueError("13 is refused")

        grouped = Grouped(writer, store)
        running = asyncio.create_task(writer(release.wait, 5))  # the writer is busy meanwhile
        await asyncio.sleep(0.05)
        first = asyncio.create_task(grouped(1))
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(grouped(n)) for n in (2, 13, 4)]
        await asyncio.sleep(0.05)
        release.set()
        await running
        outcomes = await asyncio.gather(first, *waiting, return_exceptions=True)
        return calls, [o if o is None else str(o) for o in outcomes]

    calls, outcomes = asyncio.run(scenario())
    # 1 went to the writer first; 2, 13 and 4 waited together, failed together, then went one by one.
    assert calls == [[1], [2, 13, 4], [2], [13], [4]]
    assert outcomes == [None, None, "13 is refused", None]
