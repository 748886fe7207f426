"""Block-wise uploads (Block1) are bounded per transfer, per peer and in time before anything else runs."""

from __future__ import annotations

import asyncio
import os

import aiocoap
import pytest
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption

from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse, coap

SZX = 6  # 1 KiB blocks


def run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


async def _echo_size(request: CoapRequest) -> CoapResponse:
    return CoapResponse("2.04", str(len(request.payload)).encode())


async def _block(
    client: aiocoap.Context, uri: str, num: int, more: bool, payload: bytes, size1: int | None = None
):
    message = aiocoap.Message(code=Code.POST, uri=uri, payload=payload)
    message.opt.block1 = BlockOption.BlockwiseTuple(num, more, SZX)
    if size1 is not None:
        message.opt.size1 = size1
    return await client.request(message, handle_blockwise=False).response


def test_a_body_within_the_limit_is_reassembled_and_one_over_it_is_refused_with_4_13() -> None:
    async def scenario() -> None:
        server = await CoapEndpoint.bind("127.0.0.1", 0, _echo_size)
        client = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            fits = await client.request("POST", f"{server.uri}/dc/x", os.urandom(200_000))
            assert (fits.code, fits.payload) == ("2.04", b"200000")
            refused = await client.request(
                "POST", f"{server.uri}/dc/x", os.urandom(coap.MAX_BODY_BYTES + 1024)
            )
            assert refused.code == "4.13", refused
            assert server._dispatcher._block1.open_transfers() == 0
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_a_declared_size_over_the_limit_is_refused_at_the_first_block() -> None:
    async def scenario() -> None:
        server = await CoapEndpoint.bind("127.0.0.1", 0, _echo_size)
        client = await aiocoap.Context.create_client_context()
        try:
            answer = await _block(client, f"{server.uri}/dc/x", 0, True, b"a" * 1024, size1=6_000_000)
            assert answer.code == Code.REQUEST_ENTITY_TOO_LARGE
            assert server._dispatcher._block1.open_transfers() == 0
        finally:
            await client.shutdown()
            await server.close()

    run(scenario)


def test_one_peer_holds_few_half_sent_transfers_and_silent_ones_are_freed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(coap, "BLOCK1_TIMEOUT_S", 0.5)

    async def scenario() -> None:
        server = await CoapEndpoint.bind("127.0.0.1", 0, _echo_size)
        client = await aiocoap.Context.create_client_context()
        try:
            codes = [
                (await _block(client, f"{server.uri}/dc/{n}", 0, True, b"a" * 1024)).code
                for n in range(coap.MAX_TRANSFERS_PER_PEER + 1)
            ]
            assert codes[:-1] == [Code.CONTINUE] * coap.MAX_TRANSFERS_PER_PEER
            assert codes[-1] == Code.TOO_MANY_REQUESTS
            assert server._dispatcher._block1.open_transfers() == coap.MAX_TRANSFERS_PER_PEER
            await asyncio.sleep(0.7)
            # The next block of anyone sweeps the silent transfers away, and this one may start.
            assert (await _block(client, f"{server.uri}/dc/new", 0, True, b"a" * 1024)).code == Code.CONTINUE
            assert server._dispatcher._block1.open_transfers() == 1
            gone = await _block(client, f"{server.uri}/dc/0", 1, False, b"b" * 10)
            assert gone.code == Code.REQUEST_ENTITY_INCOMPLETE
        finally:
            await client.shutdown()
            await server.close()

    run(scenario)
