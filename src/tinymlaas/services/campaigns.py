"""Deploy a module to a fleet as a staged campaign, and run campaigns inside the LwM2M server.

Creating a campaign needs no server: it checks the module, picks the targets from the devices table
and runs the compatibility gate against what each device *reported*, so a device that cannot run the
module is refused on record before anything is sent. The ``CampaignRunner`` then lives in ``serve``:
it sends each stage's Package URI, polls object 9 of the devices in flight, and stores every change
at once. A rollback executes Uninstall (/9/0/6) on each device that took the module: the agent goes
back to the model in its fallback slot after that model's self-test passes again. Campaign state lives
only in the database, so a restarted server continues where the last one stopped; each change
re-reads the campaign in the same transaction, so a ``campaigns cancel`` from another process is never
overwritten.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tinymlaas.deploy.campaigns import (
    TERMINAL_INSTALLATION_STATES,
    Campaign,
    CampaignPlan,
    CampaignState,
    DeviceRef,
    InstallationState,
    installation_state_for,
    select_targets,
)
from tinymlaas.deploy.gate import DeviceCapabilities, check_compatibility
from tinymlaas.deploy.package import sign_package
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.errors import Conflict, InvalidInput, TinymlaasError
from tinymlaas.lwm2m.core import Path, UpdateResult, UpdateState, Value
from tinymlaas.lwm2m.server import Clock, DeviceRequestFailed, Lwm2mServer
from tinymlaas.lwm2m.transport import PeerUnreachable
from tinymlaas.services._reports import code_name, iso, resources
from tinymlaas.services.context import Context, new_id
from tinymlaas.storage.repositories import CampaignRepository, DeviceRepository, ModelRepository
from tinymlaas.storage.tables import CampaignRow, DeviceRow, InstallationRow, ModuleRow

__all__ = [
    "CampaignRunner",
    "cancel_campaign",
    "create_campaign",
    "device_installations",
    "installation_entry",
    "list_campaigns",
    "preview_campaign",
    "rollback_campaign",
    "show_campaign",
]

_log = logging.getLogger(__name__)

Write = Callable[..., Awaitable[Any]]

SOFTWARE = Path(9, 0)
PACKAGE_URI = Path(9, 0, 3)
UNINSTALL = Path(9, 0, 6)
_NAME, _VERSION, _STATE, _RESULT, _STATUS_REASON = 0, 1, 7, 9, 16
_IN_FLIGHT = (InstallationState.SENT, InstallationState.DOWNLOADING, InstallationState.INSTALLING)


def _value(row: CampaignRow, installations: dict[str, InstallationRow]) -> Campaign:
    """The pure campaign value the stored rows describe."""
    plan = row.plan
    return Campaign(
        id=row.id,
        plan=CampaignPlan(tuple(plan["stages"]), plan["max_failures"], tuple(plan["targets"])),
        state=CampaignState(row.state),
        installations={e: InstallationState(i.state) for e, i in installations.items()},
        current_stage=row.current_stage,
    )


def _campaign_view(row: CampaignRow, installations: dict[str, InstallationRow]) -> dict[str, Any]:
    """A campaign as the CLI and API render it, installations in rollout order."""
    progress = _value(row, installations).progress()
    return {
        "id": row.id,
        "module": row.module_id,
        "selector": row.selector,
        "state": row.state,
        "stage": row.current_stage + 1,
        "stages": row.plan["stages"],
        "max_failures": row.plan["max_failures"],
        "targets": len(row.plan["targets"]),
        "done": progress.done,
        "percent_done": round(progress.percent_done, 1),
        "counts": {state.value: n for state, n in progress.counts.items() if n},
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "installations": [
            {
                "endpoint": endpoint,
                "state": installations[endpoint].state,
                "update_result": installations[endpoint].update_result,
                "update_result_text": code_name(UpdateResult, installations[endpoint].update_result),
                "detail": installations[endpoint].detail,
                "started_at": iso(installations[endpoint].started_at),
                "finished_at": iso(installations[endpoint].finished_at),
            }
            for endpoint in row.plan["targets"]
        ],
    }


def _capabilities(row: DeviceRow) -> DeviceCapabilities | None:
    """What the device reported it can run; None until it reported its TinyML Runtime object."""
    caps = row.capabilities
    try:
        return DeviceCapabilities(
            runtime=str(caps["runtime"]),
            runtime_version=str(caps.get("runtime_version", "")),
            ops=frozenset(caps.get("ops") or ()),
            arena_bytes_available=int(caps["arena_bytes_available"]),
            slot_flash_bytes=int(caps["slot_flash_bytes"]),
            accelerator=caps.get("accelerator") or None,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _deployable(session: Session, module_id: str) -> tuple[ModuleRow, dict[str, Any]]:
    """The module and its manifest, if it was built and fits its board; InvalidInput saying why not."""
    module = ModelRepository(session).module(module_id)
    if module.package_blob is None or module.manifest is None or not module.fits:
        reasons = "; ".join(module.reasons) or "no package was built"
        raise InvalidInput(
            f"module {module_id} does not fit its board ({reasons}): "
            "a module that does not fit is never offered for deployment"
        )
    return module, module.manifest


def _refusals(
    manifest: dict[str, Any], devices: dict[str, DeviceRow], targets: Sequence[str]
) -> dict[str, list[str]]:
    """Endpoint -> every reason the gate refuses it, for the targets that cannot run the module."""
    refused: dict[str, list[str]] = {}
    for endpoint in targets:
        caps = _capabilities(devices[endpoint])
        if caps is None:
            refused[endpoint] = ["the device has not reported its TinyML Runtime capabilities"]
            continue
        verdict = check_compatibility(manifest, caps)
        if not verdict.ok:
            refused[endpoint] = list(verdict.reasons)
    return refused


def _gate(
    session: Session, module_id: str, selector: str, stages: Sequence[int], max_failures: int | float
) -> tuple[ModuleRow, dict[str, DeviceRow], CampaignPlan, dict[str, list[str]]]:
    """Everything a campaign is decided on: the module, the devices, the plan, and the gate's refusals."""
    module, manifest = _deployable(session, module_id)
    devices = {row.endpoint: row for row in DeviceRepository(session).devices()}
    refs = [DeviceRef(e, row.board_id or "", frozenset(row.tags)) for e, row in devices.items()]
    plan = CampaignPlan(tuple(stages), max_failures, select_targets(refs, selector))
    return module, devices, plan, _refusals(manifest, devices, plan.targets)


