"""The transfer prediction against real CoAP through the link emulator, and its model's shape."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import replace

import pytest

from tinymlaas.lwm2m.linkemu import PROFILES, UdpLinkEmulator
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse
from tinymlaas.split.transfer import (
    BLOCK_BYTES,
    DTLS_RECORD_OVERHEAD,
    coap_request_overhead,
    predict_transfer,
)

CBOR = 60
PATH = "hop/pipe/stage"
BLE = replace(PROFILES["ble"], name="ble (no loss)", loss=0.0)
# (payload bytes, runs): the small ones vary most with jitter, so take more of them.
PAYLOADS = ((200, 5), (5_000, 3), (40_000, 3))


def test_payloads_are_sent_in_blocks_of_what_aiocoap_uses() -> None:
    from aiocoap.numbers.constants import MAX_REGULAR_BLOCK_SIZE_EXP, TransportTuning

    assert BLOCK_BYTES == 2 ** (MAX_REGULAR_BLOCK_SIZE_EXP + 4)
    assert TransportTuning.DEFAULT_BLOCK_SIZE_EXP == MAX_REGULAR_BLOCK_SIZE_EXP
    assert [predict_transfer(n, BLE).blocks for n in (0, 1, 1024, 1025, 40_000)] == [1, 1, 1, 2, 40]


def test_retransmission_figures_are_aiocoaps() -> None:
    from aiocoap.numbers.constants import TransportTuning

    from tinymlaas.split import transfer

    tuning = TransportTuning()
    assert transfer.ACK_TIMEOUT_S == tuning.ACK_TIMEOUT
    assert transfer.ACK_RANDOM_FACTOR == tuning.ACK_RANDOM_FACTOR
    assert transfer.MAX_RETRANSMIT == tuning.MAX_RETRANSMIT


def test_the_coap_overhead_is_what_aiocoap_encodes() -> None:
    import aiocoap
    from aiocoap.numbers.codes import Code

    for path in (PATH, "hop/a-pipeline-name-of-20/stage-name-of-sixteen"):
        message = aiocoap.Message(
            code=Code.POST, uri=f"coap://127.0.0.1/{path}", payload=b"x" * 100, content_format=CBOR
        )
        message.mid, message.token, message.mtype = 1, b"\x12\x34", aiocoap.CON
        message.opt.uri_host = None
        assert len(message.encode()) - 100 == coap_request_overhead(path)


def test_loopback_costs_nothing_and_loss_costs_retransmissions() -> None:
    assert predict_transfer(40_000, PROFILES["loopback"]).seconds < 0.001
    clean = predict_transfer(5_000, BLE)
    lossy = predict_transfer(5_000, replace(BLE, loss=0.1))
    assert clean.datagrams == 10  # five blocks, each a request and a response
    assert lossy.datagrams > clean.datagrams
    # Each block fails one attempt in five (1 - 0.9²) and waits at least 2.5 s then.
    assert lossy.seconds > clean.seconds + 5 * 0.19 * 2.5
    assert predict_transfer(5_000, BLE, security_overhead=0).seconds < clean.seconds
    basis = predict_transfer(40_000, PROFILES["ble"]).basis
    assert basis.startswith("predicted: 40 Block1 exchanges of ≤1024 B over ble (200 kbit/s, 30+7.5 ms")
    assert "1 % loss each way" in basis and f"{DTLS_RECORD_OVERHEAD} B DTLS" in basis
    with pytest.raises(ValueError):
        predict_transfer(-1, BLE)


async def _measure() -> dict[int, tuple[list[float], int]]:
    received: list[int] = []

    async def hop(request: CoapRequest) -> CoapResponse:
        received.append(len(request.payload))
        return CoapResponse("2.04")

    server = await CoapEndpoint.bind("127.0.0.1", 0, hop)
    client = await CoapEndpoint.bind("127.0.0.1", 0)
    relay = await UdpLinkEmulator.start(("127.0.0.1", server.port), BLE, seed=1)
    measured: dict[int, tuple[list[float], int]] = {}
    try:
        for size, runs in PAYLOADS:
            before = relay.stats
            times = []
            for _ in range(runs):
                payload = os.urandom(size)
                start = time.perf_counter()
                answer = await client.request(
                    "POST", f"coap://127.0.0.1:{relay.port}/{PATH}", payload, content_format=CBOR
                )
                times.append(time.perf_counter() - start)
                assert answer.code == "2.04" and received[-1] == size
            after = relay.stats
            datagrams = (
                after.uplink.delivered - before.uplink.delivered + after.downlink.delivered
            ) - before.downlink.delivered
            measured[size] = (times, datagrams // runs)
    finally:
        relay.close()
        await client.close()
        await server.close()
    return measured


def test_prediction_is_within_20_percent_of_the_emulated_ble_link() -> None:
    measured = asyncio.run(asyncio.wait_for(_measure(), 60))
    rows = []
    for size, (times, datagrams) in measured.items():
        predicted = predict_transfer(
            size, BLE, request_overhead=coap_request_overhead(PATH), security_overhead=0
        )
        median = statistics.median(times)
        rows.append(f"{size} B: predicted {predicted.seconds:.3f} s, measured {median:.3f} s")
        assert datagrams == predicted.datagrams
        assert median == pytest.approx(predicted.seconds, rel=0.2), "; ".join(rows)
    print("\n".join(rows))


def test_the_result_waits_for_the_last_block_not_for_its_answer() -> None:
    ble = PROFILES["ble"]
    estimate = predict_transfer(5_000, ble)
    one_way_s = (ble.latency_ms + ble.jitter_ms / 2) / 1000
    assert estimate.seconds - estimate.arrival_seconds == pytest.approx(
        one_way_s + (4 + 2 + 29 + 3) * 8 / ble.bandwidth_bps  # header, token, DTLS, Block1
    )
    assert predict_transfer(0, PROFILES["loopback"]).arrival_seconds == pytest.approx(0, abs=1e-6)
