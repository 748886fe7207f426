"""Radio link emulation for emulated devices: a UDP relay that delays, throttles, drops and duplicates.

An emulated agent on the same host as the server sees a perfect link, which hides what matters on
a real fleet: CoAP retransmissions, block-wise transfers that take minutes over NB-IoT, duplicate
requests. ``UdpLinkEmulator`` sits between the agent and the server on 127.0.0.1 and gives the path
a named ``LinkProfile``; it knows nothing of CoAP, so it works for any UDP protocol.

The model, per direction:

- Datagrams are serialized one after another at ``bandwidth_bps`` (time = payload bytes * 8 /
  bandwidth; UDP/IP headers are not counted), so a burst queues up as it would at a radio.
- After serialization each datagram travels ``latency_ms`` plus a uniform 0..``jitter_ms`` extra.
  Latency is therefore a floor. Delivery stays in order, as cellular and BLE link layers deliver it;
  jitter shows up as delay variation, never as reordering.
- A datagram is lost with probability ``loss`` (after using its airtime) and, if not lost, arrives
  twice with probability ``duplicate``.
- A rule set with ``drop`` loses every datagram it picks, as a firewall or a dead radio direction
  would: a lost answer, a request that never arrives, an outage of one direction for a while. The
  rule sees the datagram's bytes and picks by them; the relay itself still knows nothing of CoAP.

One relay stands for one device's link: all clients of a relay share its queues, its random
generator and its statistics. Each client address still gets its own socket toward the server, so
replies reach the right client if several share a relay. Randomness comes from ``random.Random``
seeded per direction, so a given seed and a given order of datagrams give the same losses.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Self, cast

from tinymlaas.errors import InvalidInput

__all__ = [
    "PROFILES",
    "DirectionStats",
    "DropRule",
    "LinkProfile",
    "LinkStats",
    "UdpLinkEmulator",
    "link_profile",
]

Address = tuple[str, int]
DropRule = Callable[[bytes], bool]  # True: the datagram is lost


@dataclass(frozen=True)
class LinkProfile:
    """One kind of link; delays in milliseconds and one way, probabilities per datagram."""

    name: str
    latency_ms: float
    jitter_ms: float
    bandwidth_bps: int
    loss: float
    duplicate: float

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise InvalidInput(f"Link {self.name!r}: latency and jitter must be at least 0 ms")
        if self.bandwidth_bps <= 0:
            raise InvalidInput(f"Link {self.name!r}: bandwidth must be above 0 bit/s")
        if not (0.0 <= self.loss <= 1.0 and 0.0 <= self.duplicate <= 1.0):
            raise InvalidInput(f"Link {self.name!r}: loss and duplicate are probabilities within 0..1")

    @property
    def worst_round_trip_s(self) -> float:
        """There and back at the most latency and jitter, a small datagram's airtime aside."""
        return 2 * (self.latency_ms + self.jitter_ms) / 1000


# Typical figures, not measurements of any one network; latency is one way. Sources:
# - BLE: Bluetooth Core Specification 5.x (connection interval 7.5 ms to 4 s) and Gomez, Oller,
#   Paradells, "Overview and Evaluation of Bluetooth Low Energy", Sensors 12(9), 2012 (at most about
#   237 kbit/s of application throughput); a 30 ms interval is a common choice for sensors.
# - Wi-Fi: 802.11n on a home or office WLAN, a few ms one way; about 20 Mbit/s is what an ESP32-class
#   MCU sustains (Espressif's published iperf figures).
# - LTE-M: 3GPP Release 13 Cat-M1 as summarised by the GSMA "LTE-M Deployment Guide": 10-15 ms
#   latency, about 300-375 kbit/s in the half-duplex mode most modules use.
# - NB-IoT: 3GPP Release 13 Cat-NB1 and the GSMA "NB-IoT Deployment Guide": 1.6 s to 10 s latency,
#   about 26 kbit/s down and up to 60 kbit/s up; the profile takes the best case latency and the
#   downlink rate, since packages flow down.
# - loopback: no emulation at all, for comparison runs.
PROFILES: Mapping[str, LinkProfile] = MappingProxyType(
    {
        "ble": LinkProfile(
            "ble", latency_ms=30, jitter_ms=15, bandwidth_bps=200_000, loss=0.01, duplicate=0.0
        ),
        "wifi": LinkProfile(
            "wifi", latency_ms=3, jitter_ms=2, bandwidth_bps=20_000_000, loss=0.001, duplicate=0.0
        ),
        "lte-m": LinkProfile(
            "lte-m", latency_ms=15, jitter_ms=10, bandwidth_bps=300_000, loss=0.01, duplicate=0.001
        ),
        "nb-iot": LinkProfile(
            "nb-iot", latency_ms=1600, jitter_ms=800, bandwidth_bps=26_000, loss=0.01, duplicate=0.001
        ),
        "loopback": LinkProfile(
            "loopback", latency_ms=0, jitter_ms=0, bandwidth_bps=10_000_000_000, loss=0.0, duplicate=0.0
        ),
    }
)


