"""Over-the-air updates under faults: a lossy or duplicating link, a killed agent process, a tampered package.

Everything is real: the LwM2M server and the agent talk CoAP over UDP on loopback, packages are real
signed TFLM modules, installs run the self-test in the real runtime, and the agents killed here are
``python -m tinymlaas agent`` processes with their state directory on disk.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path as FsPath
from typing import Any

import aiocoap
import pytest

from helpers.packages import signed
from tinymlaas.agent import Agent, GestureStream, Installer, UpdateResult, UpdateState
from tinymlaas.agent.slots import CRASH_ENV
from tinymlaas.agent.update import UpdateTracker
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy import SigningKey
from tinymlaas.lwm2m.core import ContentFormat, Path
from tinymlaas.lwm2m.linkemu import LinkProfile, LinkStats, UdpLinkEmulator
from tinymlaas.lwm2m.server import Lwm2mServer
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import show_device
from tinymlaas.services.provisioning import provision_device
from tinymlaas.settings import Settings

from .conftest import MCU_BOARD, Package

BLOCK = 1024  # the agent asks for 1 KiB blocks
MODEL_NAME = "agent test cnn"


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 40) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


async def until(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``check`` every 20 ms until it holds; TimeoutError naming ``what`` otherwise."""
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise TimeoutError(f"not within {timeout} s: {what}") from None


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def public_key_file(tmp_path: FsPath, key: SigningKey) -> FsPath:
    path = tmp_path / "signing.pub"
    path.write_text(key.public_key_bytes().hex())
    return path


def _board_installer(state_dir: FsPath) -> Installer:
    board = load_catalog().board(MCU_BOARD)
    return Installer(
        state_dir, arena_limit_bytes=board.usable_ram_bytes, slot_flash_bytes=board.usable_flash_bytes
    )


def _read_json(path: FsPath) -> dict[str, Any]:
    return json.loads(path.read_text())


def _software(values: dict[Path, Any]) -> dict[int, Any]:
    return {path.resource_id: value for path, value in values.items() if path.resource_id is not None}


async def _read_software(server: Lwm2mServer, endpoint: str) -> dict[int, Any]:
    return _software(await server.devices.read(endpoint, "/9/0", accept=ContentFormat.SENML_JSON))


# -- a lossy or duplicating link ------------------------------------------------------------------

LOSSY = LinkProfile("lossy", latency_ms=2, jitter_ms=1, bandwidth_bps=10_000_000, loss=0.15, duplicate=0.0)
DUPLICATING = LinkProfile(
    "duplicating", latency_ms=2, jitter_ms=1, bandwidth_bps=10_000_000, loss=0.0, duplicate=0.2
)


def _faults(before: LinkStats, after: LinkStats) -> dict[str, int]:
    """Datagrams dropped and duplicated per direction between two snapshots."""
    return {
        "uplink dropped": after.uplink.dropped - before.uplink.dropped,
        "downlink dropped": after.downlink.dropped - before.downlink.dropped,
        "uplink duplicated": after.uplink.duplicated - before.uplink.duplicated,
        "downlink duplicated": after.downlink.duplicated - before.downlink.duplicated,
    }


