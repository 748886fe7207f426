"""Several agents in one process against the fleet service, directly and over emulated links."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tinymlaas.agent.fleet import spawn_fleet
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy import SigningKey
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import DeviceCredentials
from tinymlaas.lwm2m.linkemu import PROFILES, link_profile
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import list_devices
from tinymlaas.services.provisioning import provision_device
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


def provisioner(context: Context) -> Callable[[str], DeviceCredentials]:
    """Each agent's key, made as an operator would before its first start."""
    return lambda endpoint: provision_device(context, endpoint, BOARD)


def online(context: Context) -> dict[str, str | None]:
    """Board by endpoint, for the devices online now."""
    return {device.endpoint: device.board for device in list_devices(context) if device.online}


def test_a_spawned_fleet_registers_every_agent_and_deregisters_on_stop(
    context: Context, tmp_path: Path
) -> None:
    async def scenario() -> None:
        service = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        try:
            board = load_catalog().board(BOARD)
            fleet = await spawn_fleet(
                3,
                board,
                service.uri,
                tmp_path / "agents",
                SigningKey.generate().public_key_bytes(),
                credentials=provisioner(context),
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
                2,
                board,
                service.uri,
                tmp_path,
                key,
                prefix="wifi",
                link="wifi",
                seed=7,
                credentials=provisioner(context),
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


def test_agents_on_a_link_slower_than_their_timeout_wait_for_the_handshake_and_register(
    context: Context, tmp_path: Path
) -> None:
    """0.7 s each way makes a DTLS handshake and a Register about 6 s, three times the 2 s asked for:
    the agents wait six worst-case round trips of their link instead (8.4 s), else every Register would
    time out before its handshake completed and start it over."""
    slow = replace(PROFILES["loopback"], name="slow", latency_ms=700)

    async def scenario() -> None:
        service = await FleetService.start(context, "127.0.0.1", 0, request_timeout=5)
        try:
            board = load_catalog().board(BOARD)
            fleet = await spawn_fleet(
                2,
                board,
                service.uri,
                tmp_path,
                SigningKey.generate().public_key_bytes(),
                prefix="slow",
                link=slow,
                request_timeout=2.0,
                credentials=provisioner(context),
            )
            try:
                assert all(agent.registered for agent in fleet.agents.values())
                await eventually(lambda: online(context) == {"slow-000": BOARD, "slow-001": BOARD})
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


def test_a_loss_of_ones_own_on_loopback_drops_datagrams_yet_the_agent_registers(
    context: Context, tmp_path: Path
) -> None:
    async def scenario() -> None:
        service = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        try:
            board = load_catalog().board(BOARD)
            lossy = link_profile(None, loss=0.1)
            assert lossy is not None and lossy.name == "loopback (loss 0.1)"
            key = SigningKey.generate().public_key_bytes()
            # Seed 101 loses the first uplink datagram and none of the next few: the registration is
            # retransmitted once, so the test does not wait out a chain of CoAP back-offs.
            fleet = await spawn_fleet(
                1,
                board,
                service.uri,
                tmp_path,
                key,
                prefix="lossy",
                link=lossy,
                seed=101,
                credentials=provisioner(context),
            )
            try:
                await eventually(lambda: online(context) == {"lossy-000": BOARD}, timeout=15)
                stats = fleet.link_stats()["lossy-000"]
                assert stats.uplink.dropped >= 1 and stats.uplink.delivered >= 1
                assert fleet.links["lossy-000"].profile.loss == 0.1
            finally:
                await fleet.stop()
        finally:
            await service.stop()

    run(scenario)


def test_a_package_on_the_servers_address_is_downloaded_through_the_agents_relay(
    context: Context, tmp_path: Path
) -> None:
    async def scenario() -> None:
        service = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        try:
            board = load_catalog().board(BOARD)
            key = SigningKey.generate().public_key_bytes()
            fleet = await spawn_fleet(
                1,
                board,
                service.uri,
                tmp_path,
                key,
                prefix="ota",
                link="loopback",
                credentials=provisioner(context),
            )
            try:
                await eventually(lambda: online(context) == {"ota-000": BOARD})
                relay = fleet.links["ota-000"]
                before = relay.stats.downlink.delivered
                # 32 blocks of 1 KiB that no key signed: the download runs, the check then fails.
                uri = service.server.uri + service.server.publish(
                    "blob", os.urandom(32 * 1024), endpoints=["ota-000"]
                )
                await service.server.devices.write("ota-000", "/9/0/3", uri)
                await eventually(lambda: relay.stats.downlink.delivered - before >= 32)
            finally:
                await fleet.stop()
        finally:
            await service.stop()

    run(scenario)


def test_loss_and_duplicate_replace_a_named_profiles_figures_only() -> None:
    lte = link_profile("lte-m", duplicate=0.05)
    assert lte is not None and lte.name == "lte-m (duplicate 0.05)"
    assert (lte.latency_ms, lte.loss, lte.duplicate) == (15, 0.01, 0.05)
    assert link_profile(None) is None
    for bad in ({"loss": 1.5}, {"loss": -0.1}, {"duplicate": float("nan")}):
        with pytest.raises(InvalidInput, match=r"probability within 0\.\.1"):
            link_profile("wifi", **bad)
    with pytest.raises(InvalidInput, match="known links"):
        link_profile("carrier-pigeon", loss=0.1)


def test_fleet_spawn_refuses_a_loss_outside_0_to_1_with_one_clear_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tinymlaas", "fleet", "spawn", "--count", "1", "--board", BOARD]
    command += ["--state-dir", str(tmp_path / "agents"), "--public-key", str(tmp_path / "none.pub")]
    spawned = subprocess.run(
        [*command, "--loss", "1.5"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TINYMLAAS_DATA_DIR": str(tmp_path / "data")},
    )
    assert spawned.returncode == 1
    assert "loss is a probability within 0..1, got 1.5" in spawned.stderr
    assert "Traceback" not in spawned.stderr
