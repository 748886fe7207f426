"""Deployments (the operator's page): campaigns and their progress, the rollout wizard, one campaign.

The wizard picks a model, then one of its variants per board, then the devices (a board, a tag or a
list of endpoints, with how many devices that is now). It checks a rollout with the same
compatibility gate that creating it runs (``Check`` changes nothing); ``Launch``, ``Cancel`` and
``Rollback`` call the services the CLI and the REST API call, and need ``deployments:write``. Cancel
and Rollback act only on a post that confirms them: the first post answers with what would happen and
a button that confirms it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.deploy.campaigns import InstallationState
from tinymlaas.errors import InvalidInput, TinymlaasError
from tinymlaas.services import campaigns as service
from tinymlaas.services.auth import Permission
from tinymlaas.services.campaign_record import operator_actions, reported_models, version_share
from tinymlaas.services.campaigns import CampaignView
from tinymlaas.services.context import Context
from tinymlaas.services.models import list_model_details
from tinymlaas.services.modules import module_names
from tinymlaas.services.rollout import rollout_timeline
from tinymlaas.services.targets import TargetMatch, match_targets, target_options
from tinymlaas.web.campaign_summary import (
    INSTALLATION_TONES,
    campaign_stages,
    module_choices,
    parse_plan,
    rollout_figure,
    stop_reason,
    version_share_figure,
)
from tinymlaas.web.deps import ContextDep, Viewer, needs, render
from tinymlaas.web.rollout_wizard import chosen_model, model_choices, selftest_failures, variant_choices
from tinymlaas.web.sessions import DashboardSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Operator = Annotated[DashboardSession, Depends(needs(Permission.DEPLOYMENTS_WRITE))]

_DEFAULT_STAGES = "10,50,100"
# A selector names boards, tags or endpoints (at most 128 characters each); typing is bounded too.
MAX_SELECTOR = 8192
_CONFIRMED = "yes"


def _wizard(context: Context, fields: dict[str, str]) -> dict[str, Any]:
    """The wizard's fields with what they offer: models, the chosen model's variants per board, targets.

    A module that is not a variant of the chosen model is replaced by that model's default variant,
    so changing the model never checks a module of another one.
    """
    models = list_model_details(context)
    model = chosen_model(models, fields["model"], fields["module"])
    boards: list[dict[str, Any]] = []
    module = ""
    if model is not None:
        kind, _, board = fields["selector"].strip().partition(":")
        boards, module = variant_choices(
            model,
            selftest_failures(service.list_campaigns(context)),
            allow_degraded=bool(fields["allow_degraded"]),
            wanted=fields["module"],
            board=board.strip() if kind == "board" else "",
        )
    selector = fields["selector"].strip()
    return {
        **fields,
        "model": model.id if model is not None else "",
        "module": module,
        "models": model_choices(models),
        "boards": boards,
        "targets": target_options(context),
        "match": match_targets(context, selector) if selector else None,
    }


def _list_page(
    request: Request,
    context: Context,
    session: DashboardSession,
    wizard: dict[str, Any],
    *,
    preview: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    campaigns = service.list_campaigns(context)
    return render(
        request,
        "deployments.html",
        session,
        status,
        campaigns=campaigns,
        module_names=module_names(context, {c.module for c in campaigns}),
        live=any(c.active or c.in_flight for c in campaigns),
        modules=module_choices(list_model_details(context)),
        refused=InstallationState.REFUSED.value,
        wizard=wizard,
        preview=preview,
        error=error,
    )


def _fields(
    model: str, module: str, selector: str, stages: str, max_failures: str, allow_degraded: str
) -> dict[str, str]:
    return {
        "model": model,
        "module": module,
        "selector": selector,
        "stages": stages,
        "max_failures": max_failures,
        "allow_degraded": "on" if allow_degraded else "",
    }


@router.get("/deployments", response_class=HTMLResponse)
def deployments_page(
    request: Request,
    context: ContextDep,
    session: Viewer,
    model: Annotated[str, Query()] = "",
    module: Annotated[str, Query()] = "",
    selector: Annotated[str, Query()] = "",
    stages: Annotated[str, Query()] = _DEFAULT_STAGES,
    max_failures: Annotated[str, Query()] = "0",
    allow_degraded: Annotated[str, Query()] = "",
    check: Annotated[str, Query()] = "",
    step: Annotated[str, Query()] = "",
) -> HTMLResponse:
    """Campaigns with their progress and the wizard; with a module and a selector, or when Check was
    pressed, the gate's verdict per device.

    ``step`` is sent by the wizard's intermediate buttons (choosing a model, ticking allow degraded):
    they fill the next fields in without checking anything.
    """
    wizard = _wizard(context, _fields(model, module, selector, stages, max_failures, allow_degraded))
    if not check and (step or not (module and selector.strip())):
        return _list_page(request, context, session, wizard)
    try:
        if not wizard["model"]:
            raise InvalidInput("choose a model, then one of its variants, before checking a rollout")
        if not wizard["boards"]:
            raise InvalidInput(
                "this model has no variant that can be deployed: compile one for a board first"
            )
        if not wizard["module"]:
            raise InvalidInput(
                "choose one of the model's variants: each is degraded or failed its self-test, "
                "so none is chosen for you"
            )
        if not selector.strip():
            raise InvalidInput("choose the devices: a board, a tag, or device names separated by commas")
        plan = parse_plan(stages, max_failures)
        preview = service.preview_campaign(
            context, wizard["module"], selector, *plan, allow_degraded=bool(allow_degraded)
        )
    except TinymlaasError as exc:
        return _list_page(request, context, session, wizard, error=exc.detail, status=exc.http_status)
    return _list_page(request, context, session, wizard, preview=preview)


@router.get("/ui/targets")
def targets_json(
    context: ContextDep, _session: Viewer, selector: Annotated[str, Query(max_length=MAX_SELECTOR)] = ""
) -> TargetMatch:
    """The devices ``selector`` chooses now, by the rule campaigns choose their targets by."""
    return match_targets(context, selector)


@router.post("/deployments", response_model=None)
def campaign_launch_form(
    request: Request,
    context: ContextDep,
    session: Operator,
    model: Annotated[str, Form()] = "",
    module: Annotated[str, Form()] = "",
    selector: Annotated[str, Form()] = "",
    stages: Annotated[str, Form()] = _DEFAULT_STAGES,
    max_failures: Annotated[str, Form()] = "0",
    allow_degraded: Annotated[str, Form()] = "",
) -> Response:
    """Create the campaign the wizard checked; the runner in ``serve`` then sends it stage by stage."""
    fields = _fields(model, module, selector, stages, max_failures, allow_degraded)
    try:
        if not module or not selector.strip():
            raise InvalidInput("choose a module and the devices, and check the rollout before launching it")
        campaign = service.create_campaign(
            context, module, selector, *parse_plan(stages, max_failures), allow_degraded=bool(allow_degraded)
        )
    except TinymlaasError as exc:
        wizard = _wizard(context, fields)
        return _list_page(request, context, session, wizard, error=exc.detail, status=exc.http_status)
    return RedirectResponse(f"/deployments/{campaign.id}", status_code=303)


def _campaign_page(
    request: Request,
    context: Context,
    session: DashboardSession,
    campaign_id: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    campaign = service.show_campaign(context, campaign_id)
    timeline = rollout_timeline(context, campaign_id)
    actions = operator_actions(context, campaign_id)
    reported = reported_models(context, [i.endpoint for i in campaign.installations])
    return render(
        request,
        "campaign.html",
        session,
        status,
        campaign=campaign,
        stages=campaign_stages(campaign, reported),
        actions=actions,
        stopped=stop_reason(campaign, actions),
        share_figure=version_share_figure(version_share(context, campaign_id)),
        module_name=module_names(context, [campaign.module]).get(campaign.module),
        timeline=timeline,
        timeline_figure=rollout_figure(timeline),
        tones=INSTALLATION_TONES,
        live=campaign.active or campaign.in_flight,
        error=error,
    )


@router.get("/deployments/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, context: ContextDep, session: Viewer, campaign_id: str) -> HTMLResponse:
    """One campaign's staged rollout: each stage, each device's installation, timings and results."""
    return _campaign_page(request, context, session, campaign_id)


@dataclass(frozen=True)
class _Destructive:
    """A change that cannot be taken back, and what its confirmation step says it does."""

    change: Callable[[Context, str], object]
    title: str
    button: str
    effect: str
    affected_label: str  # follows "N device(s)"
    affected_state: InstallationState  # the installations the change acts on

    def affected(self, campaign: CampaignView) -> list[str]:
        return [i.endpoint for i in campaign.installations if i.state == self.affected_state.value]


_ACTIONS = {
    "cancel": _Destructive(
        service.cancel_campaign,
        "Cancel this campaign?",
        "Yes, cancel the campaign",
        "No further device is sent the module. Devices already downloading or installing still report "
        "their outcome; devices that installed it keep it.",
        "that will not be sent the module",
        InstallationState.PENDING,
    ),
    "rollback": _Destructive(
        service.rollback_campaign,
        "Roll this campaign back?",
        "Yes, roll back",
        "Every device that installed the module is told to uninstall it and go back to the model it ran "
        "before, once that model passes its self-test again. This cannot be undone.",
        "that will go back to their previous model",
        InstallationState.SUCCEEDED,
    ),
}


def _change_campaign(
    request: Request,
    context: Context,
    session: DashboardSession,
    campaign_id: str,
    action: str,
    confirm: str,
) -> Response:
    """Without ``confirm``, the confirmation step; with it, back to the campaign's page by a redirect
    once the change is made, with why it was refused if not."""
    spec = _ACTIONS[action]
    if confirm != _CONFIRMED:
        campaign = service.show_campaign(context, campaign_id)
        return render(
            request,
            "campaign_confirm.html",
            session,
            campaign=campaign,
            module_name=module_names(context, [campaign.module]).get(campaign.module),
            action=action,
            spec=spec,
            affected=spec.affected(campaign),
            confirmed=_CONFIRMED,
        )
    try:
        spec.change(context, campaign_id)
    except TinymlaasError as exc:
        return _campaign_page(
            request, context, session, campaign_id, error=exc.detail, status=exc.http_status
        )
    return RedirectResponse(f"/deployments/{campaign_id}", status_code=303)


@router.post("/deployments/{campaign_id}/cancel", response_model=None)
def campaign_cancel_form(
    request: Request,
    context: ContextDep,
    session: Operator,
    campaign_id: str,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Stop sending; devices already in flight still report their outcome."""
    return _change_campaign(request, context, session, campaign_id, "cancel", confirm)


@router.post("/deployments/{campaign_id}/rollback", response_model=None)
def campaign_rollback_form(
    request: Request,
    context: ContextDep,
    session: Operator,
    campaign_id: str,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Put every device that took the module back on its previous model."""
    return _change_campaign(request, context, session, campaign_id, "rollback", confirm)