# Seeds picked so that the update's own datagrams meet the fault in both directions: with 1963 one
# block request and one block response are lost (each costs a CoAP retransmission, 2-3 s); with 1 the
# server's Write and several blocks arrive twice.
@pytest.mark.parametrize(("profile", "seed"), [(LOSSY, 1963), (DUPLICATING, 1)], ids=["lossy", "duplicating"])
def test_an_update_over_a_lossy_or_duplicating_link_installs_and_runs(
    tmp_path: FsPath,
    key: SigningKey,
    packages: dict[tuple[str, int], Package],
    profile: LinkProfile,
    seed: int,
) -> None:
    package = signed(packages[("tflm", 1)].zip, key)
    blocks = -(-len(package) // BLOCK)
    assert blocks >= 10

    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=20)
        link = await UdpLinkEmulator.start(("127.0.0.1", server.port), profile, seed=seed)
        board = load_catalog().board(MCU_BOARD)
        agent = await Agent.start(
            board,
            "dev-link",
            f"coap://127.0.0.1:{link.port}",
            tmp_path,
            key.public_key_bytes(),
            sensor=GestureStream(seed=1),
            rate_hz=20,
            request_timeout=15,
        )
        try:
            await until(lambda: agent.registered, 15, "registered through the link")
            telemetry = agent.telemetry()
            assert telemetry is not None and telemetry.count == 0  # no model yet: nothing runs

            before = link.stats
            # The agent reaches the server through its link, so the Package URI names the link's end.
            uri = f"coap://127.0.0.1:{link.port}" + server.publish("v1", package, endpoints=["dev-link"])
            await server.devices.write("dev-link", "/9/0/3", uri)
            await until(lambda: agent.tracker.state is UpdateState.INSTALLED, 30, "INSTALLED")
            faults = _faults(before, link.stats)

            software = await _read_software(server, "dev-link")
            assert (software[7], software[9]) == (UpdateState.INSTALLED, UpdateResult.INSTALLED)
            assert (software[0], software[1], software[12]) == (MODEL_NAME, "1", True)
            assert "vectors within" in software[16]
            active = agent.slots.active()
            assert active is not None and active.confirmed and active.manifest["model"]["version"] == 1

            # The new model runs: inferences start after the install and keep coming.
            await until(lambda: (agent.telemetry() or telemetry).count >= 5, 10, "inferences")
            assert (await server.devices.read("dev-link", "/26241/0/10"))[Path(26241, 0, 10)] >= 5

            # The faults happened during the update, in both directions, not only on paper.
            if profile.loss:
                assert faults["uplink dropped"] > 0 and faults["downlink dropped"] > 0, faults
            if profile.duplicate:
                assert faults["uplink duplicated"] > 0 and faults["downlink duplicated"] > 0, faults
        finally:
            await agent.stop()
            link.close()
            await server.stop()

    run(scenario)


# -- the agent as a separate process ------------------------------------------------------------------


class CliAgent:
    """One run of ``python -m tinymlaas agent``; its output goes to a log file for failure messages."""

    def __init__(self, process: asyncio.subprocess.Process, log: FsPath) -> None:
        self.process = process
        self.log = log

    @classmethod
    async def start(
        cls,
        tmp_path: FsPath,
        *,
        endpoint: str,
        server_uri: str,
        state_dir: FsPath,
        public_key: FsPath,
        run_name: str,
        crash_at: str | None = None,
    ) -> CliAgent:
        env = {name: value for name, value in os.environ.items() if name != CRASH_ENV}
        env["TINYMLAAS_DATA_DIR"] = str(tmp_path / "data")
        if crash_at is not None:
            env[CRASH_ENV] = crash_at
        log = tmp_path / f"{run_name}.log"
        with open(log, "wb") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tinymlaas", "agent",
                "--board", MCU_BOARD, "--endpoint", endpoint, "--server", server_uri,
                "--state-dir", str(state_dir), "--public-key", str(public_key), "--sensor", "none",
                stdout=output, stderr=asyncio.subprocess.STDOUT, env=env,
            )  # fmt: skip
        return cls(process, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    async def wait(self, timeout: float) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"the agent did not exit within {timeout} s:\n{self.output()}") from None

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


async def _registered_anew(server: Lwm2mServer, endpoint: str, agent: CliAgent, previous: str | None) -> str:
    """Wait for a registration of ``endpoint`` other than ``previous``; its registration id."""

    def fresh() -> bool:
        if agent.process.returncode is not None:
            raise AssertionError(f"the agent exited with {agent.process.returncode}:\n{agent.output()}")
        registration = server.store.get_by_endpoint(endpoint)
        return registration is not None and registration.registration_id != previous

    await until(fresh, 20, f"{endpoint} registers")
    registration = server.store.get_by_endpoint(endpoint)
    assert registration is not None
    return registration.registration_id


