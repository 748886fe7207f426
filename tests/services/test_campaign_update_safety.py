"""A campaign's package reaches only its targets and is withdrawn when the campaign ends; a rollback still
works with devices refusing older packages, and the rolled-back model can be deployed again."""

from __future__ import annotations

import asyncio

import pytest
from test_campaign_resilience import _add_module, _as_version
from test_campaigns_runner import _known_device, _store_modules, _until, modules  # noqa: F401

from tinymlaas.agent import Agent, UpdateResult
from tinymlaas.agent.sequences import ConfirmedSequences
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.errors import NotFound
from tinymlaas.lwm2m.transport import CoapEndpoint
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.campaigns import cancel_campaign, create_campaign, rollback_campaign, show_campaign
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import show_device
from tinymlaas.settings import Settings

# Campaign steps are conditional writes to the store: run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store")

ENDPOINT = "dev-nano"


@pytest.fixture
def context(tmp_path) -> Context:
    """Plain CoAP allowed beside DTLS (development mode), so a stranger over NoSec can be tried too."""
    return Context(Settings(data_dir=tmp_path / "data", allow_nosec=True))


def _fleet(context: Context):
    """DTLS for provisioned devices, plain CoAP beside it (development mode) for the ones here."""
    return FleetService.start(
        context, "127.0.0.1", 0, nosec_port=0, request_timeout=3, campaign_interval=0.1, install_timeout=20
    )


async def _agent(context: Context, uri: str, state_dir, endpoint: str = ENDPOINT) -> Agent:
    """An unprovisioned device over plain CoAP, where the server can go by its address only."""
    key = load_or_create_signing_key(context.settings.keys_dir)
    board = load_catalog().board("nano33ble")
    return await Agent.start(board, endpoint, uri, state_dir, key.public_key_bytes())


def _installation(context: Context, campaign_id: str, endpoint: str):
    return next(i for i in show_campaign(context, campaign_id).installations if i.endpoint == endpoint)


def _reported(context: Context, endpoint: str) -> bool:
    """Whether the device registered and its runtime was read, which the server stores in the background."""
    try:
        return show_device(context, endpoint).capabilities.get("runtime") == "tflm"
    except NotFound:
        return False


def _version(context: Context) -> str:
    return str(show_device(context, ENDPOINT).installed.get("version"))


def test_a_campaigns_package_is_refused_to_strangers_and_withdrawn_when_the_campaign_ends(
    context,
    modules,  # noqa: F811
    tmp_path,
):
    _store_modules(context, modules)
    manifest = modules["tflm"][0]
    # A target that is known but offline keeps the campaign running, and so its package published.
    _known_device(
        context,
        "dev-away",
        "nano33ble",
        {
            "runtime": "tflm",
            "runtime_version": "1.0",
            "ops": list(manifest["ops"]),
            "arena_bytes_available": 1 << 20,
            "slot_flash_bytes": 1 << 20,
        },
    )

    async def scenario() -> None:
        fleet = await _fleet(context)
        agent = await _agent(context, fleet.nosec_uri, tmp_path / "agent")
        other = await _agent(context, fleet.nosec_uri, tmp_path / "other", "dev-other")
        stranger = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            await _until(lambda: _reported(context, ENDPOINT))
            running = create_campaign(context, "mod_tflm", f"{ENDPOINT},dev-away")
            await _until(lambda: _installation(context, running.id, ENDPOINT).state == "succeeded", 20)
            assert show_campaign(context, running.id).state == "running"
            package_uri = _installation(context, running.id, ENDPOINT).detail["package_uri"]

            assert package_uri.startswith(fleet.nosec_uri)  # where this device registered
            # From an address no device registered from.
            refused = await stranger.request("GET", package_uri, timeout=5)
            assert refused.code == "4.03"
            assert "served only to the devices it was published for" in refused.diagnostic
            # From a registered device outside the campaign that was handed the URI.
            await fleet.server.devices.write("dev-other", "/9/0/3", package_uri)
            await _until(lambda: other.tracker.result is UpdateResult.INVALID_URI)
            assert "the server refuses this device" in other.tracker.detail
            assert other.slots.active() is None

            cancel_campaign(context, running.id)

            async def withdrawn(uri: str) -> bool:
                return (await stranger.request("GET", uri, timeout=5)).code == "4.04"

            await _until_async(lambda: withdrawn(package_uri))

            # A campaign that completes withdraws its package as well.
            completed = create_campaign(context, "mod_tflm", ENDPOINT)
            await _until(lambda: show_campaign(context, completed.id).state == "completed", 20)
            completed_uri = _installation(context, completed.id, ENDPOINT).detail["package_uri"]
            await _until_async(lambda: withdrawn(completed_uri))
        finally:
            await stranger.close()
            await other.stop()
            await agent.stop()
            await fleet.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_rollback_goes_back_a_slot_and_the_rolled_back_model_can_be_deployed_again(
    context,
    modules,  # noqa: F811
    tmp_path,
):
    _store_modules(context, modules)
    _add_module(context, "mod_v2", *_as_version(modules["tflm"][1], 2))

    async def scenario() -> None:
        fleet = await _fleet(context)
        agent = await _agent(context, fleet.nosec_uri, tmp_path / "agent")
        try:
            await _until(lambda: _reported(context, ENDPOINT))
            first = create_campaign(context, "mod_tflm", ENDPOINT)
            await _until(lambda: show_campaign(context, first.id).state == "completed", 20)
            second = create_campaign(context, "mod_v2", ENDPOINT)
            await _until(lambda: show_campaign(context, second.id).state == "completed", 20)
            newest = ConfirmedSequences(tmp_path / "agent").highest("campaign cnn")
            assert newest is not None and agent.slots.active().manifest["sequence"] == newest

            rollback_campaign(context, second.id)
            await _until(lambda: show_campaign(context, second.id).state == "rolled_back", 20)
            rolled = _installation(context, second.id, ENDPOINT)
            assert (rolled.state, rolled.detail["rolled_back_to"]) == ("rolled_back", "campaign cnn v1")
            await _until(lambda: _version(context) == "1")
            # Back on the slot confirmed before: no package was sent, and the newest sequence stands.
            assert agent.slots.active().manifest["model"]["version"] == 1
            assert ConfirmedSequences(tmp_path / "agent").highest("campaign cnn") == newest

            again = create_campaign(context, "mod_v2", ENDPOINT)
            await _until(lambda: show_campaign(context, again.id).state != "running", 20)
            assert show_campaign(context, again.id).state == "completed"
            assert agent.slots.active().manifest["model"]["version"] == 2
            assert ConfirmedSequences(tmp_path / "agent").highest("campaign cnn") > newest
        finally:
            await agent.stop()
            await fleet.stop()

    asyncio.run(asyncio.wait_for(scenario(), 90))


async def _until_async(check, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)
