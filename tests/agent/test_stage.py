"""Pipeline stages on real agents: a head model on a source, its tail on a relay, a judge at the end,
hop messages over real DTLS-PSK on loopback, configured and read through a real LwM2M server."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

from tinymlaas.agent import Agent
from tinymlaas.agent.installer import Installer
from tinymlaas.agent.sensors import SensorSource
from tinymlaas.agent.stage import _requantized
from tinymlaas.catalog import load_catalog
from tinymlaas.compilers.base import MANIFEST_NAME, VariantArtifact
from tinymlaas.compilers.litert import LiteRtCompiler
from tinymlaas.compilers.tflm import TflmCompiler
from tinymlaas.deploy import SigningKey
from tinymlaas.lwm2m.core import Path
from tinymlaas.lwm2m.linkemu import PROFILES
from tinymlaas.lwm2m.server import Lwm2mServer
from tinymlaas.lwm2m.transport import CoapEndpoint, PeerUnreachable
from tinymlaas.split.wire import HopMessage, encode
from tinymlaas.squeeze.info import TensorInfo

from .conftest import LINUX_BOARD, MCU_BOARD

STAGE = 26242
TAIL_LABELS = ["background", "wave", "tap"]
JUDGE_LABELS = ["wave", "tap"]
SOURCE_KEY = bytes(range(16)).hex()
RELAY_KEY = bytes(range(16, 48)).hex()


@dataclass(frozen=True)
class Module:
    manifest: dict[str, Any]
    files: dict[str, bytes]


def _convert(model, representative: np.ndarray) -> bytes:
    from tinymlaas.squeeze.convert import Quantization, convert

    return convert(model, Quantization.INT8, representative.astype(np.float32))


def _module(tflite: bytes, runtime: str, name: str, labels: list[str] | None) -> Module:
    from tinymlaas.squeeze.variants import assess

    squeezed = assess(tflite, None, max_arena_bytes=64 * 1024)
    variant = VariantArtifact(
        variant_id=f"var-{name}",
        model_id=f"mdl-{name}",
        model_name=name,
        model_version=1,
        quantization=squeezed.quantization,
        tflite=tflite,
        info=squeezed.info,
        arena_bytes=squeezed.arena.arena_bytes,
        selftests=squeezed.selftests,
    )
    compiler, board = (TflmCompiler(), MCU_BOARD) if runtime == "tflm" else (LiteRtCompiler(), LINUX_BOARD)
    module = compiler.compile(
        variant, load_catalog().board(board), flash_bytes=len(tflite), ram_bytes=variant.arena_bytes or 0
    )
    with zipfile.ZipFile(io.BytesIO(module.to_zip())) as archive:
        files = {item: archive.read(item) for item in archive.namelist()}
    manifest = json.loads(files.pop(MANIFEST_NAME))
    if labels is not None:
        manifest["labels"] = labels
    return Module(manifest, files)


def _range_rows(tensor: dict[str, Any], width: int) -> np.ndarray:
    """Representative rows spanning exactly the values an int8 tensor can hold, so the next model's
    input gets the same quantization as the tensor it will be sent."""
    scale, zero = tensor["scale"], tensor["zero_point"]
    low, high = scale * (-128 - zero), scale * (127 - zero)
    rng = np.random.default_rng(3)
    rows = rng.uniform(low, high, size=(62, width))
    return np.concatenate([rows, np.full((1, width), low), np.full((1, width), high)])


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    """head (MCU, windows -> 8 int8 features, no labels), tail (gateway, features -> 3 labelled classes),
    judge (gateway, the tail's 3 probabilities -> 2 labelled classes)."""
    import keras

    keras.utils.set_random_seed(7)
    windows = np.random.default_rng(7).normal(size=(64, 64, 3))
    head = keras.Sequential(
        [
            keras.Input((64, 3)),
            keras.layers.Conv1D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(8),
        ]
    )
    head_module = _module(_convert(head, windows), "tflm", "head", None)
    tail = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    tail_tflite = _convert(tail, _range_rows(head_module.manifest["outputs"][0], 8))
    tail_module = _module(tail_tflite, "litert", "tail", TAIL_LABELS)
    judge = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    judge_tflite = _convert(judge, _range_rows(tail_module.manifest["outputs"][0], 3))
    return {
        "head": head_module,
        "tail": tail_module,
        "judge": _module(judge_tflite, "litert", "judge", JUDGE_LABELS),
    }


class Windows(SensorSource):
    """``n`` labelled windows, then none: a sensor whose every window the test can account for."""

    def __init__(self, n: int) -> None:
        self._rng = np.random.default_rng(n)
        self._left = n
        self.last_label: str | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (64, 3)

    def read(self) -> np.ndarray | None:
        if self._left == 0:
            return None
        self._left -= 1
        self.last_label = TAIL_LABELS[self._left % len(TAIL_LABELS)]
        return self._rng.normal(size=(64, 3)).astype(np.float32)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


class Rig:
    """One LwM2M server and the agents of one pipeline, each with its model installed beforehand."""

    def __init__(self, server: Lwm2mServer, tmp_path, modules: dict[str, Module]) -> None:
        self.server = server
        self.tmp_path = tmp_path
        self.modules = modules
        self.agents: dict[str, Agent] = {}
        self.key = SigningKey.generate()

    async def start(self, name: str, model: str, *, windows: int = 0, hop_port: int = 0) -> Agent:
        module = self.modules[model]
        board = load_catalog().board(MCU_BOARD if module.manifest["runtime"] == "tflm" else LINUX_BOARD)
        state_dir = self.tmp_path / name
        installer = Installer(
            state_dir, arena_limit_bytes=board.usable_ram_bytes, slot_flash_bytes=board.usable_flash_bytes
        )
        if installer.slots.active() is None:
            assert installer.install_verified(module.manifest, module.files).installed
        agent = await Agent.start(
            board,
            name,
            self.server.uri,
            state_dir,
            self.key.public_key_bytes(),
            sensor=Windows(windows) if windows else None,
            rate_hz=50,
            request_timeout=1.5,
            telemetry_interval=0.5,
            hop_port=hop_port,
        )
        self.agents[name] = agent
        return agent

    async def stop(self, name: str) -> None:
        await self.agents.pop(name).stop()

    async def configure(self, name: str, **resources: Any) -> None:
        values: dict[Path, Any] = {}
        for resource, value in resources.items():
            rid = int(resource.removeprefix("r"))
            if isinstance(value, list):
                values.update({Path(STAGE, 0, rid, i): item for i, item in enumerate(value)})
            else:
                values[Path(STAGE, 0, rid)] = value
        await self.server.devices.write(name, f"/{STAGE}/0", values)

    async def read(self, name: str) -> dict[int, Any]:
        values = await self.server.devices.read(name, f"/{STAGE}/0")
        return {
            path.resource_id: value for path, value in values.items() if path.resource_instance_id is None
        }

    async def listen_uri(self, name: str) -> str:
        return (await self.read(name))[7]


def run(tmp_path, modules, body: Callable[[Rig], Awaitable[None]], timeout: float = 40) -> None:
    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=5)
        rig = Rig(server, tmp_path, modules)
        try:
            await body(rig)
        finally:
            for name in list(rig.agents):
                await rig.stop(name)
            await server.stop()

    asyncio.run(asyncio.wait_for(scenario(), timeout))