async def _software_settles(
    server: Lwm2mServer, endpoint: str, agent: CliAgent, state: UpdateState, timeout: float = 20
) -> dict[int, Any]:
    """Read /9/0 until Update State is ``state``; the last values read."""
    software: dict[int, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                software = await _read_software(server, endpoint)
                if software[7] == state:
                    return software
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"/9/0 stayed at {software}:\n{agent.output()}") from None


class BlockCountingLink(UdpLinkEmulator):
    """A link emulator that also notes which package block each agent asks for, by agent address.

    A CoAP retransmission repeats its message id; it is counted once.
    """

    def __init__(self, upstream: tuple[str, int], profile: LinkProfile, seed: int) -> None:
        super().__init__(upstream, profile, seed)
        self.requests: dict[tuple[str, int], dict[int, int]] = {}  # agent address -> message id -> block

    def _from_client(self, data: bytes, client: tuple[str, int]) -> None:
        try:
            message = aiocoap.Message.decode(data)
        except aiocoap.error.UnparsableMessage:
            pass
        else:
            if message.code == aiocoap.GET and tuple(message.opt.uri_path[:1]) == ("pkg",):
                block = message.opt.block2
                self.requests.setdefault(client, {})[message.mid] = block.block_number if block else 0
        super()._from_client(data, client)

    def blocks_by_agent(self) -> list[list[int]]:
        """The blocks each agent address asked for, in order, agents in the order they first asked."""
        return [list(requests.values()) for requests in self.requests.values()]


# A slow link so that the download of a dozen blocks lasts long enough to be cut partway.
SLOW = LinkProfile("slow", latency_ms=40, jitter_ms=0, bandwidth_bps=32_000, loss=0.0, duplicate=0.0)


def test_an_agent_killed_mid_download_resumes_where_it_stopped(
    tmp_path: FsPath, key: SigningKey, public_key_file: FsPath, packages: dict[tuple[str, int], Package]
) -> None:
    package = signed(packages[("tflm", 1)].zip, key)
    blocks = -(-len(package) // BLOCK)
    assert blocks >= 10
    state_dir = tmp_path / "state"
    progress_file = state_dir / "download" / "progress.json"
    options = {"endpoint": "dev-cut", "state_dir": state_dir, "public_key": public_key_file}

    def progress() -> dict[str, Any] | None:
        return _read_json(progress_file) if progress_file.exists() else None

    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=10)
        link = await BlockCountingLink.start(("127.0.0.1", server.port), SLOW, seed=5)
        server_uri = f"coap://127.0.0.1:{link.port}"
        first = await CliAgent.start(tmp_path, server_uri=server_uri, run_name="first", **options)
        second: CliAgent | None = None
        try:
            registration = await _registered_anew(server, "dev-cut", first, None)
            # Through the link, as the agent sees the server.
            uri = server_uri + server.publish("v1", package, endpoints=["dev-cut"])
            await server.devices.write("dev-cut", "/9/0/3", uri)

            def partway() -> bool:
                saved = progress()
                return saved is not None and saved["offset"] >= 4 * BLOCK

            await until(partway, 15, "four blocks downloaded")
            await first.kill()
            assert first.process.returncode == -9
            saved = progress()
            assert saved is not None and saved["uri"] == uri and not saved["complete"], saved
            kept = saved["offset"] // BLOCK
            assert 4 <= kept < blocks and saved["offset"] == kept * BLOCK
            assert UpdateTracker(state_dir).state is UpdateState.DOWNLOAD_STARTED

            second = await CliAgent.start(tmp_path, server_uri=server_uri, run_name="second", **options)
            await _registered_anew(server, "dev-cut", second, registration)
            software = await _software_settles(server, "dev-cut", second, UpdateState.INSTALLED)
            assert software[9] == UpdateResult.INSTALLED, software
            assert (software[0], software[1], software[12]) == (MODEL_NAME, "1", True)
            assert "vectors within" in software[16]  # the self-test passed
            assert not progress_file.exists()

            before_kill, after_restart = link.blocks_by_agent()
            assert before_kill == list(range(len(before_kill))) and len(before_kill) >= kept
            # The restarted agent starts at the first block it does not have. The server's block-wise
            # cache is per client, so it may send block 0 once more to prime it; nothing else repeats.
            assert after_restart[0] == kept, after_restart
            assert [n for n in after_restart if n != kept] in (
                list(range(kept + 1, blocks)),
                [0, *range(kept + 1, blocks)],
            ), after_restart
            assert len(before_kill) + len(after_restart) <= blocks + 4 < 2 * blocks
        finally:
            await first.kill()
            if second is not None:
                await second.kill()
            link.close()
            await server.stop()

    run(scenario, 60)


