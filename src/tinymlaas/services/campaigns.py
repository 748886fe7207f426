"""Deploy a module to a fleet as a staged campaign: plan, preview, follow, cancel and roll back.

Creating a campaign needs no server: it checks the module, picks the targets from the devices table
and runs the compatibility gate against what each device *reported*, so a device that cannot run the
module is refused on record before anything is sent. The campaign runner in ``serve``
(``server.campaigns``) then sends each stage and follows the devices in flight. A rollback executes
Uninstall (/9/0/6) on each device that took the module: the agent goes back to the model in its
fallback slot after that model's self-test passes again. Campaign state lives only in the database, so
a restarted server continues where the last one stopped, and a ``campaigns cancel`` from another
process is never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field
from sqlalchemy.orm import Session

from tinymlaas.deploy.campaigns import (
    ACTIVE_CAMPAIGN_STATES,
    CAMPAIGN_TRANSITIONS,
    IN_FLIGHT_INSTALLATION_STATES,
    TERMINAL_INSTALLATION_STATES,
    Campaign,
    CampaignPlan,
    CampaignState,
    DeviceRef,
    InstallationState,
    select_targets,
)
from tinymlaas.deploy.gate import DeviceCapabilities, check_compatibility
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import UpdateResult
from tinymlaas.services._reports import code_name, iso
from tinymlaas.services.context import Context, new_id
from tinymlaas.squeeze.quality import judge_variant
from tinymlaas.storage.repositories import CampaignRepository, DeviceRepository, ModelRepository
from tinymlaas.storage.tables import CampaignRow, DeviceRow, InstallationRow, ModuleRow

__all__ = [
    "CampaignView",
    "InstallationView",
    "campaign_value",
    "campaigns_page",
    "cancel_campaign",
    "create_campaign",
    "device_installations",
    "installation_entry",
    "installations_to_alert",
    "list_campaigns",
    "preview_campaign",
    "rollback_campaign",
    "show_campaign",
    "store_campaign",
]


def campaign_value(row: CampaignRow, installations: dict[str, InstallationRow]) -> Campaign:
    """The pure campaign value the stored rows describe."""
    plan = row.plan
    return Campaign(
        id=row.id,
        plan=CampaignPlan(tuple(plan["stages"]), plan["max_failures"], tuple(plan["targets"])),
        state=CampaignState(row.state),
        installations={e: InstallationState(i.state) for e, i in installations.items()},
        current_stage=row.current_stage,
    )


class InstallationView(BaseModel):
    """One target's installation in a campaign, as the CLI, the API and the dashboard show it."""

    model_config = ConfigDict(from_attributes=True)

    endpoint: str
    state: str
    update_result: int | None
    update_result_text: str | None
    detail: dict[str, Any]
    started_at: str | None
    finished_at: str | None

    @computed_field(description="Sent and not yet done: the device will report again.")
    @property
    def in_flight(self) -> bool:
        return InstallationState(self.state) in IN_FLIGHT_INSTALLATION_STATES


class CampaignView(BaseModel):
    """A campaign with its installations in rollout order, and what can still be done with it.

    The verdicts are read off ``CAMPAIGN_TRANSITIONS``, so a page offers Cancel or Rollback exactly
    when the campaign would accept it.
    """

    model_config = ConfigDict(from_attributes=True)

    id: str
    module: str
    selector: str
    state: str
    stage: int = Field(description="1-based.")
    stages: list[int]
    max_failures: int | float
    targets: int
    done: int
    percent_done: float
    counts: dict[str, int]
    created_at: str | None
    updated_at: str | None
    installations: list[InstallationView]

    @computed_field(description="Whether cancelling is allowed now.")
    @property
    def can_cancel(self) -> bool:
        return CampaignState.CANCELLED in CAMPAIGN_TRANSITIONS[CampaignState(self.state)]

    @computed_field(description="Whether rolling back is allowed now.")
    @property
    def can_rollback(self) -> bool:
        return CampaignState.ROLLING_BACK in CAMPAIGN_TRANSITIONS[CampaignState(self.state)]

    @computed_field(description="Whether the server's runner still sends or reverts.")
    @property
    def active(self) -> bool:
        return CampaignState(self.state) in ACTIVE_CAMPAIGN_STATES

    @computed_field(description="Whether some device is still working on the update.")
    @property
    def in_flight(self) -> bool:
        return any(installation.in_flight for installation in self.installations)