async def _relay(rig: Rig, name: str, model: str, *, upstream: str, **resources: Any) -> str:
    """A relay node taking hops from ``upstream`` (whose key is SOURCE_KEY); returns its Listen URI."""
    if name not in rig.agents:
        await rig.start(name, model, hop_port=resources.pop("hop_port", 0))
    config = {"r0": "p1", "r1": name, "r2": "relay", "r6": [f"{upstream}={SOURCE_KEY}"], **resources}
    await rig.configure(name, **config)
    return await rig.listen_uri(name)


def test_a_cascade_delivers_every_window_and_filters_by_condition(tmp_path, modules):
    windows = 12

    async def body(rig: Rig) -> None:
        last_uri = await _relay(rig, "last", "judge", upstream="mid")
        mid_uri = await _relay(
            rig, "mid", "tail", upstream="src", r3=[last_uri], r4="not:background", r5=SOURCE_KEY
        )
        assert mid_uri.startswith("coaps://127.0.0.1:") and mid_uri != last_uri
        await rig.start("src", "head", windows=0)
        await rig.configure("src", r0="p1", r1="head", r2="source", r3=[mid_uri], r5=SOURCE_KEY)
        await rig.stop("src")
        await rig.start("src", "head", windows=windows)

        async def settled() -> bool:
            src, mid = await rig.read("src"), await rig.read("mid")
            last = await rig.read("last")
            return (
                src[11] == windows
                and mid[10] == windows
                and mid[12] + mid[13] == windows
                and mid[11] == mid[12]
                and last[10] == mid[12]
            )

        await eventually(settled)
        src, mid, last = await rig.read("src"), await rig.read("mid"), await rig.read("last")
        assert (src[10], src[12], src[13], src[14], src[15]) == (windows, windows, 0, 0, 0)
        assert src[16] > 0 and src[17] > 0 and src[18] == 0.0  # not the last stage: no end-to-end
        assert mid[19] in TAIL_LABELS and mid[17] > 0 and mid[14] == 0
        assert last[19] in JUDGE_LABELS and last[20] == last[10] and 0 <= last[21] <= last[20]
        assert last[18] > 0 and last[22] > 0
        assert (last[11], last[12], last[13]) == (0, 0, 0)

        # The same windows again, through a gate that stops what the tail has been answering.
        await rig.configure("mid", r4=f"not:{mid[19]}")
        await rig.stop("src")
        await rig.start("src", "head", windows=windows)

        async def judged() -> bool:
            return (await rig.read("mid"))[10] == 2 * windows

        await eventually(judged)
        await asyncio.sleep(0.3)
        gate, end = await rig.read("mid"), await rig.read("last")
        assert gate[13] > 0 and gate[12] + gate[13] == 2 * windows
        assert gate[11] == gate[12] and end[10] == gate[12]  # nothing was sent for what was stopped

    run(tmp_path, modules, body)