def link_profile(
    name: str | None, *, loss: float | None = None, duplicate: float | None = None
) -> LinkProfile | None:
    """The named profile, with its loss or duplicate probability replaced where one is given.

    Named losses are typical figures; a run that asks what a given loss alone costs needs its own, and
    without a name the figures apply to ``loopback`` so no delay or throttling mixes in. None when
    neither a name nor a figure is given: no emulation at all.
    """
    if name is None and loss is None and duplicate is None:
        return None
    base = PROFILES.get(name or "loopback")
    if base is None:
        raise InvalidInput(f"Unknown link {name!r}; known links: {', '.join(PROFILES)}")
    changes: dict[str, float] = {}
    for figure, value in (("loss", loss), ("duplicate", duplicate)):
        if value is None:
            continue
        if not 0.0 <= value <= 1.0:
            raise InvalidInput(f"A link's {figure} is a probability within 0..1, got {value}")
        changes[figure] = value
    if not changes:
        return base
    label = ", ".join(f"{figure} {value:g}" for figure, value in changes.items())
    return replace(base, name=f"{base.name} ({label})", **changes)


@dataclass(frozen=True)
class DirectionStats:
    """Datagrams that entered one direction of the link, and what became of them."""

    received: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0


@dataclass(frozen=True)
class LinkStats:
    """Uplink is client to server, downlink server to client; ``delivered`` counts duplicates too."""

    uplink: DirectionStats
    downlink: DirectionStats


class _Direction:
    """The queue and dice of one direction.

    Datagrams wait in one FIFO with their arrival times and a single timer drains it: the loop's
    timer heap does not keep the order of timers due at the same instant, a FIFO does.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, profile: LinkProfile, rng: random.Random) -> None:
        self._loop = loop
        self._profile = profile
        self._rng = rng
        self._link_free_at = 0.0  # loop time at which the serializer finishes its backlog
        # (arrival loop time, datagram, copies, where to), arrival times never decreasing
        self._queue: deque[tuple[float, bytes, int, Callable[[bytes], None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.rule: DropRule | None = None
        self.received = 0
        self.delivered = 0
        self.dropped = 0
        self.duplicated = 0

    def push(self, data: bytes, deliver: Callable[[bytes], None]) -> None:
        profile, rng = self._profile, self._rng
        # Draw all three numbers for every datagram so one outcome never shifts the others' sequence.
        lost = rng.random() < profile.loss
        if self.rule is not None and self.rule(data):
            lost = True
        doubled = rng.random() < profile.duplicate
        extra_ms = rng.uniform(0.0, profile.jitter_ms)
        self.received += 1
        copies = 2 if doubled and not lost else 1
        airtime = copies * len(data) * 8 / profile.bandwidth_bps
        self._link_free_at = max(self._loop.time(), self._link_free_at) + airtime
        if lost:
            self.dropped += 1
            return
        if doubled:
            self.duplicated += 1
        arrival = self._link_free_at + (profile.latency_ms + extra_ms) / 1000
        if self._queue:
            arrival = max(arrival, self._queue[-1][0])
        self._queue.append((arrival, data, copies, deliver))
        if self._timer is None:
            self._timer = self._loop.call_at(arrival, self._drain)

    def _drain(self) -> None:
        self._timer = None
        now = self._loop.time()
        while self._queue and self._queue[0][0] <= now:
            _, data, copies, deliver = self._queue.popleft()
            for _ in range(copies):
                self.delivered += 1
                deliver(data)
        if self._queue:
            self._timer = self._loop.call_at(self._queue[0][0], self._drain)

    def stats(self) -> DirectionStats:
        return DirectionStats(self.received, self.delivered, self.dropped, self.duplicated)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()


class _ClientSide(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpLinkEmulator) -> None:
        self._relay = relay

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._relay._from_client(data, addr)


class _ServerSide(asyncio.DatagramProtocol):
    """The relay's socket toward the server for one client; replies on it belong to that client."""

    def __init__(self, relay: UdpLinkEmulator, client: Address) -> None:
        self._relay = relay
        self._client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: list[bytes] = []  # uplink datagrams due before the socket was open

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport is not a DatagramTransport subclass, though it acts as one.
        self.transport = cast(asyncio.DatagramTransport, transport)
        for data in self.waiting:
            self.transport.sendto(data)
        self.waiting.clear()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._relay._downlink.push(data, lambda payload: self._relay._to_client(payload, self._client))

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self.waiting.append(data)
        else:
            self.transport.sendto(data)


