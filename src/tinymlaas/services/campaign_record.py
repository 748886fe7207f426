"""What happened in a campaign besides the devices' own progress: who acted on it, what each device
runs now, and which model versions its targets ran over the rollout.

An operator's Cancel or Rollback is read from the audit trail, which names the actor for every
dashboard and API request; a campaign changed on the server host with the CLI leaves no audit event,
and the page says so rather than guess. What a device runs is only ever what it reported: the Object 9
package name and version the runner read when it marked an install succeeded or a rollback done
(``detail.rolled_back_to``), and the installed package in the device's row for now.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tinymlaas.deploy.campaigns import InstallationState
from tinymlaas.services._reports import iso
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import AuditRepository, CampaignRepository, DeviceRepository
from tinymlaas.storage.tables import CampaignRow, InstallationRow, ModuleRow

__all__ = [
    "ASKED",
    "NOT_RECORDED",
    "OPERATOR_ACTIONS",
    "OperatorAction",
    "ReportedModel",
    "VersionShare",
    "installation_changes",
    "manifests_of",
    "model_label",
    "operator_actions",
    "reported_models",
    "version_share",
]

# The campaign changes a person asks for; each is a POST to ``.../<campaign id>/<action>`` in the
# dashboard and the REST API alike.
OPERATOR_ACTIONS = ("cancel", "rollback")
# The outcome of a dashboard post that showed the confirmation step and changed nothing.
ASKED = "asked to confirm"
_DASHBOARD = "dashboard"
_DONE_REDIRECT = 303  # the dashboard answers a change it made with a redirect to the campaign's page
# A device's model before the first install or rollback the server recorded for it.
NOT_RECORDED = "not recorded"
_NO_MODEL = "no model"


@dataclass(frozen=True)
class OperatorAction:
    """One request to cancel or roll back the campaign, with who made it and how it ended."""

    at: str | None
    action: str
    actor: str
    role: str
    via: str  # "dashboard" or "api"
    outcome: str  # "ok", "denied" or "failed" (services.audit.outcome_of), or ASKED


@dataclass(frozen=True)
class ReportedModel:
    """What one device last reported in Object 9, as its row holds it."""

    endpoint: str
    model: str | None  # "gestures v2"; None when the device reported no package
    update_state: str | None
    online: bool
    last_seen: str | None


@dataclass(frozen=True)
class VersionShare:
    """How many of the campaign's targets ran each model, at each moment one of them changed.

    ``counts[model][i]`` holds from ``times[i]`` until ``times[i + 1]``; the first moment is the
    campaign's creation and the last is when this was read, where ``counts`` is what the devices report.
    """

    campaign: str
    devices: int
    times: list[datetime]
    models: list[str]
    counts: dict[str, list[int]]


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every one the product stores is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def model_label(name: Any, version: Any) -> str | None:
    """``gestures v2`` for a package name and version, as the campaign runner writes it; None for none."""
    if not name:
        return None
    return f"{name} v{version}" if version not in (None, "") else str(name)


def _manifest_label(campaign: CampaignRow, manifests: dict[str, dict[str, Any] | None]) -> str | None:
    model = (manifests.get(campaign.module_id) or {}).get("model") or {}
    return model_label(model.get("name") or model.get("id"), model.get("version"))


def installation_changes(installation: InstallationRow) -> list[tuple[datetime, InstallationState]]:
    """When the installation entered each state it recorded, oldest first; a row stored before state
    changes were kept gives its present state at its last progress."""
    changes = [
        (_utc(datetime.fromisoformat(change["at"])), InstallationState(change["state"]))
        for change in installation.state_changes
    ]
    current = InstallationState(installation.state)
    if not changes or changes[-1][1] is not current:
        changes.append((_utc(installation.finished_at or installation.updated_at), current))
    return changes


def operator_actions(ctx: Context, campaign_id: str) -> list[OperatorAction]:
    """Every Cancel and Rollback asked of the campaign over HTTP, oldest first, refusals included."""
    suffixes = [f"/{campaign_id}/{action}" for action in OPERATOR_ACTIONS]
    with ctx.session() as session:
        CampaignRepository(session).campaign(campaign_id)  # NotFound for an unknown campaign
        rows = AuditRepository(session).events_ending(suffixes)
        return [
            OperatorAction(
                at=iso(row.at),
                action=row.target.rsplit("/", 1)[-1],
                actor=row.actor,
                role=row.role,
                via=row.action.partition(":")[0],
                outcome=_outcome(row.action, row.detail),
            )
            for row in rows
        ]


def _outcome(action: str, detail: dict[str, Any]) -> str:
    """The audit outcome, except that a dashboard post the page answered without its redirect to the
    campaign (a 200: the confirmation step, which changes nothing) was only asked, not done."""
    outcome = str(detail.get("outcome", ""))
    if outcome == "ok" and action.startswith(f"{_DASHBOARD}:") and detail.get("status") != _DONE_REDIRECT:
        return ASKED
    return outcome


def reported_models(ctx: Context, endpoints: list[str]) -> dict[str, ReportedModel]:
    """Endpoint -> the package each device last reported; devices the store no longer has are left out."""
    with ctx.session() as session:
        repository = DeviceRepository(session)
        found = {}
        for endpoint in endpoints:
            row = repository.find(endpoint)
            if row is None:
                continue
            installed = row.installed
            found[endpoint] = ReportedModel(
                endpoint=endpoint,
                model=model_label(installed.get("name"), installed.get("version")),
                update_state=installed.get("update_state_text"),
                online=row.online,
                last_seen=iso(row.last_seen),
            )
        return found


def _device_models(
    installations: list[tuple[InstallationRow, CampaignRow]], manifests: dict[str, dict[str, Any] | None]
) -> list[tuple[datetime, str]]:
    """When the device was found running which model, across its campaigns, oldest first.

    A succeeded install means the device reported the module's package in Object 9 (the runner checks
    name and version before it counts one); a rollback records what the device reported after Uninstall.
    """
    found = []
    for installation, campaign in installations:
        for at, state in installation_changes(installation):
            if state is InstallationState.SUCCEEDED:
                label = _manifest_label(campaign, manifests)
            elif state is InstallationState.ROLLED_BACK:
                label = installation.detail.get("rolled_back_to")
            else:
                continue
            if label:
                found.append((at, str(label)))
    return sorted(found)


def version_share(ctx: Context, campaign_id: str, *, now: datetime | None = None) -> VersionShare:
    """The models the campaign's targets ran, from its creation until now; NotFound for an unknown one.

    Each device starts on the last model recorded for it before the campaign (``not recorded`` if
    none), changes at every recorded install and rollback of any campaign since, and ends on the
    package it reports now.
    """
    reading = now or datetime.now(UTC)
    with ctx.session() as session:
        campaigns = CampaignRepository(session)
        campaign = campaigns.campaign(campaign_id)
        targets: list[str] = list(campaign.plan["targets"])
        start = _utc(campaign.created_at)
        histories = {endpoint: campaigns.installations_of(endpoint) for endpoint in targets}
        module_ids = {c.module_id for history in histories.values() for _, c in history}
        manifests = manifests_of(session, module_ids)
        devices = DeviceRepository(session)
        reported: dict[str, str] = {}
        for endpoint in targets:
            row = devices.find(endpoint)
            if row is not None:
                installed = row.installed
                reported[endpoint] = model_label(installed.get("name"), installed.get("version")) or _NO_MODEL
    standing: dict[str, str] = {}
    moves: list[tuple[datetime, int, str, str]] = []
    for order, endpoint in enumerate(targets):
        standing[endpoint] = NOT_RECORDED
        for at, label in _device_models(histories[endpoint], manifests):
            if at <= start:
                standing[endpoint] = label
            else:
                moves.append((at, order, endpoint, label))
    end = max(reading, *(at for at, *_ in moves)) if moves else max(reading, start)
    moves.sort()
    times = [start]
    moments = [Counter(standing.values())]
    for at, _, endpoint, label in moves:
        standing[endpoint] = label
        counts = Counter(standing.values())
        if at == times[-1]:
            moments[-1] = counts
        elif counts != moments[-1]:  # a reinstall of the same model is no step
            times.append(at)
            moments.append(counts)
    standing.update(reported)
    if end > times[-1]:
        times.append(end)
        moments.append(Counter(standing.values()))
    else:
        moments[-1] = Counter(standing.values())
    seen = {label for moment in moments for label in moment}
    models = sorted(seen - {NOT_RECORDED, _NO_MODEL}) + [m for m in (_NO_MODEL, NOT_RECORDED) if m in seen]
    return VersionShare(
        campaign=campaign_id,
        devices=len(targets),
        times=times,
        models=models,
        counts={model: [moment[model] for moment in moments] for model in models},
    )


def manifests_of(session: Session, module_ids: set[str]) -> dict[str, dict[str, Any] | None]:
    """Module id -> its manifest; None for a module that was never built or is no longer stored."""
    rows = {module_id: session.get(ModuleRow, module_id) for module_id in module_ids}
    return {module_id: row.manifest if row is not None else None for module_id, row in rows.items()}