def preview_campaign(
    ctx: Context,
    module_id: str,
    selector: str,
    stages: Sequence[int] = (100,),
    max_failures: int | float = 0,
) -> dict[str, Any]:
    """What ``create_campaign`` would decide for each selected device, without storing anything.

    Runs the same checks in the same order (module, selector, plan, compatibility gate); the answer
    names, per device in rollout order, whether it fits or every reason it is refused, and how many
    devices each stage would reach.
    """
    with ctx.session() as session:
        module, devices, plan, refused = _gate(session, module_id, selector, stages, max_failures)
        previous = 0
        stage_sizes = []
        for index, percent in enumerate(plan.stages):
            size = plan.stage_size(index)
            stage_sizes.append({"percent": percent, "devices": size - previous})
            previous = size
        return {
            "module": module.id,
            "board": module.board_id,
            "runtime": module.runtime,
            "selector": selector,
            "targets": len(plan.targets),
            "fit": len(plan.targets) - len(refused),
            "refused": len(refused),
            "launchable": len(refused) < len(plan.targets),
            "stages": stage_sizes,
            "devices": [
                {
                    "endpoint": endpoint,
                    "board": devices[endpoint].board_id,
                    "online": devices[endpoint].online,
                    "fits": endpoint not in refused,
                    "reasons": refused.get(endpoint, []),
                }
                for endpoint in plan.targets
            ],
        }