# -- killed between install and confirm ------------------------------------------------------------


@pytest.mark.parametrize("previous", [1, None], ids=["over-a-confirmed-model", "first-install"])
def test_an_agent_killed_before_confirm_boots_the_confirmed_model_and_finishes_the_install(
    tmp_path: FsPath,
    key: SigningKey,
    public_key_file: FsPath,
    packages: dict[tuple[str, int], Package],
    previous: int | None,
) -> None:
    state_dir = tmp_path / "state"
    if previous is not None:
        old = packages[("tflm", previous)]
        assert _board_installer(state_dir).install_verified(old.manifest, old.files).installed
    new_version = 2 if previous is not None else 1
    package = signed(packages[("tflm", new_version)].zip, key)
    old_slot, new_slot = ("a", "b") if previous is not None else (None, "a")
    options = {"endpoint": "dev-crash", "state_dir": state_dir, "public_key": public_key_file}

    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=10)
        crashing = await CliAgent.start(
            tmp_path, server_uri=server.uri, run_name="crashing", crash_at="before-confirm", **options
        )
        restarted: CliAgent | None = None
        try:
            registration = await _registered_anew(server, "dev-crash", crashing, None)
            uri = server.uri + server.publish("new", package, endpoints=["dev-crash"])
            await server.devices.write("dev-crash", "/9/0/3", uri)
            assert await crashing.wait(20) == 137, crashing.output()

            # What the power cut left: the new model on trial, never confirmed; the old one confirmed.
            slots = _read_json(state_dir / "state.json")
            assert (slots["trial"], slots["confirmed"]) == (new_slot, old_slot), slots
            if old_slot is not None:
                manifest = _read_json(state_dir / "slots" / old_slot / "manifest.json")
                assert manifest["model"]["version"] == previous
            update = _read_json(state_dir / "update.json")
            assert (update["state"], update["result"]) == (
                UpdateState.DELIVERED,
                UpdateResult.DOWNLOADED_VERIFIED,
            ), update

            # Restarted without the crash point and with no new request from the server, the agent
            # drops the unconfirmed trial, boots the confirmed model and installs the delivered package.
            restarted = await CliAgent.start(tmp_path, server_uri=server.uri, run_name="restarted", **options)
            await _registered_anew(server, "dev-crash", restarted, registration)
            software = await _software_settles(server, "dev-crash", restarted, UpdateState.INSTALLED)
            assert software[9] == UpdateResult.INSTALLED, software
            assert (software[0], software[1], software[12]) == (MODEL_NAME, str(new_version), True)
            assert "vectors within" in software[16]
            slots = _read_json(state_dir / "state.json")
            assert (slots["confirmed"], slots["trial"], slots["previous"]) == (new_slot, None, old_slot)

            # The same package offered again is no newer than the one confirmed: refused as a replay.
            await server.devices.write("dev-crash", "/9/0/3", uri)
            software = await _software_settles(server, "dev-crash", restarted, UpdateState.INITIAL)
            assert software[9] == UpdateResult.INTEGRITY_CHECK_FAILURE, software
            assert "replay or downgrade" in software[16]
            # Signed anew it goes through once more, into the other slot.
            again = signed(packages[("tflm", new_version)].zip, key)
            uri = server.uri + server.publish("new-again", again, endpoints=["dev-crash"])
            await server.devices.write("dev-crash", "/9/0/3", uri)
            software = await _software_settles(server, "dev-crash", restarted, UpdateState.INSTALLED)
            assert (software[1], software[9]) == (str(new_version), UpdateResult.INSTALLED)
            assert _read_json(state_dir / "state.json")["confirmed"] == ("a" if new_slot == "b" else "b")
        finally:
            await crashing.kill()
            if restarted is not None:
                await restarted.kill()
            await server.stop()

    run(scenario, 60)


