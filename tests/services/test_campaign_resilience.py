"""Campaigns survive a server restart, and a failure threshold halts the rollout before the next stage."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Callable

import pytest
from test_campaigns_runner import _store_modules, _until, modules  # noqa: F401

from tinymlaas.agent import Agent
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.lwm2m.core import CREDENTIALS_FILE
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.campaigns import create_campaign, rollback_campaign, show_campaign
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import show_device
from tinymlaas.services.provisioning import provision_device
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModuleRow

# Campaign steps are conditional writes to the store: run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store")

ENDPOINTS = ("nano-a", "nano-b")


def _fleet(context: Context, port: int = 0):
    return FleetService.start(
        context, "127.0.0.1", port, request_timeout=3, campaign_interval=0.1, install_timeout=20
    )


async def _agents(context: Context, uri: str, state_dir) -> list[Agent]:
    key = load_or_create_signing_key(context.settings.keys_dir)
    board = load_catalog().board("nano33ble")
    for endpoint in ENDPOINTS:
        if not (state_dir / endpoint / CREDENTIALS_FILE).exists():
            provision_device(context, endpoint, board.id, state_dir=state_dir / endpoint)
    return [
        await Agent.start(board, endpoint, uri, state_dir / endpoint, key.public_key_bytes(), lifetime=2)
        for endpoint in ENDPOINTS
    ]


def _reported(context: Context) -> bool:
    return all(show_device(context, e).capabilities.get("runtime") == "tflm" for e in ENDPOINTS)


def _states(context: Context, campaign_id: str) -> dict[str, str]:
    return {i.endpoint: i.state for i in show_campaign(context, campaign_id).installations}


def _rewritten(data: bytes, change: Callable[[dict], None]) -> tuple[dict, bytes]:
    """The same module with ``change`` applied to its manifest."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    manifest: dict = {}
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "manifest.json":
                manifest = json.loads(content)
                change(manifest)
                content = json.dumps(manifest).encode()
            target.writestr(name, content)
    return manifest, out.getvalue()


def _corrupted(data: bytes) -> tuple[dict, bytes]:
    """The same module with every expected self-test output shifted far out of tolerance."""

    def shift(manifest: dict) -> None:
        expected = manifest["selftest"]["expected"]
        manifest["selftest"]["expected"] = [[float(v) + 1000.0 for v in row] for row in expected]

    return _rewritten(data, shift)


def _add_module(context: Context, module_id: str, manifest: dict, data: bytes) -> None:
    with context.session() as session:
        ModelRepository(session).add(
            ModuleRow(
                id=module_id,
                variant_id="var_campaign",
                board_id="nano33ble",
                compiler="tflm",
                runtime="tflm",
                package_blob=context.blobs.put(data),
                manifest=manifest,
                fits=True,
                reasons=[],
            )
        )


def test_a_campaign_continues_after_the_server_restarts(context, modules, tmp_path):  # noqa: F811
    _store_modules(context, modules)

    async def scenario() -> None:
        fleet = await _fleet(context)
        port = fleet.port
        agents = await _agents(context, fleet.uri, tmp_path)
        try:
            await _until(lambda: _reported(context))
            await fleet.stop()
            # Created while no server runs: the campaign lives only in the database.
            created = create_campaign(context, "mod_tflm", ",".join(ENDPOINTS), stages=(50, 100))
            assert list(_states(context, created.id).values()) == ["pending", "pending"]

            fleet = await _fleet(context, port)
            await _until(lambda: "succeeded" in _states(context, created.id).values(), 20)
            await fleet.stop()

            fleet = await _fleet(context, port)
            await _until(lambda: show_campaign(context, created.id).state != "running", 30)
            campaign = show_campaign(context, created.id)
            assert campaign.state == "completed", campaign
            assert [i.state for i in campaign.installations] == ["succeeded", "succeeded"]
        finally:
            for agent in agents:
                await agent.stop()
            await fleet.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_failure_over_the_threshold_halts_the_campaign(context, modules, tmp_path):  # noqa: F811
    _store_modules(context, modules)
    _add_module(context, "mod_bad", *_corrupted(modules["tflm"][1]))

    async def scenario() -> None:
        fleet = await _fleet(context)
        agents = await _agents(context, fleet.uri, tmp_path)
        try:
            await _until(lambda: _reported(context))
            created = create_campaign(
                context, "mod_bad", ",".join(ENDPOINTS), stages=(50, 100), max_failures=0
            )
            await _until(lambda: show_campaign(context, created.id).state != "running", 20)
            campaign = show_campaign(context, created.id)
            assert campaign.state == "halted", campaign
            first, second = campaign.installations
            assert first.state == "failed"
            assert first.update_result == 58
            # Give the runner a few more passes: nothing more is sent.
            await asyncio.sleep(0.5)
            second = show_campaign(context, created.id).installations[1]
            assert second.state == "pending"
            assert second.started_at is None
        finally:
            for agent in agents:
                await agent.stop()
            await fleet.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def _as_version(data: bytes, version: int) -> tuple[dict, bytes]:
    """The same module relabelled as another version of the model."""
    return _rewritten(data, lambda manifest: manifest["model"].update(version=version))


def test_a_rollback_puts_every_device_back_on_its_previous_model(context, modules, tmp_path):  # noqa: F811
    _store_modules(context, modules)
    _add_module(context, "mod_v2", *_as_version(modules["tflm"][1], 2))

    def versions() -> list[str]:
        return [str(show_device(context, e).installed.get("version")) for e in ENDPOINTS]

    async def scenario() -> None:
        fleet = await _fleet(context)
        agents = await _agents(context, fleet.uri, tmp_path)
        try:
            await _until(lambda: _reported(context))
            first = create_campaign(context, "mod_tflm", ",".join(ENDPOINTS))
            await _until(lambda: show_campaign(context, first.id).state == "completed", 20)
            second = create_campaign(context, "mod_v2", ",".join(ENDPOINTS))
            await _until(lambda: show_campaign(context, second.id).state == "completed", 20)
            await _until(lambda: versions() == ["2", "2"])

            assert rollback_campaign(context, second.id).state == "rolling_back"
            await _until(lambda: show_campaign(context, second.id).state == "rolled_back", 20)
            campaign = show_campaign(context, second.id)
            assert [i.state for i in campaign.installations] == ["rolled_back", "rolled_back"]
            assert {i.detail["rolled_back_to"] for i in campaign.installations} == {"campaign cnn v1"}
            # What the devices themselves report, and what they run.
            await _until(lambda: versions() == ["1", "1"])
            assert [a.slots.active().manifest["model"]["version"] for a in agents] == [1, 1]

            # The first campaign's devices have nothing older to go back to: said plainly, model kept.
            rollback_campaign(context, first.id)
            await _until(lambda: show_campaign(context, first.id).state == "rolled_back", 20)
            failed = show_campaign(context, first.id).installations
            assert [i.state for i in failed] == ["rollback_failed", "rollback_failed"]
            assert all("no previous model" in i.detail["error"] for i in failed)
            assert versions() == ["1", "1"]
        finally:
            for agent in agents:
                await agent.stop()
            await fleet.stop()

    asyncio.run(asyncio.wait_for(scenario(), 90))
