"""Emulated nodes for ``split.py``: a device agent running a head, a gateway agent running the tail.

Each cut gets two fresh agents registered with one real LwM2M server: the device (an MCU board) runs
its module (a native module paced to its own on-target estimate), the gateway (a Linux board) runs
LiteRT. Both are configured by LwM2M Writes of the Pipeline Stage object (26242) and read back through
the server, as ``tinymlaas pipelines apply`` would; the hop between them is CoAP over DTLS-PSK through
the link emulator the device's Hop Link names.

The device's sensor hands out one window only when the bench releases it, and the bench releases the
next only once the previous message is counted at the gateway and acknowledged to the device: a
message that waits in the outbox behind the previous one would add queueing the planner does not
model, and the comparison is of one message's latency, not of throughput.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinymlaas.agent import Agent
from tinymlaas.agent.installer import Installer
from tinymlaas.agent.sensors import SensorSource
from tinymlaas.catalog.board import Board, BoardClass
from tinymlaas.compilers.base import MANIFEST_NAME, Compiler, VariantArtifact
from tinymlaas.data.scaling import InputScaling
from tinymlaas.deploy import SigningKey
from tinymlaas.lwm2m.core import Path as LwPath
from tinymlaas.lwm2m.server import Lwm2mServer
from tinymlaas.squeeze.runtimes import quantize
from tinymlaas.squeeze.variants import assess

__all__ = ["STAGE", "Module", "Node", "Rig", "WindowGate", "build_module", "eventually"]

STAGE = 26242
# TFLM arena searched for a part: a MobileNet head on 96×96 needs a few hundred KiB; the device's
# own RAM budget is applied when the agent installs the module, as a board would refuse it.
MAX_ARENA_BYTES = 4 * 1024 * 1024
HOP_KEY = bytes(range(16)).hex()
# An inference loop polls the gate this often; the poll wait is before the window is read, so it is
# not part of the end-to-end latency, which starts when the window is read.
POLL_HZ = 500.0


@dataclass(frozen=True)
class Module:
    """A compiled module as a device receives it: the manifest and the files it lists."""

    manifest: dict[str, Any]
    files: dict[str, bytes]

    @property
    def target_ms(self) -> float | None:
        """The on-target latency estimate a paced runner holds each inference to, if any."""
        target = self.manifest.get("target")
        return target.get("latency_ms") if isinstance(target, dict) else None


def build_module(
    tflite: bytes,
    compiler: Compiler,
    board: Board,
    name: str,
    *,
    scaling: InputScaling | None = None,
    labels: Sequence[str] = (),
    quantization: str | None = None,
    vectors: np.ndarray | None = None,
) -> Module:
    """Compile ``tflite`` for ``board`` as ``tinymlaas compile`` would: assess it in TFLM and LiteRT
    for its self-test vectors, then the compiler's files, on-target measurement and manifest.

    ``quantization`` overrides what inspection calls the variant: a model with int8 input and output
    but no weights at all (a lone RESHAPE) has no int8 weight to be recognised by, and is called
    float32, which the native compiler would refuse. ``vectors`` (in the model's input units) are
    the test inputs a measuring compiler checks and counts on, as the dataset's test split would be;
    without them it takes the self-test vectors.
    """
    scaling = scaling or InputScaling.from_dict(None)
    squeezed = assess(tflite, None, max_arena_bytes=MAX_ARENA_BYTES, name=name, scaling=scaling)
    variant = VariantArtifact(
        variant_id=f"var-{name}",
        model_id=f"mdl-{name}",
        model_name=name,
        model_version=1,
        quantization=quantization or squeezed.quantization,
        tflite=tflite,
        info=squeezed.info,
        arena_bytes=squeezed.arena.arena_bytes,
        selftests=squeezed.selftests,
        input_scaling=scaling,
        labels=tuple(labels),
        test_vectors=()
        if vectors is None
        else tuple(quantize(v[np.newaxis], squeezed.info.inputs[0]).tobytes() for v in vectors),
    )
    module = compiler.compile(variant, board, flash_bytes=len(tflite), ram_bytes=variant.arena_bytes or 0)
    with zipfile.ZipFile(io.BytesIO(module.to_zip())) as archive:
        files = {item: archive.read(item) for item in archive.namelist()}
    return Module(json.loads(files.pop(MANIFEST_NAME)), files)


class WindowGate(SensorSource):
    """The device's sensor: one window from ``windows`` (cycled) each time the bench releases one."""

    def __init__(self, windows: np.ndarray) -> None:
        self._windows = windows
        self._next = 0
        self._released = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._windows.shape[1:])

    def release(self) -> None:
        self._released += 1

    def read(self) -> np.ndarray | None:
        if self._released == 0:
            return None
        self._released -= 1
        window = self._windows[self._next % len(self._windows)]
        self._next += 1
        return window


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds; TimeoutError naming ``what`` when it does not within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = check()
                if await result if isinstance(result, Awaitable) else result:
                    return
                await asyncio.sleep(0.002)
    except TimeoutError:
        raise TimeoutError(f"{what}: not within {timeout:g} s") from None


