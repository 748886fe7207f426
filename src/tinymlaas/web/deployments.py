"""Deployments (the operator's page): campaigns and their progress, the rollout wizard, one campaign.

The wizard checks a rollout with the same compatibility gate that creating it runs (``Check`` changes
nothing); ``Launch``, ``Cancel`` and ``Rollback`` call the services the CLI and the REST API call, and
need ``deployments:write``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.deploy.campaigns import InstallationState
from tinymlaas.errors import InvalidInput, TinymlaasError
from tinymlaas.services import campaigns as service
from tinymlaas.services.auth import Permission
from tinymlaas.services.context import Context
from tinymlaas.services.models import list_model_details
from tinymlaas.services.modules import module_names
from tinymlaas.services.rollout import rollout_timeline
from tinymlaas.web.campaign_summary import (
    INSTALLATION_TONES,
    campaign_stages,
    module_choices,
    parse_plan,
    rollout_figure,
)
from tinymlaas.web.deps import ContextDep, Viewer, needs, render
from tinymlaas.web.sessions import DashboardSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Operator = Annotated[DashboardSession, Depends(needs(Permission.DEPLOYMENTS_WRITE))]

_DEFAULT_STAGES = "10,50,100"


def _list_page(
    request: Request,
    context: Context,
    session: DashboardSession,
    wizard: dict[str, str],
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


@router.get("/deployments", response_class=HTMLResponse)
def deployments_page(
    request: Request,
    context: ContextDep,
    session: Viewer,
    module: Annotated[str, Query()] = "",
    selector: Annotated[str, Query()] = "",
    stages: Annotated[str, Query()] = _DEFAULT_STAGES,
    max_failures: Annotated[str, Query()] = "0",
    allow_degraded: Annotated[str, Query()] = "",
) -> HTMLResponse:
    """Campaigns with their progress; with a module and a selector, the gate's verdict per device."""
    wizard = {
        "module": module,
        "selector": selector,
        "stages": stages,
        "max_failures": max_failures,
        "allow_degraded": "on" if allow_degraded else "",
    }
    if not module and not selector:
        return _list_page(request, context, session, wizard)
    try:
        if not module or not selector.strip():
            raise InvalidInput("choose a module and give a selector (board:ID, tag:NAME or endpoints)")
        plan = parse_plan(stages, max_failures)
        preview = service.preview_campaign(
            context, module, selector, *plan, allow_degraded=bool(allow_degraded)
        )
    except TinymlaasError as exc:
        return _list_page(request, context, session, wizard, error=exc.detail, status=exc.http_status)
    return _list_page(request, context, session, wizard, preview=preview)


@router.post("/deployments", response_model=None)
def campaign_launch_form(
    request: Request,
    context: ContextDep,
    session: Operator,
    module: Annotated[str, Form()] = "",
    selector: Annotated[str, Form()] = "",
    stages: Annotated[str, Form()] = _DEFAULT_STAGES,
    max_failures: Annotated[str, Form()] = "0",
    allow_degraded: Annotated[str, Form()] = "",
) -> Response:
    """Create the campaign the wizard checked; the runner in ``serve`` then sends it stage by stage."""
    wizard = {
        "module": module,
        "selector": selector,
        "stages": stages,
        "max_failures": max_failures,
        "allow_degraded": "on" if allow_degraded else "",
    }
    try:
        campaign = service.create_campaign(
            context, module, selector, *parse_plan(stages, max_failures), allow_degraded=bool(allow_degraded)
        )
    except TinymlaasError as exc:
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
    return render(
        request,
        "campaign.html",
        session,
        status,
        campaign=campaign,
        stages=campaign_stages(campaign),
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


def _change_campaign(
    request: Request,
    context: Context,
    session: DashboardSession,
    campaign_id: str,
    change: Callable[[Context, str], object],
) -> Response:
    """Back to the campaign's page: by a redirect once ``change`` is made, with why it was refused if not."""
    try:
        change(context, campaign_id)
    except TinymlaasError as exc:
        return _campaign_page(
            request, context, session, campaign_id, error=exc.detail, status=exc.http_status
        )
    return RedirectResponse(f"/deployments/{campaign_id}", status_code=303)


@router.post("/deployments/{campaign_id}/cancel", response_model=None)
def campaign_cancel_form(
    request: Request, context: ContextDep, session: Operator, campaign_id: str
) -> Response:
    """Stop sending; devices already in flight still report their outcome."""
    return _change_campaign(request, context, session, campaign_id, service.cancel_campaign)


@router.post("/deployments/{campaign_id}/rollback", response_model=None)
def campaign_rollback_form(
    request: Request, context: ContextDep, session: Operator, campaign_id: str
) -> Response:
    """Put every device that took the module back on its previous model."""
    return _change_campaign(request, context, session, campaign_id, service.rollback_campaign)
