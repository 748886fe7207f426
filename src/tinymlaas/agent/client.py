"""The device agent's LwM2M client: registration, the objects it serves, and over-the-air model updates.

One ``Agent`` is one device. It binds a CoAP endpoint, registers with the LwM2M server (``/rd``) and
keeps the registration alive with Updates; it serves Read (SenML JSON/CBOR, plain text for single
resources), Write, Execute, Discover and Observe on four object instances:

- ``/3/0`` Device: manufacturer "TinyMLaaS emulator", the board id as model number, the endpoint name as
  serial number, memory from the board profile. Reboot re-registers and reloads the model from its slot.
- ``/4/0`` Connectivity Monitoring, emulated: the bearer is the board's first transport that LwM2M has a
  code for (Ethernet, WLAN, Bluetooth; Ethernet otherwise), the signal a fixed -60 dBm on radio bearers,
  the IP address the one the agent is bound to. The datagrams themselves always travel over UDP/IP.
- ``/9/0`` Software Management: the installed model (from the active slot's manifest) and the update
  state machine of DESIGN.md §4.
- ``/26241/0`` TinyML Runtime: the board's preferred runtime, its version and operators, the RAM left for
  the tensor arena and the flash of a model slot, and the inference loop's telemetry, which observers
  receive every ``telemetry_interval`` seconds while it changes.

Updates: writing a ``coap://`` Package URI to ``/9/0/3`` starts DOWNLOAD_STARTED; the package is fetched
one Block2 block at a time and every block is kept under ``state_dir/download/`` (the bytes, the offset
reached, the URI), so a restarted agent continues where it stopped instead of at block 0. Then
DOWNLOADED; the signature and every file are checked against the provisioned public key
(``verify_package``; a rejection goes back to INITIAL with its Update Result); DELIVERED; and the agent
installs right away, into the inactive A/B slot with a self-test (``Installer``): INSTALLED with result 2,
or DELIVERED with result 58 while the previous model keeps running. Executing ``/9/0/4`` Install on a
DELIVERED package installs it again (after a failure, say); on an INSTALLED one it changes nothing.
Deactivate (``/9/0/11``) stops inference and Activate (``/9/0/10``) resumes it, until the next restart.
Uninstall (``/9/0/6``) goes back to the model that ran before the last update, after its self-test
passes again; the state stays INSTALLED, now with that model's name and version (a campaign rollback).
Slots, update state and download progress live in ``state_dir`` and survive restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path as FsPath
from typing import Any
from urllib.parse import urlsplit

import tflite

from tinymlaas.agent.inference import HISTOGRAM_BINS, MAX_RATE_HZ, InferenceLoop, Telemetry
from tinymlaas.agent.installer import Installer, package_digest
from tinymlaas.agent.runtime import load_model
from tinymlaas.agent.sensors import SensorSource
from tinymlaas.agent.slots import SlotStore, write_json_atomic
from tinymlaas.agent.update import UpdateResult, UpdateState, UpdateTracker
from tinymlaas.agent.uploader import OUTBOX_DIR, Collection, CollectStats, SampleUploader
from tinymlaas.catalog import load_catalog
from tinymlaas.catalog.board import Board, BoardClass
from tinymlaas.deploy.package import PackageRejected, VerifiedPackage, verify_package
from tinymlaas.deploy.signing import load_public_key
from tinymlaas.errors import Conflict, InvalidInput, NotFound, TinymlaasError
from tinymlaas.lwm2m.core import (
    OBJECTS,
    ContentFormat,
    Link,
    Path,
    Value,
    format_links,
    format_text,
    parse_text,
    senml,
)
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse, PeerUnreachable
from tinymlaas.lwm2m.transport.coap import DEFAULT_BLOCK_SZX, CoapBlock
from tinymlaas.squeeze.runtimes import Runner

__all__ = ["MANUFACTURER", "Agent", "AgentEvent", "EventCallback", "PackageDownload"]

_log = logging.getLogger(__name__)

MANUFACTURER = "TinyMLaaS emulator"
DEFAULT_RATE_HZ = 10.0
DOWNLOAD_DIR = "download"
# How long block requests may go unanswered in a row before the download fails with 52; it rides out a
# congested or briefly dead link, as on NB-IoT.
DOWNLOAD_STALL_S = 180.0
# One block request waits as long as CoAP retransmits a confirmable message (MAX_TRANSMIT_WAIT, 93 s
# with RFC 7252's defaults). A shorter wait would abandon a request the CoAP layer still retransmits,
# and the next block request would queue behind it (one outstanding request per peer).
BLOCK_TIMEOUT_S = 95.0
_INSTANCES = (Path(3, 0), Path(4, 0), Path(9, 0), Path(26241, 0))
_WRITABLE = frozenset({Path(9, 0, 3), Path(26241, 0, 15)})
# LwM2M Network Bearer codes (Object 4 resource 0) for the transports a board profile lists.
_BEARERS = {"ethernet": 41, "wifi": 21, "ble": 22, "802.15.4": 23, "thread": 23}
_RADIO_BEARERS = frozenset({21, 22, 23})
_EMULATED_SIGNAL_DBM = -60
_SOFTWARE = tuple(Path(9, 0, resource) for resource in (0, 1, 7, 9, 12, 16))
_TELEMETRY = (
    *(Path(26241, 0, resource) for resource in (10, 11, 12, 13, 14)),
    *(Path(26241, 0, 14, bin_) for bin_ in range(HISTOGRAM_BINS)),
)
# Markers in the generated TFLite schema, not operators a model can use.
_NOT_OPERATORS = frozenset({"CUSTOM", "DELEGATE", "PLACEHOLDER_FOR_GREATER_OP_CODES"})
_RUNTIME_PACKAGES = {"tflm": "tflite-micro", "litert": "ai-edge-litert"}


@dataclass(frozen=True)
class AgentEvent:
    """Something worth telling the operator: ``kind`` is one of registered, registration-failed,
    deregistered, update (a state change), download (one block, ``block`` is its number), installed and
    install-failed; when collecting samples also collect-paused, collect-resumed, collect-dropped and
    collect-rejected (see ``tinymlaas.agent.uploader``)."""

    kind: str
    message: str
    block: int | None = None


EventCallback = Callable[[AgentEvent], Awaitable[None] | None]


class _UpdateFailed(Exception):
    """Ends an update in INITIAL with ``result``."""

    def __init__(self, result: UpdateResult, detail: str) -> None:
        super().__init__(detail)
        self.result = result
        self.detail = detail


def _fsync_dir(path: FsPath) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PackageDownload:
    """The package download in progress, persisted under ``state_dir/download/``.

    ``package.part`` holds the bytes received so far; ``progress.json`` the URI, the offset those bytes
    reach, the block size in use and whether the last block arrived. Bytes reach the disk (``fsync``)
    before the offset that counts them, so after a power cut the file may be longer than the offset but
    never shorter; opening trims it back.
    """

    def __init__(self, state_dir: FsPath) -> None:
        self.directory = FsPath(state_dir) / DOWNLOAD_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self._part = self.directory / "package.part"
        self._progress_path = self.directory / "progress.json"
        self.uri: str | None = None
        self.offset = 0
        self.szx = DEFAULT_BLOCK_SZX
        self.complete = False
        self._open()

    def _open(self) -> None:
        if not self._progress_path.exists():
            return
        try:
            saved = json.loads(self._progress_path.read_text())
            uri, offset, szx, complete = saved["uri"], saved["offset"], saved["szx"], saved["complete"]
        except (OSError, ValueError, KeyError, TypeError):
            self.clear()
            return
        size = self._part.stat().st_size if self._part.exists() else -1
        if not isinstance(uri, str) or not isinstance(offset, int) or size < offset:
            self.clear()
            return
        if size > offset:
            with open(self._part, "r+b") as handle:
                handle.truncate(offset)
        self.uri, self.offset, self.szx, self.complete = uri, offset, int(szx), bool(complete)

    def _save(self) -> None:
        write_json_atomic(
            self._progress_path,
            {"uri": self.uri, "offset": self.offset, "szx": self.szx, "complete": self.complete},
        )

    def begin(self, uri: str) -> None:
        """Start a new download of ``uri`` from its first byte."""
        self._part.write_bytes(b"")
        self.uri, self.offset, self.szx, self.complete = uri, 0, DEFAULT_BLOCK_SZX, False
        self._save()

    def write(self, offset: int, data: bytes, *, szx: int, complete: bool) -> None:
        """Keep ``data`` as the bytes from ``offset`` on (dropping any beyond), durably."""
        with open(self._part, "r+b") as handle:
            handle.truncate(offset)
            handle.seek(offset)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self.offset, self.szx, self.complete = offset + len(data), szx, complete
        self._save()

    def data(self) -> bytes:
        return self._part.read_bytes()[: self.offset]

    def clear(self) -> None:
        """Forget the download; a later one starts from nothing."""
        self._progress_path.unlink(missing_ok=True)
        self._part.unlink(missing_ok=True)
        _fsync_dir(self.directory)
        self.uri, self.offset, self.szx, self.complete = None, 0, DEFAULT_BLOCK_SZX, False


def _below(values: Mapping[Path, Value], path: Path) -> dict[Path, Value]:
    return {key: value for key, value in values.items() if key.ids[: len(path.ids)] == path.ids}


def _with_ancestors(paths: Iterable[Path]) -> set[Path]:
    found: set[Path] = set()
    for path in paths:
        ids = path.ids
        found.update(Path(*ids[:depth]) for depth in range(1, len(ids) + 1))
    return found


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _supported_ops(board: Board) -> tuple[str, ...]:
    """The operators the board's preferred runtime implements; LiteRT has every TFLite builtin."""
    profile = load_catalog().runtime(board.runtimes[0])
    if profile.supported_ops is not None:
        return tuple(sorted(profile.supported_ops))
    names = (name for name in vars(tflite.BuiltinOperator) if name.isupper() and name not in _NOT_OPERATORS)
    return tuple(sorted(names))


