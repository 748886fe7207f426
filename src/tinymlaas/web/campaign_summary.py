"""What the Deployments pages show, laid out from the services' campaign, model and preview views.

Pure functions: a campaign's stages with their devices, its rollout over time as a Plotly figure, the
modules a rollout can choose from, how each installation state reads, and the wizard's plan fields
read from a form. Whether a campaign can
still change or be cancelled is the service's verdict, not decided here.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from tinymlaas.deploy.campaigns import CampaignPlan, CampaignState, InstallationState
from tinymlaas.errors import InvalidInput
from tinymlaas.services.campaign_record import NOT_RECORDED, OperatorAction, ReportedModel, VersionShare
from tinymlaas.services.campaigns import CampaignView, InstallationView
from tinymlaas.services.fleet_health import ALERT_STATES
from tinymlaas.services.models import ModelDetail
from tinymlaas.services.rollout import RolloutTimeline

__all__ = [
    "HISTORY_TONES",
    "INSTALLATION_CAUSES",
    "INSTALLATION_TONES",
    "campaign_stages",
    "module_choices",
    "parse_plan",
    "rollout_figure",
    "stop_reason",
    "version_share_figure",
]

_I = InstallationState

# How an installation state reads on a campaign's page, as the CSS class of its cell: what a device
# did wrong in red, what the gate refused in amber, what an operator asked for in a neutral blue.
INSTALLATION_TONES = {
    **dict.fromkeys((_I.FAILED.value, _I.ROLLBACK_FAILED.value), "bad"),
    _I.REFUSED.value: "warn",
    **dict.fromkeys((_I.ROLLED_BACK.value, _I.CANCELLED.value), "info"),
    _I.SUCCEEDED.value: "ok",
}
# Whose doing an installation's outcome was: the device's (it failed), the compatibility gate's (it
# refused before anything was sent) or an operator's (Cancel left it unsent, Rollback reverted it).
INSTALLATION_CAUSES = {
    **dict.fromkeys((_I.FAILED.value, _I.ROLLBACK_FAILED.value), "device"),
    _I.REFUSED.value: "gate",
    **dict.fromkeys((_I.ROLLED_BACK.value, _I.CANCELLED.value), "operator"),
}
# The campaign states a person asks for, and the action that asks for each.
_ASKED_FOR = {
    CampaignState.CANCELLED.value: "cancel",
    CampaignState.ROLLING_BACK.value: "rollback",
    CampaignState.ROLLED_BACK.value: "rollback",
}
# Colours for the version-share chart's models, in the order the models are listed; unknowns grey.
_MODEL_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
_UNKNOWN_COLOURS = {NOT_RECORDED: "#d9d9d9", "no model": "#8c8c8c"}
# In a device's update history, every installation that needs attention or was refused stands out.
HISTORY_TONES = dict.fromkeys((*(state.value for state in ALERT_STATES), _I.REFUSED.value), "warn")
# Each installation state's colour in the rollout chart: waiting greys, work in progress blues, outcomes
# green, red and amber, so a glance tells progress from trouble.
_STATE_COLOURS = {
    _I.PENDING.value: "#c4c9cf",
    _I.SENT.value: "#9ecae1",
    _I.DOWNLOADING.value: "#4292c6",
    _I.INSTALLING.value: "#08519c",
    _I.SUCCEEDED.value: "#2ca25f",
    _I.FAILED.value: "#d7301f",
    _I.ROLLED_BACK.value: "#fd8d3c",
    _I.ROLLBACK_FAILED.value: "#7f0000",
    _I.REFUSED.value: "#bcbd22",
    _I.CANCELLED.value: "#8c8c8c",
}
_WHOLE_TICKS = 10  # devices up to which the rollout chart ticks every device


def _duration_s(installation: InstallationView) -> float | None:
    if not installation.started_at or not installation.finished_at:
        return None
    started = datetime.fromisoformat(installation.started_at)
    return (datetime.fromisoformat(installation.finished_at) - started).total_seconds()


def _stage_status(index: int, current: int, state: str) -> str:
    running = state == CampaignState.RUNNING.value
    if index < current:
        return "done"
    if index == current:
        return "sending" if running else state
    return "waiting" if running else "not reached"


def campaign_stages(
    campaign: CampaignView, reported: dict[str, ReportedModel] | None = None
) -> list[dict[str, Any]]:
    """Each stage of the rollout with its devices (in rollout order), their states and timings, whose
    doing each outcome was, and the package each device reports now (from ``reported``).

    A stage is ``done`` once the campaign moved past it; the stage the campaign stands at is
    ``sending`` while it runs, else it bears the campaign's state (completed, halted, cancelled, ...);
    later stages are ``waiting``, or ``not reached`` once the campaign stopped. The devices of a stage
    are those its cumulative percentage adds to the earlier stages.
    """
    installations = campaign.installations
    plan = CampaignPlan(
        tuple(campaign.stages), campaign.max_failures, tuple(i.endpoint for i in installations)
    )
    current = campaign.stage - 1
    stages = []
    start = 0
    for index, percent in enumerate(plan.stages):
        end = plan.stage_size(index)
        members = [
            {
                **i.model_dump(),
                "duration_s": _duration_s(i),
                "cause": INSTALLATION_CAUSES.get(i.state),
                "back_on": i.detail.get("rolled_back_to") if i.state == _I.ROLLED_BACK.value else None,
                "reported": (reported or {}).get(i.endpoint),
            }
            for i in installations[start:end]
        ]
        stages.append(
            {
                "number": index + 1,
                "percent": percent,
                "status": _stage_status(index, current, campaign.state),
                "counts": dict(Counter(i["state"] for i in members)),
                "installations": members,
            }
        )
        start = end
    return stages


def module_choices(models: list[ModelDetail]) -> list[dict[str, Any]]:
    """Every compiled module with the model and variant it came from, newest model first.

    A module offered for a rollout must be deployable; the others are listed too, with the reasons
    they cannot be chosen.
    """
    choices = []
    for model in sorted(models, key=lambda m: m.created_at, reverse=True):
        variants = {v.id: v for v in model.variants}
        for module in model.modules:
            variant = variants.get(module.variant)
            choices.append(
                {
                    **module.model_dump(),
                    "model": f"{model.name} v{model.version}",
                    "quantization": variant.quantization if variant else "?",
                    "degraded": variant.degraded if variant else False,
                }
            )
    return choices


def parse_plan(stages: str, max_failures: str) -> tuple[tuple[int, ...], int | float]:
    """The wizard's stages ("10,50,100") and failure limit ("2" devices or "0.1" of them)."""
    parts = [part.strip() for part in stages.split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise InvalidInput(
            f"stages must be whole percentages separated by commas, e.g. 10,50,100; got {stages!r}"
        )
    text = max_failures.strip() or "0"
    try:
        limit: int | float = float(text) if "." in text else int(text)
    except ValueError:
        raise InvalidInput(
            "max failures must be a count (e.g. 2) or a fraction of the devices sent (e.g. 0.1); "
            f"got {max_failures!r}"
        ) from None
    return tuple(int(part) for part in parts), limit


def rollout_figure(timeline: RolloutTimeline) -> dict[str, Any] | None:
    """How many devices stood in each installation state over time, as stacked steps; None before any
    device has a state to show.

    Times are drawn in UTC without a zone suffix, which plotly.js does not read.
    """
    if not timeline.times:
        return None
    x = [moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") for moment in timeline.times]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": state,
                "x": x,
                "y": timeline.counts[state],
                "stackgroup": "devices",
                "line": {"shape": "hv", "width": 0.5, "color": _STATE_COLOURS.get(state)},
                "hovertemplate": f"%{{y}} {state}<extra></extra>",
            }
            for state in timeline.states
        ],
        "layout": {
            "height": 280,
            "margin": {"t": 10, "r": 10, "b": 40, "l": 50},
            "xaxis": {"title": {"text": "time (UTC)"}, "type": "date"},
            # Whole devices on the axis of a small fleet; plotly's own ticks for a large one.
            "yaxis": {"title": {"text": "devices"}, "rangemode": "tozero"}
            | ({"dtick": 1} if timeline.devices <= _WHOLE_TICKS else {}),
            "hovermode": "x unified",
            "legend": {"orientation": "h", "y": -0.25},
        },
    }


