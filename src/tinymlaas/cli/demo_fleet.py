"""The fleet half of the demo: a server, emulated devices on several boards, and every deployment outcome.

It goes through the same server and services an operator uses (``FleetService``, ``create_campaign``,
``show_device``) and runs real agents (native int8 C modules, or TFLM, on MCU boards; LiteRT on Linux
boards) over CoAP on loopback, so every figure it hands back is what a device reported over LwM2M; an
MCU device running a native module reports its board's latency estimate from QEMU instruction
counts, not the host's time. In order it shows:

1. each board receiving the module that fits it, chosen from a lifecycle report;
2. the compatibility gate refusing a module built for another runtime, with its reasons;
3. a device rolling itself back after a failed self-test (a copy of a module whose recorded
   self-test outputs were deliberately shifted, named as such in the module's reasons);
4. the fleet updated to a second model version.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import time
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any

from tinymlaas.agent.fleet import Fleet, spawn_fleet
from tinymlaas.agent.sensors import GestureStream
from tinymlaas.deploy.campaigns import CampaignState, InstallationState
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.errors import InvalidInput, RuntimeFailure
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.campaigns import CampaignView, create_campaign, show_campaign
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.device_link import DeviceLink
from tinymlaas.services.fleet import DeviceView, list_devices
from tinymlaas.services.provisioning import provision_device
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModuleRow

__all__ = ["DEMO_FLEET_BOARDS", "fitting_module", "run_fleet_demo"]

DEMO_FLEET_BOARDS = ("nano33ble", "pico", "rpi4")
_PREFERENCE = ("int8", "float32", "float16")  # smallest first: what an operator would ship
_NATIVE = "native"
_FAULT = "demo fault: expected self-test outputs shifted by 10x the tolerance, as a model that misbehaves"

Say = Callable[[str, Any], None]


def fitting_module(report: dict[str, Any], board: str, runtime: str | None = None) -> dict[str, Any]:
    """The lifecycle report's row of the smallest variant whose module fits ``board``: a native
    module where one fits (built and measured for the board's core), else the board's first
    runtime's; with ``runtime``, only that runtime's modules."""
    rows = [row for row in report["variants"] if row["board"] == board and row["fits"]]
    if runtime is not None:
        rows = [row for row in rows if row["runtime"] == runtime]
    elif any(row["runtime"] == _NATIVE for row in rows):
        rows = [row for row in rows if row["runtime"] == _NATIVE]
    if not rows:
        runs = f" as a {runtime} module" if runtime else ""
        raise InvalidInput(f"no module of model {report['model']} fits board {board}{runs}")
    return min(rows, key=lambda row: _PREFERENCE.index(row["quantization"]))


def _broken_copy(ctx: Context, module_id: str) -> str:
    """Store a copy of a module whose manifest expects self-test outputs the model does not produce."""
    with ctx.session() as session:
        repository = ModelRepository(session)
        module = repository.module(module_id)
        if module.package_blob is None or module.manifest is None:
            raise InvalidInput(f"module {module_id} has no package to copy")
        source = zipfile.ZipFile(io.BytesIO(ctx.blobs.get(module.package_blob)))
        manifest = json.loads(source.read("manifest.json"))
        selftest = manifest["selftest"]
        shift = 10 * max(float(selftest.get("tolerance", 0.0)), 1.0)
        selftest["expected"] = [[v + shift for v in row] for row in selftest["expected"]]
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for name in source.namelist():
                data = json.dumps(manifest).encode() if name == "manifest.json" else source.read(name)
                target.writestr(name, data)
        copy_id = new_id("mod")
        repository.add(
            ModuleRow(
                id=copy_id,
                variant_id=module.variant_id,
                board_id=module.board_id,
                compiler=module.compiler,
                runtime=module.runtime,
                package_blob=ctx.blobs.put(out.getvalue()),
                manifest=manifest,
                flash_bytes=module.flash_bytes,
                ram_bytes=module.ram_bytes,
                fits=True,
                reasons=[_FAULT],
            )
        )
        return copy_id


async def _finished(ctx: Context, campaign_id: str, timeout: float, say: Say) -> CampaignView:
    """Wait until the campaign stops running; RuntimeFailure names the devices still going at timeout."""
    deadline = time.monotonic() + timeout
    shown = -1
    while True:
        campaign = await asyncio.to_thread(show_campaign, ctx, campaign_id)
        if campaign.done != shown:
            shown = campaign.done
            say("progress", campaign)
        if campaign.state != CampaignState.RUNNING.value:
            return campaign
        if time.monotonic() > deadline:
            succeeded = InstallationState.SUCCEEDED.value
            waiting = [i.endpoint for i in campaign.installations if i.state != succeeded]
            raise RuntimeFailure(f"campaign {campaign_id} still running after {timeout:g} s: {waiting}")
        await asyncio.sleep(0.5)


async def _reported(ctx: Context, endpoints: set[str], timeout: float) -> list[DeviceView]:
    """Wait until every endpoint is online and reported its runtime in this registration; the devices.

    Telemetry is the part of that report a Register clears (capabilities outlive a registration), so a
    re-run's devices count as reported only once they told this server about their fresh state.
    """
    deadline = time.monotonic() + timeout
    while True:
        devices = [d for d in await asyncio.to_thread(list_devices, ctx) if d.endpoint in endpoints]
        ready = {d.endpoint for d in devices if d.online and d.telemetry}
        if ready == endpoints:
            return devices
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"devices did not report within {timeout:g} s: {sorted(endpoints - ready)}")
        await asyncio.sleep(0.25)


async def _deploy(
    ctx: Context, module: str, selector: str, timeout: float, say: Say, **plan: Any
) -> CampaignView:
    campaign = create_campaign(ctx, module, selector, **plan)
    say("campaign", campaign)
    return await _finished(ctx, campaign.id, timeout, say)


async def run_fleet_demo(
    ctx: Context,
    first: dict[str, Any],
    second: dict[str, Any],
    *,
    boards: Sequence[str] = DEMO_FLEET_BOARDS,
    per_board: int = 2,
    state_dir: Path,
    say: Say,
    timeout: float = 180.0,
    hold: Callable[[], Awaitable[None]] | None = None,
    attach: Callable[[DeviceLink | None], None] | None = None,
    alongside: Callable[[str], AbstractAsyncContextManager[object]] | None = None,
) -> list[DeviceView]:
    """Run the fleet story for two lifecycle reports of one model (``first`` then ``second`` version).

    ``say(kind, data)`` hears each step as it happens: ``server``, ``devices``, ``refused``,
    ``campaign``, ``progress`` and ``outcome``. With ``hold``, the server and devices keep running
    (registered, inferring, reporting) until it returns, so the dashboard can be explored live.
    ``alongside(server_uri)`` is entered after the story and left after ``hold``: more on the same
    server (the demo's pipeline), running while the fleet is held and stopped before the fleet stops.
    Returns the devices as they reported at the end of the story.
    """
    if len(boards) < 2:
        raise InvalidInput("the fleet demo needs at least two boards, one to refuse the other's module")
    v1 = {board: fitting_module(first, board) for board in boards}
    # A device's firmware runs one runtime, so the second version ships for the same one.
    v2 = {board: fitting_module(second, board, v1[board]["runtime"]) for board in boards}
    shutil.rmtree(state_dir, ignore_errors=True)  # every demo starts with factory-fresh devices
    key = load_or_create_signing_key(ctx.settings.keys_dir)
    fleet_service = await FleetService.start(
        ctx, ctx.settings.coap_host, 0, campaign_interval=0.2, install_timeout=60
    )
    if attach is not None:
        attach(fleet_service.link)  # the dashboard's Device pages reach these devices from now on
    fleets: list[Fleet] = []
    try:
        say("server", {"uri": fleet_service.uri})
        for index, board in enumerate(boards):
            fleets.append(
                await spawn_fleet(
                    per_board,
                    ctx.catalog.board(board).running(v1[board]["runtime"]),
                    fleet_service.uri,
                    state_dir / board,
                    key.public_key_bytes(),
                    prefix=f"demo-{board}",
                    sensor_factory=lambda i, seed=index: GestureStream(seed=seed * 100 + i),
                    rate_hz=2.0,
                    # Factory-fresh devices get fresh keys, as on a production line.
                    credentials=lambda endpoint, b=board: provision_device(
                        ctx, endpoint, b, server_uri=fleet_service.uri, rotate=True
                    ),
                )
            )
        endpoints = {f"demo-{board}-{i:03d}" for board in boards for i in range(per_board)}
        say("devices", await _reported(ctx, endpoints, timeout))

        # The gate: the first Linux/MCU mismatch it finds, refused before anything is sent.
        other = next(b for b in boards if v1[b]["runtime"] != v1[boards[0]]["runtime"])
        try:
            create_campaign(ctx, v1[other]["module"], f"board:{boards[0]}")
        except InvalidInput as refusal:
            say("refused", {"module": v1[other]["module"], "board": boards[0], "reason": refusal.detail})

        for board in boards:
            await _deploy(ctx, v1[board]["module"], f"board:{board}", timeout, say, stages=(50, 100))
        say("devices", await asyncio.to_thread(list_devices, ctx))

        broken = _broken_copy(ctx, v1[boards[0]]["module"])
        say("outcome", await _deploy(ctx, broken, f"demo-{boards[0]}-000", timeout, say))

        for board in boards:
            await _deploy(ctx, v2[board]["module"], f"board:{board}", timeout, say, stages=(50, 100))
        await asyncio.sleep(1.5)  # one more telemetry report from each device on the new model
        devices = [d for d in await asyncio.to_thread(list_devices, ctx) if d.endpoint in endpoints]
        say("devices", devices)
        async with AsyncExitStack() as stack:
            if alongside is not None:
                await stack.enter_async_context(alongside(fleet_service.uri))
            if hold is not None:
                await hold()
        return devices
    finally:
        if attach is not None:
            attach(None)
        for fleet in fleets:
            await fleet.stop()
        await fleet_service.stop()
