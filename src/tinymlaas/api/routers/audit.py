"""The audit trail: who changed what, readable by admins only (``audit:read``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, Page, require
from tinymlaas.api.schemas.audit import AuditEventPublic, AuditEventsPublic
from tinymlaas.services.audit import audit_page
from tinymlaas.services.auth import Permission

router = APIRouter(prefix="/audit", tags=["audit"])

Auditor = Annotated[dict[str, Any], Depends(require(Permission.AUDIT_READ))]


@router.get("", response_model=AuditEventsPublic)
def list_audit_events(
    context: ContextDep, _token: Auditor, paging: Annotated[Page, Depends()]
) -> AuditEventsPublic:
    """Every state-changing request and CLI command, newest first, refusals included."""
    events, count = audit_page(context, limit=paging.limit, offset=paging.offset)
    return AuditEventsPublic(data=[AuditEventPublic(**e) for e in events], count=count)
