"""Many emulated devices in one process, each optionally behind its own emulated radio link.

A campaign only shows its worth on a fleet: staged waves, health gates, stragglers on slow links. One
process with one event loop holds hundreds of ``Agent`` objects cheaply, where hundreds of processes
would not. Each agent keeps its own endpoint name (``<prefix>-<NNN>``) and its own state directory, so
slots and update progress stay per device, exactly as with separately started agents.

With a link profile every agent gets its own ``UdpLinkEmulator`` relay on 127.0.0.1, seeded ``seed + i``,
so registrations, reads and package downloads all cross the emulated link and losses differ per device
yet repeat from run to run. The server's Package URI names the server's own address, which the agent
would reach around its relay; behind a link, a Package URI on that address is fetched through the relay
instead, as a real device's one radio carries all of its traffic. Given several servers (to fail over
between), an agent behind a link gets a relay to each, and fetches a package through the relay to the
server it talks to now.

Starts (and stops) are bounded in number at any moment, so a large fleet does not flood the server with
registrations in the same instant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from tinymlaas.agent.client import DEFAULT_RATE_HZ, Agent, server_uris
from tinymlaas.agent.events import AgentEvent
from tinymlaas.agent.sensors import SensorSource
from tinymlaas.agent.uploader import Collection
from tinymlaas.catalog.board import Board
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import DeviceCredentials
from tinymlaas.lwm2m.linkemu import LinkProfile, LinkStats, UdpLinkEmulator, link_profile

__all__ = ["COAP_PORT", "MAX_CONCURRENT_STARTS", "Fleet", "FleetEventCallback", "spawn_fleet"]

COAP_PORT = 5683
COAPS_PORT = 5684
MAX_CONCURRENT_STARTS = 20  # agents binding their sockets (or de-registering) at the same time
# An agent's first request waits for its DTLS handshake (three round trips, more when a flight is lost)
# and its own round trip. Over NB-IoT (up to 2.4 s one way) that is well over the default timeout, and
# a Register that always timed out before its handshake completed started the handshake over, forever:
# 0 of 200 agents registered in 4 minutes. Each answer is awaited at least this many worst-case round
# trips of the agent's link.
HANDSHAKE_ROUND_TRIPS = 6

FleetEventCallback = Callable[[str, AgentEvent], Awaitable[None] | None]


@dataclass
class Fleet:
    """The running agents and their relays, both by endpoint name in spawn order."""

    agents: dict[str, Agent] = field(default_factory=dict)
    # Each agent's relay to its first server; ``relays`` has one per server, in the servers' order.
    links: dict[str, UdpLinkEmulator] = field(default_factory=dict)
    relays: dict[str, list[UdpLinkEmulator]] = field(default_factory=dict)

    async def stop(self) -> None:
        """De-register and stop every agent, then close the relays their de-registrations went through."""
        gate = asyncio.Semaphore(MAX_CONCURRENT_STARTS)

        async def stop_one(agent: Agent) -> None:
            async with gate:
                await agent.stop()

        try:
            await asyncio.gather(*(stop_one(agent) for agent in self.agents.values()))
        finally:
            for relays in self.relays.values():
                for relay in relays:
                    relay.close()

    def link_stats(self) -> dict[str, LinkStats]:
        """Each relay's counters so far, by endpoint; empty without a link profile."""
        return {endpoint: relay.stats for endpoint, relay in self.links.items()}


def _default_port(scheme: str) -> int:
    return COAPS_PORT if scheme == "coaps" else COAP_PORT


def _upstream(server_uri: str) -> tuple[str, int]:
    parts = urlsplit(server_uri)
    if parts.scheme not in ("coap", "coaps") or not parts.hostname:
        raise InvalidInput(f"The server URI {server_uri!r} is not coap[s]://host[:port]")
    return parts.hostname, parts.port or _default_port(parts.scheme)


def _agent_behind_link(upstreams: tuple[tuple[str, int], ...]) -> type[Agent]:
    """An ``Agent`` whose downloads from any of the servers at ``upstreams`` go through its relay to the
    server it talks to now (``server_uri``)."""

    class AgentBehindLink(Agent):
        servers: ClassVar[tuple[tuple[str, int], ...]] = upstreams

        def _package_uri(self, uri: str) -> str:
            parts = urlsplit(uri)
            if (parts.hostname, parts.port or _default_port(parts.scheme)) in self.servers:
                return parts._replace(netloc=urlsplit(self.server_uri).netloc).geturl()
            return super()._package_uri(uri)

    return AgentBehindLink