def create_campaign(
    ctx: Context,
    module_id: str,
    selector: str,
    stages: Sequence[int] = (100,),
    max_failures: int | float = 0,
) -> dict[str, Any]:
    """Plan a rollout of ``module_id`` to the devices ``selector`` names and store it RUNNING.

    Devices the gate refuses are recorded REFUSED with its reasons; if it refuses every target, the
    whole campaign is refused (InvalidInput with every reason) and nothing is stored.
    """
    now = datetime.now(UTC)
    with ctx.session() as session:
        _, _, plan, refused = _gate(session, module_id, selector, stages, max_failures)
        targets = plan.targets
        if len(refused) == len(targets):
            listed = "; ".join(f"{e}: {', '.join(reasons)}" for e, reasons in refused.items())
            raise InvalidInput(f"no target can run module {module_id}: {listed}")
        campaign_id = new_id("cmp")
        draft = Campaign(
            campaign_id,
            plan,
            installations={
                e: InstallationState.REFUSED if e in refused else InstallationState.PENDING for e in targets
            },
        )
        # Starting settles the stages, so a first stage made only of refused devices is passed at once.
        campaign = draft.start()
        row = CampaignRow(
            id=campaign_id,
            module_id=module_id,
            selector=selector,
            plan={"stages": list(plan.stages), "max_failures": plan.max_failures, "targets": list(targets)},
            state=campaign.state.value,
            current_stage=campaign.current_stage,
            created_at=now,
            updated_at=now,
        )
        installations = [
            InstallationRow(
                campaign_id=campaign_id,
                endpoint=endpoint,
                state=state.value,
                update_result=None,
                detail={"reasons": refused[endpoint]} if endpoint in refused else {},
                started_at=None,
                finished_at=now if endpoint in refused else None,
                updated_at=now,
            )
            for endpoint, state in campaign.installations.items()
        ]
        repository = CampaignRepository(session)
        repository.add(row, installations)
        return _campaign_view(row, repository.installations(campaign_id))


def installation_entry(installation: InstallationRow, campaign: CampaignRow) -> dict[str, Any]:
    """One device's installation in one campaign, as its update history shows it."""
    return {
        "at": iso(installation.updated_at),
        "kind": installation.state,
        "detail": installation.detail,
        "campaign": campaign.id,
        "module": campaign.module_id,
        "campaign_state": campaign.state,
        "update_result": installation.update_result,
        "update_result_text": code_name(UpdateResult, installation.update_result),
        "started_at": iso(installation.started_at),
        "finished_at": iso(installation.finished_at),
    }


def device_installations(ctx: Context, endpoint: str) -> list[dict[str, Any]]:
    """The device's installations across campaigns, newest campaign first: its update history."""
    with ctx.session() as session:
        DeviceRepository(session).device(endpoint)  # NotFound names the known endpoints
        return [
            installation_entry(installation, campaign)
            for installation, campaign in CampaignRepository(session).installations_of(endpoint)
        ]


def list_campaigns(ctx: Context) -> list[dict[str, Any]]:
    """Every campaign, newest first."""
    with ctx.session() as session:
        repository = CampaignRepository(session)
        return [_campaign_view(row, repository.installations(row.id)) for row in repository.campaigns()]


def show_campaign(ctx: Context, campaign_id: str) -> dict[str, Any]:
    with ctx.session() as session:
        repository = CampaignRepository(session)
        return _campaign_view(repository.campaign(campaign_id), repository.installations(campaign_id))


def cancel_campaign(ctx: Context, campaign_id: str) -> dict[str, Any]:
    """Stop sending: targets not yet sent become CANCELLED; devices in flight still report their outcome."""
    now = datetime.now(UTC)
    with ctx.session() as session:
        repository = CampaignRepository(session)
        row = repository.campaign(campaign_id)
        installations = repository.installations(campaign_id)
        campaign = _value(row, installations).cancel()
        _store(row, installations, campaign, now)
        return _campaign_view(row, installations)


def rollback_campaign(ctx: Context, campaign_id: str) -> dict[str, Any]:
    """Start putting every device that took the module back on its previous model.

    Targets not yet sent become CANCELLED; the runner in ``serve`` then uninstalls the module on each
    SUCCEEDED device as soon as it is online, and on devices still in flight once they succeed.
    """
    now = datetime.now(UTC)
    with ctx.session() as session:
        repository = CampaignRepository(session)
        row = repository.campaign(campaign_id)
        installations = repository.installations(campaign_id)
        campaign, _ = _value(row, installations).rollback()
        _store(row, installations, campaign, now)
        return _campaign_view(row, installations)


def _store(
    row: CampaignRow, installations: dict[str, InstallationRow], campaign: Campaign, now: datetime
) -> None:
    """Copy a campaign value onto its rows, stamping the installations whose state changed."""
    row.state = campaign.state.value
    row.current_stage = campaign.current_stage
    row.updated_at = now
    for endpoint, state in campaign.installations.items():
        installation = installations[endpoint]
        if installation.state == state.value:
            continue
        installation.state = state.value
        installation.updated_at = now
        if state is InstallationState.SENT:
            installation.started_at = now
        if state in TERMINAL_INSTALLATION_STATES:
            installation.finished_at = now


