"""Several agents in one process against the fleet service, directly and over emulated Wi-Fi links."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tinymlaas.agent.fleet import spawn_fleet
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy import SigningKey
from tinymlaas.errors import InvalidInput
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import FleetService, list_devices
from tinymlaas.settings import Settings

BOARD = "pico"


@pytest.fixture
def context(tmp_path: Path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data"))


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 25))


async def eventually(check: Callable[[], bool], timeout: float = 8.0) -> None:
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(check):
            await asyncio.sleep(0.05)


def online(context: Context) -> dict[str, str | None]:
    """Board by endpoint, for the devices online now."""
    return {device["endpoint"]: device["board"] for device in list_devices(context) if device["online"]}


def test_a_spawned_fleet_registers_every_agent_and_deregisters_on_stop(
    context: Context, tmp_path: Path
) -> None:
    async def scenario() -> None:
        service = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        try:
            board = load_catalog().board(BOARD)
            fleet = await spawn_fleet(
                3, board, service.uri, tmp_path / "agents", SigningKey.generate().public_key_bytes()
            )
            try:
                assert list(fleet.agents) == ["pico-000", "pico-001", "pico-002"]
                assert fleet.links == {} and fleet.link_stats() == {}
                expected = dict.fromkeys(fleet.agents, BOARD)
                await eventually(lambda: online(context) == expected)
                assert all((tmp_path / "agents" / endpoint).is_dir() for endpoint in fleet.agents)
            finally:
                await fleet.stop()
            await eventually(lambda: online(context) == {} and len(list_devices(context)) == 3)
        finally:
            await service.stop()

    run(scenario)


def test_agents_behind_wifi_links_register_through_their_relays(context: Context, tmp_path: Path) -> None:
    async def scenario() -> None:
        service = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        try:
            board = load_catalog().board(BOARD)
            key = SigningKey.generate().public_key_bytes()
            fleet = await spawn_fleet(
                2, board, service.uri, tmp_path, key, prefix="wifi", link="wifi", seed=7
            )
            try:
                assert set(fleet.links) == {"wifi-000", "wifi-001"}
                assert all(agent.registered for agent in fleet.agents.values())
                await eventually(lambda: online(context) == {"wifi-000": BOARD, "wifi-001": BOARD})
                for stats in fleet.link_stats().values():
                    assert stats.uplink.delivered > 0 and stats.downlink.delivered > 0
            finally:
                await fleet.stop()
        finally:
            await service.stop()

    run(scenario)


def test_an_unknown_link_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    async def scenario() -> None:
        board = load_catalog().board(BOARD)
        with pytest.raises(InvalidInput, match="nb-iot"):
            await spawn_fleet(1, board, "coap://127.0.0.1:5683", tmp_path, b"\0" * 32, link="carrier-pigeon")

    run(scenario)
