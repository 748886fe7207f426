"""The device agent's LwM2M client: registration, and the wiring of everything else a device does.

One ``Agent`` is one device. It opens a CoAP endpoint, registers with the LwM2M server (``/rd``) and keeps
the registration alive with Updates before half the lifetime. Against a ``coaps://`` server it proves itself
with the PSK provisioned into its state directory (the Security object, ``lwm2m.core.DeviceCredentials``)
and has no listening socket at all: its one DTLS session to the server is the only way in. Either way it
answers only requests that come from its server, never from another address. Given several servers
(one store, active/standby), it talks to one at a time: when registering or an Update goes unanswered
``FAILOVER_AFTER`` times in a row, it closes its endpoint, connects to the next server in the list
(round robin) and registers there; its uploads, the server's requests it answers and a package download
under way all follow it (``agent.download``: the download goes on from the new server). Requests go to the
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
from collections.abc import Coroutine, Iterable, Sequence
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

__all__ = ["DEFAULT_RATE_HZ", "FAILOVER_AFTER", "MAX_SERVERS", "Agent"]

DEFAULT_RATE_HZ = 10.0
# Unanswered registrations or Updates in a row before the agent moves on to its next server: one lost
# datagram is not a dead server, two in a row with the CoAP retransmissions behind each most likely are.
FAILOVER_AFTER = 2
MAX_SERVERS = 16  # servers one agent may be given to fail over between


def server_uris(server_uri: str | Sequence[str]) -> tuple[str, ...]:
    """The agent's servers in failover order, each checked to be ``coap[s]://host[:port]``."""
    uris = (server_uri,) if isinstance(server_uri, str) else tuple(server_uri)
    if not 1 <= len(uris) <= MAX_SERVERS:
        raise InvalidInput(f"An agent takes 1 to {MAX_SERVERS} server URIs, got {len(uris)}")
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("coap", "coaps") or not parts.hostname:
            raise InvalidInput(f"The server URI {uri!r} is not coap[s]://host[:port]")
    trimmed = tuple(uri.rstrip("/") for uri in uris)
    if len(set(trimmed)) != len(trimmed):
        raise InvalidInput(f"The server URIs name one server twice: {', '.join(trimmed)}")
    return trimmed