async def spawn_fleet(
    count: int,
    board: Board,
    server_uri: str | Sequence[str],
    state_dir: Path,
    public_key: bytes,
    *,
    prefix: str | None = None,
    link: str | LinkProfile | None = None,
    seed: int = 0,
    sensor_factory: Callable[[int], SensorSource | None] | None = None,
    rate_hz: float = DEFAULT_RATE_HZ,
    lifetime: int = 60,
    on_event: FleetEventCallback | None = None,
    collect: Collection | None = None,
    credentials: Callable[[str], DeviceCredentials] | None = None,
    hop_port_base: int = 0,
    request_timeout: float = 10.0,
    first_index: int = 0,
) -> Fleet:
    """Start ``count`` agents for ``board`` and return once each has had its first registration attempt.

    ``sensor_factory(i)`` gives agent ``i`` its input (none when absent); ``on_event`` hears every agent's
    events with the endpoint name first. ``link`` is a profile name or a profile of one's own (see
    ``link_profile``). ``server_uri`` is one server or several every agent fails over between, in
    order; ``request_timeout`` is how long an agent waits for each answer, at least
    ``HANDSHAKE_ROUND_TRIPS`` worst-case round trips of ``link``. With ``collect`` every
    agent uploads its windows, through an outbox of its own.
    A ``coaps://`` server needs ``credentials(endpoint)``: the provisioned key of each agent.
    ``hop_port_base`` gives agent ``i`` the pipeline hop port ``hop_port_base + i`` (0: each a free one),
    so upstream nodes can be told where a relay listens before it starts.
    ``first_index`` numbers the agents from there on (names, seeds, hop ports), for a fleet split over
    several processes, each running its own range.
    If any agent fails to start, the ones started are stopped again.
    """
    if count < 1:
        raise InvalidInput(f"A fleet has at least 1 agent, got {count}")
    if first_index < 0:
        raise InvalidInput(f"Agents are numbered from 0 on, not from {first_index}")
    last = first_index + count - 1
    if hop_port_base and not 0 < hop_port_base <= 65535 - last:
        raise InvalidInput(
            f"Hop ports {hop_port_base + first_index}..{hop_port_base + last} are not all UDP ports"
        )
    profile = link_profile(link) if isinstance(link, str) else link
    servers = server_uris(server_uri)
    upstreams = tuple(_upstream(uri) for uri in servers)
    agent_class = Agent if profile is None else _agent_behind_link(upstreams)
    if profile is not None:
        request_timeout = max(request_timeout, HANDSHAKE_ROUND_TRIPS * profile.worst_round_trip_s)
    gate = asyncio.Semaphore(MAX_CONCURRENT_STARTS)

    async def start_one(index: int) -> tuple[Agent, list[UdpLinkEmulator]]:
        endpoint = f"{prefix or board.id}-{index:03d}"

        def forward(event: AgentEvent) -> Awaitable[None] | None:
            return on_event(endpoint, event) if on_event is not None else None

        async with gate:
            relays: list[UdpLinkEmulator] = []
            uris = list(servers)
            try:
                if profile is not None:
                    for upstream in upstreams:
                        relays.append(await UdpLinkEmulator.start(upstream, profile, seed=seed + index))
                    uris = [
                        f"{urlsplit(uri).scheme}://127.0.0.1:{relay.port}"
                        for uri, relay in zip(servers, relays, strict=True)
                    ]
                agent = await agent_class.start(
                    board,
                    endpoint,
                    uris,
                    Path(state_dir) / endpoint,
                    public_key,
                    lifetime=lifetime,
                    sensor=sensor_factory(index) if sensor_factory is not None else None,
                    rate_hz=rate_hz,
                    on_event=forward,
                    collect=collect,
                    credentials=credentials(endpoint) if credentials is not None else None,
                    hop_port=hop_port_base + index if hop_port_base else 0,
                    request_timeout=request_timeout,
                    wait=False,
                )
            except BaseException:
                for relay in relays:
                    relay.close()
                raise
        # Outside the gate: over a lossy link a first attempt can take the whole request timeout, and
        # devices that power up together register together.
        await agent.first_attempt()
        return agent, relays

    indices = range(first_index, first_index + count)
    results = await asyncio.gather(*(start_one(index) for index in indices), return_exceptions=True)
    fleet = Fleet()
    for result in results:
        if isinstance(result, BaseException):
            continue
        agent, relays = result
        fleet.agents[agent.endpoint] = agent
        if relays:
            fleet.links[agent.endpoint] = relays[0]
            fleet.relays[agent.endpoint] = relays
    failure = next((result for result in results if isinstance(result, BaseException)), None)
    if failure is not None:
        await fleet.stop()
        raise failure
    return fleet
