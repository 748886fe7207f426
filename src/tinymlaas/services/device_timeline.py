"""One device's story in one list, and its last inference result read as a class name.

The timeline merges what the device did (registrations, reports, failed reads, going offline) with
what campaigns did to it: every state its installations entered, installs and rollbacks included, each
with the model the device reported at that step. The last result a device reports is the index of its
top class; the class's name comes from the labels of the model it reports running, found through the
manifest of the module a campaign installed (its lineage names the model) or else by name and version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinymlaas.deploy.campaigns import InstallationState
from tinymlaas.errors import NotFound
from tinymlaas.lwm2m.core import UpdateResult
from tinymlaas.services._reports import code_name, iso
from tinymlaas.services.campaign_record import installation_changes, manifests_of, model_label
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import DeviceEventKind, as_utc, event_view
from tinymlaas.storage.repositories import CampaignRepository, DeviceRepository, ModelRepository
from tinymlaas.storage.tables import InstallationRow

__all__ = ["ResultClass", "TimelineEntry", "device_timeline", "result_class"]

_NOT_EVENTS = (DeviceEventKind.TELEMETRY.value,)
_I = InstallationState


@dataclass(frozen=True)
class TimelineEntry:
    """One step in a device's timeline; ``source`` is ``device`` (its own events) or ``campaign``."""

    at: str | None
    source: str
    kind: str
    summary: str
    detail: dict[str, Any]
    campaign: str | None = None
    module: str | None = None


@dataclass(frozen=True)
class ResultClass:
    """The device's last result as a class: its index, and the name the model's labels give it."""

    index: int
    label: str | None  # None when the model's labels are not known here or have no such index
    model: str | None  # the model the labels came from, "gestures v2"


def _installation_summary(
    state: _I, installation: InstallationRow, module_model: str | None, is_last: bool
) -> str:
    """How one installation step reads; the final step says what the device reported about it."""
    detail = installation.detail
    match state:
        case _I.SUCCEEDED:
            return f"installed {module_model}" if module_model else "installed"
        case _I.ROLLED_BACK:
            back = detail.get("rolled_back_to")
            return f"rolled back: back on {back}" if back else "rolled back"
        case _I.FAILED | _I.ROLLBACK_FAILED if is_last:
            result = code_name(UpdateResult, installation.update_result)
            why = detail.get("error") or detail.get("status_reason") or result or ""
            return f"{state.value.replace('_', ' ')}: {why}".rstrip(": ")
        case _I.REFUSED if is_last:
            reasons = "; ".join(detail.get("reasons") or [])
            return f"refused: {reasons}" if reasons else "refused"
        case _I.SENT:
            return f"sent {module_model}" if module_model else "sent"
        case _I.CANCELLED:
            return "not sent: an operator stopped the campaign"
    return ""


def device_timeline(ctx: Context, endpoint: str, limit: int = 50) -> list[TimelineEntry]:
    """The device's latest ``limit`` events and installation steps, newest first; NotFound if unknown."""
    with ctx.session() as session:
        devices = DeviceRepository(session)
        devices.device(endpoint)  # NotFound names the known endpoints
        entries = []
        for row in devices.events(endpoint, limit, exclude=_NOT_EVENTS):
            view = event_view(row)
            entry = TimelineEntry(view["at"], "device", view["kind"], "", view["detail"])
            entries.append((as_utc(row.at), entry))
        installations = CampaignRepository(session).installations_of(endpoint)
        manifests = manifests_of(session, {campaign.module_id for _, campaign in installations})
        for installation, campaign in installations:
            model = (manifests.get(campaign.module_id) or {}).get("model") or {}
            module_model = model_label(model.get("name") or model.get("id"), model.get("version"))
            changes = installation_changes(installation)
            for step, (at, state) in enumerate(changes):
                entries.append(
                    (
                        at,
                        TimelineEntry(
                            at=iso(at),
                            source="campaign",
                            kind=state.value,
                            summary=_installation_summary(
                                state, installation, module_model, step == len(changes) - 1
                            ),
                            detail={},
                            campaign=campaign.id,
                            module=campaign.module_id,
                        ),
                    )
                )
    entries.sort(key=lambda entry: entry[0], reverse=True)
    return [entry for _, entry in entries[:limit]]


def _labels(spec: dict[str, Any] | None) -> list[str]:
    return [str(label) for label in (spec or {}).get("labels") or []]


def result_class(ctx: Context, endpoint: str) -> ResultClass | None:
    """The last result the device reported, as a class index with its name; None when the result is
    no class index (a regression value, nothing reported yet)."""
    with ctx.session() as session:
        device = DeviceRepository(session).device(endpoint)
        text = str(device.telemetry.get("last_result", "")).strip()
        if not (text.isascii() and text.isdecimal()):
            return None
        index = int(text)
        name, version = device.installed.get("name"), device.installed.get("version")
        running = model_label(name, version)
        if running is None:
            return ResultClass(index, None, None)
        labels: list[str] = []
        installations = CampaignRepository(session).installations_of(endpoint)
        manifests = manifests_of(session, {campaign.module_id for _, campaign in installations})
        models = ModelRepository(session)
        for manifest in manifests.values():
            model = (manifest or {}).get("model") or {}
            if model_label(model.get("name"), model.get("version")) == running and model.get("id"):
                try:
                    labels = _labels(models.model(str(model["id"])).spec)
                except NotFound:
                    continue
                break
        else:
            if str(version).isdecimal():
                try:
                    labels = _labels(models.model(f"{name}:{version}").spec)
                except NotFound:
                    labels = []
        label = labels[index] if index < len(labels) else None
        return ResultClass(index, label, running)