def _bind_host(server_uri: str) -> str:
    """Loopback when the server is on this host (nothing else can reach it then), every address otherwise."""
    host = urlsplit(server_uri).hostname or ""
    if host == "localhost":
        return "127.0.0.1"
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
        if address.is_loopback:
            return str(address)
    return "::"


class Agent:
    """One device: an LwM2M client over CoAP with A/B model slots, signed updates and inference.

    Create it with ``start`` and end it with ``stop``. ``tracker``, ``slots`` and ``download`` expose the
    persisted update state; ``telemetry()`` the inference loop's figures.
    """

    _coap: CoapEndpoint
    _uploader: SampleUploader | None = None

    def __init__(
        self,
        board: Board,
        endpoint: str,
        server_uri: str,
        state_dir: FsPath,
        public_key: bytes,
        *,
        lifetime: int,
        sensor: SensorSource | None,
        rate_hz: float,
        telemetry_interval: float,
        request_timeout: float,
        on_event: EventCallback | None,
    ) -> None:
        parts = urlsplit(server_uri)
        if parts.scheme != "coap" or not parts.hostname:
            raise InvalidInput(f"The server URI {server_uri!r} is not coap://host[:port]")
        if lifetime < 1:
            raise InvalidInput(f"A registration lifetime is at least 1 s, got {lifetime}")
        if not board.runtimes:
            raise InvalidInput(f"Board {board.id} lists no runtime to run models in")
        self.board = board
        self.endpoint = endpoint
        self.server_uri = server_uri.rstrip("/")
        self.state_dir = FsPath(state_dir)
        self.lifetime = lifetime
        self._public_key = load_public_key(bytes(public_key))
        self._telemetry_interval = telemetry_interval
        self._request_timeout = request_timeout
        self._on_event = on_event
        self._arena_limit = board.usable_ram_bytes if board.board_class is BoardClass.MCU else None
        self._installer = Installer(
            self.state_dir,
            arena_limit_bytes=self._arena_limit,
            slot_flash_bytes=board.usable_flash_bytes,
        )
        self.download = PackageDownload(self.state_dir)
        self._runtime = board.runtimes[0]
        self._runtime_version = _package_version(_RUNTIME_PACKAGES.get(self._runtime, self._runtime))
        self._ops = _supported_ops(board)
        self._activated = True
        self._rate_hz = rate_hz
        self._inference = InferenceLoop(self._load_runner(), sensor, rate_hz) if sensor is not None else None
        self._location: tuple[str, ...] | None = None
        self._reregister = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._update_task: asyncio.Task[None] | None = None
        self._installing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._host = ""

    @classmethod
    async def start(
        cls,
        board: Board,
        endpoint: str,
        server_uri: str,
        state_dir: FsPath,
        public_key: bytes,
        *,
        lifetime: int = 60,
        sensor: SensorSource | None = None,
        rate_hz: float = DEFAULT_RATE_HZ,
        bind_host: str | None = None,
        telemetry_interval: float = 5.0,
        request_timeout: float = 10.0,
        on_event: EventCallback | None = None,
        collect: Collection | None = None,
    ) -> Agent:
        """Bind, register (returning once the first attempt is answered or failed), and resume any update.

        ``public_key`` is the server's Ed25519 key (raw, hex or PEM bytes); only packages it signed are
        installed. ``sensor`` feeds the inference loop at ``rate_hz``; without one the agent runs no
        inference. An unreachable server is retried in the background with growing pauses. ``collect``
        uploads sensor windows into a dataset on the server (``tinymlaas.agent.uploader``), model or none.
        """
        agent = cls(
            board,
            endpoint,
            server_uri,
            state_dir,
            public_key,
            lifetime=lifetime,
            sensor=sensor,
            rate_hz=rate_hz,
            telemetry_interval=telemetry_interval,
            request_timeout=request_timeout,
            on_event=on_event,
        )
        if collect is not None:
            if agent._inference is None:
                raise InvalidInput("Collecting samples needs a sensor to take the windows from")
            agent._uploader = SampleUploader(
                collect,
                endpoint,
                agent.server_uri,
                agent.state_dir / OUTBOX_DIR,
                request_timeout=request_timeout,
                on_event=agent._emit,
            )
            agent._inference.on_window = agent._uploader.offer
        host = bind_host if bind_host is not None else _bind_host(agent.server_uri)
        agent._host = host
        agent._coap = await CoapEndpoint.bind(host, 0, agent._handle)
        if agent._uploader is not None:
            agent._tasks.append(
                asyncio.create_task(agent._uploader.run(agent._coap), name=f"{endpoint} uploads")
            )
        agent._tasks.append(asyncio.create_task(agent._keep_registered(), name=f"{endpoint} registration"))
        agent._tasks.append(asyncio.create_task(agent._report_telemetry(), name=f"{endpoint} telemetry"))
        if agent._inference is not None:
            agent._inference.start()
        if agent._resumable():
            agent._update_task = asyncio.create_task(agent._run_update(), name=f"{endpoint} update")
        await agent._first_attempt.wait()
        return agent

    async def stop(self, *, deregister: bool = True) -> None:
        """Stop every activity, de-register (unless told not to, as a power cut would) and unbind.

        An install running in its worker thread finishes there; its state is written atomically either way.
        """
        tasks = [*self._tasks, *([self._update_task] if self._update_task is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._inference is not None:
            await self._inference.stop()
        if deregister and self._location is not None:
            with contextlib.suppress(PeerUnreachable):
                await self._coap.request(
                    "DELETE", self._server_path(self._location), timeout=min(self._request_timeout, 2.0)
                )
            self._location = None
            await self._emit("deregistered", f"{self.endpoint} de-registered")
        await self._coap.close()

    # -- state seen from outside ------------------------------------------------------------------

    @property
    def tracker(self) -> UpdateTracker:
        return self._installer.tracker

    @property
    def slots(self) -> SlotStore:
        return self._installer.slots

    @property
    def registered(self) -> bool:
        return self._location is not None

    @property
    def uri(self) -> str:
        """Where this agent's CoAP endpoint listens."""
        return self._coap.uri

    def telemetry(self) -> Telemetry | None:
        """The inference loop's figures; None when the agent has no sensor."""
        return self._inference.telemetry() if self._inference is not None else None

    def collect_stats(self) -> CollectStats | None:
        """How many samples were taken, wait, went to the server or were lost; None when not collecting."""
        return self._uploader.stats() if self._uploader is not None else None

    # -- events and notifications -------------------------------------------------------------------

    async def _emit(self, kind: str, message: str, block: int | None = None) -> None:
        if kind != "download":
            _log.info("%s: %s", self.endpoint, message)
        if self._on_event is None:
            return
        try:
            result = self._on_event(AgentEvent(kind, message, block))
            if inspect.isawaitable(result):
                await result
        except Exception:
            _log.exception("event callback failed on %s", kind)

    def _changed(self, paths: Iterable[Path]) -> None:
        """Send fresh values to whoever observes these paths or an instance or object holding them."""
        for path in sorted(_with_ancestors(paths)):
            self._coap.notify(str(path))

    # -- registration ---------------------------------------------------------------------------

    def _server_path(self, location: Iterable[str]) -> str:
        return self.server_uri + "/" + "/".join(location)

    async def _register(self) -> bool:
        response = await self._coap.request(
            "POST",
            f"{self.server_uri}/rd",
            format_links(_INSTANCES).encode(),
            content_format=ContentFormat.LINK_FORMAT,
            query=(f"ep={self.endpoint}", f"lt={self.lifetime}", "lwm2m=1.1", "b=U"),
            timeout=self._request_timeout,
        )
        if response.code != "2.01" or not response.location_path:
            await self._emit("registration-failed", f"the server refused the registration: {response.code}")
            return False
        self._location = response.location_path
        await self._emit("registered", f"{self.endpoint} registered at {self._server_path(self._location)}")
        return True

    async def _update_registration(self, location: tuple[str, ...]) -> bool:
        response = await self._coap.request(
            "POST", self._server_path(location), timeout=self._request_timeout
        )
        if response.code == "4.04":
            # The server forgot us (it restarted, or our lifetime lapsed): register afresh.
            self._location = None
            return await self._register()
        return response.success

    async def _keep_registered(self) -> None:
        """Register, then send an Update at half the lifetime; retry with growing pauses on failure."""
        backoff = 1.0
        while True:
            try:
                location = self._location
                ok = await (self._register() if location is None else self._update_registration(location))
            except PeerUnreachable as exc:
                ok = False
                await self._emit("registration-failed", exc.detail)
            self._first_attempt.set()
            if ok:
                backoff = 1.0
                pause = max(1.0, self.lifetime / 2)
            else:
                pause, backoff = backoff, min(backoff * 2, 30.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reregister.wait(), pause)
            if self._reregister.is_set():
                self._reregister.clear()
                self._location = None

    # -- object values ------------------------------------------------------------------------------

    def _active_manifest(self) -> Mapping[str, Any]:
        try:
            active = self._installer.slots.active()
        except InvalidInput:
            return {}
        return active.manifest if active is not None else {}

    def _status_reason(self) -> str:
        """Object 9's Status Reason; during a download it counts the bytes received, which is how the
        server tells a slow download (NB-IoT, a lossy link) from a stalled one."""
        tracker = self.tracker
        if tracker.state is UpdateState.DOWNLOAD_STARTED and self.download.uri is not None:
            return f"downloading: {self.download.offset} bytes received"
        return tracker.detail

    def _values(self) -> dict[Path, Value]:
        board = self.board
        manifest = self._active_manifest()
        model = manifest.get("model") if isinstance(manifest.get("model"), Mapping) else {}
        model_ram = manifest.get("ram_bytes") if isinstance(manifest.get("ram_bytes"), int) else 0
        tracker = self.tracker
        telemetry = self.telemetry() or Telemetry(0, 0, 0.0, 0.0, "", (0,) * HISTOGRAM_BINS)
        bearers = [_BEARERS[name] for name in board.transports if name in _BEARERS] or [41]
        values: dict[Path, Value] = {
            Path(3, 0, 0): MANUFACTURER,
            Path(3, 0, 1): board.id,
            Path(3, 0, 2): self.endpoint,
            Path(3, 0, 3): f"tinymlaas-agent {_package_version('tinymlaas')}",
            Path(3, 0, 10): max(0, board.usable_ram_bytes - model_ram) // 1024,
            Path(3, 0, 11, 0): 0,
            Path(3, 0, 13): int(time.time()),
            Path(3, 0, 16): "U",
            Path(3, 0, 17): board.board_class.value,
            Path(3, 0, 18): board.soc,
            Path(3, 0, 19): f"{self._runtime} {self._runtime_version}",
            Path(3, 0, 21): board.ram_bytes // 1024,
            Path(4, 0, 0): bearers[0],
            Path(4, 0, 2): _EMULATED_SIGNAL_DBM if bearers[0] in _RADIO_BEARERS else 0,
            Path(4, 0, 4, 0): self._host,
            Path(9, 0, 0): str(model.get("name") or model.get("id") or ""),
            Path(9, 0, 1): str(model.get("version", "")),
            Path(9, 0, 7): int(tracker.state),
            Path(9, 0, 8): False,
            Path(9, 0, 9): int(tracker.result),
            Path(9, 0, 12): self._activated and bool(manifest),
            Path(9, 0, 16): self._status_reason(),
            Path(26241, 0, 0): self._runtime,
            Path(26241, 0, 1): self._runtime_version,
            Path(26241, 0, 3): board.usable_ram_bytes,
            Path(26241, 0, 4): board.usable_flash_bytes,
            Path(26241, 0, 6): board.id,
            Path(26241, 0, 10): telemetry.count,
            Path(26241, 0, 11): telemetry.mean_latency_ms,
            Path(26241, 0, 12): telemetry.p95_latency_ms,
            Path(26241, 0, 13): telemetry.last_result,
            Path(26241, 0, 15): self._rate_hz,
        }
        values.update({Path(4, 0, 1, index): bearer for index, bearer in enumerate(bearers)})
        values.update({Path(26241, 0, 2, index): op for index, op in enumerate(self._ops)})
        values.update({Path(26241, 0, 14, index): n for index, n in enumerate(telemetry.histogram)})
        if board.accelerator:
            values[Path(26241, 0, 5)] = board.accelerator
        return values

    # -- the CoAP handler ---------------------------------------------------------------------------

    async def _handle(self, request: CoapRequest) -> CoapResponse:
        try:
            path = Path.parse(request.uri_path)
        except InvalidInput:
            raise NotFound(f"{request.uri_path}: not an LwM2M path this device serves") from None
        if not any(path.ids[:2] == instance.ids[: len(path.ids)] for instance in _INSTANCES):
            raise NotFound(f"{path}: this device has no such object or instance")
        if path.resource_id is not None:
            OBJECTS.resource(path)  # NotFound for a resource the object does not define
        match request.method:
            case "GET" if request.accept == ContentFormat.LINK_FORMAT:
                return self._discover(path)
            case "GET":
                return self._read(path, request.accept)
            case "PUT":
                return await self._write(path, request)
            case "POST" if path.is_resource and OBJECTS.resource(path).executable:
                return await self._execute(path, request.payload)
            case "POST" if path.is_instance:
                return await self._write(path, request)
        return CoapResponse("4.05", f"{request.method} is not allowed on {path}".encode())

    def _read(self, path: Path, accept: int | None) -> CoapResponse:
        if path.resource_id is not None and not OBJECTS.resource(path).readable:
            return CoapResponse("4.05", f"{path} is not readable".encode())
        values = _below(self._values(), path)
        if not values:
            raise NotFound(f"{path}: no value here")
        single = path in values and (path.is_resource_instance or not OBJECTS.resource(path).multiple)
        fmt = accept
        if fmt is None:
            fmt = ContentFormat.TEXT_PLAIN if single else ContentFormat.SENML_CBOR
        if fmt in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR):
            return CoapResponse("2.05", senml.encode(values, fmt), fmt)
        if fmt == ContentFormat.TEXT_PLAIN and single:
            resource_type = OBJECTS.resource(path).type
            assert resource_type is not None  # readable resources have a type
            return CoapResponse("2.05", format_text(resource_type, values[path]).encode(), fmt)
        return CoapResponse("4.06", f"{path} cannot be read in content format {fmt}".encode())

    def _discover(self, path: Path) -> CoapResponse:
        values = self._values()
        instances = [instance for instance in _INSTANCES if instance.ids[: len(path.ids)] == path.ids]
        links = [Link(str(path))] if path not in instances else []
        for instance in instances:
            links.append(Link(str(instance)))
            counts: dict[int, int] = {}
            for key in _below(values, instance):
                counts[key.resource_id or 0] = counts.get(key.resource_id or 0, 0) + 1
            definition = OBJECTS.object(instance.object_id)
            for resource_id, resource in sorted(definition.resources.items()):
                target = Path(instance.object_id, instance.instance_id, resource_id)
                if target.ids[: len(path.ids)] != path.ids:
                    continue
                if resource_id in counts or resource.executable or target in _WRITABLE:
                    params = {"dim": str(counts.get(resource_id, 0))} if resource.multiple else {}
                    links.append(Link(str(target), params))
        return CoapResponse("2.05", ",".join(str(link) for link in links).encode(), ContentFormat.LINK_FORMAT)

    def _decode_write(self, path: Path, request: CoapRequest) -> dict[Path, Value] | None:
        """The values a Write carries; None when its content format cannot carry them."""
        fmt = request.content_format
        if fmt in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR):
            values = OBJECTS.coerce_all(senml.decode(request.payload, fmt))
            outside = [str(key) for key in values if key.ids[: len(path.ids)] != path.ids]
            if outside:
                raise InvalidInput(f"write {path}: the payload names {', '.join(outside)}, outside it")
            return values
        if fmt in (None, ContentFormat.TEXT_PLAIN) and path.is_resource:
            resource_type = OBJECTS.resource(path).type
            if resource_type is None:
                raise InvalidInput(f"write {path}: the resource is executable")
            try:
                text = request.payload.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"write {path}: the plain-text payload is not UTF-8") from None
            return {path: OBJECTS.coerce(path, parse_text(resource_type, text, where=str(path)))}
        return None

    async def _write(self, path: Path, request: CoapRequest) -> CoapResponse:
        values = self._decode_write(path, request)
        if values is None:
            detail = f"write {path}: content format {request.content_format} is not SenML or plain text"
            return CoapResponse("4.15", detail.encode())
        refused = sorted(str(key) for key in values if key not in _WRITABLE)
        if refused or not values:
            return CoapResponse("4.05", f"not writable on this device: {', '.join(refused) or path}".encode())
        rate = values.get(Path(26241, 0, 15))
        if isinstance(rate, float):
            if not 0 < rate <= MAX_RATE_HZ:
                return CoapResponse("4.00", f"an inference rate is in (0, {MAX_RATE_HZ:g}] Hz".encode())
            if self._inference is not None:
                self._inference.rate_hz = rate
            self._rate_hz = rate
            self._changed([Path(26241, 0, 15)])
        if Path(9, 0, 3) in values:
            return await self._package_uri_written(str(values[Path(9, 0, 3)]))
        return CoapResponse("2.04")

    async def _execute(self, path: Path, payload: bytes) -> CoapResponse:
        match path.ids:
            case (3, 0, 4):
                self._reboot()
            case (9, 0, 4):
                return self._execute_install()
            case (9, 0, 6):
                return await self._execute_uninstall(payload)
            case (9, 0, 10) | (9, 0, 11):
                self._activated = path.resource_id == 10
                if self._inference is not None:
                    self._inference.swap(self._load_runner() if self._activated else None)
                self._changed([Path(9, 0, 12)])
            case _:
                return CoapResponse("4.05", f"this device does not implement {path}".encode())
        return CoapResponse("2.04")

    def _reboot(self) -> None:
        """The emulated reboot: the model is loaded afresh from its slot and the device registers again."""
        if self._inference is not None:
            self._inference.swap(self._load_runner() if self._activated else None)
        self._reregister.set()

    # -- updates ------------------------------------------------------------------------------------

    def _load_runner(self) -> Runner | None:
        try:
            active = self._installer.slots.active()
            return load_model(active, arena_limit_bytes=self._arena_limit) if active is not None else None
        except TinymlaasError as exc:
            _log.warning("%s: the installed model does not load: %s", self.endpoint, exc.detail)
            return None

    def _resumable(self) -> bool:
        """Whether the update state found at start needs the update to continue; clean up if it cannot."""
        state = self.tracker.state
        if state is UpdateState.DOWNLOAD_STARTED and self.download.uri is not None:
            return True
        if state is UpdateState.DOWNLOADED and self.download.complete:
            return True
        if state is UpdateState.DELIVERED:
            # An install cut short goes on; a failed one (58) waits for an Execute Install.
            return self.tracker.result is UpdateResult.DOWNLOADED_VERIFIED and self.download.complete
        if state in (UpdateState.DOWNLOAD_STARTED, UpdateState.DOWNLOADED):
            self.download.clear()
            self.tracker.move(UpdateState.INITIAL, UpdateResult.CONNECTION_LOST, detail="download state lost")
        return False

    async def _move(
        self, to: UpdateState, result: UpdateResult, detail: str = "", *, package: str | None = None
    ) -> None:
        self.tracker.move(to, result, detail=detail, package=package)
        self._changed(_SOFTWARE)
        suffix = f": {detail}" if detail else ""
        await self._emit("update", f"update state {to.name}, result {result.value}{suffix}")

    async def _package_uri_written(self, uri: str) -> CoapResponse:
        if self._installing:
            return CoapResponse("5.03", b"an install is under way; write the Package URI again afterwards")
        state = self.tracker.state
        running = self._update_task is not None and not self._update_task.done()
        if uri and running and state is UpdateState.DOWNLOAD_STARTED and self.download.uri == uri:
            return CoapResponse("2.04")  # the same package again: the download goes on
        if self._update_task is not None:
            self._update_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._update_task
            self._update_task = None
        self.download.clear()
        if self.tracker.state not in (UpdateState.INITIAL, UpdateState.INSTALLED):
            await self._move(UpdateState.INITIAL, UpdateResult.INITIAL, "superseded by a new Package URI")
        if not uri:
            return CoapResponse("2.04")  # an empty URI cancels, as for Firmware Update
        self.download.begin(uri)
        await self._move(UpdateState.DOWNLOAD_STARTED, UpdateResult.DOWNLOADING, f"downloading {uri}")
        self._update_task = asyncio.create_task(self._run_update(), name=f"{self.endpoint} update")
        return CoapResponse("2.04")

    async def _execute_uninstall(self, argument: bytes) -> CoapResponse:
        """Go back to the model that ran before the last update (a campaign rollback).

        Argument 1 ("ForUpdate") is refused: writing a Package URI already keeps the running model
        until the new one passes its self-test.
        """
        if argument.strip() not in (b"", b"0"):
            return CoapResponse("4.00", b"Uninstall takes no argument or 0; write a Package URI to update")
        running = self._update_task is not None and not self._update_task.done()
        if self._installing or running:
            return CoapResponse("5.03", b"an update is under way; uninstall after it ends")
        self._installing = True
        try:
            outcome = await asyncio.to_thread(self._installer.uninstall)
        except Conflict as exc:
            return CoapResponse("4.05", exc.detail.encode())
        finally:
            self._installing = False
        if not outcome.installed:
            await self._emit("uninstall-failed", outcome.detail)
            return CoapResponse("5.00", outcome.detail.encode())
        self._changed(_SOFTWARE)
        if self._inference is not None and self._activated:
            self._inference.swap(self._load_runner())
        await self._emit("uninstalled", outcome.detail)
        return CoapResponse("2.04")

    def _execute_install(self) -> CoapResponse:
        state = self.tracker.state
        if state is UpdateState.INSTALLED:
            return CoapResponse("2.04")
        if state is not UpdateState.DELIVERED or self._installing:
            return CoapResponse(
                "4.05", f"Install needs a delivered package; the state is {state.name}".encode()
            )
        if self._update_task is None or self._update_task.done():
            self._update_task = asyncio.create_task(self._run_update(), name=f"{self.endpoint} install")
        return CoapResponse("2.04")

    async def _run_update(self) -> None:
        """Carry the update from its persisted state as far as it goes: download, verify, install."""
        verified: VerifiedPackage | None = None
        try:
            if self.tracker.state is UpdateState.DOWNLOAD_STARTED:
                await self._download_package()
                await self._move(
                    UpdateState.DOWNLOADED, UpdateResult.DOWNLOADING, f"{self.download.offset} bytes"
                )
            if self.tracker.state is UpdateState.DOWNLOADED:
                verified = self._verify()
                digest = package_digest(verified.manifest)
                await self._move(
                    UpdateState.DELIVERED,
                    UpdateResult.DOWNLOADED_VERIFIED,
                    "signature verified",
                    package=digest,
                )
            if self.tracker.state is UpdateState.DELIVERED:
                await self._install(verified or self._verify())
        except _UpdateFailed as failure:
            self.download.clear()
            await self._move(UpdateState.INITIAL, failure.result, failure.detail)

    async def _fetch_block(self, uri: str, num: int, szx: int) -> CoapBlock:
        """One block, retried while the server does not answer; 4.04 and other errors end the update."""
        silent_since = time.monotonic()
        pause = 1.0
        while True:
            try:
                block = await self._coap.request_block(uri, num, szx, timeout=BLOCK_TIMEOUT_S)
            except PeerUnreachable as exc:
                silent = time.monotonic() - silent_since
                if silent > DOWNLOAD_STALL_S:
                    detail = f"{exc.detail}; no answer for {silent:.0f} s"
                    raise _UpdateFailed(UpdateResult.CONNECTION_LOST, detail) from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
                continue
            except InvalidInput as exc:
                raise _UpdateFailed(UpdateResult.INVALID_URI, exc.detail) from None
            code = block.response.code
            if code == "4.04":
                raise _UpdateFailed(UpdateResult.INVALID_URI, f"{uri}: the server has no such package")
            if code != "4.08" and not block.response.success:
                raise _UpdateFailed(
                    UpdateResult.CONNECTION_LOST, f"{uri} block {num}: the server answered {code}"
                )
            return block

    async def _download_package(self) -> None:
        download = self.download
        uri = download.uri or ""
        parts = urlsplit(uri)
        if parts.scheme != "coap" or not parts.hostname:
            raise _UpdateFailed(UpdateResult.INVALID_URI, f"{uri!r} is not a coap:// URI")
        primed = False
        while not download.complete:
            num = download.offset >> (download.szx + 4)
            block = await self._fetch_block(uri, num, download.szx)
            if block.response.code == "4.08":
                # Request Entity Incomplete: an aiocoap server serves later blocks only to a client that
                # asked for block 0 first (its block-wise cache is per client), so a resumed download
                # fetches block 0 once more. It must equal the block 0 kept: else the package changed.
                if primed:
                    raise _UpdateFailed(
                        UpdateResult.CONNECTION_LOST, f"{uri}: the server refuses block {num}"
                    )
                primed = True
                block = await self._fetch_block(uri, 0, download.szx)
                if block.response.success and download.data().startswith(block.response.payload):
                    continue
            # Block 0 starts over: the package changed, or the peer ignores Block2 and sent it whole.
            if block.num != 0 and block.offset != download.offset:
                raise _UpdateFailed(
                    UpdateResult.CONNECTION_LOST,
                    f"{uri}: asked for the block at byte {download.offset}, got byte {block.offset}",
                )
            payload = block.response.payload
            if block.offset + len(payload) > self.board.usable_flash_bytes:
                raise _UpdateFailed(
                    UpdateResult.NOT_ENOUGH_STORAGE,
                    f"{uri}: the package outgrows the {self.board.usable_flash_bytes} bytes of a model slot",
                )
            download.write(block.offset, payload, szx=block.szx, complete=not block.more)
            await self._emit("download", f"block {block.num} ({download.offset} bytes so far)", block.num)

    def _verify(self) -> VerifiedPackage:
        if not self.download.complete:
            raise _UpdateFailed(UpdateResult.CONNECTION_LOST, "the downloaded package is gone")
        try:
            verified = verify_package(
                self.download.data(), self._public_key, max_bytes=self.board.usable_flash_bytes
            )
        except PackageRejected as exc:
            raise _UpdateFailed(exc.result, exc.detail) from None
        runtime = verified.manifest.get("runtime")
        if runtime not in self.board.runtimes:
            raise _UpdateFailed(
                UpdateResult.UNSUPPORTED_PACKAGE_TYPE,
                f"the package targets {runtime!r}; {self.board.id} runs {', '.join(self.board.runtimes)}",
            )
        return verified

    async def _install(self, verified: VerifiedPackage) -> None:
        self._installing = True
        try:
            outcome = await asyncio.to_thread(
                self._installer.install_verified, verified.manifest, verified.files
            )
        finally:
            self._installing = False
        self._changed(_SOFTWARE)
        if not outcome.installed:
            if self.tracker.state is UpdateState.INITIAL:
                self.download.clear()
            await self._emit("install-failed", f"install failed ({outcome.result.value}): {outcome.detail}")
            return
        self.download.clear()
        if self._inference is not None and self._activated:
            self._inference.swap(self._load_runner())
        model = verified.manifest.get("model") or {}
        await self._emit(
            "installed",
            f"installed {model.get('name') or model.get('id')} v{model.get('version')} (slot {outcome.slot})",
        )

    async def _report_telemetry(self) -> None:
        """Notify telemetry observers every ``telemetry_interval`` seconds while the figures change."""
        last: Telemetry | None = None
        while True:
            await asyncio.sleep(self._telemetry_interval)
            current = self.telemetry()
            if current is not None and current != last:
                last = current
                self._changed(_TELEMETRY)