def test_only_known_peers_with_their_key_get_through_and_bad_messages_get_4_00(tmp_path, modules):
    async def body(rig: Rig) -> None:
        uri = await _relay(rig, "relay", "tail", upstream="src")
        head_out = modules["head"].manifest["outputs"][0]
        good = HopMessage(
            pipeline="p1",
            stage="head",
            seq=1,
            origin="src",
            created_at_ms=1.0,
            tensor=bytes(8),
            shape=tuple(head_out["shape"]),
            scale=head_out["scale"],
            zero_point=head_out["zero_point"],
        )

        async def post(identity: str, key: str, payload: bytes, path: str = "/hop/p1/head"):
            coap = await CoapEndpoint.connect_secure(uri, identity, bytes.fromhex(key), _no_requests)
            try:
                return await coap.request("POST", uri + path, payload, content_format=60, timeout=1.5)
            finally:
                await coap.close()

        for identity, key in (("intruder", SOURCE_KEY), ("src", RELAY_KEY)):
            with pytest.raises(PeerUnreachable):
                await post(identity, key, encode(good))
        bad = await post("src", SOURCE_KEY, b"\xff not cbor")
        assert bad.code == "4.00" and "CBOR" in bad.diagnostic
        misshapen = await post("src", SOURCE_KEY, encode(replace(good, tensor=bytes(4), shape=(1, 4))))
        assert misshapen.code == "4.00" and "shape" in misshapen.diagnostic
        assert (await post("src", SOURCE_KEY, encode(good), "/hop/other/head")).code == "4.04"
        assert (await rig.read("relay"))[10] == 0
        assert (await post("src", SOURCE_KEY, encode(good))).code == "2.04"
        assert (await post("src", SOURCE_KEY, encode(good))).code == "2.04"  # a resend counts once
        counters = await rig.read("relay")
        assert (counters[10], counters[20]) == (1, 0) and counters[19] in TAIL_LABELS
        wrong = next(label for label in TAIL_LABELS if label != counters[19])
        for seq, label in ((2, counters[19]), (3, wrong)):
            assert (await post("src", SOURCE_KEY, encode(replace(good, seq=seq, label=label)))).code == "2.04"
        counters = await rig.read("relay")
        assert (counters[10], counters[20], counters[21]) == (3, 2, 1)
        # A tensor on another int8 grid (a cascade's window) is moved onto the model's and run.
        regridded = encode(replace(good, seq=4, scale=good.scale * 2))
        assert (await post("src", SOURCE_KEY, regridded)).code == "2.04"
        assert (await rig.read("relay"))[10] == 4

    run(tmp_path, modules, body)


def test_a_tensor_on_another_grid_is_requantized_onto_the_models_input() -> None:
    q = np.arange(-128, 128, dtype=np.int8)
    message = HopMessage(
        pipeline="p", stage="s", seq=0, origin="o", created_at_ms=0.0,
        tensor=q.tobytes(), shape=(1, 256), scale=0.5, zero_point=4,
    )  # fmt: skip
    same = TensorInfo("in", (1, 256), "int8", scale=0.5, zero_point=4)
    assert np.array_equal(_requantized(message, same), q.reshape(1, 256))
    other = TensorInfo("in", (1, 256), "int8", scale=1.0, zero_point=-10)
    expected = np.clip(np.round((q.astype(np.float32) - 4) * 0.5) - 10, -128, 127).astype(np.int8)
    assert np.array_equal(_requantized(message, other), expected.reshape(1, 256))


async def _no_requests(request):
    raise AssertionError(f"unexpected request {request}")


