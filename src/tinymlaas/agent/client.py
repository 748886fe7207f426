"""The device agent's LwM2M client: registration, and the wiring of everything else a device does.

One ``Agent`` is one device. It opens a CoAP endpoint, registers with the LwM2M server (``/rd``) and keeps
the registration alive with Updates before half the lifetime. Against a ``coaps://`` server it proves itself
with the PSK provisioned into its state directory (the Security object, ``lwm2m.core.DeviceCredentials``)
and has no listening socket at all: its one DTLS session to the server is the only way in. Either way it
answers only requests that come from its server, never from another address. Requests go to the
dispatcher, which serves ``/3/0``, ``/4/0``, ``/9/0``, ``/26241/0`` and ``/26242/0`` through one provider
per object (``agent.objects``); updates are the ``Updater``'s, the pipeline stage the ``StageEngine``'s
(which listens for hop messages on a socket of its own, DTLS-PSK, only while the server names upstream
nodes). Slots, update state, download progress, the stage's configuration and its outbox live in
``state_dir`` across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine, Iterable
from pathlib import Path as FsPath
from typing import Any
from urllib.parse import urlsplit

from tinymlaas.agent.active_model import ActiveModel
from tinymlaas.agent.dispatch import ObjectDispatcher, with_ancestors
from tinymlaas.agent.download import BLOCK_TIMEOUT_S, PackageDownload
from tinymlaas.agent.events import EventCallback, EventLog
from tinymlaas.agent.inference import Telemetry
from tinymlaas.agent.installer import Installer
from tinymlaas.agent.objects import (
    STATE_PATHS,
    ConnectivityProvider,
    DeviceProvider,
    SoftwareManagementProvider,
    TinymlRuntimeProvider,
    bind_host_for,
)
from tinymlaas.agent.objects.pipeline_stage import PipelineStageProvider
from tinymlaas.agent.pacing import Pacing
from tinymlaas.agent.sensors import SensorSource
from tinymlaas.agent.slots import SlotStore
from tinymlaas.agent.stage import StageEngine
from tinymlaas.agent.update import UpdateTracker
from tinymlaas.agent.updater import Updater
from tinymlaas.agent.uploader import OUTBOX_DIR, Collection, CollectStats, SampleUploader
from tinymlaas.catalog.board import Board, BoardClass
from tinymlaas.deploy.signing import load_public_key
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import ContentFormat, DeviceCredentials, Path, format_links
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse, PeerUnreachable, same_origin
from tinymlaas.lwm2m.transport.coap import CoapBlock

__all__ = ["DEFAULT_RATE_HZ", "Agent"]

DEFAULT_RATE_HZ = 10.0


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
        host: str,
        lifetime: int,
        sensor: SensorSource | None,
        rate_hz: float,
        request_timeout: float,
        on_event: EventCallback | None,
        hop_port: int = 0,
    ) -> None:
        parts = urlsplit(server_uri)
        if parts.scheme not in ("coap", "coaps") or not parts.hostname:
            raise InvalidInput(f"The server URI {server_uri!r} is not coap[s]://host[:port]")
        if lifetime < 1:
            raise InvalidInput(f"A registration lifetime is at least 1 s, got {lifetime}")
        if not board.runtimes:
            raise InvalidInput(f"Board {board.id} lists no runtime to run models in")
        self.board = board
        self.endpoint = endpoint
        self.server_uri = server_uri.rstrip("/")
        self.state_dir = FsPath(state_dir)
        self.lifetime = lifetime
        trusted_key = load_public_key(bytes(public_key))
        self._host = host
        self._request_timeout = request_timeout
        events = EventLog(endpoint, on_event)
        self._emit = events.emit
        arena_limit = board.usable_ram_bytes if board.board_class is BoardClass.MCU else None
        self._installer = Installer(
            self.state_dir, arena_limit_bytes=arena_limit, slot_flash_bytes=board.usable_flash_bytes
        )
        self.download = PackageDownload(self.state_dir)
        self._model = ActiveModel(endpoint, self._installer, sensor, rate_hz, arena_limit_bytes=arena_limit)
        self._updater = Updater(
            board,
            self._installer,
            self.download,
            self._model,
            trusted_key,
            request_block=self._request_block,
            locate=self._package_uri,
            events=events,
            on_change=lambda: self._changed(STATE_PATHS),
            name=endpoint,
        )
        self._runtime = TinymlRuntimeProvider(board, self._model, rate_hz, self._changed)
        self.stage = StageEngine(
            endpoint,
            host,
            self.state_dir,
            self._model,
            hop_port=hop_port,
            request_timeout=request_timeout,
            changed=self._changed,
            on_event=self._emit,
        )
        self._location: tuple[str, ...] | None = None
        self._reregister = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._dispatcher = ObjectDispatcher(
            [
                DeviceProvider(board, endpoint, self._model, self._runtime, reregister=self._reregister.set),
                ConnectivityProvider(board, host),
                SoftwareManagementProvider(self._updater, self._model, self._changed),
                self._runtime,
                PipelineStageProvider(self.stage, self._changed),
            ]
        )
        self._tasks: list[asyncio.Task[None]] = []

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
        credentials: DeviceCredentials | None = None,
        hop_port: int = 0,
    ) -> Agent:
        """Bind, register (returning once the first attempt is answered or failed), and resume any update.

        ``public_key`` is the server's Ed25519 key (raw, hex or PEM bytes); only packages it signed are
        installed. ``sensor`` feeds the inference loop at ``rate_hz``; without one the agent runs no
        inference. An unreachable server is retried in the background with growing pauses. ``collect``
        uploads sensor windows into a dataset on the server (``tinymlaas.agent.uploader``), model or none.
        A ``coaps://`` server needs ``credentials``, or credentials provisioned into ``state_dir``.
        ``hop_port`` is where a pipeline relay takes hop messages (0: a free port, kept until the agent
        stops); the listener opens once the server writes Upstream Keys (Object 26242).
        """
        agent = cls(
            board,
            endpoint,
            server_uri,
            state_dir,
            public_key,
            host=bind_host if bind_host is not None else bind_host_for(server_uri),
            lifetime=lifetime,
            sensor=sensor,
            rate_hz=rate_hz,
            request_timeout=request_timeout,
            on_event=on_event,
            hop_port=hop_port,
        )
        inference = agent._model.inference
        if collect is not None:
            if inference is None:
                raise InvalidInput("Collecting samples needs a sensor to take the windows from")
            agent._uploader = SampleUploader(
                collect,
                endpoint,
                agent.server_uri,
                agent.state_dir / OUTBOX_DIR,
                request_timeout=request_timeout,
                on_event=agent._emit,
            )
            inference.on_window = agent._uploader.offer
        if inference is not None:
            inference.on_output = agent.stage.on_output
        agent._coap = await agent._open(credentials)
        try:
            await agent.stage.start()  # a relay whose hop port is taken must not leave its socket open
        except BaseException:
            await agent._coap.close()
            raise
        if agent._uploader is not None:
            agent._spawn(agent._uploader.run(agent._coap), "uploads")
        agent._spawn(agent._keep_registered(), "registration")
        agent._spawn(agent._runtime.report_telemetry(telemetry_interval), "telemetry")
        agent._spawn(agent.stage.report(telemetry_interval), "stage counters")
        if inference is not None:
            inference.start()
        agent._updater.resume()
        await agent._first_attempt.wait()
        return agent

    async def stop(self, *, deregister: bool = True) -> None:
        """Stop every activity, de-register (unless told not to, as a power cut would) and unbind.

        An install running in its worker thread finishes there; its state is written atomically either way.
        """
        update = self._updater.task
        tasks = [*self._tasks, *([update] if update is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._model.inference is not None:
            await self._model.inference.stop()
        await self.stage.stop()
        if deregister and self._location is not None:
            with contextlib.suppress(PeerUnreachable):
                await self._coap.request(
                    "DELETE", self._server_path(self._location), timeout=min(self._request_timeout, 2.0)
                )
            self._location = None
            await self._emit("deregistered", f"{self.endpoint} de-registered")
        await self._coap.close()

    async def _open(self, credentials: DeviceCredentials | None) -> CoapEndpoint:
        if urlsplit(self.server_uri).scheme == "coap":
            return await CoapEndpoint.bind(self._host, 0, self._from_server)
        credentials = credentials or DeviceCredentials.load(self.state_dir)
        if credentials is None:
            raise InvalidInput(
                f"{self.endpoint} has no credentials for {self.server_uri}: provision it first with "
                f"'tinymlaas devices provision {self.endpoint} --board {self.board.id} "
                f"--state-dir {self.state_dir}'"
            )
        if credentials.endpoint != self.endpoint:
            raise InvalidInput(
                f"the credentials in {self.state_dir} are {credentials.endpoint!r}'s, not {self.endpoint!r}'s"
            )
        return await CoapEndpoint.connect_secure(
            self.server_uri, credentials.identity, credentials.key, self._from_server
        )

    async def _from_server(self, request: CoapRequest) -> CoapResponse:
        """Serve the LwM2M server's requests and nobody else's: a client obeys its own server only."""
        if not same_origin(request.remote, self.server_uri):
            return CoapResponse("4.03", f"{self.endpoint} takes requests from its LwM2M server only".encode())
        return await self._dispatcher.handle(request)

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
        return self._model.telemetry()

    def collect_stats(self) -> CollectStats | None:
        """How many samples were taken, wait, went to the server or were lost; None when not collecting."""
        return self._uploader.stats() if self._uploader is not None else None

    def _spawn(self, activity: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(activity, name=f"{self.endpoint} {name}"))

    def _changed(self, paths: Iterable[Path]) -> None:
        """Send fresh values to whoever observes these paths or an instance or object holding them."""
        for path in sorted(with_ancestors(paths)):
            self._coap.notify(str(path))

    async def _request_block(self, uri: str, num: int, szx: int) -> CoapBlock:
        return await self._coap.request_block(uri, num, szx, timeout=BLOCK_TIMEOUT_S)

    def _package_uri(self, uri: str) -> str:
        """Where to fetch the package the server names ``uri``: there, unless a subclass relays it."""
        return uri

    def _server_path(self, location: Iterable[str]) -> str:
        return self.server_uri + "/" + "/".join(location)

    async def _register(self) -> bool:
        response = await self._coap.request(
            "POST",
            f"{self.server_uri}/rd",
            format_links(self._dispatcher.instances).encode(),
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
        """Register, then send an Update before half the lifetime; retry with growing, jittered pauses
        on failure (``agent.pacing``), so a fleet neither updates in lockstep nor storms a restarted
        server."""
        pacing = Pacing(self.lifetime, random.Random())
        while True:
            try:
                location = self._location
                ok = await (self._register() if location is None else self._update_registration(location))
            except PeerUnreachable as exc:
                ok = False
                await self._emit("registration-failed", exc.detail)
            self._first_attempt.set()
            pause = pacing.after_success() if ok else pacing.after_failure()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reregister.wait(), pause)
            if self._reregister.is_set():
                self._reregister.clear()
                self._location = None