def _rebased(uri: str, server: str) -> str:
    """``uri``'s path and query at ``server``'s scheme and address."""
    base = urlsplit(server)
    return urlsplit(uri)._replace(scheme=base.scheme, netloc=base.netloc).geturl()


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
        server_uri: str | Sequence[str],
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
        self.server_uris = server_uris(server_uri)
        self._current = 0
        if lifetime < 1:
            raise InvalidInput(f"A registration lifetime is at least 1 s, got {lifetime}")
        if not board.runtimes:
            raise InvalidInput(f"Board {board.id} lists no runtime to run models in")
        self.board = board
        self.endpoint = endpoint
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
        self._credentials: DeviceCredentials | None = None

    @property
    def server_uri(self) -> str:
        """The server the agent talks to now: the first it was given, until it fails over."""
        return self.server_uris[self._current]

    @classmethod
    async def start(
        cls,
        board: Board,
        endpoint: str,
        server_uri: str | Sequence[str],
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
        wait: bool = True,
    ) -> Agent:
        """Bind, register (returning once the first attempt is answered or failed, unless ``wait`` is
        False: ``first_attempt`` waits for it then), and resume any update.

        ``server_uri`` is one server or several to fail over between, tried in order (round robin).
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
            host=bind_host if bind_host is not None else bind_host_for(server_uris(server_uri)[0]),
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
                agent.state_dir / OUTBOX_DIR,
                request_timeout=request_timeout,
                on_event=agent._emit,
            )
            inference.on_window = agent._uploader.offer
        if inference is not None:
            inference.on_output = agent.stage.on_output
        agent._credentials = credentials
        agent._coap = await agent._open(agent.server_uri)
        try:
            await agent.stage.start()  # a relay whose hop port is taken must not leave its socket open
        except BaseException:
            await agent._coap.close()
            raise
        if agent._uploader is not None:
            agent._spawn(agent._uploader.run(agent._link), "uploads")
        agent._spawn(agent._keep_registered(), "registration")
        agent._spawn(agent._runtime.report_telemetry(telemetry_interval), "telemetry")
        agent._spawn(agent.stage.report(telemetry_interval), "stage counters")
        if inference is not None:
            inference.start()
        agent._updater.resume()
        if wait:
            await agent.first_attempt()
        return agent

    async def first_attempt(self) -> None:
        """Until the first registration attempt was answered or failed."""
        await self._first_attempt.wait()

    async def stop(self, *, deregister: bool = True) -> None:
        """Stop every activity, de-register (unless told not to, as a power cut would) and unbind.

        An install running in its worker thread finishes there; its state is written atomically either way.
        The download's blocks held in memory are written first, so a restart fetches none of them again.
        """
        update = self._updater.task
        tasks = [*self._tasks, *([update] if update is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.download.flush()
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

    async def _open(self, server_uri: str) -> CoapEndpoint:
        """An endpoint for ``server_uri``: a plain socket, or a DTLS session under the device's key."""
        if urlsplit(server_uri).scheme == "coap":
            return await CoapEndpoint.bind(self._host, 0, self._from_server)
        credentials = self._credentials or DeviceCredentials.load(self.state_dir)
        if credentials is None:
            raise InvalidInput(
                f"{self.endpoint} has no credentials for {server_uri}: provision it first with "
                f"'tinymlaas devices provision {self.endpoint} --board {self.board.id} "
                f"--state-dir {self.state_dir}'"
            )
        if credentials.endpoint != self.endpoint:
            raise InvalidInput(
                f"the credentials in {self.state_dir} are {credentials.endpoint!r}'s, not {self.endpoint!r}'s"
            )
        return await CoapEndpoint.connect_secure(
            server_uri, credentials.identity, credentials.key, self._from_server
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

    def _link(self) -> tuple[CoapEndpoint, str]:
        """The endpoint and server to send to now; both change when the agent fails over."""
        return self._coap, self.server_uri

    def _follow(self, uri: str) -> str:
        """``uri`` at the current server if it names one of the agent's servers, else as it is."""
        if any(same_origin(uri, server) for server in self.server_uris):
            return _rebased(uri, self.server_uri)
        return uri

    async def _request_block(self, uri: str, num: int, szx: int) -> CoapBlock:
        return await self._coap.request_block(uri, num, szx, timeout=BLOCK_TIMEOUT_S)

    def _package_uri(self, uri: str) -> str:
        """Where to fetch the package the server names ``uri``: from the current server, with the path
        the server named, when it names one of the agent's servers (a subclass may relay it).

        Every server publishing a campaign's package does so at the same path, so the updater asks
        again during a download and a download under way moves with the agent when it fails over.
        """
        return self._follow(uri)

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
        server. Given several servers, ``FAILOVER_AFTER`` unanswered attempts in a row move the agent
        on to the next one, where it registers at once."""
        pacing = Pacing(self.lifetime, random.Random())
        unanswered = 0
        while True:
            try:
                location = self._location
                ok = await (self._register() if location is None else self._update_registration(location))
                unanswered = 0
            except PeerUnreachable as exc:
                ok = False
                unanswered += 1
                await self._emit("registration-failed", exc.detail)
                if unanswered >= FAILOVER_AFTER and len(self.server_uris) > 1:
                    unanswered = 0
                    if await self._fail_over(exc.detail):
                        pacing = Pacing(self.lifetime, random.Random())
                        continue
            self._first_attempt.set()
            pause = pacing.after_success() if ok else pacing.after_failure()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reregister.wait(), pause)
            if self._reregister.is_set():
                self._reregister.clear()
                self._location = None

    async def _fail_over(self, reason: str) -> bool:
        """Move on to the next server: connect to it first, then close the old endpoint, so a request
        under way on it (a package block) fails and is sent again to the new server. False, and the
        agent stays where it was, if the new endpoint cannot be opened."""
        previous = self._current
        following = (previous + 1) % len(self.server_uris)
        try:
            opened = await self._open(self.server_uris[following])
        except InvalidInput as exc:
            detail = exc.detail
        except OSError as exc:
            detail = str(exc)
        else:
            old, self._coap, self._current = self._coap, opened, following
            self._location = None
            await old.close()
            await self._emit(
                "failed-over",
                f"{self.endpoint} failed over to {self.server_uri} after {FAILOVER_AFTER} unanswered "
                f"attempts at {self.server_uris[previous]} ({reason})",
            )
            return True
        await self._emit(
            "registration-failed", f"cannot fail over to {self.server_uris[following]}: {detail}"
        )
        return False
