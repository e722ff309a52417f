"""POST /api/v1/users/{id}/login-link: a one-time sign-in URL for the web pages (issue 10).

A CRM offers single sign-on by asking for a link as the user (their token) or as an admin of their
company, then sending the user's browser to it. The URL is built on `[http] public_url`, or on the
address this request came to when none is configured.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from bccd.api.auth import CurrentUser
from bccd.api.context import Ctx
from bccd.api.params import UserId, error_responses
from bccd.logs import get_logger
from bccd.services import web_auth

log = get_logger("bccd.api.login_links")

router = APIRouter(
    prefix="/api/v1",
    tags=["users"],
    responses=error_responses(401, 403, 404, 422),
)


class LoginLinkOut(BaseModel):
    user: int
    url: str = Field(description="open in the user's browser; works once, for 15 minutes")
    expires_at: str


@router.post(
    "/users/{user_id}/login-link",
    response_model=LoginLinkOut,
    status_code=201,
    summary="A one-time sign-in URL for the web pages (admin of the user's company, or the user)",
)
async def login_link(
    ctx: Ctx, actor: CurrentUser, user_id: UserId, request: Request, response: Response
) -> dict[str, Any]:
    public = ctx.public_url or str(request.base_url).rstrip("/")
    link = await web_auth.issue_login_link(ctx.db, user_id, actor=actor, public_url=public)
    response.headers["Cache-Control"] = "no-store"  # the URL is a credential until used
    log.info("login_link_created", user=link.user.id, actor=f"user:{actor.id}")
    return link.as_json()
