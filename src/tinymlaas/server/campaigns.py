"""The campaign runner: the part of ``serve`` that carries stored campaigns out on the devices.

It sends each stage's Package URI, polls object 9 of the devices in flight, and stores every change at
once; on a campaign rolling back it executes Uninstall (/9/0/6) on each device that took the module,
which puts the device back on the slot it confirmed before, so no package is sent and the devices'
refusal of older packages (``sequence`` in ``deploy.package``) does not stand in the way. The signed
package is served only to the campaign's targets and withdrawn once none of them can fetch it any more.
Campaigns are planned, cancelled and rolled back by ``services.campaigns`` from any process; the runner
keeps no state of its own, and each change re-reads the campaign in the same transaction, so a
restarted server continues where the last one stopped and a ``campaigns cancel`` is never overwritten.

A pass only starts work: each device's send, poll or rollback runs as its own task (at most
``concurrency`` at once), so a device behind a lossy link, whose answer waits on retransmissions, holds
up no other. Devices are polled rarely: the fleet observes object 9 and hands what a device notified
to ``heard``, which the next pass takes as that device's poll; a device with no news is read again
after a pause that grows with the devices in flight (``POLLS_PER_S``), which also notices a lost
notification and counts the bytes a download reached. What the tasks learn is stored in groups: every
move waiting when the store is free goes into one transaction per campaign.

Several servers may share one store (active/standby): each pass first takes or renews the lease
``campaigns`` (``CampaignLease``); only its holder sends, polls and serves packages, the others stand
by. A holder that dies stops renewing, and the first standby to ask after the lease ran out takes over
and carries every campaign on from the store, publishing the packages anew for the devices that fail
over to it mid-download.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tinymlaas.deploy.campaigns import (
    ACTIVE_CAMPAIGN_STATES,
    Campaign,
    CampaignState,
    InstallationState,
    installation_state_for,
)
from tinymlaas.deploy.package import model_line, sign_package
from tinymlaas.deploy.signing import issue_sequence, load_or_create_signing_key
from tinymlaas.errors import Conflict, TinymlaasError
from tinymlaas.lwm2m.core import Path, UpdateResult, UpdateState, Value
from tinymlaas.lwm2m.server import Clock, DeviceRequestFailed, Lwm2mServer
from tinymlaas.lwm2m.transport import PeerUnreachable
from tinymlaas.services._reports import iso, resources
from tinymlaas.services.campaigns import campaign_value, store_campaign
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import CampaignRepository, LeaseRepository, ModelRepository

__all__ = ["LEASE_NAME", "POLLS_PER_S", "CampaignLease", "CampaignRunner", "Write", "run_passes"]

_log = logging.getLogger(__name__)

# Runs database work off the event loop, one piece at a time, and returns what it returned.
Write = Callable[..., Awaitable[Any]]

SOFTWARE = Path(9, 0)
PACKAGE_URI = Path(9, 0, 3)
UNINSTALL = Path(9, 0, 6)
_NAME, _VERSION, _STATE, _RESULT, _STATUS_REASON = 0, 1, 7, 9, 16
_IN_FLIGHT = (InstallationState.SENT, InstallationState.DOWNLOADING, InstallationState.INSTALLING)
_FETCHING = (InstallationState.SENT, InstallationState.DOWNLOADING)
# The one lease the campaign and pipeline runners of every server on a store share: pipelines start
# campaigns and configure the nodes they install on, so both belong to the same process.
LEASE_NAME = "campaigns"
# A Package URI write whose answer never came is made again while the device reports no update, up to
# this many writes in all; the count is kept in the installation's detail under UNANSWERED_WRITES.
WRITE_ATTEMPTS = 3
UNANSWERED_WRITES = "unanswered_writes"
# Reads of object 9 per second the runner spreads its polls of quiet in-flight devices over; a few
# devices are still polled every ``CampaignRunner.poll_interval`` seconds.
POLLS_PER_S = 40.0


async def run_passes(one_pass: Callable[[], Awaitable[None]], interval: float, what: str) -> None:
    """Run ``one_pass`` every ``interval`` seconds until cancelled; a failing pass is logged and the
    next one tries again, so one bad row never stops a runner."""
    while True:
        try:
            await one_pass()
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("%s pass failed", what)
        await asyncio.sleep(interval)


class CampaignLease:
    """This process's claim on driving campaigns and pipelines, asked for again before every pass.

    ``holder`` is the process's server id; the lease lasts ``ttl_s`` from each renewal, so a holder
    that stops renewing (killed, cut off from the store) is replaced after at most ``ttl_s`` plus one
    pass. Taking and losing it are logged, so an operator sees which server drives the fleet.
    """

    def __init__(self, context: Context, holder: str, write: Write, *, clock: Clock, ttl_s: float) -> None:
        self.context = context
        self.holder = holder
        self.ttl_s = ttl_s
        self._write = write
        self._clock = clock
        self.held = False

    async def hold(self) -> bool:
        """Take or renew the lease; True while this process holds it. A store that cannot be reached
        counts as not holding it: another server may have taken it meanwhile."""
        try:
            held = await self._write(self._acquire)
        except Exception:
            _log.exception("renewing the %s lease failed", LEASE_NAME)
            held = False
        if held != self.held:
            if held:
                _log.info("%s took the %s lease (term %g s)", self.holder, LEASE_NAME, self.ttl_s)
            else:
                _log.info("%s lost the %s lease; standing by", self.holder, LEASE_NAME)
        self.held = held
        return held

    async def release(self) -> None:
        """Give the lease up (a clean shutdown), so a standby takes over on its next pass."""
        if not self.held:
            return
        self.held = False
        try:
            await self._write(self._release)
        except Exception:
            _log.exception("releasing the %s lease failed; it runs out in %g s", LEASE_NAME, self.ttl_s)
            return
        _log.info("%s released the %s lease", self.holder, LEASE_NAME)

    def _acquire(self) -> bool:
        now = datetime.fromtimestamp(self._clock(), UTC)
        with self.context.session() as session:
            return LeaseRepository(session).acquire(LEASE_NAME, self.holder, now, self.ttl_s)

    def _release(self) -> None:
        with self.context.session() as session:
            LeaseRepository(session).release(LEASE_NAME, self.holder)


@dataclass(frozen=True)
class _Work:
    """What one runner pass needs of a campaign, read in one transaction."""

    campaign: Campaign
    module_id: str
    package_blob: str
    manifest: dict[str, Any]
    last_progress: dict[str, datetime]
    details: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class _Move:
    """One change to one installation, waiting to be stored: a new state (with its Update Result), or
    with ``state`` None only an addition to its detail, which counts as progress."""

    campaign_id: str
    endpoint: str
    state: InstallationState | None
    update_result: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class CampaignRunner:
    """Drives every campaign that has something to send or a device in flight, every ``interval`` seconds.

    ``write`` runs database work off the event loop, one piece at a time (FleetService's writer), so
    the runner's changes and the fleet's device reports are stored in order. With a ``lease`` a pass
    does nothing, and withdraws the packages it served, unless this process holds it.
    """

    def __init__(
        self,
        context: Context,
        server: Lwm2mServer,
        write: Write,
        *,
        clock: Clock,
        interval: float = 0.5,
        install_timeout: float = 120.0,
        concurrency: int = 64,
        poll_interval: float = 2.0,
        lease: CampaignLease | None = None,
    ) -> None:
        self.context = context
        self.lease = lease
        self.server = server
        self._write = write
        self._clock = clock
        self.interval = interval
        self.install_timeout = install_timeout
        self.poll_interval = poll_interval
        self._gate = asyncio.Semaphore(concurrency)
        # Campaign id -> token of its package, published by this process; the server's package store
        # does not outlive it.
        self._published: dict[str, str] = {}
        # (campaign, endpoint) -> the task sending to, polling or reverting that device. A task that
        # ended during a pass's load stays until the next pass, whose load then includes its move.
        self._busy: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Endpoint -> (when, object 9 as the device notified it), taken by the next poll of the device.
        self._heard: dict[str, tuple[datetime, dict[int, Value]]] = {}
        self._polled: dict[tuple[str, str], datetime] = {}
        self._moves: list[tuple[_Move, asyncio.Future[None]]] = []
        self._storing: asyncio.Task[None] | None = None

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def run(self) -> None:
        try:
            await run_passes(self.run_once, self.interval, "campaign")
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Cancel the devices' tasks; the moves they had learnt are stored first."""
        tasks = list(self._busy.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._storing is not None:
            await asyncio.gather(self._storing, return_exceptions=True)

    def heard(self, endpoint: str, software: dict[int, Value]) -> None:
        """Object 9 as ``endpoint`` just reported it (a notification of the instance the fleet observes)."""
        self._heard[endpoint] = (self._now(), software)

    async def run_once(self) -> None:
        """One pass: start the sends, polls and rollbacks that are due, and return without waiting."""
        self._busy = {key: task for key, task in self._busy.items() if not task.done()}
        if self.lease is not None and not await self.lease.hold():
            await self.stop()  # the devices' tasks started while it held the lease end too
            self._withdraw(set())
            return
        found = await self._write(self._load)
        for work in found:
            fetching = any(s in _FETCHING for s in work.campaign.installations.values())
            if fetching and work.campaign.id not in self._published:
                # A server taking over mid-campaign serves the package before any poll, so a device
                # that failed over to it mid-download finds the package here.
                await self._package_path(work)
            await self._advance(work)
        self._withdraw({work.campaign.id for work in found if work.campaign.serves_package})
        in_flight = {
            (w.campaign.id, e) for w in found for e, s in w.campaign.installations.items() if s in _IN_FLIGHT
        }
        self._polled = {key: at for key, at in self._polled.items() if key in in_flight}

    def _withdraw(self, serving: set[str]) -> None:
        """Stop serving the packages of campaigns not in ``serving``."""
        for campaign_id in set(self._published) - serving:
            self.server.unpublish(self._published.pop(campaign_id))

    def _load(self) -> list[_Work]:
        in_flight = [state.value for state in _IN_FLIGHT]
        with self.context.session() as session:
            repository = CampaignRepository(session)
            active = [state.value for state in ACTIVE_CAMPAIGN_STATES]
            ids = {row.id for row in repository.campaigns(active)}
            ids |= set(repository.campaigns_with_installations_in(in_flight))
            found = []
            for campaign_id in sorted(ids):
                row = repository.campaign(campaign_id)
                installations = repository.installations(campaign_id)
                module = ModelRepository(session).module(row.module_id)
                if module.package_blob is None or module.manifest is None:
                    continue
                found.append(
                    _Work(
                        campaign=campaign_value(row, installations),
                        module_id=row.module_id,
                        package_blob=module.package_blob,
                        manifest=dict(module.manifest),
                        last_progress={
                            e: i.updated_at if i.updated_at.tzinfo else i.updated_at.replace(tzinfo=UTC)
                            for e, i in installations.items()
                        },
                        details={e: dict(i.detail) for e, i in installations.items()},
                    )
                )
            return found

    def _online(self, endpoint: str) -> bool:
        return self.server.store.get_by_endpoint(endpoint) is not None

    def _start(
        self, work: _Work, endpoint: str, step: Callable[[_Work, str], Coroutine[Any, Any, None]]
    ) -> None:
        async def gated() -> None:
            async with self._gate:
                try:
                    await step(work, endpoint)
                except Exception:
                    # The device is tried again on a later pass, as one whose step found nothing to do.
                    _log.exception("campaign %s: %s on %s failed", work.campaign.id, step.__name__, endpoint)

        key = (work.campaign.id, endpoint)
        self._busy[key] = asyncio.create_task(gated(), name=f"campaign {key[0]} on {endpoint}")

    async def _advance(self, work: _Work) -> None:
        """Start what a campaign needs now on each device that has no task of its own yet."""
        campaign = work.campaign
        idle = [e for e in campaign.installations if (campaign.id, e) not in self._busy]
        batch = [e for e in campaign.next_batch() if (campaign.id, e) not in self._busy and self._online(e)]
        if batch:
            await self._package_path(work)  # signed and published once, before the sends need it
            for endpoint in batch:
                self._start(work, endpoint, self._send)
        if campaign.state is CampaignState.ROLLING_BACK:
            for endpoint in idle:
                if campaign.installations[endpoint] is InstallationState.SUCCEEDED and self._online(endpoint):
                    self._start(work, endpoint, self._revert)
        now = self._now()
        in_flight = [e for e, s in campaign.installations.items() if s in _IN_FLIGHT]
        pause = max(self.poll_interval, len(in_flight) / POLLS_PER_S)
        for endpoint in (e for e in in_flight if (campaign.id, e) not in self._busy):
            heard = self._heard.get(endpoint)
            last = max(
                work.last_progress[endpoint],
                self._polled.get((campaign.id, endpoint), work.last_progress[endpoint]),
            )
            news = heard is not None and heard[0] > work.last_progress[endpoint]
            if news or (now - last).total_seconds() >= pause:
                self._polled[(campaign.id, endpoint)] = now
                self._start(work, endpoint, self._poll)

    async def _package_path(self, work: _Work) -> str:
        token = f"{work.campaign.id}.{work.module_id}"
        if work.campaign.id not in self._published:
            data = await asyncio.to_thread(self._signed_package, work.package_blob, work.manifest)
            self.server.publish(token, data, endpoints=work.campaign.plan.targets)
            self._published[work.campaign.id] = token
        return f"/pkg/{token}"

    def _package_uri(self, endpoint: str, path: str) -> str:
        """The package on the port the device registered through: a device that registered over plain
        CoAP (development mode) has no DTLS session to fetch it with."""
        registration = self.server.store.get_by_endpoint(endpoint)
        address = registration.address if registration is not None else None
        nosec = self.server.nosec_uri
        if nosec is not None and address is not None and address.startswith("coap:"):
            return nosec + path
        return self.server.uri + path

    def _signed_package(self, blob: str, manifest: dict[str, Any]) -> bytes:
        """Signed with a fresh sequence, so a re-deployed older model is newer than what devices run."""
        keys_dir = self.context.settings.keys_dir
        key = load_or_create_signing_key(keys_dir)
        sequence = issue_sequence(keys_dir, model_line(manifest))
        return sign_package(self.context.blobs.get(blob), key, sequence=sequence)

    async def _send(self, work: _Work, endpoint: str) -> None:
        """Write the Package URI; the device downloads, verifies, installs and self-tests on its own."""
        uri = self._package_uri(endpoint, await self._package_path(work))
        campaign_id = work.campaign.id
        sent = InstallationState.SENT
        try:
            await self.server.devices.write(endpoint, PACKAGE_URI, uri)
        except PeerUnreachable as exc:
            # Only the answer may have been lost: the device may be downloading already. A poll that
            # finds it idle writes again (``_write_again``).
            unanswered = {"package_uri": uri, UNANSWERED_WRITES: 1, "last_write_error": exc.detail}
            await self._store(_Move(campaign_id, endpoint, sent, detail=unanswered))
            return
        except TinymlaasError as exc:
            error = f"writing the package URI failed: {exc.detail}"
            await self._store(
                _Move(campaign_id, endpoint, sent),
                _Move(campaign_id, endpoint, InstallationState.FAILED, detail={"error": error}),
            )
            return
        await self._store(_Move(campaign_id, endpoint, sent, detail={"package_uri": uri}))

    async def _write_again(self, work: _Work, endpoint: str) -> None:
        """Write the Package URI again to a device that reports no update after an unanswered write;
        FAILED once ``WRITE_ATTEMPTS`` writes in a row went unanswered."""
        campaign_id = work.campaign.id
        detail = work.details[endpoint]
        uri = str(detail.get("package_uri") or self._package_uri(endpoint, await self._package_path(work)))
        try:
            await self.server.devices.write(endpoint, PACKAGE_URI, uri)
        except TinymlaasError as exc:
            unanswered = int(detail.get(UNANSWERED_WRITES, 0)) + 1
            if isinstance(exc, PeerUnreachable) and unanswered < WRITE_ATTEMPTS:
                noted = {UNANSWERED_WRITES: unanswered, "last_write_error": exc.detail}
                await self._store(_Move(campaign_id, endpoint, None, detail=noted))
                return
            error = f"writing the package URI failed ({unanswered} attempts): {exc.detail}"
            await self._store(_Move(campaign_id, endpoint, InstallationState.FAILED, detail={"error": error}))
            return
        await self._store(_Move(campaign_id, endpoint, None, detail={UNANSWERED_WRITES: 0}))

    async def _poll(self, work: _Work, endpoint: str) -> None:
        """Read object 9, or take what the device notified since; record news, or FAILED once the device
        reported no progress for the timeout.

        Progress is a new state or a new Status Reason: the agent counts received bytes there while it
        downloads, so a slow link is told apart from a dead one.
        """
        current = work.campaign.installations[endpoint]
        news: InstallationState | None = None
        result: int | None = None
        detail: dict[str, Any] = {}
        heard = self._heard.get(endpoint)
        software: dict[int, Value] | None = None
        if heard is not None and heard[0] > work.last_progress[endpoint]:
            del self._heard[endpoint]
            software = heard[1]
        elif self._online(endpoint):
            try:
                software = resources(await self.server.devices.read(endpoint, SOFTWARE))
            except TinymlaasError as exc:
                _log.info("reading object 9 of %s failed: %s", endpoint, exc.detail)
        if software is not None:
            news, result, detail = _reported(software, work.manifest)
        campaign_id = work.campaign.id
        if news is not None and news is not current:
            await self._store(_Move(campaign_id, endpoint, news, result, detail))
            return
        idle = software is not None and news is None
        if idle and current is InstallationState.SENT and work.details[endpoint].get(UNANSWERED_WRITES):
            await self._write_again(work, endpoint)
            return
        reason = detail.get("status_reason")
        if reason and reason != work.details[endpoint].get("status_reason"):
            # Same state, new Status Reason (bytes received so far): slow, not stalled.
            await self._store(_Move(campaign_id, endpoint, None, detail={"status_reason": reason}))
            return
        stalled = (self._now() - work.last_progress[endpoint]).total_seconds()
        if stalled > self.install_timeout:
            error = f"no progress for {stalled:.0f} s (timeout {self.install_timeout:g} s)"
            await self._store(
                _Move(campaign_id, endpoint, InstallationState.FAILED, result, {"error": error})
            )

    async def _revert(self, work: _Work, endpoint: str) -> None:
        """Uninstall the campaign's module on one device; an unreachable or busy device is tried again.

        A device that runs another model already is ROLLED_BACK if this runner asked it to uninstall
        (the answer was lost), else ROLLBACK_FAILED: something else replaced the module and it is left.
        """
        expected = _module_label(work.manifest)
        campaign_id = work.campaign.id
        failed = InstallationState.ROLLBACK_FAILED
        try:
            running = _running_label(resources(await self.server.devices.read(endpoint, SOFTWARE)))
            if running != expected and "rollback_requested" not in work.details[endpoint]:
                error = (
                    f"the device runs {_label(running)} now, not this campaign's module; it is left as it is"
                )
                await self._store(_Move(campaign_id, endpoint, failed, detail={"error": error}))
                return
            if running == expected:
                requested = {"rollback_requested": iso(self._now())}
                await self._store(_Move(campaign_id, endpoint, None, detail=requested))
                await self.server.devices.execute(endpoint, UNINSTALL)
                running = _running_label(resources(await self.server.devices.read(endpoint, SOFTWARE)))
        except PeerUnreachable as exc:
            _log.info("rollback of %s waits: %s", endpoint, exc.detail)
            return
        except DeviceRequestFailed as exc:
            if exc.code == "5.03":  # an update is under way on the device; it ends on its own
                return
            await self._store(_Move(campaign_id, endpoint, failed, detail={"error": exc.detail}))
            return
        if running == expected:
            error = "the device still reports this campaign's model after Uninstall"
            await self._store(_Move(campaign_id, endpoint, failed, detail={"error": error}))
            return
        reverted = InstallationState.ROLLED_BACK
        await self._store(_Move(campaign_id, endpoint, reverted, detail={"rolled_back_to": _label(running)}))

    async def _store(self, *moves: _Move) -> None:
        """Queue ``moves`` for the next group written, and wait until they are stored."""
        loop = asyncio.get_running_loop()
        futures = []
        for move in moves:
            future: asyncio.Future[None] = loop.create_future()
            self._moves.append((move, future))
            futures.append(future)
        if self._storing is None or self._storing.done():
            self._storing = asyncio.create_task(self._store_groups(), name="campaign moves")
        await asyncio.gather(*futures)

    async def _store_groups(self) -> None:
        """Store the moves waiting, in groups, until none is left; a failed group fails its waiters."""
        while self._moves:
            group, self._moves = self._moves, []
            try:
                await self._write(self._apply, [move for move, _ in group])
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in group:
                if not future.done():
                    future.set_result(None)

    def _apply(self, moves: list[_Move]) -> None:
        """Apply moves in order, each campaign read and written once; a move it no longer takes is dropped."""
        now = self._now()
        with self.context.session() as session:
            repository = CampaignRepository(session)
            for campaign_id in dict.fromkeys(move.campaign_id for move in moves):
                row = repository.campaign(campaign_id)
                installations = repository.installations(campaign_id)
                campaign = campaign_value(row, installations)
                for move in (m for m in moves if m.campaign_id == campaign_id):
                    installation = installations[move.endpoint]
                    if move.state is None:
                        installation.detail = {**installation.detail, **move.detail}
                        installation.updated_at = now
                        continue
                    try:
                        campaign = campaign.record(move.endpoint, move.state)
                    except Conflict as exc:
                        _log.info("campaign %s: %s", campaign_id, exc.detail)
                        continue
                    store_campaign(row, installations, campaign, now)
                    if move.update_result is not None:
                        installation.update_result = move.update_result
                    if move.detail:
                        installation.detail = {**installation.detail, **move.detail}


def _reported(
    software: dict[int, Value], manifest: dict[str, Any]
) -> tuple[InstallationState | None, int | None, dict[str, Any]]:
    """What object 9 says about this campaign's package: (state or None, Update Result, detail).

    INSTALLED counts only when the installed name and version are the module's, so a device still
    reporting its previous model right after the write is not taken for a success.
    """
    try:
        state = UpdateState(int(software[_STATE]))  # type: ignore[arg-type]
        result = UpdateResult(int(software[_RESULT]))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return None, None, {}
    news = installation_state_for(state, result)
    if news is InstallationState.SUCCEEDED and _running_label(software) != _module_label(manifest):
        return None, int(result), {}
    reason = software.get(_STATUS_REASON)
    return news, int(result), {"status_reason": reason} if reason else {}


def _module_label(manifest: dict[str, Any]) -> tuple[str, str]:
    """(name, version) a device reports in object 9 while it runs the module of ``manifest``."""
    model = manifest.get("model", {})
    return str(model.get("name") or model.get("id") or ""), str(model.get("version", ""))


def _running_label(software: dict[int, Any]) -> tuple[str, str]:
    """(name, version) of the model object 9 says is installed."""
    return str(software.get(_NAME, "")), str(software.get(_VERSION, ""))


def _label(name_version: tuple[str, str]) -> str:
    name, version = name_version
    return f"{name} v{version}" if name else "no model"
