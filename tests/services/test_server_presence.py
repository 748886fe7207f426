"""Two servers on one store: each device's presence follows the server it registered with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tinymlaas.agent import Agent
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import list_devices, show_device
from tinymlaas.services.provisioning import provision_device
from tinymlaas.storage.repositories import DeviceRepository, ServerRepository

# Presence is changed by conditional updates several processes make on one store: both backends.
pytestmark = pytest.mark.usefixtures("store")


async def _until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


def _online(context: Context) -> dict[str, bool]:
    return {device.endpoint: device.online for device in list_devices(context)}


def test_a_server_that_stops_sets_only_its_own_devices_offline_and_a_silent_one_loses_its_devices(
    context, tmp_path
):
    key = load_or_create_signing_key(context.settings.keys_dir)
    board = load_catalog().board("nano33ble")
    for endpoint in ("on-a", "on-b"):
        provision_device(context, endpoint, board.id, state_dir=tmp_path / endpoint)

    async def scenario() -> None:
        first = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3, heartbeat_interval=0.2)
        second = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3, heartbeat_interval=0.2)
        agents = [
            await Agent.start(
                board, endpoint, fleet.uri, tmp_path / endpoint, key.public_key_bytes(), lifetime=30
            )
            for endpoint, fleet in (("on-a", first), ("on-b", second))
        ]
        try:
            await _until(lambda: _online(context) == {"on-a": True, "on-b": True}, "both registered")
            await first.stop()
            assert _online(context) == {"on-a": False, "on-b": True}
            assert show_device(context, "on-a").events[0]["detail"]["reason"] == "server stopped"

            # A server killed without stopping leaves its devices online and stops renewing its row:
            # the server still running sets them offline once that row is older than three beats.
            long_ago = datetime.now(UTC) - timedelta(minutes=5)
            with context.session() as session:
                ServerRepository(session).announce("srv_killed", long_ago)
                DeviceRepository(session).device("on-a").online = True
                DeviceRepository(session).device("on-a").server_id = "srv_killed"
            await _until(lambda: not _online(context)["on-a"], "the killed server's device set offline")
            reason = show_device(context, "on-a").events[0]["detail"]["reason"]
            assert reason == "its server stopped answering"
            assert _online(context)["on-b"]
        finally:
            for agent in agents:
                await agent.stop(deregister=False)
            await second.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert _online(context) == {"on-a": False, "on-b": False}