def test_a_bad_write_is_refused_whole_and_the_old_configuration_stays(tmp_path, modules):
    async def body(rig: Rig) -> None:
        await rig.start("relay", "tail")
        await rig.start("head", "head")
        good = {"r0": "p1", "r1": "tail", "r2": "relay", "r3": ["coaps://127.0.0.1:9"], "r4": "not:tap"}
        await rig.configure("relay", **good, r5=RELAY_KEY, r9="all")
        before = await rig.read("relay")
        wrong = {
            "/26242/0/4": {"r4": "label:unknown"},
            "/26242/0/3": {"r3": ["http://127.0.0.1:9"]},
            "/26242/0/5": {"r5": "abcd"},
            "/26242/0/6": {"r6": ["src=zz"]},
            "/26242/0/8": {"r8": "carrier-pigeon"},
            "/26242/0/2": {"r2": "boss"},
        }
        for named, resources in wrong.items():
            with pytest.raises(Exception, match=named) as refused:
                await rig.configure("relay", r0="p2", **resources)
            assert "4.00" in str(refused.value)
        assert await rig.read("relay") == before
        assert before[0] == "p1" and before[4] == "not:tap" and before[9] == "all"
        with pytest.raises(Exception, match="no labels"):
            await rig.configure("head", r0="p1", r1="head", r2="source", r4="score>=0.5")

    run(tmp_path, modules, body)


def test_the_outbox_outlives_an_offline_next_hop_and_a_restart(tmp_path, modules):
    windows = 6
    port = _free_port()

    async def body(rig: Rig) -> None:
        uri = await _relay(rig, "relay", "tail", upstream="src", hop_port=port)
        await rig.stop("relay")
        await rig.start("src", "head")
        await rig.configure("src", r0="p1", r1="head", r2="source", r3=[uri], r5=SOURCE_KEY, r23="output")
        await rig.stop("src")
        await rig.start("src", "head", windows=windows)
        assert (await rig.read("src"))[23] == "output"

        async def waiting() -> bool:
            counters = await rig.read("src")
            return counters[15] == windows and counters[14] > 0

        await eventually(waiting)
        await rig.stop("src")
        await rig.start("src", "head")
        assert (await rig.read("src"))[15] == windows
        await rig.start("relay", "tail", hop_port=port)
        assert await rig.listen_uri("relay") == uri

        async def delivered() -> bool:
            return (await rig.read("src"))[11] == windows

        await eventually(delivered)
        await asyncio.sleep(0.5)
        relay, src = await rig.read("relay"), await rig.read("src")
        assert (src[11], src[15]) == (windows, 0)
        assert (relay[10], relay[20]) == (windows, windows)

    run(tmp_path, modules, body, timeout=60)


def test_a_hop_over_the_ble_profile_takes_at_least_its_latency(tmp_path, modules):
    async def body(rig: Rig) -> None:
        uri = await _relay(rig, "relay", "tail", upstream="src")
        await rig.start("src", "head")
        await rig.configure("src", r0="p1", r1="head", r2="source", r3=[uri], r5=SOURCE_KEY, r8="ble")
        await rig.stop("src")
        await rig.start("src", "head", windows=3)

        async def delivered() -> bool:
            return (await rig.read("src"))[11] == 3

        await eventually(delivered, timeout=25)
        assert (await rig.read("src"))[16] >= PROFILES["ble"].latency_ms
        assert (await rig.read("relay"))[10] == 3

    run(tmp_path, modules, body)


def test_round_robin_spreads_messages_over_next_hops_and_all_copies_them_to_each(tmp_path, modules):
    async def body(rig: Rig) -> None:
        first = await _relay(rig, "first", "tail", upstream="src")
        second = await _relay(rig, "second", "tail", upstream="src")
        await rig.start("src", "head")
        await rig.configure("src", r0="p1", r1="head", r2="source", r3=[first, second], r5=SOURCE_KEY)
        await rig.stop("src")
        await rig.start("src", "head", windows=6)

        async def delivered(count: int) -> bool:
            return (await rig.read("src"))[11] == count

        await eventually(lambda: delivered(6))
        assert [(await rig.read(name))[10] for name in ("first", "second")] == [3, 3]

        await rig.configure("src", r9="all")
        await rig.stop("src")
        await rig.start("src", "head", windows=4)
        await eventually(lambda: delivered(8))
        assert [(await rig.read(name))[10] for name in ("first", "second")] == [7, 7]

    run(tmp_path, modules, body)


def test_the_whole_configuration_survives_a_restart(tmp_path, modules):
    async def body(rig: Rig) -> None:
        uri = await _relay(rig, "relay", "tail", upstream="src")
        await rig.start("src", "head")
        written = {"r0": "p1", "r1": "head", "r2": "source", "r3": [uri], "r5": SOURCE_KEY}
        await rig.configure("src", **written, r8="ble", r9="all", r23="input")
        before = await rig.read("src")
        await rig.stop("src")
        await rig.start("src", "head")
        after = await rig.read("src")
        assert [after[r] for r in (0, 1, 2, 4, 8, 9, 23)] == [before[r] for r in (0, 1, 2, 4, 8, 9, 23)]
        assert after[23] == "input" and after[9] == "all" and after[8] == "ble"

    run(tmp_path, modules, body)
