"""API tokens: issue (optionally expiring), list, revoke (SPEC T2; issue 9).

Who may act on whose tokens is decided in bccd.services.tokens: the user themself or an admin of the
company; another company's user or token is not found (T1). No response ever carries a token's hash,
and the raw token only the one answer that issues it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bccd.api.auth import CurrentUser
from bccd.api.context import Ctx
from bccd.api.errors import ApiError
from bccd.api.params import MAX_ID, UserId, error_responses
from bccd.logs import get_logger
from bccd.services import tokens as service
from bccd.services.tokens import MAX_EXPIRY_DAYS

log = get_logger("bccd.api.tokens")

router = APIRouter(prefix="/api/v1", tags=["tokens"], responses=error_responses(401, 403, 404, 422))

TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="the token's id")]
GRANULARITY_SECONDS = int(service.LAST_USED_GRANULARITY.total_seconds())


class TokenCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expires_in_days: int | None = Field(
        default=None, ge=1, le=MAX_EXPIRY_DAYS, description="the token stops working this many days from now"
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="the token stops working at this time (ISO 8601 with a time zone, in the future); "
        "give this or expires_in_days, not both; neither: the token never expires",
    )


class TokenOut(BaseModel):
    id: int = Field(description="the token's id, for listing and DELETE /api/v1/tokens/{id}")
    user: int
    api_token: str = Field(description="shown once; only its hash is stored")
    prefix: str = Field(description="the token's first characters, to recognise it in listings")
    expires_at: str | None = Field(description="when it stops working (ISO 8601, UTC); null: never")


class TokenInfoOut(BaseModel):
    id: int = Field(description="the token's id")
    user: int = Field(description="the user the token acts as")
    prefix: str = Field(description="the token's first characters (never the token itself)")
    created_at: str = Field(description="ISO 8601, UTC")
    last_used_at: str | None = Field(
        description=f"last authenticated request, to within {GRANULARITY_SECONDS} seconds (written at most "
        "once a minute per token); null: never used"
    )
    expires_at: str | None = Field(description="when it stops working; null: never")
    expired: bool = Field(description="expires_at has passed: the token answers 401")


@router.post(
    "/users/{user_id}/tokens",
    response_model=TokenOut,
    status_code=201,
    summary="Issue an API token (admin, or the user themself); shown once; optional expiry",
)
async def create_token(
    ctx: Ctx, actor: CurrentUser, user_id: UserId, response: Response, body: TokenCreateIn | None = None
) -> dict[str, Any]:
    wanted = body or TokenCreateIn()
    try:
        expires_at = service.expiry(expires_in_days=wanted.expires_in_days, expires_at=wanted.expires_at)
    except ValueError as exc:
        field = "expires_at" if wanted.expires_at is not None else "expires_in_days"
        raise ApiError(422, "validation_error", str(exc), field=field) from None
    raw, issued = await service.issue_token(ctx.db, user_id, actor=actor, expires_at=expires_at)
    # The token is a credential: keep it out of shared caches.
    response.headers["Cache-Control"] = "no-store"
    log.info("api_token_created", user=issued.user_id, token=issued.id, actor=f"user:{actor.id}")
    info = issued.as_json()
    return {**info, "api_token": raw}


@router.get(
    "/users/{user_id}/tokens",
    response_model=list[TokenInfoOut],
    summary="The user's API tokens, without the tokens (admin, or the user themself)",
)
async def list_tokens(ctx: Ctx, actor: CurrentUser, user_id: UserId) -> list[dict[str, Any]]:
    _, found = await service.list_tokens(ctx.db, user_id, actor=actor)
    now = datetime.now(UTC)
    return [{**t.as_json(), "expired": t.expired(now)} for t in found]


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API token: refused at once, on every node (admin, or the token's user)",
)
async def revoke_token(ctx: Ctx, actor: CurrentUser, token_id: TokenId) -> Response:
    token = await service.revoke_token(ctx.db, token_id, actor=actor)
    log.info("api_token_revoked", user=token.user_id, token=token.id, actor=f"user:{actor.id}")
    return Response(status_code=204)