@dataclass(frozen=True)
class _Work:
    """What one runner pass needs of a campaign, read in one transaction."""

    campaign: Campaign
    module_id: str
    package_blob: str
    manifest: dict[str, Any]
    last_progress: dict[str, datetime]
    details: dict[str, dict[str, Any]]


class CampaignRunner:
    """Drives every campaign that has something to send or a device in flight, every ``interval`` seconds.

    ``write`` runs database work off the event loop, one piece at a time (FleetService's writer), so
    the runner's changes and the fleet's device reports are stored in order.
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
        concurrency: int = 32,
    ) -> None:
        self.context = context
        self.server = server
        self._write = write
        self._clock = clock
        self.interval = interval
        self.install_timeout = install_timeout
        self.concurrency = concurrency
        # Tokens published by this process; the server's package store does not outlive it.
        self._published: set[str] = set()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def run(self) -> None:
        """Run passes until cancelled; a failing pass is logged and the next one tries again."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("campaign pass failed")
            await asyncio.sleep(self.interval)

    async def run_once(self) -> None:
        for work in await self._write(self._load):
            await self._advance(work)

    def _load(self) -> list[_Work]:
        in_flight = [state.value for state in _IN_FLIGHT]
        with self.context.session() as session:
            repository = CampaignRepository(session)
            active = [CampaignState.RUNNING.value, CampaignState.ROLLING_BACK.value]
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
                        campaign=_value(row, installations),
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

    async def _advance(self, work: _Work) -> None:
        """One pass over a campaign: send, revert and poll, up to ``concurrency`` devices at a time.

        Devices answer in a round trip each, and a slow or silent one (a lossy link, a device busy
        self-testing) must not hold up the rest of the fleet behind it.
        """
        gate = asyncio.Semaphore(self.concurrency)

        async def each(step: Callable[[_Work, str], Awaitable[None]], endpoints: Sequence[str]) -> None:
            async def one(endpoint: str) -> None:
                async with gate:
                    await step(work, endpoint)

            await asyncio.gather(*(one(endpoint) for endpoint in endpoints))

        batch = [e for e in work.campaign.next_batch() if self._online(e)]
        if batch:
            await self._package_uri(work)  # signed and published once, before the sends need it
            await each(self._send, batch)
        if work.campaign.state is CampaignState.ROLLING_BACK:
            succeeded = work.campaign.endpoints(InstallationState.SUCCEEDED)
            await each(self._revert, [e for e in succeeded if self._online(e)])
        await each(self._poll, [e for e, s in work.campaign.installations.items() if s in _IN_FLIGHT])

    async def _package_uri(self, work: _Work) -> str:
        token = f"{work.campaign.id}.{work.module_id}"
        if token not in self._published:
            data = await asyncio.to_thread(self._signed_package, work.package_blob)
            self.server.publish(token, data)
            self._published.add(token)
        return f"{self.server.uri}/pkg/{token}"

    def _signed_package(self, blob: str) -> bytes:
        key = load_or_create_signing_key(self.context.settings.data_dir / "keys")
        return sign_package(self.context.blobs.get(blob), key)

    async def _send(self, work: _Work, endpoint: str) -> None:
        """Write the Package URI; the device downloads, verifies, installs and self-tests on its own."""
        uri = await self._package_uri(work)
        try:
            await self.server.devices.write(endpoint, PACKAGE_URI, uri)
        except TinymlaasError as exc:
            await self._write(self._record, work.campaign.id, endpoint, InstallationState.SENT, None, {})
            await self._write(
                self._record,
                work.campaign.id,
                endpoint,
                InstallationState.FAILED,
                None,
                {"error": f"writing the package URI failed: {exc.detail}"},
            )
            return
        await self._write(
            self._record, work.campaign.id, endpoint, InstallationState.SENT, None, {"package_uri": uri}
        )

    async def _poll(self, work: _Work, endpoint: str) -> None:
        """Read object 9; record news, or FAILED once the device reported no progress for the timeout.

        Progress is a new state or a new Status Reason: the agent counts received bytes there while it
        downloads, so a slow link is told apart from a dead one.
        """
        current = work.campaign.installations[endpoint]
        news: InstallationState | None = None
        result: int | None = None
        detail: dict[str, Any] = {}
        if self._online(endpoint):
            try:
                software = resources(await self.server.devices.read(endpoint, SOFTWARE))
            except TinymlaasError as exc:
                _log.info("reading object 9 of %s failed: %s", endpoint, exc.detail)
            else:
                news, result, detail = _reported(software, work.manifest)
        if news is not None and news is not current:
            await self._write(self._record, work.campaign.id, endpoint, news, result, detail)
            return
        reason = detail.get("status_reason")
        if reason and reason != work.details[endpoint].get("status_reason"):
            # Same state, new Status Reason (bytes received so far): slow, not stalled.
            await self._write(self._note, work.campaign.id, endpoint, {"status_reason": reason})
            return
        stalled = (self._now() - work.last_progress[endpoint]).total_seconds()
        if stalled > self.install_timeout:
            await self._write(
                self._record,
                work.campaign.id,
                endpoint,
                InstallationState.FAILED,
                result,
                {"error": f"no progress for {stalled:.0f} s (timeout {self.install_timeout:g} s)"},
            )

    async def _revert(self, work: _Work, endpoint: str) -> None:
        """Uninstall the campaign's module on one device; an unreachable or busy device is tried again.

        A device that runs another model already is ROLLED_BACK if this runner asked it to uninstall
        (the answer was lost), else ROLLBACK_FAILED: something else replaced the module and it is left.
        """
        expected = _module_label(work.manifest)
        try:
            running = _running_label(resources(await self.server.devices.read(endpoint, SOFTWARE)))
            if running != expected and "rollback_requested" not in work.details[endpoint]:
                error = (
                    f"the device runs {_label(running)} now, not this campaign's module; it is left as it is"
                )
                await self._write(
                    self._record,
                    work.campaign.id,
                    endpoint,
                    InstallationState.ROLLBACK_FAILED,
                    None,
                    {"error": error},
                )
                return
            if running == expected:
                requested = {"rollback_requested": iso(self._now())}
                await self._write(self._note, work.campaign.id, endpoint, requested)
                await self.server.devices.execute(endpoint, UNINSTALL)
                running = _running_label(resources(await self.server.devices.read(endpoint, SOFTWARE)))
        except PeerUnreachable as exc:
            _log.info("rollback of %s waits: %s", endpoint, exc.detail)
            return
        except DeviceRequestFailed as exc:
            if exc.code == "5.03":  # an update is under way on the device; it ends on its own
                return
            failed = InstallationState.ROLLBACK_FAILED
            await self._write(self._record, work.campaign.id, endpoint, failed, None, {"error": exc.detail})
            return
        if running == expected:
            error = "the device still reports this campaign's model after Uninstall"
            failed = InstallationState.ROLLBACK_FAILED
            await self._write(self._record, work.campaign.id, endpoint, failed, None, {"error": error})
            return
        reverted = InstallationState.ROLLED_BACK
        detail = {"rolled_back_to": _label(running)}
        await self._write(self._record, work.campaign.id, endpoint, reverted, None, detail)

    def _note(self, campaign_id: str, endpoint: str, detail: dict[str, Any]) -> None:
        """Add to one installation's detail without changing its state; it counts as progress."""
        with self.context.session() as session:
            installation = CampaignRepository(session).installations(campaign_id)[endpoint]
            installation.detail = {**installation.detail, **detail}
            installation.updated_at = self._now()

    def _record(
        self,
        campaign_id: str,
        endpoint: str,
        state: InstallationState,
        update_result: int | None,
        detail: dict[str, Any],
    ) -> None:
        """Apply one device's move to the campaign as stored now; a move it no longer takes is dropped."""
        now = self._now()
        with self.context.session() as session:
            repository = CampaignRepository(session)
            row = repository.campaign(campaign_id)
            installations = repository.installations(campaign_id)
            try:
                campaign = _value(row, installations).record(endpoint, state)
            except Conflict as exc:
                _log.info("campaign %s: %s", campaign_id, exc.detail)
                return
            _store(row, installations, campaign, now)
            installation = installations[endpoint]
            if update_result is not None:
                installation.update_result = update_result
            if detail:
                installation.detail = {**installation.detail, **detail}


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
