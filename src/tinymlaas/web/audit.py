"""The audit trail (admins only): who changed what through the API, the dashboard or the CLI."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tinymlaas.services.audit import audit_page
from tinymlaas.services.auth import Permission
from tinymlaas.web.deps import ContextDep, needs, render
from tinymlaas.web.sessions import DashboardSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Auditor = Annotated[DashboardSession, Depends(needs(Permission.AUDIT_READ))]

_EVENTS_SHOWN = 50  # events on one page, newest first


@router.get("/audit", response_class=HTMLResponse)
def audit_trail(
    request: Request, context: ContextDep, session: Auditor, offset: Annotated[int, Query(ge=0)] = 0
) -> HTMLResponse:
    events, count = audit_page(context, limit=_EVENTS_SHOWN, offset=offset)
    pages = {
        "first": offset + 1,
        "last": offset + len(events),
        "previous": f"/audit?offset={max(0, offset - _EVENTS_SHOWN)}" if offset else None,
        "next": f"/audit?offset={offset + _EVENTS_SHOWN}" if offset + _EVENTS_SHOWN < count else None,
    }
    return render(request, "audit.html", session, events=events, count=count, pages=pages)