# -- a package altered after signing, through the fleet service ------------------------------------


def _altered(signed: bytes, member: str) -> bytes:
    """``signed`` with one member changed after signing: a payload byte, or the manifest's version."""
    with zipfile.ZipFile(io.BytesIO(signed)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    if member == "manifest.json":
        manifest = json.loads(members[member])
        manifest["model"]["version"] += 10
        members[member] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    else:
        data = members[member]
        members[member] = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("member", "reason"),
    [("model.tflite", "model.tflite"), ("manifest.json", "does not verify")],
    ids=["payload-altered", "manifest-altered"],
)
def test_a_package_altered_after_signing_is_refused_and_the_running_model_keeps_running(
    tmp_path: FsPath,
    key: SigningKey,
    packages: dict[tuple[str, int], Package],
    member: str,
    reason: str,
) -> None:
    context = Context(Settings(data_dir=tmp_path / "data"))
    endpoint = "dev-tamper"

    def device() -> dict[str, Any]:
        return show_device(context, endpoint)

    def inferences() -> int:
        return int(device().telemetry.get("inference_count") or 0)

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=5)
        board = load_catalog().board(MCU_BOARD)
        provision_device(context, endpoint, board.id, state_dir=tmp_path / "state")
        agent = await Agent.start(
            board,
            endpoint,
            fleet.uri,
            tmp_path / "state",
            key.public_key_bytes(),
            sensor=GestureStream(seed=3),
            rate_hz=20,
            telemetry_interval=0.2,
        )
        try:
            good = fleet.server.publish("v1", signed(packages[("tflm", 1)].zip, key), endpoints=[endpoint])
            await until(lambda: device().capabilities.get("runtime") == "tflm", 10, "reports read")
            await fleet.server.devices.write(endpoint, "/9/0/3", fleet.uri + good)
            await until(lambda: device().installed.get("update_state") == UpdateState.INSTALLED, 15)
            await until(lambda: inferences() > 0, 10, "telemetry from the first model")

            tampered = _altered(signed(packages[("tflm", 2)].zip, key), member)
            path = fleet.server.publish("v2-tampered", tampered, endpoints=[endpoint])
            await fleet.server.devices.write(endpoint, "/9/0/3", fleet.uri + path)
            await until(
                lambda: device().installed["update_result"] == UpdateResult.INTEGRITY_CHECK_FAILURE,
                15,
                "Update Result 53 on record",
            )
            installed = device().installed
            assert installed["update_state"] == UpdateState.INITIAL
            assert (installed["name"], installed["version"], installed["activated"]) == (
                MODEL_NAME,
                "1",
                True,
            )
            assert reason in installed["status_reason"]
            assert device().last_result == "integrity_check_failure"

            active = agent.slots.active()
            assert active is not None and active.confirmed and active.slot == "a"
            assert active.manifest["model"]["version"] == 1
            assert agent.download.uri is None  # the rejected bytes were dropped
            # The first model keeps running: the count the server records keeps growing.
            rejected_at = inferences()
            await until(lambda: inferences() >= rejected_at + 5, 10, "telemetry after the rejection")
        finally:
            await agent.stop()
            await fleet.stop()

    run(scenario)
