"""Bodies of API tokens: a secret appears in exactly one response, the one that made it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tinymlaas.services.auth import Role

__all__ = ["TokenCreate", "TokenCreatedPublic", "TokenPublic", "TokensPublic"]


class TokenCreate(BaseModel):
    role: Role = Field(description="What the token may do.")
    name: str = Field("", max_length=128, description="A label to tell tokens apart (default: the role).")
    expires_in: str | None = Field(
        None,
        max_length=32,
        examples=["30d", "12h", "1w"],
        description="Refuse the token after this long (s, m, h, d or w units); none: until revoked.",
    )


class TokenPublic(BaseModel):
    id: str
    name: str
    role: str
    permissions: list[str]
    created_at: str | None
    last_used_at: str | None
    expires_at: str | None = Field(description="When the token stops working; null: never.")
    revoked: bool


class TokenCreatedPublic(TokenPublic):
    secret: str = Field(description="The bearer secret: shown in this response only, never stored.")


class TokensPublic(BaseModel):
    data: list[TokenPublic]
    count: int
