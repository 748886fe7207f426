"""API tokens: listing needs ``tokens:read``, making and revoking ``tokens:write`` (admins only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, Page, require
from tinymlaas.api.schemas.tokens import TokenCreate, TokenCreatedPublic, TokenPublic, TokensPublic
from tinymlaas.services import auth
from tinymlaas.services.auth import Permission

router = APIRouter(prefix="/tokens", tags=["tokens"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.TOKENS_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.TOKENS_WRITE))]


@router.get("", response_model=TokensPublic)
def list_tokens(context: ContextDep, _token: Reader, paging: Annotated[Page, Depends()]) -> TokensPublic:
    """Every token, oldest first, revoked ones included; secrets are never stored, so never shown."""
    tokens, count = auth.tokens_page(context, limit=paging.limit, offset=paging.offset)
    return TokensPublic(data=[TokenPublic(**t) for t in tokens], count=count)


@router.post("", response_model=TokenCreatedPublic, status_code=201)
def create_token(context: ContextDep, _token: Writer, body: TokenCreate) -> TokenCreatedPublic:
    """Make a token for a role. Its secret is in this response only: hand it over now."""
    token, secret = auth.create_token(context, body.role, body.name, expires_in=body.expires_in)
    return TokenCreatedPublic(**token, secret=secret)


@router.post("/{token_id}/revoke", response_model=TokenPublic)
def revoke_token(context: ContextDep, _token: Writer, token_id: str) -> TokenPublic:
    """Revoke a token: its secret gets 401 from now on, in the API and the dashboard.

    Revoking a revoked token changes nothing; the last unrevoked admin token is kept (409).
    """
    return TokenPublic(**auth.revoke_token(context, token_id))
