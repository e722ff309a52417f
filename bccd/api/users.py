"""Users of the caller's company: create, change, rotate the Smart Bcc address; /me (tokens: bccd.api.tokens).

Who may act on whom (and the last-admin rule) is decided in bccd.services.users; this module adapts HTTP.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from bccd.api.auth import AdminUser, CurrentUser
from bccd.api.context import Ctx
from bccd.api.models import (
    AliasAddedOut,
    AliasAddIn,
    AliasConfirmIn,
    AliasOut,
    ErrorOut,
    UserCreatedOut,
    UserCreateIn,
    UserOut,
    UserPatchIn,
)
from bccd.api.params import UserId, error_responses
from bccd.logs import get_logger
from bccd.services import aliases
from bccd.services import users as service
from bccd.services.users import User
from bccd.vocabulary import ADMIN

log = get_logger("bccd.api.users")

router = APIRouter(
    prefix="/api/v1",
    tags=["users"],
    responses=error_responses(401, 403, 404, 422),
)


def _out(ctx: Ctx, user: User) -> dict[str, Any]:
    return user.as_json(ctx.bcc_domain)


@router.get("/me", response_model=UserOut, summary="The caller, with their Smart Bcc address")
async def me(ctx: Ctx, user: CurrentUser) -> dict[str, Any]:
    return _out(ctx, user)


@router.get("/users", response_model=list[UserOut], summary="Users of the caller's company (admin)")
async def list_users(ctx: Ctx, admin: AdminUser) -> list[dict[str, Any]]:
    found = await service.list_users(ctx.db, actor=admin)
    return [_out(ctx, u) for u in found]


@router.post(
    "/users",
    response_model=UserCreatedOut,
    status_code=201,
    responses={409: {"model": ErrorOut, "description": "login email taken"}},
    summary="Create a user in the caller's company (admin)",
)
async def create_user(ctx: Ctx, admin: AdminUser, body: UserCreateIn, response: Response) -> dict[str, Any]:
    user, token = await service.create_user(
        ctx.db,
        actor=admin,
        email=body.email,
        name=body.name,
        admin=body.role == ADMIN,
        aliases=body.aliases,
        autolink=body.autolink,
        token=body.token,
        mailer=ctx.mailer,
        web_url=ctx.public_url,
    )
    if token is not None:
        response.headers["Cache-Control"] = "no-store"
    log.info("user_created", user=user.id, role=user.role, actor=f"user:{admin.id}")
    return {**_out(ctx, user), "api_token": token}


@router.get("/users/{user_id}", response_model=UserOut, summary="One user (admin, or the user themself)")
async def get_user(ctx: Ctx, actor: CurrentUser, user_id: UserId) -> dict[str, Any]:
    return _out(ctx, await service.find_user(ctx.db, user_id, actor=actor))


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    responses={409: {"model": ErrorOut, "description": "would leave the company without an admin"}},
    summary="Change name, autolink, role or alternative addresses",
)
async def patch_user(ctx: Ctx, actor: CurrentUser, user_id: UserId, body: UserPatchIn) -> dict[str, Any]:
    user = await service.update_user(
        ctx.db,
        user_id,
        actor=actor,
        autolink=body.autolink,
        role=body.role,
        aliases=body.aliases,
        name=body.name,
        mailer=ctx.mailer,
        web_url=ctx.public_url,
    )
    log.info("user_changed", user=user.id, fields=sorted(body.model_fields_set), actor=f"user:{actor.id}")
    return _out(ctx, user)


@router.post(
    "/users/{user_id}/rotate-address",
    response_model=UserOut,
    summary="New Smart Bcc address; the old one is refused from now on (T2)",
)
async def rotate_address(ctx: Ctx, actor: CurrentUser, user_id: UserId) -> dict[str, Any]:
    user = await service.rotate_address(ctx.db, user_id, actor=actor)
    log.info("smart_bcc_rotated", user=user.id, actor=f"user:{actor.id}")
    return _out(ctx, user)


# -- alternative sender addresses (S5, issue 11) -------------------------------------------------------


@router.get(
    "/users/{user_id}/aliases",
    response_model=list[AliasOut],
    summary="The user's alternative sender addresses, confirmed or not (admin, or the user themself)",
)
async def list_aliases(ctx: Ctx, actor: CurrentUser, user_id: UserId) -> list[dict[str, Any]]:
    return [a.as_json() for a in await aliases.list_aliases(ctx.db, user_id, actor=actor)]


@router.post(
    "/users/{user_id}/aliases",
    response_model=AliasAddedOut,
    status_code=201,
    responses={409: {"model": ErrorOut, "description": "already a confirmed address of the user"}},
    summary="Add an alternative sender address: it is mailed a one-time code and counts once confirmed",
)
async def add_alias(ctx: Ctx, actor: CurrentUser, user_id: UserId, body: AliasAddIn) -> dict[str, Any]:
    added = await aliases.add_alias(
        ctx.db, user_id, body.address, actor=actor, mailer=ctx.mailer, web_url=ctx.public_url
    )
    return added.as_json()


@router.post(
    "/users/{user_id}/aliases/confirm",
    response_model=AliasOut,
    responses={
        409: {"model": ErrorOut, "description": "already confirmed"},
        422: {"model": ErrorOut, "description": "wrong or expired code (`confirmation_failed`)"},
    },
    summary="Confirm an alternative address with its mailed code; without a code, an admin confirms it",
)
async def confirm_alias(
    ctx: Ctx, actor: CurrentUser, user_id: UserId, body: AliasConfirmIn
) -> dict[str, Any]:
    alias = await aliases.confirm_alias(ctx.db, user_id, body.address, actor=actor, code=body.code)
    return alias.as_json()