def stop_reason(campaign: CampaignView, actions: list[OperatorAction]) -> dict[str, Any] | None:
    """Why the campaign stopped sending, when it did: the runner halting it on device failures, or the
    operator whose request (from the audit trail) cancelled or rolled it back; None while it runs or
    once it completed on its own.

    A cancel or rollback with no successful request on record was made on the server host with the
    CLI, which the audit trail does not see; the reason says so rather than name anyone.
    """
    if campaign.state == CampaignState.HALTED.value:
        return {
            "by": "runner",
            "text": f"halted by the campaign runner: device failures went past the limit of "
            f"{campaign.max_failures}",
        }
    action = _ASKED_FOR.get(campaign.state)
    if action is None:
        return None
    done = [a for a in actions if a.action == action and a.outcome == "ok"]
    if not done:
        return {
            "by": "operator",
            "text": f"{action} by an operator with no audit record (the CLI on the server host)",
        }
    last = done[-1]
    return {
        "by": "operator",
        "text": f"{action} by {last.actor} ({last.role}) via the {last.via}",
        "at": last.at,
    }


def version_share_figure(share: VersionShare) -> dict[str, Any] | None:
    """How many of the campaign's targets ran each model over time, as stacked steps; None without
    targets. Times are drawn in UTC without a zone suffix, which plotly.js does not read."""
    if not share.devices:
        return None
    x = [moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") for moment in share.times]
    known = [model for model in share.models if model not in _UNKNOWN_COLOURS]
    colours = {model: _MODEL_COLOURS[i % len(_MODEL_COLOURS)] for i, model in enumerate(known)}
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": model,
                "x": x,
                "y": share.counts[model],
                "stackgroup": "models",
                "line": {
                    "shape": "hv",
                    "width": 0.5,
                    "color": colours.get(model, _UNKNOWN_COLOURS.get(model)),
                },
                "hovertemplate": f"%{{y}} on {model}<extra></extra>",
            }
            for model in share.models
        ],
        "layout": {
            "height": 260,
            "margin": {"t": 10, "r": 10, "b": 40, "l": 50},
            "xaxis": {"title": {"text": "time (UTC)"}, "type": "date"},
            "yaxis": {"title": {"text": "devices"}, "rangemode": "tozero"}
            | ({"dtick": 1} if share.devices <= _WHOLE_TICKS else {}),
            "hovermode": "x unified",
            "legend": {"orientation": "h", "y": -0.25},
        },
    }