@dataclass
class Node:
    """One started agent and what it was started as."""

    name: str
    agent: Agent
    board: Board


class Rig:
    """One LwM2M server and the two agents of the cut being measured."""

    def __init__(self, server: Lwm2mServer, root: Path) -> None:
        self.server = server
        self.root = root
        self.key = SigningKey.generate()
        self._started = 0

    @classmethod
    async def start(cls, root: Path) -> Rig:
        return cls(await Lwm2mServer.start("127.0.0.1", 0, request_timeout=10), root)

    async def stop(self) -> None:
        await self.server.stop()

    async def node(self, name: str, board: Board, module: Module, sensor: SensorSource | None) -> Node:
        """A fresh agent with ``module`` installed and self-tested in its slot before it boots."""
        self._started += 1
        state_dir = self.root / f"{self._started:04d}-{name}"
        arena_limit = board.usable_ram_bytes if board.board_class is BoardClass.MCU else None
        installer = Installer(
            state_dir, arena_limit_bytes=arena_limit, slot_flash_bytes=board.usable_flash_bytes
        )
        outcome = installer.install_verified(module.manifest, module.files)
        if not outcome.installed:
            raise RuntimeError(f"{name} on {board.id} refused the module: {outcome.detail}")
        agent = await Agent.start(
            board,
            name,
            self.server.uri,
            state_dir,
            self.key.public_key_bytes(),
            sensor=sensor,
            rate_hz=POLL_HZ,
            telemetry_interval=3600.0,
        )
        return Node(name, agent, board)

    async def configure(self, node: Node, resources: Mapping[int, Any]) -> None:
        """One LwM2M Write of Object 26242 instance 0 through the server."""
        values: dict[LwPath, Any] = {}
        for rid, value in resources.items():
            if isinstance(value, list):
                values.update({LwPath(STAGE, 0, rid, i): item for i, item in enumerate(value)})
            else:
                values[LwPath(STAGE, 0, rid)] = value
        await self.server.devices.write(node.name, f"/{STAGE}/0", values)

    async def read(self, node: Node) -> dict[int, Any]:
        """Object 26242 instance 0 as the server reads it from the node."""
        values = await self.server.devices.read(node.name, f"/{STAGE}/0")
        return {
            path.resource_id: value for path, value in values.items() if path.resource_instance_id is None
        }

    async def pair(
        self,
        device: tuple[Board, Module, WindowGate],
        gateway: tuple[Board, Module],
        *,
        link: str,
        forward: str,
    ) -> tuple[Node, Node]:
        """Start the gateway as the relay, then the device as the source sending to it over ``link``;
        endpoint names carry the link, so pairs on different links may run side by side."""
        relay = await self.node(f"{link}-gateway", gateway[0], gateway[1], None)
        source = await self.node(f"{link}-device", *device)
        await self.configure(relay, {0: "split", 1: "tail", 2: "relay", 6: [f"{source.name}={HOP_KEY}"]})
        uri = (await self.read(relay))[7]
        await self.configure(
            source, {0: "split", 1: "head", 2: "source", 3: [uri], 5: HOP_KEY, 8: link, 23: forward}
        )
        return source, relay

    @staticmethod
    async def unpair(*nodes: Node) -> None:
        for node in nodes:
            await node.agent.stop()
