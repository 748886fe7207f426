"""Block2 served statelessly: any block to any client, in any order, with Size2; block requests retried."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from tinymlaas.lwm2m.linkemu import PROFILES, LinkProfile, UdpLinkEmulator
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse, PeerUnreachable, coap

PACKAGE = bytes(range(251)) * 40  # 10,040 bytes: nine full 1 KiB blocks and a short tenth
LOSSY = LinkProfile("lossy", latency_ms=2, jitter_ms=1, bandwidth_bps=10_000_000, loss=0.2, duplicate=0.05)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


async def serve(request: CoapRequest) -> CoapResponse:
    return CoapResponse("2.05", PACKAGE, 42)


def test_a_client_may_ask_for_any_block_first_and_learns_the_size() -> None:
    async def scenario() -> None:
        server = await CoapEndpoint.bind("127.0.0.1", 0, serve)
        client = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            uri = f"{server.uri}/package"
            last = await client.request_block(uri, 9)
            assert (last.response.code, last.num, last.more, last.total) == ("2.05", 9, False, len(PACKAGE))
            assert last.response.payload == PACKAGE[9 * 1024 :]
            middle = await client.request_block(uri, 4, szx=5)  # 512-byte blocks
            assert (middle.more, middle.szx, middle.offset) == (True, 5, 2048)
            assert middle.response.payload == PACKAGE[2048:2560]
            past = await client.request_block(uri, 10)
            assert past.response.code == "4.00"
            whole = await client.request("GET", uri)  # aiocoap's own reassembly still works
            assert whole.payload == PACKAGE
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_block_requests_over_a_lossy_link_are_retransmitted_until_answered() -> None:
    async def scenario() -> None:
        server = await CoapEndpoint.bind("127.0.0.1", 0, serve)
        link = await UdpLinkEmulator.start(("127.0.0.1", server.port), LOSSY, seed=3)
        client = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            uri = f"coap://127.0.0.1:{link.port}/package"
            blocks = [await client.request_block(uri, num, timeout=20) for num in range(3)]
            blocks += await asyncio.gather(
                *(client.request_block(uri, num, timeout=20) for num in range(3, 10))
            )
            assert b"".join(block.response.payload for block in blocks) == PACKAGE
            stats = client.block_stats
            assert stats.answered == 10 and stats.requests == 10 + stats.retransmissions
            assert link.stats.uplink.dropped + link.stats.downlink.dropped > 0
            assert stats.retransmissions > 0
            assert client.rto(uri) < 2.0  # answered in milliseconds: the timer came down from RFC 7252's
        finally:
            await client.close()
            link.close()
            await server.close()

    run(scenario)


def test_a_dtls_session_that_answers_nothing_is_given_up_and_the_next_request_handshakes_anew(
    monkeypatch,
) -> None:
    """A session gone one-way (the server hears the device, nothing comes back) fails a block request
    after ``SILENT_SESSION_S`` rather than its whole timeout; the next request opens a new session."""
    monkeypatch.setattr(coap, "SILENT_SESSION_S", 1.5)
    key = b"0123456789abcdef"
    heard: list[str] = []  # the remote each request came from: one per DTLS session

    async def counting(request: CoapRequest) -> CoapResponse:
        heard.append(request.remote)
        return await serve(request)

    async def scenario() -> None:
        server = await CoapEndpoint.bind_secure(
            "127.0.0.1", 0, counting, lambda identity: (key, identity) if identity == "dev" else None
        )
        link = await UdpLinkEmulator.start(("127.0.0.1", server.port), PROFILES["loopback"])
        client = await CoapEndpoint.connect_secure(f"coaps://127.0.0.1:{link.port}", "dev", key, serve)
        try:
            uri = f"coaps://127.0.0.1:{link.port}/package"
            assert (await client.request_block(uri, 0, timeout=20)).response.payload == PACKAGE[:1024]
            link.drop(downlink=lambda datagram: True)  # the server's answers no longer arrive
            started = time.monotonic()
            with pytest.raises(PeerUnreachable, match="answered nothing"):
                await client.request_block(uri, 1, timeout=20)
            assert time.monotonic() - started < 10  # not the request's 20 s
            assert len(heard) > 1 and len(set(heard)) == 1  # the server heard the device all along

            link.drop()
            block = await client.request_block(uri, 1, timeout=20)
            assert block.response.payload == PACKAGE[1024:2048]
            assert len(set(heard)) == 2  # from a new session
        finally:
            await client.close()
            link.close()
            await server.close()

    run(scenario)
