"""Bodies of the audit trail: events as recorded, newest first."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["AuditEventPublic", "AuditEventsPublic"]


class AuditEventPublic(BaseModel):
    id: int
    at: str
    actor: str = Field(description='"token <name> (<id>)", "cli" or "anonymous".')
    role: str
    action: str = Field(description='"api:<operation id>", "dashboard:<page action>" or "cli:<command>".')
    target: str
    detail: dict[str, Any] = Field(description="Method, path, status and outcome (ok, denied or failed).")


class AuditEventsPublic(BaseModel):
    data: list[AuditEventPublic]
    count: int
