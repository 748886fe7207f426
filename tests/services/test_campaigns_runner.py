"""Campaigns against a real agent on loopback: a compatible module installs, the gate and the fit refuse."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest

from tinymlaas.agent import Agent, UpdateState
from tinymlaas.catalog import load_catalog
from tinymlaas.compilers.base import VariantArtifact
from tinymlaas.compilers.litert import LiteRtCompiler
from tinymlaas.compilers.tflm import TflmCompiler
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.errors import Conflict, InvalidInput
from tinymlaas.lwm2m.core import ContentFormat, Path
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.campaigns import (
    cancel_campaign,
    create_campaign,
    list_campaigns,
    rollback_campaign,
    show_campaign,
)
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import show_device
from tinymlaas.services.provisioning import provision_device
from tinymlaas.storage.repositories import DeviceRepository, ModelRepository
from tinymlaas.storage.tables import ModelRow, ModuleRow, VariantRow

# Campaign steps are conditional writes to the store: run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store")

ENDPOINT = "dev-nano"


def _tflite() -> bytes:
    import keras

    from tinymlaas.squeeze.convert import Quantization, convert

    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((32, 3)),
            keras.layers.Conv1D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    representative = np.random.default_rng(7).normal(size=(64, 32, 3)).astype(np.float32)
    return convert(model, Quantization.INT8, representative)


@pytest.fixture(scope="module")
def modules() -> dict[str, tuple[dict, bytes]]:
    """Runtime -> (manifest, zip) of one tiny int8 CNN, for nano33ble (tflm) and rpi4 (litert)."""
    from tinymlaas.squeeze.variants import assess

    catalog = load_catalog()
    tflite = _tflite()
    squeezed = assess(tflite, None, max_arena_bytes=64 * 1024)
    variant = VariantArtifact(
        variant_id="var_campaign",
        model_id="mdl_campaign",
        model_name="campaign cnn",
        model_version=1,
        quantization=squeezed.quantization,
        tflite=tflite,
        info=squeezed.info,
        arena_bytes=squeezed.arena.arena_bytes,
        selftests=squeezed.selftests,
    )
    built = {}
    for compiler, board in ((TflmCompiler(), "nano33ble"), (LiteRtCompiler(), "rpi4")):
        module = compiler.compile(
            variant, catalog.board(board), flash_bytes=len(tflite), ram_bytes=variant.arena_bytes or 0
        )
        built[compiler.runtime] = (dict(module.manifest), module.to_zip())
    return built


def _store_modules(context: Context, modules: dict[str, tuple[dict, bytes]]) -> None:
    """Rows for the compiled modules (ids mod_tflm, mod_litert) and one that does not fit (mod_big)."""
    with context.session() as session:
        repository = ModelRepository(session)
        repository.add(
            ModelRow(
                id="mdl_campaign", name="campaign cnn", version=1, origin="imported", arch="cnn", params=0
            )
        )
        repository.add(
            VariantRow(
                id="var_campaign",
                model_id="mdl_campaign",
                quantization="int8",
                tflite_blob=context.blobs.put(b"tflite"),
                size_bytes=6,
                info={},
                arena_bytes=None,
                arena_tries=0,
                metrics={},
                runtime_errors={},
                selftests={},
            )
        )
        boards = {"tflm": "nano33ble", "litert": "rpi4"}
        for runtime, (manifest, data) in modules.items():
            repository.add(
                ModuleRow(
                    id=f"mod_{runtime}",
                    variant_id="var_campaign",
                    board_id=boards[runtime],
                    compiler=runtime,
                    runtime=runtime,
                    package_blob=context.blobs.put(data),
                    manifest=manifest,
                    fits=True,
                    reasons=[],
                )
            )
        manifest, data = modules["tflm"]
        repository.add(
            ModuleRow(
                id="mod_big",
                variant_id="var_campaign",
                board_id="nano33ble",
                compiler="tflm",
                runtime="tflm",
                package_blob=context.blobs.put(data),
                manifest=manifest,
                fits=False,
                reasons=["the model needs 2 MiB of flash, the board has 1 MiB"],
            )
        )


async def _until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def test_a_campaign_installs_on_a_real_agent_and_the_gate_and_fit_refuse(context, modules, tmp_path):
    _store_modules(context, modules)
    key = load_or_create_signing_key(context.settings.keys_dir)

    async def scenario() -> None:
        fleet = await FleetService.start(
            context, "127.0.0.1", 0, request_timeout=5, campaign_interval=0.1, install_timeout=20
        )
        provision_device(context, ENDPOINT, "nano33ble", state_dir=tmp_path / "agent")
        agent = await Agent.start(
            load_catalog().board("nano33ble"),
            ENDPOINT,
            fleet.uri,
            tmp_path / "agent",
            key.public_key_bytes(),
        )
        try:
            await _until(lambda: show_device(context, ENDPOINT).capabilities.get("runtime") == "tflm")

            with pytest.raises(InvalidInput, match="runtime mismatch"):
                create_campaign(context, "mod_litert", "board:nano33ble")
            with pytest.raises(InvalidInput, match="never offered for deployment"):
                create_campaign(context, "mod_big", "board:nano33ble")
            assert list_campaigns(context) == []

            created = create_campaign(context, "mod_tflm", "board:nano33ble", stages=(50, 100))
            assert created.state == "running"
            assert [i.state for i in created.installations] == ["pending"]

            await _until(lambda: show_campaign(context, created.id).state == "completed")
            campaign = show_campaign(context, created.id)
            (installation,) = campaign.installations
            assert installation.state == "succeeded"
            assert installation.update_result_text == "installed"
            assert installation.started_at and installation.finished_at
            values = await fleet.server.devices.read(ENDPOINT, "/9/0/7", accept=ContentFormat.TEXT_PLAIN)
            assert values[Path(9, 0, 7)] == UpdateState.INSTALLED
            assert agent.slots.active().manifest["model"]["name"] == "campaign cnn"
            # The device row follows the install through the observed Update State and Result.
            await _until(
                lambda: show_device(context, ENDPOINT).installed.get("update_state_text") == "installed"
            )
            assert show_device(context, ENDPOINT).installed["name"] == "campaign cnn"

            with pytest.raises(Conflict, match="cannot become cancelled"):
                cancel_campaign(context, created.id)
        finally:
            await agent.stop()
            await fleet.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def _known_device(context: Context, endpoint: str, board: str, capabilities: dict) -> None:
    """A device as an earlier server stored it: registered once, reported, now offline."""
    with context.session() as session:
        repository = DeviceRepository(session)
        repository.upsert_registration(
            endpoint,
            new_id=f"dev_{endpoint}",
            registration_id="r1",
            address="coap://127.0.0.1:9",
            lifetime=60,
            lwm2m_version="1.1",
            objects=["/9/0", "/26241/0"],
            registered_at=datetime.now(UTC),
        )
        repository.set_reported(endpoint, board_id=board, capabilities=capabilities)
        repository.mark_all_offline()


def test_refused_devices_are_on_record_and_cancel_stops_the_rest(context, modules):
    _store_modules(context, modules)
    manifest = modules["tflm"][0]
    fitting = {
        "runtime": "tflm",
        "runtime_version": "1.0",
        "ops": list(manifest["ops"]),
        "arena_bytes_available": 1 << 20,
        "slot_flash_bytes": 1 << 20,
    }
    _known_device(context, "a-ok", "nano33ble", fitting)
    _known_device(context, "b-small", "nano33ble", {**fitting, "slot_flash_bytes": 16})

    created = create_campaign(context, "mod_tflm", "a-ok,b-small", stages=(50, 100), max_failures=1)
    states = {i.endpoint: (i.state, i.detail) for i in created.installations}
    assert states["a-ok"] == ("pending", {})
    assert states["b-small"][0] == "refused"
    assert "model slot holds 16 bytes" in states["b-small"][1]["reasons"][0]

    cancelled = cancel_campaign(context, created.id)
    assert cancelled.state == "cancelled"
    assert [i.state for i in cancelled.installations] == ["cancelled", "refused"]
    assert [c.id for c in list_campaigns(context)] == [created.id]
    # Nothing was installed, so there is nothing to put back: the rollback ends at once.
    rolled_back = rollback_campaign(context, created.id)
    assert rolled_back.state == "rolled_back"
    assert [i.state for i in rolled_back.installations] == ["cancelled", "refused"]
    with pytest.raises(Conflict, match="cannot become rolling_back"):
        rollback_campaign(context, created.id)
