from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.linkemu import PROFILES, LinkProfile, UdpLinkEmulator

PERFECT = replace(PROFILES["loopback"], name="test")


class _Collector(asyncio.DatagramProtocol):
    """A socket that records what arrives, with the monotonic time of arrival; echoes if asked."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.arrivals: list[tuple[float, bytes]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.changed = asyncio.Event()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.arrivals.append((time.monotonic(), data))
        self.changed.set()
        if self.echo:
            self.transport.sendto(data, addr)

    @property
    def payloads(self) -> list[bytes]:
        return [data for _, data in self.arrivals]

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.arrivals) < count:
                self.changed.clear()
                await self.changed.wait()


class _Net:
    """Opens the test's plain UDP sockets on 127.0.0.1 and closes them all on exit."""

    def __init__(self) -> None:
        self._opened: list[_Collector] = []

    async def __aenter__(self) -> _Net:
        return self

    async def __aexit__(self, *exc_info) -> None:
        for collector in self._opened:
            collector.transport.close()

    async def _open(self, echo: bool, **where) -> _Collector:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(lambda: _Collector(echo), **where)
        self._opened.append(protocol)
        return protocol

    async def server(self, echo: bool) -> tuple[_Collector, tuple[str, int]]:
        protocol = await self._open(echo, local_addr=("127.0.0.1", 0))
        return protocol, protocol.transport.get_extra_info("sockname")[:2]

    async def client(self, port: int) -> _Collector:
        return await self._open(False, remote_addr=("127.0.0.1", port))


async def _settle(relay: UdpLinkEmulator, sink: _Collector) -> None:
    """Wait until every datagram the relay decided to deliver upstream has reached the sink."""
    async with asyncio.timeout(10):
        while len(sink.arrivals) < relay.stats.uplink.delivered or _queued(relay):
            await asyncio.sleep(0.01)


def _queued(relay: UdpLinkEmulator) -> bool:
    up = relay.stats.uplink
    return up.received != up.dropped + up.delivered - up.duplicated


def test_profiles_are_named_and_valid():
    assert set(PROFILES) == {"ble", "wifi", "lte-m", "nb-iot", "loopback"}
    for name, profile in PROFILES.items():
        assert profile.name == name
    assert PROFILES["nb-iot"].latency_ms >= 1000 > PROFILES["lte-m"].latency_ms
    assert PROFILES["nb-iot"].bandwidth_bps < PROFILES["lte-m"].bandwidth_bps < PROFILES["wifi"].bandwidth_bps


@pytest.mark.parametrize(
    "changes",
    [{"latency_ms": -1}, {"jitter_ms": -1}, {"bandwidth_bps": 0}, {"loss": 1.5}, {"duplicate": -0.1}],
)
def test_profiles_reject_impossible_figures(changes):
    with pytest.raises(InvalidInput):
        replace(PERFECT, **changes)


def test_without_loss_everything_arrives_in_order_both_ways():
    async def scenario() -> None:
        async with _Net() as net:
            server, address = await net.server(echo=True)
            async with await UdpLinkEmulator.start(address, replace(PERFECT, jitter_ms=5), seed=1) as relay:
                client = await net.client(relay.port)
                sent = [f"msg-{i}".encode() for i in range(50)]
                for data in sent:
                    client.transport.sendto(data)
                await client.wait_for(len(sent))
                assert client.payloads == sent
                assert server.payloads == sent
                stats = relay.stats
                assert (stats.uplink.received, stats.uplink.delivered, stats.uplink.dropped) == (50, 50, 0)
                assert (stats.downlink.received, stats.downlink.delivered) == (50, 50)

    asyncio.run(scenario())


def _lossy_run(seed: int) -> tuple[list[bytes], int, int]:
    async def scenario() -> tuple[list[bytes], int, int]:
        async with _Net() as net:
            sink, address = await net.server(echo=False)
            async with await UdpLinkEmulator.start(address, replace(PERFECT, loss=0.5), seed=seed) as relay:
                client = await net.client(relay.port)
                # In bursts of 50: a few hundred datagrams at once overflow the relay's socket buffer.
                for i in range(400):
                    client.transport.sendto(i.to_bytes(2, "big"))
                    if i % 50 == 49:
                        async with asyncio.timeout(10):
                            while relay.stats.uplink.received <= i:
                                await asyncio.sleep(0.001)
                await _settle(relay, sink)
                up = relay.stats.uplink
                return sink.payloads, up.delivered, up.dropped

    return asyncio.run(scenario())


def test_loss_drops_about_half_and_the_counters_agree():
    arrived, delivered, dropped = _lossy_run(seed=7)
    # Binomial(400, 0.5) has a standard deviation of 10; 6 of them either way.
    assert 140 <= dropped <= 260
    assert delivered + dropped == 400
    assert len(arrived) == delivered
    assert arrived == sorted(arrived)