def _campaign_view(row: CampaignRow, installations: dict[str, InstallationRow]) -> CampaignView:
    progress = campaign_value(row, installations).progress()
    return CampaignView(
        id=row.id,
        module=row.module_id,
        selector=row.selector,
        state=row.state,
        stage=row.current_stage + 1,
        stages=row.plan["stages"],
        max_failures=row.plan["max_failures"],
        targets=len(row.plan["targets"]),
        done=progress.done,
        percent_done=round(progress.percent_done, 1),
        counts={state.value: n for state, n in progress.counts.items() if n},
        created_at=iso(row.created_at),
        updated_at=iso(row.updated_at),
        installations=[_installation_view(installations[endpoint]) for endpoint in row.plan["targets"]],
    )


def _installation_view(row: InstallationRow) -> InstallationView:
    return InstallationView(
        endpoint=row.endpoint,
        state=row.state,
        update_result=row.update_result,
        update_result_text=code_name(UpdateResult, row.update_result),
        detail=row.detail,
        started_at=iso(row.started_at),
        finished_at=iso(row.finished_at),
    )


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


def _deployable(
    session: Session, module_id: str, *, threshold_points: float, allow_degraded: bool
) -> tuple[ModuleRow, dict[str, Any]]:
    """The module and its manifest, if it is no dry run's, was built, fits its board and kept the float
    model's quality (or the caller allows a degraded one); InvalidInput saying why not."""
    repo = ModelRepository(session)
    module = repo.module(module_id)
    if repo.in_sandbox(module):
        raise InvalidInput(
            f"module {module_id} was compiled by a dry run, whose models stay in its sandbox: "
            "train and compile on a production dataset to deploy"
        )
    if module.package_blob is None or module.manifest is None or not module.fits:
        reasons = "; ".join(module.reasons) or "no package was built"
        raise InvalidInput(
            f"module {module_id} does not fit its board ({reasons}): "
            "a module that does not fit is never offered for deployment"
        )
    if not allow_degraded:
        variant = repo.variant(module.variant_id)
        model = repo.model(variant.model_id)
        quality = judge_variant(
            variant.quantization,
            variant.method,
            variant.metrics,
            model.float_metric,
            model.cross_validation,
            threshold_points=threshold_points,
        )
        if quality is not None and quality.degraded:
            raise InvalidInput(
                f"module {module_id} is degraded: {quality.reason}; deploy it anyway with "
                "--allow-degraded (API: allow_degraded), or squeeze it again"
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
    ctx: Context,
    session: Session,
    module_id: str,
    selector: str,
    stages: Sequence[int],
    max_failures: int | float,
    allow_degraded: bool,
) -> tuple[ModuleRow, dict[str, DeviceRow], CampaignPlan, dict[str, list[str]]]:
    """Everything a campaign is decided on: the module, the devices, the plan, and the gate's refusals."""
    module, manifest = _deployable(
        session,
        module_id,
        threshold_points=ctx.settings.degraded_threshold_points,
        allow_degraded=allow_degraded,
    )
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
    *,
    allow_degraded: bool = False,
) -> dict[str, Any]:
    """What ``create_campaign`` would decide for each selected device, without storing anything.

    Runs the same checks in the same order (module, selector, plan, compatibility gate); the answer
    names, per device in rollout order, whether it fits or every reason it is refused, and how many
    devices each stage would reach.
    """
    with ctx.session() as session:
        module, devices, plan, refused = _gate(
            ctx, session, module_id, selector, stages, max_failures, allow_degraded
        )
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
    *,
    allow_degraded: bool = False,
) -> CampaignView:
    """Plan a rollout of ``module_id`` to the devices ``selector`` names and store it RUNNING.

    Devices the gate refuses are recorded REFUSED with its reasons; if it refuses every target, the
    whole campaign is refused (InvalidInput with every reason) and nothing is stored. A degraded
    module (worse than its float model, ``squeeze.quality``) is refused unless ``allow_degraded``,
    which the campaign's plan records.
    """
    now = datetime.now(UTC)
    with ctx.session() as session:
        _, _, plan, refused = _gate(ctx, session, module_id, selector, stages, max_failures, allow_degraded)
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
            plan={
                "stages": list(plan.stages),
                "max_failures": plan.max_failures,
                "targets": list(targets),
                **({"allow_degraded": True} if allow_degraded else {}),
            },
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
                state_changes=[_state_change(state, now)],
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