class UdpLinkEmulator:
    """A UDP relay on 127.0.0.1 that gives the path to ``upstream`` the behaviour of a ``LinkProfile``.

    Point the client at ``port`` instead of the server's port. Use ``start`` to create one.
    """

    def __init__(self, upstream: Address, profile: LinkProfile, seed: int) -> None:
        self._loop = asyncio.get_running_loop()
        self.upstream = upstream
        self.profile = profile
        self._uplink = _Direction(self._loop, profile, random.Random(f"{seed}/uplink"))
        self._downlink = _Direction(self._loop, profile, random.Random(f"{seed}/downlink"))
        self._listener: asyncio.DatagramTransport | None = None
        self._upstreams: dict[Address, _ServerSide] = {}
        self._opening: set[asyncio.Task[None]] = set()
        self._closed = False

    @classmethod
    async def start(
        cls, upstream: Address, profile: LinkProfile, seed: int = 0, *, host: str = "127.0.0.1", port: int = 0
    ) -> Self:
        """Listen on ``host:port`` (0 picks a free port) and relay to ``upstream``."""
        relay = cls(upstream, profile, seed)
        transport, _ = await relay._loop.create_datagram_endpoint(
            lambda: _ClientSide(relay), local_addr=(host, port)
        )
        relay._listener = transport
        return relay

    @property
    def port(self) -> int:
        """The port clients send to."""
        if self._listener is None:
            raise RuntimeError("The link emulator is not started")
        return int(self._listener.get_extra_info("sockname")[1])

    @property
    def stats(self) -> LinkStats:
        """A snapshot of the counters so far."""
        return LinkStats(self._uplink.stats(), self._downlink.stats())

    def drop(self, *, uplink: DropRule | None = None, downlink: DropRule | None = None) -> None:
        """From now on lose the datagrams each rule picks, client to server (``uplink``) and server to
        client (``downlink``); a datagram a rule picks still takes its airtime and counts as dropped.
        Each call replaces both rules, and None is no rule: ``drop()`` ends every rule."""
        self._uplink.rule = uplink
        self._downlink.rule = downlink

    def _from_client(self, data: bytes, client: Address) -> None:
        route = self._upstreams.get(client)
        if route is None:
            route = self._upstreams[client] = _ServerSide(self, client)
            task = self._loop.create_task(self._open(route))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)
        self._uplink.push(data, route.send)

    async def _open(self, route: _ServerSide) -> None:
        await self._loop.create_datagram_endpoint(lambda: route, remote_addr=self.upstream)

    def _to_client(self, data: bytes, client: Address) -> None:
        if self._listener is not None and not self._closed:
            self._listener.sendto(data, client)

    def close(self) -> None:
        """Stop relaying; datagrams still queued are discarded."""
        self._closed = True
        self._uplink.close()
        self._downlink.close()
        for task in self._opening:
            task.cancel()
        for upstream in self._upstreams.values():
            if upstream.transport is not None:
                upstream.transport.close()
        if self._listener is not None:
            self._listener.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
