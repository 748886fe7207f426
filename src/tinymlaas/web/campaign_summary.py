"""What the Deployments pages show, worked out from the services' campaign, model and preview views.

Pure functions over plain dicts: a campaign's stages with their devices, whether a page is still live,
the modules a rollout can choose from, and the wizard's plan fields read from a form.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from tinymlaas.deploy.campaigns import CampaignPlan
from tinymlaas.errors import InvalidInput

__all__ = ["IN_FLIGHT_STATES", "campaign_active", "campaign_stages", "module_choices", "parse_plan"]

# Installation states where the device is still working on the update.
IN_FLIGHT_STATES = ("sent", "downloading", "installing")
# Campaign states in which the runner still sends or reverts.
_ACTIVE_CAMPAIGN_STATES = ("running", "rolling_back")


def campaign_active(campaign: dict[str, Any]) -> bool:
    """Whether the campaign's page can still change: the runner works on it or a device is in flight."""
    return campaign["state"] in _ACTIVE_CAMPAIGN_STATES or any(
        i["state"] in IN_FLIGHT_STATES for i in campaign["installations"]
    )


def _duration_s(installation: dict[str, Any]) -> float | None:
    if not installation["started_at"] or not installation["finished_at"]:
        return None
    started = datetime.fromisoformat(installation["started_at"])
    return (datetime.fromisoformat(installation["finished_at"]) - started).total_seconds()


def _stage_status(index: int, current: int, state: str) -> str:
    if index < current:
        return "done"
    if index == current:
        return "sending" if state == "running" else state
    return "waiting" if state == "running" else "not reached"


def campaign_stages(campaign: dict[str, Any]) -> list[dict[str, Any]]:
    """Each stage of the rollout with its devices (in rollout order), their states and timings.

    A stage is ``done`` once the campaign moved past it; the stage the campaign stands at is
    ``sending`` while it runs, else it bears the campaign's state (completed, halted, cancelled, ...);
    later stages are ``waiting``, or ``not reached`` once the campaign stopped. The devices of a stage
    are those its cumulative percentage adds to the earlier stages.
    """
    installations = campaign["installations"]
    plan = CampaignPlan(
        tuple(campaign["stages"]), campaign["max_failures"], tuple(i["endpoint"] for i in installations)
    )
    current = campaign["stage"] - 1
    stages = []
    start = 0
    for index, percent in enumerate(plan.stages):
        end = plan.stage_size(index)
        members = [{**i, "duration_s": _duration_s(i)} for i in installations[start:end]]
        stages.append(
            {
                "number": index + 1,
                "percent": percent,
                "status": _stage_status(index, current, campaign["state"]),
                "counts": dict(Counter(i["state"] for i in members)),
                "installations": members,
            }
        )
        start = end
    return stages


def module_choices(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every compiled module with the model and variant it came from, newest model first.

    ``models`` are ``show_model`` views. A module offered for a rollout must have a package and fit
    its board; the others are listed too, with the reasons they cannot be chosen.
    """
    choices = []
    for model in sorted(models, key=lambda m: m["created_at"], reverse=True):
        variants = {v["id"]: v for v in model["variants"]}
        for module in model["modules"]:
            variant = variants.get(module["variant"], {})
            choices.append(
                {
                    "id": module["id"],
                    "model": f"{model['name']} v{model['version']}",
                    "quantization": variant.get("quantization", "?"),
                    "board": module["board"],
                    "runtime": module["runtime"],
                    "flash_bytes": module["flash_bytes"],
                    "ram_bytes": module["ram_bytes"],
                    "fits": module["fits"],
                    "reasons": module["reasons"],
                    "deployable": bool(module["fits"] and module["package"]),
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