def test_the_same_seed_drops_the_same_datagrams():
    assert _lossy_run(seed=3)[0] == _lossy_run(seed=3)[0]
    assert _lossy_run(seed=3)[0] != _lossy_run(seed=4)[0]


def test_duplicate_one_doubles_every_datagram():
    async def scenario() -> None:
        async with _Net() as net:
            sink, address = await net.server(echo=False)
            async with await UdpLinkEmulator.start(address, replace(PERFECT, duplicate=1.0), seed=0) as relay:
                client = await net.client(relay.port)
                for i in range(20):
                    client.transport.sendto(bytes([i]))
                await sink.wait_for(40)
                assert sink.payloads == [bytes([i]) for i in range(20) for _ in range(2)]
                assert relay.stats.uplink.duplicated == 20
                assert relay.stats.uplink.delivered == 40

    asyncio.run(scenario())


def test_drop_rules_lose_what_they_pick_in_their_direction_until_replaced():
    async def scenario() -> None:
        async with _Net() as net:
            server, address = await net.server(echo=True)
            async with await UdpLinkEmulator.start(address, PERFECT, seed=0) as relay:
                client = await net.client(relay.port)
                # Requests starting with "x" never reach the server; echoes of "b" never come back.
                relay.drop(uplink=lambda data: data.startswith(b"x"), downlink=lambda data: data == b"b")
                for data in (b"a", b"x1", b"b", b"c"):
                    client.transport.sendto(data)
                await client.wait_for(2)
                await _settle(relay, server)
                assert server.payloads == [b"a", b"b", b"c"]
                assert client.payloads == [b"a", b"c"]
                assert (relay.stats.uplink.dropped, relay.stats.downlink.dropped) == (1, 1)

                relay.drop()  # no rule any more
                client.transport.sendto(b"x2")
                await client.wait_for(3)
                assert client.payloads[-1] == b"x2"

    asyncio.run(scenario())


def test_latency_delays_each_direction():
    async def scenario() -> None:
        async with _Net() as net:
            _, address = await net.server(echo=True)
            async with await UdpLinkEmulator.start(address, replace(PERFECT, latency_ms=50), seed=0) as relay:
                client = await net.client(relay.port)
                started = time.monotonic()
                client.transport.sendto(b"ping")
                await client.wait_for(1)
                round_trip = client.arrivals[0][0] - started
                assert 0.099 <= round_trip < 5.0

    asyncio.run(scenario())


def test_bandwidth_spreads_a_burst_over_its_serialization_time():
    async def scenario() -> None:
        async with _Net() as net:
            sink, address = await net.server(echo=False)
            profile = replace(PERFECT, bandwidth_bps=80_000)
            async with await UdpLinkEmulator.start(address, profile, seed=0) as relay:
                client = await net.client(relay.port)
                started = time.monotonic()
                for i in range(10):
                    client.transport.sendto(bytes([i]) * 1000)
                await sink.wait_for(10)
                # 10 kB at 80 kbit/s is one second of airtime.
                assert sink.arrivals[-1][0] - started >= 0.99
                assert sink.arrivals[0][0] - started >= 0.099

    asyncio.run(scenario())


def test_each_client_gets_its_own_replies():
    async def scenario() -> None:
        async with _Net() as net:
            _, address = await net.server(echo=True)
            async with await UdpLinkEmulator.start(address, PERFECT, seed=0) as relay:
                first, second = await net.client(relay.port), await net.client(relay.port)
                first.transport.sendto(b"one")
                second.transport.sendto(b"two")
                await first.wait_for(1)
                await second.wait_for(1)
                assert (first.payloads, second.payloads) == ([b"one"], [b"two"])

    asyncio.run(scenario())


def test_closing_discards_what_is_still_queued():
    async def scenario() -> None:
        async with _Net() as net:
            sink, address = await net.server(echo=False)
            relay = await UdpLinkEmulator.start(address, replace(PERFECT, latency_ms=200), seed=0)
            client = await net.client(relay.port)
            client.transport.sendto(b"late")
            async with asyncio.timeout(5):
                while relay.stats.uplink.received < 1:
                    await asyncio.sleep(0.01)
            relay.close()
            await asyncio.sleep(0.4)
            assert sink.arrivals == []
            assert relay.stats.uplink.delivered == 0

    asyncio.run(scenario())


def test_a_profile_is_a_frozen_value():
    with pytest.raises(AttributeError):
        PROFILES["ble"].loss = 0.0  # type: ignore[misc]
    assert isinstance(PROFILES["ble"], LinkProfile)
