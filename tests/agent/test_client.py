"""A real agent against a real LwM2M server on loopback: registration, reads, signed updates, resume."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import zipfile
from collections.abc import Awaitable, Callable

import pytest

from helpers.packages import signed
from tinymlaas.agent import Agent, AgentEvent, GestureStream, UpdateResult, UpdateState
from tinymlaas.catalog import load_catalog
from tinymlaas.compilers.base import MANIFEST_NAME
from tinymlaas.deploy import SigningKey
from tinymlaas.lwm2m.core import ContentFormat, Path
from tinymlaas.lwm2m.server import Lwm2mServer

from .conftest import LINUX_BOARD, MCU_BOARD

BOARDS = {"tflm": MCU_BOARD, "litert": LINUX_BOARD}


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 20) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 8.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def _module_zip(manifest: dict, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True))
    return buffer.getvalue()


def _bad_selftest(package) -> bytes:
    manifest = copy.deepcopy(package.manifest)
    manifest["selftest"]["expected"] = [[v + 100 for v in row] for row in manifest["selftest"]["expected"]]
    return _module_zip(manifest, package.files)


class Rig:
    """One server, one agent for a board, and the signing key the agent trusts."""

    def __init__(self, server: Lwm2mServer, agent: Agent, key: SigningKey, endpoint: str) -> None:
        self.server = server
        self.agent = agent
        self.key = key
        self.endpoint = endpoint

    def publish(self, token: str, package: bytes, key: SigningKey | None = None) -> str:
        return self.server.uri + self.server.publish(
            token, signed(package, key or self.key), endpoints=[self.endpoint]
        )

    async def read(self, path: str, accept: int = ContentFormat.SENML_CBOR):
        values = await self.server.devices.read(self.endpoint, path, accept=accept)
        return values.get(Path.parse(path), values)

    async def update(self, uri: str, state: UpdateState, result: UpdateResult) -> None:
        await self.server.devices.write(self.endpoint, "/9/0/3", uri)

        async def done() -> bool:
            return (await self.read("/9/0/7"), await self.read("/9/0/9")) == (state, result)

        await eventually(done)

    def version(self) -> int:
        return self.agent.slots.active().manifest["model"]["version"]


async def _start_agent(server: Lwm2mServer, runtime: str, state_dir, key: SigningKey, **options) -> Agent:
    board = load_catalog().board(BOARDS[runtime])
    return await Agent.start(
        board, f"dev-{runtime}", server.uri, state_dir, key.public_key_bytes(), **options
    )


def with_rig(tmp_path, key: SigningKey, runtime: str, body, **options) -> None:
    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=5)
        agent = await _start_agent(server, runtime, tmp_path, key, **options)
        try:
            await body(Rig(server, agent, key, f"dev-{runtime}"))
        finally:
            await agent.stop()
            await server.stop()

    run(scenario)


@pytest.mark.parametrize("runtime", ["tflm", "litert"])
def test_the_agent_registers_and_reports_its_board(tmp_path, key, runtime):
    board = load_catalog().board(BOARDS[runtime])

    async def body(rig: Rig) -> None:
        registration = rig.server.store.get_by_endpoint(rig.endpoint)
        assert registration is not None and registration.lifetime == 60
        assert set(registration.objects) >= {Path(3, 0), Path(4, 0), Path(9, 0), Path(26241, 0)}
        assert rig.agent.registered

        runtime_values = await rig.read("/26241/0", ContentFormat.SENML_JSON)
        assert runtime_values[Path(26241, 0, 0)] == runtime
        assert runtime_values[Path(26241, 0, 1)] not in ("", "unknown")
        ops = {value for path, value in runtime_values.items() if path.resource_id == 2}
        assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= ops
        assert runtime_values[Path(26241, 0, 3)] == board.usable_ram_bytes
        assert runtime_values[Path(26241, 0, 4)] == board.usable_flash_bytes
        assert runtime_values[Path(26241, 0, 6)] == board.id

        device = await rig.read("/3/0")
        assert device[Path(3, 0, 0)] == "TinyMLaaS emulator"
        assert (device[Path(3, 0, 1)], device[Path(3, 0, 2)]) == (board.id, rig.endpoint)
        assert device[Path(3, 0, 21)] == board.ram_bytes // 1024
        assert await rig.read("/4/0/0") in (21, 22, 41)
        assert await rig.read("/9/0/7", ContentFormat.TEXT_PLAIN) == UpdateState.INITIAL
        assert await rig.read("/9/0/0", ContentFormat.TEXT_PLAIN) == ""

        links = await rig.server.devices.discover(rig.endpoint, "/9/0")
        assert {"/9/0", "/9/0/3", "/9/0/4", "/9/0/7", "/9/0/9"} <= {link.target for link in links}

    with_rig(tmp_path, key, runtime, body)


@pytest.mark.parametrize("runtime", ["tflm", "litert"])
def test_a_signed_package_installs_and_the_new_model_runs(tmp_path, key, packages, runtime):
    async def body(rig: Rig) -> None:
        uri = rig.publish("v1", packages[(runtime, 1)].zip)
        await rig.update(uri, UpdateState.INSTALLED, UpdateResult.INSTALLED)
        assert rig.version() == 1 and rig.agent.slots.active().slot == "a"
        assert await rig.read("/9/0/1", ContentFormat.TEXT_PLAIN) == "1"
        assert await rig.read("/9/0/12") is True
        assert rig.agent.download.uri is None  # the downloaded package was dropped once installed

        async def counted(minimum: int) -> bool:
            return await rig.read("/26241/0/10") >= minimum

        await eventually(lambda: counted(3))
        first = await rig.read("/26241/0/10")
        await eventually(lambda: counted(first + 2))
        histogram = await rig.read("/26241/0/14")
        assert sum(histogram.values()) > 0 and len(histogram) == 10
        assert (await rig.read("/26241/0/13")).isdigit()
        assert await rig.read("/26241/0/11") > 0

        uri = rig.publish("v2", packages[(runtime, 2)].zip)
        await rig.update(uri, UpdateState.INSTALLED, UpdateResult.INSTALLED)
        assert rig.version() == 2 and rig.agent.slots.active().slot == "b"
        assert rig.agent.telemetry().count >= first

    with_rig(tmp_path, key, runtime, body, sensor=GestureStream(seed=1), rate_hz=50)


def test_a_package_signed_with_another_key_is_refused(tmp_path, key, packages):
    async def body(rig: Rig) -> None:
        await rig.update(
            rig.publish("v1", packages[("tflm", 1)].zip), UpdateState.INSTALLED, UpdateResult.INSTALLED
        )
        forged = rig.publish("v2", packages[("tflm", 2)].zip, key=SigningKey.generate())
        await rig.update(forged, UpdateState.INITIAL, UpdateResult.INTEGRITY_CHECK_FAILURE)
        assert "does not verify" in await rig.read("/9/0/16", ContentFormat.TEXT_PLAIN)
        assert rig.version() == 1

    with_rig(tmp_path, key, "tflm", body)


def test_a_package_altered_after_signing_is_refused(tmp_path, key, packages):
    async def body(rig: Rig) -> None:
        package = signed(packages[("tflm", 1)].zip, key)
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        members["manifest.sig"] = bytes([members["manifest.sig"][0] ^ 1]) + members["manifest.sig"][1:]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        uri = rig.server.uri + rig.server.publish("tampered", buffer.getvalue(), endpoints=[rig.endpoint])
        await rig.update(uri, UpdateState.INITIAL, UpdateResult.INTEGRITY_CHECK_FAILURE)
        assert rig.agent.slots.active() is None

    with_rig(tmp_path, key, "tflm", body)


@pytest.mark.parametrize("runtime", ["tflm", "litert"])
def test_a_failed_self_test_rolls_back_and_the_old_model_keeps_running(tmp_path, key, packages, runtime):
    async def body(rig: Rig) -> None:
        await rig.update(
            rig.publish("v1", packages[(runtime, 1)].zip), UpdateState.INSTALLED, UpdateResult.INSTALLED
        )
        broken = rig.publish("v2", _bad_selftest(packages[(runtime, 2)]))
        await rig.update(broken, UpdateState.DELIVERED, UpdateResult.INSTALLATION_FAILURE)
        assert "Self-test" in await rig.read("/9/0/16", ContentFormat.TEXT_PLAIN)
        assert rig.version() == 1
        assert rig.agent.telemetry().count > 0
        before = rig.agent.telemetry().count
        await eventually(lambda: asyncio.sleep(0, rig.agent.telemetry().count > before))

        # Execute Install retries the delivered package, which fails its self-test again.
        assert [event.kind for event in events].count("install-failed") == 1
        await rig.server.devices.execute(rig.endpoint, "/9/0/4")
        await eventually(
            lambda: asyncio.sleep(0, [event.kind for event in events].count("install-failed") == 2)
        )
        assert (await rig.read("/9/0/7"), await rig.read("/9/0/9")) == (3, 58)
        assert rig.version() == 1

        # A good package after the failure goes through: the delivered one is superseded.
        await rig.update(
            rig.publish("v2-fixed", packages[(runtime, 2)].zip), UpdateState.INSTALLED, UpdateResult.INSTALLED
        )
        assert rig.version() == 2

    events: list[AgentEvent] = []
    with_rig(tmp_path, key, runtime, body, sensor=GestureStream(seed=2), rate_hz=50, on_event=events.append)


def test_a_missing_package_ends_in_invalid_uri(tmp_path, key):
    async def body(rig: Rig) -> None:
        await rig.update(rig.server.uri + "/pkg/nothing", UpdateState.INITIAL, UpdateResult.INVALID_URI)
        await rig.update("http://example.invalid/p.zip", UpdateState.INITIAL, UpdateResult.INVALID_URI)

    with_rig(tmp_path, key, "tflm", body)


def test_observers_see_every_update_state_and_the_telemetry(tmp_path, key, packages):
    async def body(rig: Rig) -> None:
        states: list[int] = []
        counts: list[int] = []
        await rig.server.devices.observe(
            rig.endpoint, "/9/0/7", lambda values: states.append(values[Path(9, 0, 7)])
        )
        await rig.server.devices.observe(
            rig.endpoint, "/26241/0/10", lambda values: counts.append(values[Path(26241, 0, 10)])
        )
        uri = rig.publish("v1", packages[("tflm", 1)].zip)
        await rig.update(uri, UpdateState.INSTALLED, UpdateResult.INSTALLED)
        await eventually(lambda: asyncio.sleep(0, bool(states) and states[-1] == UpdateState.INSTALLED))
        # Observe promises the latest state, so quick steps may merge; the order never goes back.
        assert states[0] == UpdateState.DOWNLOAD_STARTED and states == sorted(set(states))
        await eventually(lambda: asyncio.sleep(0, len(counts) >= 2))
        assert counts == sorted(counts) and counts[-1] > 0

    with_rig(tmp_path, key, "tflm", body, sensor=GestureStream(), rate_hz=50, telemetry_interval=0.1)


def test_the_inference_rate_is_writable(tmp_path, key):
    async def body(rig: Rig) -> None:
        await rig.server.devices.write(rig.endpoint, "/26241/0/15", 2.5)
        assert await rig.read("/26241/0/15") == 2.5

    with_rig(tmp_path, key, "tflm", body, sensor=GestureStream())


def test_an_interrupted_download_resumes_after_a_restart(tmp_path, key, packages):
    package = signed(packages[("tflm", 1)].zip, key)
    assert len(package) > 3 * 1024  # several 1 KiB blocks

    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=5)
        uri = server.uri + server.publish("v1", package, endpoints=["dev-tflm"])
        reached = asyncio.Event()

        async def cut_power_at_block_two(event: AgentEvent) -> None:
            if event.kind == "download" and event.block == 2:
                reached.set()
                await asyncio.Event().wait()  # hold the download here until the agent is stopped

        agent = await _start_agent(server, "tflm", tmp_path, key, on_event=cut_power_at_block_two)
        await server.devices.write("dev-tflm", "/9/0/3", uri)
        await asyncio.wait_for(reached.wait(), 5)
        await agent.stop(deregister=False)
        assert agent.tracker.state is UpdateState.DOWNLOAD_STARTED
        progress = json.loads((tmp_path / "download" / "progress.json").read_text())
        assert (progress["uri"], progress["offset"], progress["complete"]) == (uri, 3 * 1024, False)

        blocks: list[int] = []

        def record(event: AgentEvent) -> None:
            if event.kind == "download":
                blocks.append(event.block)

        agent = await _start_agent(server, "tflm", tmp_path, key, on_event=record)
        try:

            async def installed() -> bool:
                # The slot is confirmed (INSTALLED) in the install thread; the download is cleared after.
                done = agent.tracker.state is UpdateState.INSTALLED
                return done and not (tmp_path / "download" / "progress.json").exists()

            await eventually(installed)
            assert blocks[0] == 3 and blocks == list(range(3, 3 + len(blocks)))
            assert agent.slots.active().manifest["model"]["version"] == 1
        finally:
            await agent.stop()
            await server.stop()

    run(scenario)


def test_a_restart_keeps_the_installed_model_and_its_state(tmp_path, key, packages):
    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=5)
        agent = await _start_agent(server, "litert", tmp_path, key)
        rig = Rig(server, agent, key, "dev-litert")
        try:
            await rig.update(
                rig.publish("v1", packages[("litert", 1)].zip), UpdateState.INSTALLED, UpdateResult.INSTALLED
            )
        finally:
            await agent.stop()
        agent = await _start_agent(server, "litert", tmp_path, key, sensor=GestureStream(), rate_hz=50)
        rig = Rig(server, agent, key, "dev-litert")
        try:
            assert await rig.read("/9/0/7") == UpdateState.INSTALLED
            assert await rig.read("/9/0/1", ContentFormat.TEXT_PLAIN) == "1"

            async def running() -> bool:
                return agent.telemetry().count > 0

            await eventually(running)
        finally:
            await agent.stop()
            await server.stop()

    run(scenario)


def test_the_agent_renews_its_registration_before_the_lifetime_ends(tmp_path, key):
    async def body(rig: Rig) -> None:
        registered = rig.server.store.get_by_endpoint(rig.endpoint)

        async def renewed() -> bool:
            current = rig.server.store.get_by_endpoint(rig.endpoint)
            return current is not None and current.updated_at > registered.updated_at

        await eventually(renewed, timeout=4)
        assert rig.server.store.get_by_endpoint(rig.endpoint).registration_id == registered.registration_id

    with_rig(tmp_path, key, "tflm", body, lifetime=2)
