"""Messages lost on the way to a device: what the server did not get is asked again, not given up on.

The agent sits behind an emulated link (``spawn_fleet``, as ``fleet spawn`` runs it) whose rule drops one
kind of CoAP message: the server's reads after a registration, or its Package URI write. The device
speaks plain CoAP here (development mode), so a rule can tell a message by its code; everything else
is real.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from test_campaigns_runner import _store_modules, _until, modules  # noqa: F401

from tinymlaas.agent import Agent
from tinymlaas.agent.fleet import Fleet, spawn_fleet
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.errors import NotFound
from tinymlaas.lwm2m.linkemu import PROFILES, UdpLinkEmulator
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.campaigns import create_campaign, show_campaign
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import show_device
from tinymlaas.settings import Settings

# Campaign steps are conditional writes to the store: run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store")

ENDPOINT = "lossy-000"  # spawn_fleet names its first agent so
PERFECT = replace(PROFILES["loopback"], name="test")
GET, PUT = 0x01, 0x03  # CoAP request codes 0.01 and 0.03: the second byte of a CoAP message


def _code(code: int):
    return lambda datagram: len(datagram) > 1 and datagram[1] == code


@pytest.fixture
def context(tmp_path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data", allow_nosec=True))


def _server(context: Context):
    return FleetService.start(
        context, "127.0.0.1", 0, nosec_port=0, request_timeout=2, campaign_interval=0.1, install_timeout=60
    )


async def _fleet_of_one(context: Context, service: FleetService, tmp_path) -> Fleet:
    """One agent behind a lossless link whose rules the test sets; its downloads cross the link too."""
    key = load_or_create_signing_key(context.settings.keys_dir)
    board = load_catalog().board("nano33ble")
    return await spawn_fleet(
        1,
        board,
        str(service.nosec_uri),
        tmp_path / "agents",
        key.public_key_bytes(),
        prefix="lossy",
        link=PERFECT,
        lifetime=2,
    )


def _events(context: Context, kind: str) -> list[dict]:
    try:
        return [e for e in show_device(context, ENDPOINT).events if e["kind"] == kind]
    except NotFound:
        return []


def _reported(context: Context) -> bool:
    try:
        return show_device(context, ENDPOINT).capabilities.get("runtime") == "tflm"
    except NotFound:
        return False


def test_reports_a_device_did_not_answer_after_registering_are_read_at_its_next_update(context, tmp_path):
    async def scenario() -> None:
        service = await _server(context)
        nosec = urlsplit(service.nosec_uri)
        relay = await UdpLinkEmulator.start((str(nosec.hostname), int(nosec.port or 0)), PERFECT)
        relay.drop(downlink=_code(GET))  # the server's reads never reach the device
        key = load_or_create_signing_key(context.settings.keys_dir)
        board = load_catalog().board("nano33ble")
        uri = f"coap://127.0.0.1:{relay.port}"
        public_key = key.public_key_bytes()
        agent = await Agent.start(board, ENDPOINT, uri, tmp_path / "agent", public_key, lifetime=2)
        try:
            # Each of the three reads (runtime, device, software) is tried and recorded as failed.
            await _until(lambda: len({e["detail"]["path"] for e in _events(context, "read_failed")}) == 3, 60)
            device = show_device(context, ENDPOINT)
            assert device.online and device.capabilities == {}
            registered_at = device.registered_at

            relay.drop()
            await _until(lambda: _reported(context), 30)
            # Read at an Update: the device is still on the registration it had.
            assert show_device(context, ENDPOINT).registered_at == registered_at
            assert len(_events(context, "registered")) == 1
            assert _events(context, "reported")
        finally:
            await agent.stop()
            relay.close()
            await service.stop()

    asyncio.run(asyncio.wait_for(scenario(), 90))


def _installation(context: Context, campaign_id: str):
    return next(i for i in show_campaign(context, campaign_id).installations if i.endpoint == ENDPOINT)


def test_a_package_uri_write_left_unanswered_does_not_fail_the_device_and_it_installs(
    context,
    modules,  # noqa: F811
    tmp_path,
):
    _store_modules(context, modules)

    async def scenario() -> None:
        service = await _server(context)
        fleet = await _fleet_of_one(context, service, tmp_path)
        relay, agent = fleet.links[ENDPOINT], fleet.agents[ENDPOINT]
        try:
            await _until(lambda: _reported(context), 15)
            # The Package URI write does not arrive until the runner has given it up once; a copy the
            # server's CoAP layer sends again, or the runner's next write, then gets through.
            relay.drop(downlink=_code(PUT))
            campaign = create_campaign(context, "mod_tflm", ENDPOINT)
            await _until(lambda: _installation(context, campaign.id).detail.get("unanswered_writes") == 1, 15)
            assert _installation(context, campaign.id).state == "sent"

            relay.drop()
            await _until(lambda: _installation(context, campaign.id).state == "succeeded", 30)
            assert agent.slots.active() is not None
            assert show_campaign(context, campaign.id).state == "completed"
        finally:
            await fleet.stop()
            await service.stop()

    asyncio.run(asyncio.wait_for(scenario(), 90))
