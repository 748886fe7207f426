"""The fleet host: an LwM2M server whose registrations and device reports land in the database.

When a device registers, the server first records it online, answers its Register, and only then reads
what it reports (TinyML Runtime 26241/0, Device 3/0, Software Management 9/0) in a background task: a
device that does not answer, or lacks an object, costs a ``read_failed`` event, never its registration.
The TinyML Runtime telemetry resources are then observed so they stay current without polling; each
report's inference count and latencies are also kept as a telemetry sample (a bounded number per
device), so the dashboard can chart them over time from what devices said rather than from guesses.
The same process runs update campaigns (``server.campaigns.CampaignRunner``) against its devices,
and takes the sensor samples devices upload into datasets (``services.collect``, at ``/dc/<dataset>``).
What is stored is read back by ``services.fleet``, with or without a server running.

Database writes run in a worker thread, one at a time (``server.writer``), so the CoAP event loop never
blocks on SQLite and events are stored in the order they happened; a Register goes ahead of the queue.

Several servers may share one store, each with its own registrations: devices recorded online by
one are online for all (the device table is shared), and the campaign lease decides which of them
drives campaigns and pipelines (``server.campaigns.CampaignLease``). Each process names itself with a
random ``server_id`` for that lease, the logs, and its row in ``servers``, renewed every
``HEARTBEAT_S``: a device row names the server it registered with, so a server that stops sets only
its own devices offline, and the devices of a server that was killed go offline once the others no
longer see it renew its row (or when the next server starts).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from tinymlaas.data.upload import COLLECT_ROOT
from tinymlaas.errors import InvalidInput, TinymlaasError
from tinymlaas.lwm2m.core import Path, Registration, UpdateResult, UpdateState, Value
from tinymlaas.lwm2m.server import DEFAULT_SECURE_PORT, Clock, Lwm2mServer
from tinymlaas.lwm2m.transport import DEFAULT_TIMEOUT, PeerUnreachable
from tinymlaas.server.campaigns import CampaignLease, CampaignRunner
from tinymlaas.server.pipelines import PipelineRunner
from tinymlaas.server.writer import Grouped, Writer
from tinymlaas.services._reports import code_name, resources
from tinymlaas.services.collect import SampleCollector
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.device_link import DeviceLink
from tinymlaas.services.fleet import TELEMETRY_SAMPLED, DeviceEventKind, as_utc, prune_events
from tinymlaas.services.provisioning import ActiveCredentials
from tinymlaas.storage.repositories import DeviceRepository, ServerRepository

__all__ = ["TELEMETRY_SAMPLES_KEPT", "FleetService"]

T = TypeVar("T")

_log = logging.getLogger(__name__)

# A registration that ended, how (de-registered or offline) and why.
_End = tuple[Registration, DeviceEventKind, str]

RUNTIME = Path(26241, 0)
DEVICE = Path(3, 0)
SOFTWARE = Path(9, 0)

# Resource ids of what each object reports, under the names the product uses for them.
_CAPABILITIES = {
    0: "runtime",
    1: "runtime_version",
    2: "ops",
    3: "arena_bytes_available",
    4: "slot_flash_bytes",
    5: "accelerator",
}
_TELEMETRY = {
    10: "inference_count",
    11: "mean_latency_ms",
    12: "p95_latency_ms",
    13: "last_result",
    14: "confidence_histogram",
    15: "inference_rate_hz",
    16: "latency_basis",
}
_RUNTIME_BOARD = 6
_IDENTITY = {
    0: "manufacturer",
    1: "model_number",
    2: "serial_number",
    3: "firmware_version",
    17: "device_type",
    18: "hardware_version",
    19: "software_version",
}
_MODEL_NUMBER = 1
REPORT_READ_ATTEMPTS = 3  # reads of each reported object after a registration, before giving up
_INSTALLED = {
    0: "name",
    1: "version",
    7: "update_state",
    9: "update_result",
    12: "activated",
    16: "status_reason",
}

# Seconds between two renewals of a server's row; a server not seen for SERVER_GONE_AFTER_BEATS of them
# is taken for dead by the others, which set its devices offline.
HEARTBEAT_S = 5.0
SERVER_GONE_AFTER_BEATS = 3
# Seconds between two deletions of the device events older than ``Settings.event_retention_days``.
EVENT_PRUNE_INTERVAL_S = 3600.0
# Telemetry samples kept per device, newest first: four hours at the agent's default 5 s interval.
TELEMETRY_SAMPLES_KEPT = 2880
# A device notifies each observed telemetry resource on its own, all within moments of each other;
# figures arriving within this many seconds of a sample that lacks them join it, so a sample holds
# one report round.
_SAMPLE_ROUND_S = 1.0


def _went_offline(repository: DeviceRepository, endpoints: list[str], now: datetime, reason: str) -> None:
    for endpoint in endpoints:
        repository.record_event(endpoint, DeviceEventKind.OFFLINE, {"reason": reason}, at=now)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _named(resources: dict[int, Any], names: dict[int, str]) -> dict[str, Any]:
    return {name: resources[rid] for rid, name in names.items() if rid in resources}


def _installed(resources: dict[int, Any]) -> dict[str, Any]:
    installed = _named(resources, _INSTALLED)
    if "update_state" in installed:
        installed["update_state_text"] = code_name(UpdateState, installed["update_state"])
    if "update_result" in installed:
        installed["update_result_text"] = code_name(UpdateResult, installed["update_result"])
    return installed


class FleetService:
    """An ``Lwm2mServer`` wired to the device tables. Create one with ``start``, end it with ``stop``."""

    server: Lwm2mServer
    # Whether this process drives campaigns and pipelines now, among the servers on its store.
    lease: CampaignLease
    # The server's requests to devices for callers on other threads: the dashboard's page handlers.
    link: DeviceLink
    # Carries campaigns out on the devices while this process holds the lease.
    campaigns: CampaignRunner

    def __init__(self, context: Context, clock: Clock) -> None:
        self.context = context
        self._clock = clock
        # Who this process is among the servers on one store: the holder it writes into the lease.
        self.server_id = f"srv_{secrets.token_hex(8)}"
        self._writer = Writer()
        # Registrations (answered once stored, so urgent) and ends of registrations, stored in groups.
        self._registrations = Grouped(self._writer, self._store_registrations, urgent=True)
        self._ends: Grouped[_End] = Grouped(self._writer, self._store_ends)
        # The background read of each device's reports, by endpoint, so a newer registration replaces it.
        self._reading: dict[str, asyncio.Task[None]] = {}
        # Endpoints whose reports went unanswered after they registered -> the objects to read again.
        self._unread: dict[str, set[Path]] = {}
        self._campaigns: asyncio.Task[None] | None = None
        self._pipelines: asyncio.Task[None] | None = None
        self._pruning: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        # Registration Updates, the newest per device, waiting to be stored (after the device got its
        # answer), and the task storing them; it is awaited before the server stops.
        self._updates: dict[str, Registration] = {}
        self._storing_updates: asyncio.Task[None] | None = None
        # Ends of registrations that a re-Register replaced, being stored after the device got its answer.
        self._storing_ends: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(
        cls,
        context: Context,
        host: str = "127.0.0.1",
        port: int = DEFAULT_SECURE_PORT,
        *,
        nosec_port: int | None = None,
        clock: Clock = time.time,
        presence_interval: float = 1.0,
        request_timeout: float = DEFAULT_TIMEOUT,
        campaign_interval: float = 0.5,
        install_timeout: float = 120.0,
        heartbeat_interval: float = HEARTBEAT_S,
    ) -> FleetService:
        """Open the database, set devices left online by an earlier process offline, listen, run campaigns.

        Registrations do not survive the process that held them, so a device still marked online by a
        server that no longer runs is offline until it registers again; the devices of the other servers
        on the store stay as they are. The server renews its own row every ``heartbeat_interval``
        seconds. Campaigns pass every ``campaign_interval`` seconds; an installation with no progress
        for ``install_timeout`` seconds fails.

        Devices talk DTLS-PSK on ``port`` under the keys ``services.provisioning`` made; ``nosec_port``
        (development only) also opens plain CoAP, for devices that were never provisioned.
        """
        if nosec_port is not None and not context.settings.allow_nosec:
            raise InvalidInput(
                "plain CoAP (NoSec) lets any device claim any name; it opens only with the allow_nosec "
                "development setting (TINYMLAAS_ALLOW_NOSEC=1)"
            )
        fleet = cls(context, clock)
        await fleet._write(fleet._announce)
        credentials = ActiveCredentials(context)
        fleet.server = await Lwm2mServer.start(
            host,
            port,
            clock=clock,
            presence_interval=presence_interval,
            request_timeout=request_timeout,
            on_registered=fleet._on_registered,
            on_updated=fleet._on_updated,
            on_deregistered=fleet._on_deregistered,
            on_offline=fleet._on_offline,
            resources={COLLECT_ROOT: SampleCollector(DatasetService(context), fleet._write).handle},
            psk_lookup=credentials.psk,
            nosec_port=nosec_port,
            authorize=lambda request, endpoint: credentials.authorize(endpoint, request.peer),
        )
        fleet.lease = CampaignLease(
            context, fleet.server_id, fleet._write, clock=clock, ttl_s=context.settings.campaign_lease_s
        )
        fleet.campaigns = runner = CampaignRunner(
            context,
            fleet.server,
            fleet._write,
            clock=clock,
            interval=campaign_interval,
            install_timeout=install_timeout,
            lease=fleet.lease,
        )
        fleet.link = DeviceLink(
            fleet.server.devices, asyncio.get_running_loop(), request_timeout=request_timeout
        )
        fleet._campaigns = asyncio.create_task(runner.run(), name="campaign runner")
        pipelines = PipelineRunner(
            context, fleet.server, fleet._write, interval=max(0.5, campaign_interval), lease=fleet.lease
        )
        fleet._pipelines = asyncio.create_task(pipelines.run(), name="pipeline runner")
        fleet._pruning = asyncio.create_task(fleet._prune_events(), name="event pruning")
        fleet._heartbeat = asyncio.create_task(fleet._beat(heartbeat_interval), name="server heartbeat")
        _log.info("server %s listening on %s", fleet.server_id, fleet.server.uri)
        return fleet

    @property
    def uri(self) -> str:
        """``coaps://host:port`` of the bound address: the ``--server`` agents on this host use."""
        return self.server.uri

    @property
    def nosec_uri(self) -> str | None:
        """The plain CoAP address unprovisioned development devices use, None unless it was opened."""
        return self.server.nosec_uri

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        """Stop campaigns and report reads, give the campaign lease up (a standby server takes over on
        its next pass rather than after the lease's term), stop the server, and set the devices it had
        registered offline (not those of the other servers on the store)."""
        for background in (self._campaigns, self._pipelines, self._pruning, self._heartbeat):
            if background is not None:
                background.cancel()
                await asyncio.gather(background, return_exceptions=True)
        await self.lease.release()
        for task in list(self._reading.values()):
            task.cancel()
        await asyncio.gather(*self._reading.values(), return_exceptions=True)
        if self._storing_updates is not None:
            await asyncio.gather(self._storing_updates, return_exceptions=True)
        await asyncio.gather(*self._storing_ends, return_exceptions=True)
        await self.server.stop()
        await self._write(self._leave)

    async def _write(self, work: Callable[..., T], *args: Any) -> T:
        return await self._writer(work, *args)

    def _now(self) -> datetime:
        return _at(self._clock())

    async def _prune_events(self) -> None:
        """Delete device events past their retention, once at start and then every hour."""
        retention = timedelta(days=self.context.settings.event_retention_days)
        while True:
            await self._write(prune_events, self.context, self._now() - retention)
            await asyncio.sleep(EVENT_PRUNE_INTERVAL_S)

    # Listeners: the registration interface awaits them before it answers the device.

    async def _on_registered(self, registration: Registration) -> None:
        self._updates.pop(registration.endpoint, None)  # of the registration this one replaces
        # Answered once stored, ahead of the reports and moves queued before it (``server.writer``).
        await self._registrations(registration)
        previous = self._reading.pop(registration.endpoint, None)
        if previous is not None:
            previous.cancel()
        self._unread.pop(registration.endpoint, None)
        self._start_reading(registration.endpoint, (RUNTIME, DEVICE, SOFTWARE))

    def _start_reading(self, endpoint: str, paths: tuple[Path, ...]) -> None:
        task = asyncio.create_task(self._read_reports(endpoint, paths), name=f"read reports of {endpoint}")
        self._reading[endpoint] = task
        task.add_done_callback(lambda done: self._forget_reading(endpoint, done))

    def _forget_reading(self, endpoint: str, task: asyncio.Task[None]) -> None:
        if self._reading.get(endpoint) is task:
            del self._reading[endpoint]

    async def _on_updated(self, registration: Registration) -> None:
        # Updates are the most frequent request of a fleet; during a rollout the writer is busy with
        # campaign records, and a device left waiting for that would time out its Update. The row only
        # refreshes the last-seen time, so the answer goes first and the store follows in order.
        self._updates[registration.endpoint] = registration  # a newer one of the device replaces it
        if self._storing_updates is None or self._storing_updates.done():
            self._storing_updates = asyncio.create_task(self._store_pending_updates(), name="store updates")
        unread = self._unread.get(registration.endpoint)
        if unread and registration.endpoint not in self._reading:
            # Reports the device did not answer after it registered: its Update shows it is reachable now.
            self._start_reading(
                registration.endpoint, tuple(p for p in (RUNTIME, DEVICE, SOFTWARE) if p in unread)
            )

    async def _store_pending_updates(self) -> None:
        """Store the Updates waiting, in groups, until none is left."""
        while self._updates:
            group = list(self._updates.values())
            self._updates.clear()
            await self._write(self._store_updates, group)

    async def _on_deregistered(self, registration: Registration) -> None:
        current = self.server.store.get_by_endpoint(registration.endpoint)
        self._drop_update(registration)
        if current is None:
            self._stop_reading(registration.endpoint)
            await self._ends((registration, DeviceEventKind.DEREGISTERED, "deregister"))
            return
        # The registration interface reports a re-Register as the old registration's end first. The
        # re-Register is answered once its own row is stored (urgently); the old one's end is stored
        # behind the work queued before it (``_store_end`` leaves the device online either way).
        # Answering only after it, as this did, held a re-Register behind every report queued in a
        # storm, past the device's 10 s, and the device registered again.
        ending = asyncio.create_task(
            self._ends((registration, DeviceEventKind.DEREGISTERED, "re-registered")),
            name=f"store the end of {registration.registration_id}",
        )
        self._storing_ends.add(ending)
        ending.add_done_callback(self._stored_end)

    def _stored_end(self, task: asyncio.Task[None]) -> None:
        self._storing_ends.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.warning("storing the end of a replaced registration failed: %r", task.exception())

    async def _on_offline(self, registration: Registration) -> None:
        self._stop_reading(registration.endpoint)
        self._drop_update(registration)
        await self._ends((registration, DeviceEventKind.OFFLINE, "lifetime expired"))

    def _drop_update(self, registration: Registration) -> None:
        """Forget an Update of ``registration`` not stored yet: stored after its end, it would set the
        device online again."""
        pending = self._updates.get(registration.endpoint)
        if pending is not None and pending.registration_id == registration.registration_id:
            del self._updates[registration.endpoint]

    def _stop_reading(self, endpoint: str) -> None:
        self._unread.pop(endpoint, None)
        task = self._reading.pop(endpoint, None)
        if task is not None:
            task.cancel()

    async def _read_reports(self, endpoint: str, paths: tuple[Path, ...]) -> None:
        """Read ``paths`` (26241/0, 3/0 and 9/0 after a registration); store what answered, an event for
        what did not; observe telemetry and the update state.

        A lost datagram on a lossy link must not leave the device without capabilities (and so refused
        by every campaign) until it registers again: each read is tried again, and what still went
        unanswered is read again at the device's next Update. A 4.04 is final.
        """
        answers: dict[Path, dict[int, Any]] = {}
        unanswered: set[Path] = set()
        for path in paths:
            for attempt in range(1, REPORT_READ_ATTEMPTS + 1):
                try:
                    answers[path] = resources(await self.server.devices.read(endpoint, path))
                    break
                except TinymlaasError as exc:
                    if attempt == REPORT_READ_ATTEMPTS or not isinstance(exc, PeerUnreachable):
                        await self._write(self._store_read_failure, endpoint, path, exc.detail)
                        if isinstance(exc, PeerUnreachable):
                            unanswered.add(path)
                        break
                    await asyncio.sleep(attempt)
        if unanswered:
            self._unread[endpoint] = unanswered
        else:
            self._unread.pop(endpoint, None)
        await self._write(self._store_reports, endpoint, answers)
        if SOFTWARE in answers:
            # A device that registered anew mid-update (its registration lapsed) tells its campaign here.
            self.campaigns.heard(endpoint, answers[SOFTWARE])
            await self._observe_software(endpoint)
        if RUNTIME not in answers:
            return

        async def on_values(values: dict[Path, Value]) -> None:
            await self._write(self._store_runtime, endpoint, resources(values))

        # The telemetry resources the device reported are observed one by one: the whole instance also
        # lists every supported op, too large on a LiteRT device for one (non block-wise) notification.
        for resource_id in (r for r in _TELEMETRY if r in answers[RUNTIME]):
            path = Path(RUNTIME.object_id, RUNTIME.instance_id, resource_id)
            try:
                await self.server.devices.observe(endpoint, path, on_values)
            except TinymlaasError as exc:
                await self._write(self._store_read_failure, endpoint, path, f"observe: {exc.detail}")

    async def _observe_software(self, endpoint: str) -> None:
        """Follow the Software Management instance, so the device row shows each install as it happens.

        The whole instance is observed, not Update State and Update Result alone: each notification
        carries every resource of it, so the installed package's name and version arrive with the state
        that changed with them. Observing the two resources, as this did, cost two observations per
        registration and a read of the instance after each change. What was notified is also the
        campaign runner's news of the device.
        """

        async def on_change(values: dict[Path, Value]) -> None:
            software = resources(values)
            self.campaigns.heard(endpoint, software)
            await self._write(self._store_installed, endpoint, software)

        try:
            await self.server.devices.observe(endpoint, SOFTWARE, on_change)
        except TinymlaasError as exc:
            await self._write(self._store_read_failure, endpoint, SOFTWARE, f"observe: {exc.detail}")

    # Database work, run in a worker thread by ``_write``.

    def _store_installed(self, endpoint: str, software: dict[int, Any]) -> None:
        with self.context.session() as session:
            repository = DeviceRepository(session)
            row = repository.find(endpoint)
            if row is None:
                return
            row.last_seen = self._now()
            repository.set_reported(endpoint, installed=_installed(software))

    async def _beat(self, interval: float) -> None:
        """Renew this server's row, and set offline the devices of servers no longer seen (killed)."""
        while True:
            await asyncio.sleep(interval)
            try:
                # Ahead of queued work: a renewal held up behind a busy queue would make the other
                # servers take this one for dead.
                await self._writer(self._renew, interval, urgent=True)
            except TinymlaasError as exc:  # the store is out of reach: the next beat tries again
                _log.warning("renewing server %s failed: %s", self.server_id, exc.detail)

    def _announce(self) -> None:
        now = self._now()
        with self.context.session() as session:
            servers = ServerRepository(session)
            servers.announce(self.server_id, now)
            gone_after = SERVER_GONE_AFTER_BEATS * HEARTBEAT_S
            alive = servers.alive(now, gone_after)
            repository = DeviceRepository(session)
            _went_offline(
                repository, repository.mark_offline_unless_served_by(alive), now, "server restarted"
            )
            servers.forget_before(now - timedelta(seconds=gone_after))  # their devices are offline now

    def _renew(self, interval: float) -> None:
        now = self._now()
        with self.context.session() as session:
            servers = ServerRepository(session)
            servers.renew(self.server_id, now)
            gone_after = SERVER_GONE_AFTER_BEATS * max(interval, HEARTBEAT_S)
            alive = servers.alive(now, gone_after)
            repository = DeviceRepository(session)
            gone = repository.mark_offline_unless_served_by([*alive, self.server_id], unknown=False)
            _went_offline(repository, gone, now, "its server stopped answering")
            servers.forget_before(now - timedelta(seconds=gone_after))

    def _leave(self) -> None:
        now = self._now()
        with self.context.session() as session:
            ServerRepository(session).leave(self.server_id)
            repository = DeviceRepository(session)
            _went_offline(
                repository, repository.mark_offline_served_by(self.server_id), now, "server stopped"
            )

    def _store_registrations(self, registrations: list[Registration]) -> None:
        with self.context.session() as session:
            repository = DeviceRepository(session)
            for registration in registrations:
                self._store_registration(repository, registration)

    def _store_registration(self, repository: DeviceRepository, registration: Registration) -> None:
        repository.upsert_registration(
            registration.endpoint,
            new_id=new_id("dev"),
            registration_id=registration.registration_id,
            address=registration.address,
            lifetime=registration.lifetime,
            lwm2m_version=registration.lwm2m_version,
            objects=[str(path) for path in registration.objects],
            registered_at=_at(registration.registered_at),
            server_id=self.server_id,
        )
        repository.record_event(
            registration.endpoint,
            DeviceEventKind.REGISTERED,
            {
                "registration_id": registration.registration_id,
                "address": registration.address,
                "lifetime_s": registration.lifetime,
                "objects": [str(path) for path in registration.objects],
            },
            at=_at(registration.registered_at),
        )

    def _store_updates(self, registrations: list[Registration]) -> None:
        """Store a group of Updates in one transaction: a fleet of thousands sends hundreds a second."""
        with self.context.session() as session:
            repository = DeviceRepository(session)
            for registration in registrations:
                self._store_update(repository, registration)

    def _store_update(self, repository: DeviceRepository, registration: Registration) -> None:
        at = _at(registration.updated_at)
        row = repository.find(registration.endpoint)
        # The row was deleted under a live registration, or the device registered anew (the Register
        # is stored ahead of queued work) and this Update belongs to the registration it replaced.
        if row is None or row.registration_id != registration.registration_id:
            return
        objects = [str(path) for path in registration.objects]
        changed = {
            key: value
            for key, value, before in (
                ("address", registration.address, row.address),
                ("lifetime_s", registration.lifetime, row.lifetime),
                ("objects", objects, row.objects),
            )
            if value != before
        }
        repository.seen(
            registration.endpoint,
            at,
            address=registration.address,
            lifetime=registration.lifetime,
            objects=objects,
            server_id=self.server_id,
        )
        if changed:
            repository.record_event(registration.endpoint, DeviceEventKind.UPDATED, changed, at=at)

    def _store_ends(self, ends: list[_End]) -> None:
        with self.context.session() as session:
            repository = DeviceRepository(session)
            for registration, kind, reason in ends:
                self._store_end(repository, registration, kind, reason)

    def _store_end(
        self, repository: DeviceRepository, registration: Registration, kind: DeviceEventKind, reason: str
    ) -> None:
        row = repository.find(registration.endpoint)
        if row is None:
            return
        # A re-Register has already stored the new registration (here or with another server, after
        # failing over): the device stays online.
        if row.registration_id == registration.registration_id:
            row.online = False
        repository.record_event(
            registration.endpoint,
            kind,
            {"reason": reason, "registration_id": registration.registration_id},
            at=self._now(),
        )

    def _store_read_failure(self, endpoint: str, path: Path, error: str) -> None:
        with self.context.session() as session:
            repository = DeviceRepository(session)
            if repository.find(endpoint) is not None:
                repository.record_event(
                    endpoint, DeviceEventKind.READ_FAILED, {"path": str(path), "error": error}, at=self._now()
                )

    def _store_reports(self, endpoint: str, answers: dict[Path, dict[int, Any]]) -> None:
        if not answers:  # every read failed and has its own event already
            return
        runtime, device, software = answers.get(RUNTIME), answers.get(DEVICE), answers.get(SOFTWARE)
        board = None
        if runtime is not None and isinstance(runtime.get(_RUNTIME_BOARD), str):
            board = runtime[_RUNTIME_BOARD]
        elif device is not None and isinstance(device.get(_MODEL_NUMBER), str):
            board = device[_MODEL_NUMBER]
        with self.context.session() as session:
            repository = DeviceRepository(session)
            if repository.find(endpoint) is None:
                return
            repository.set_reported(
                endpoint,
                board_id=board,
                capabilities=None if runtime is None else _named(runtime, _CAPABILITIES),
                telemetry=None if runtime is None else _named(runtime, _TELEMETRY),
                identity=None if device is None else _named(device, _IDENTITY),
                installed=None if software is None else _installed(software),
            )
            if runtime is not None:
                self._sample(repository, endpoint, _named(runtime, _TELEMETRY))
            repository.record_event(
                endpoint,
                DeviceEventKind.REPORTED,
                {"board": board, "objects": [str(path) for path in answers]},
                at=self._now(),
            )

    def _store_runtime(self, endpoint: str, runtime: dict[int, Any]) -> None:
        """A notification from the observed runtime instance: fresh telemetry, and proof of life.

        Merged into what is stored, so a notification carrying only the changed resources loses nothing.
        """
        with self.context.session() as session:
            repository = DeviceRepository(session)
            row = repository.find(endpoint)
            if row is None:
                return
            row.last_seen = self._now()
            reported = _named(runtime, _TELEMETRY)
            repository.set_reported(
                endpoint,
                capabilities={**row.capabilities, **_named(runtime, _CAPABILITIES)},
                telemetry={**row.telemetry, **reported},
            )
            self._sample(repository, endpoint, reported)

    def _sample(self, repository: DeviceRepository, endpoint: str, reported: dict[str, Any]) -> None:
        """Keep the sampled figures of one report, joining the sample of the same report round."""
        figures = {
            name: reported[name]
            for name in TELEMETRY_SAMPLED
            if isinstance(reported.get(name), int | float) and not isinstance(reported[name], bool)
        }
        if not figures:
            return
        now = self._now()
        kind = DeviceEventKind.TELEMETRY
        latest = next(iter(repository.events(endpoint, 1, kinds=[kind.value])), None)
        if (
            latest is not None
            and abs((now - as_utc(latest.at)).total_seconds()) <= _SAMPLE_ROUND_S
            and not figures.keys() & latest.detail.keys()
        ):
            latest.detail = {**latest.detail, **figures}
            return
        repository.record_event(endpoint, kind, figures, at=now)
        repository.trim_events(endpoint, kind.value, TELEMETRY_SAMPLES_KEPT)
