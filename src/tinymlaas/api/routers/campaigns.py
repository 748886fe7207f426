"""Campaigns (staged rollouts): reading needs ``deployments:read``, changing ``deployments:write``.

The server's campaign runner does the sending; these routes only plan, stop or reverse a rollout.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tinymlaas.api.deps import ContextDep, Page, require
from tinymlaas.api.schemas import CampaignCreate, CampaignPublic, CampaignsPublic
from tinymlaas.api.schemas.campaigns import CampaignPreviewPublic
from tinymlaas.services import campaigns as service
from tinymlaas.services.auth import Permission

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.DEPLOYMENTS_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.DEPLOYMENTS_WRITE))]


@router.get("", response_model=CampaignsPublic)
def list_campaigns(
    context: ContextDep,
    _token: Reader,
    paging: Annotated[Page, Depends()],
    state: Annotated[str | None, Query(description="Only campaigns in this state, e.g. running.")] = None,
) -> CampaignsPublic:
    """Every campaign, newest first."""
    campaigns, count = service.campaigns_page(context, state=state, limit=paging.limit, offset=paging.offset)
    return CampaignsPublic(data=[CampaignPublic.model_validate(c) for c in campaigns], count=count)


@router.get("/preview", response_model=CampaignPreviewPublic)
def preview_campaign(
    context: ContextDep,
    _token: Reader,
    module: Annotated[str, Query(description="The module to roll out.", examples=["mod_3f9a2c1b7d04"])],
    selector: Annotated[
        str,
        Query(description="board:ID, tag:NAME, or endpoints separated by commas.", examples=["board:pico"]),
    ],
    allow_degraded: Annotated[
        bool, Query(description="Preview a degraded module as if deploying it with allow_degraded.")
    ] = False,
) -> CampaignPreviewPublic:
    """Run the compatibility gate for a rollout without creating it: per device, fits or every reason not.

    The same checks as creating the campaign, against what each device last reported; 422 when the
    module does not fit its board, is degraded (without ``allow_degraded``) or the selector names no
    registered device. Nothing is stored.
    """
    return CampaignPreviewPublic(
        **service.preview_campaign(context, module, selector, allow_degraded=allow_degraded)
    )


@router.get("/{campaign_id}", response_model=CampaignPublic)
def show_campaign(context: ContextDep, _token: Reader, campaign_id: str) -> CampaignPublic:
    """One campaign with every target's installation, in rollout order."""
    return CampaignPublic.model_validate(service.show_campaign(context, campaign_id))


@router.post("", response_model=CampaignPublic, status_code=201)
def create_campaign(context: ContextDep, _token: Writer, body: CampaignCreate) -> CampaignPublic:
    """Plan a rollout; 422 with every reason if the compatibility gate refuses every target, or if the
    module is degraded and ``allow_degraded`` is not set."""
    return CampaignPublic.model_validate(
        service.create_campaign(
            context,
            body.module,
            body.selector,
            body.stages,
            body.max_failures,
            allow_degraded=body.allow_degraded,
        )
    )


@router.post("/{campaign_id}/cancel", response_model=CampaignPublic)
def cancel_campaign(context: ContextDep, _token: Writer, campaign_id: str) -> CampaignPublic:
    """Stop sending; devices already in flight still report their outcome."""
    return CampaignPublic.model_validate(service.cancel_campaign(context, campaign_id))


@router.post("/{campaign_id}/rollback", response_model=CampaignPublic)
def rollback_campaign(context: ContextDep, _token: Writer, campaign_id: str) -> CampaignPublic:
    """Put every device that took the module back on its previous model."""
    return CampaignPublic.model_validate(service.rollback_campaign(context, campaign_id))