def installations_to_alert(
    ctx: Context, states: Iterable[InstallationState]
) -> list[tuple[str, InstallationView]]:
    """(campaign id, installation) for every installation in ``states``, and for every successful one
    of the same devices (a later success resolves an alert), newest campaign first."""
    with ctx.session() as session:
        rows = CampaignRepository(session).installations_to_alert(
            [state.value for state in states], InstallationState.SUCCEEDED.value
        )
        return [(campaign_id, _installation_view(row)) for campaign_id, row in rows]


def list_campaigns(ctx: Context) -> list[CampaignView]:
    """Every campaign, newest first."""
    return campaigns_page(ctx)[0]


def campaigns_page(
    ctx: Context, *, state: str | None = None, limit: int | None = None, offset: int = 0
) -> tuple[list[CampaignView], int]:
    """One page of the campaigns (only those in ``state`` if given) and how many there are in all.

    Filtered and paged in SQL, so a page reads only its own campaigns' installations.
    """
    states = None if state is None else [state]
    with ctx.session() as session:
        repository = CampaignRepository(session)
        rows = repository.campaigns(states, limit=limit, offset=offset)
        views = [_campaign_view(row, repository.installations(row.id)) for row in rows]
        return views, repository.count(states)


def show_campaign(ctx: Context, campaign_id: str) -> CampaignView:
    with ctx.session() as session:
        repository = CampaignRepository(session)
        return _campaign_view(repository.campaign(campaign_id), repository.installations(campaign_id))


def cancel_campaign(ctx: Context, campaign_id: str) -> CampaignView:
    """Stop sending: targets not yet sent become CANCELLED; devices in flight still report their outcome."""
    now = datetime.now(UTC)
    with ctx.session() as session:
        repository = CampaignRepository(session)
        row = repository.campaign(campaign_id)
        installations = repository.installations(campaign_id)
        campaign = campaign_value(row, installations).cancel()
        store_campaign(row, installations, campaign, now)
        return _campaign_view(row, installations)


def rollback_campaign(ctx: Context, campaign_id: str) -> CampaignView:
    """Start putting every device that took the module back on its previous model.

    Targets not yet sent become CANCELLED; the runner in ``serve`` then uninstalls the module on each
    SUCCEEDED device as soon as it is online, and on devices still in flight once they succeed.
    """
    now = datetime.now(UTC)
    with ctx.session() as session:
        repository = CampaignRepository(session)
        row = repository.campaign(campaign_id)
        installations = repository.installations(campaign_id)
        campaign, _ = campaign_value(row, installations).rollback()
        store_campaign(row, installations, campaign, now)
        return _campaign_view(row, installations)


def _state_change(state: InstallationState, at: datetime) -> dict[str, Any]:
    """One entry of an installation's ``state_changes``: the state it entered, and when."""
    return {"state": state.value, "at": iso(at)}


def store_campaign(
    row: CampaignRow, installations: dict[str, InstallationRow], campaign: Campaign, now: datetime
) -> None:
    """Copy a campaign value onto its rows, stamping the installations whose state changed and
    recording each change, so the rollout can be replayed over time."""
    row.state = campaign.state.value
    row.current_stage = campaign.current_stage
    row.updated_at = now
    for endpoint, state in campaign.installations.items():
        installation = installations[endpoint]
        if installation.state == state.value:
            continue
        installation.state = state.value
        installation.updated_at = now
        # A new list, not an append: the JSON column notices a replaced value, not a mutated one.
        installation.state_changes = [*installation.state_changes, _state_change(state, now)]
        if state is InstallationState.SENT:
            installation.started_at = now
        if state in TERMINAL_INSTALLATION_STATES:
            installation.finished_at = now
