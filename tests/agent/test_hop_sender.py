"""The hop sender on its own, against a real DTLS CoAP endpoint behind the link emulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from tinymlaas.agent.hop import HopOutbox, HopSender, HopTarget
from tinymlaas.lwm2m.linkemu import PROFILES
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse
from tinymlaas.split.transfer import BLOCK_BYTES
from tinymlaas.split.wire import HopMessage, decode, encode

KEY = bytes(range(16))


def test_a_message_of_many_blocks_on_a_slow_link_is_delivered_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """40 KB over the lossless BLE profile takes about 4 s, far more than one request timeout of 1 s:
    each block is its own exchange and gets its own timeout, so the message arrives, and only once."""
    received: list[HopMessage] = []

    async def handler(request: CoapRequest) -> CoapResponse:
        received.append(decode(request.payload))
        return CoapResponse("2.04")

    async def scenario() -> None:
        server = await CoapEndpoint.bind_secure(
            "127.0.0.1", 0, handler, lambda identity: (KEY, identity) if identity == "src" else None
        )
        outbox = HopOutbox(tmp_path / "outbox")
        delivered: list[float] = []
        failures: list[None] = []
        link = replace(PROFILES["ble"], loss=0.0, jitter_ms=0.0)
        sender = HopSender(
            HopTarget(f"coaps://127.0.0.1:{server.port}", "src", KEY, link),
            outbox,
            timeout=1.0,
            on_delivered=delivered.append,
            on_failed=lambda: failures.append(None),
            on_event=lambda kind, message: asyncio.sleep(0),
        )
        tensor = bytes(40_000)
        message = HopMessage(
            pipeline="p", stage="s", seq=1, origin="src", created_at_ms=0.0,
            tensor=tensor, shape=(1, len(tensor)), scale=0.1, zero_point=0,
        )  # fmt: skip
        await outbox.put("src:1", encode(message), 1.0)
        task = asyncio.create_task(sender.run())
        try:
            async with asyncio.timeout(60):
                while not delivered:
                    await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.close()
        assert len(encode(message)) > 39 * BLOCK_BYTES
        assert delivered[0] > 1000.0, "the transfer took longer than one request timeout"
        assert failures == [] and len(received) == 1 and received[0].tensor == tensor
        assert outbox.waiting == 0

    asyncio.run(scenario())
