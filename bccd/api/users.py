"""Users of the caller's company: create, change, rotate the Smart Bcc address, issue tokens; /me.

Admins manage every user of their own company. A regular user may read themself, change their own name
and autolink setting, rotate their own address and issue their own tokens; role and alternative sender
addresses are admin-only because they widen what the user may do (admin rights, sender policy S5).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.api.auth import AdminUser, CurrentUser
from bccd.api.context import Ctx
from bccd.api.errors import ApiError
from bccd.api.models import ErrorOut, TokenOut, UserCreatedOut, UserCreateIn, UserOut, UserPatchIn
from bccd.logs import get_logger
from bccd.store import users as user_store
from bccd.store.users import User

log = get_logger("bccd.api.users")
MAX_ID = 2**63 - 1
UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="the user's id")]

router = APIRouter(
    prefix="/api/v1",
    tags=["users"],
    responses={
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
        404: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)


async def _target(conn: AsyncConnection, actor: User, user_id: int) -> User:
    """The user to act on: another company's user is not found (T1); a colleague needs an admin (403)."""
    user = await user_store.get_user(conn, user_id, company_id=actor.company_id)
    if actor.id != user.id and not actor.is_admin:
        raise ApiError(403, "forbidden", "only the user themself or an admin may do this")
    return user


def _out(ctx: Ctx, user: User) -> dict[str, Any]:
    return user.as_json(ctx.bcc_domain)


@router.get("/me", response_model=UserOut, summary="The caller, with their Smart Bcc address")
async def me(ctx: Ctx, user: CurrentUser) -> dict[str, Any]:
    return _out(ctx, user)


@router.get("/users", response_model=list[UserOut], summary="Users of the caller's company (admin)")
async def list_users(ctx: Ctx, admin: AdminUser) -> list[dict[str, Any]]:
    async with ctx.db.read() as conn:
        found = await user_store.list_users(conn, admin.company_id)
    return [_out(ctx, u) for u in found]


@router.post(
    "/users",
    response_model=UserCreatedOut,
    status_code=201,
    responses={409: {"model": ErrorOut, "description": "login email taken"}},
    summary="Create a user in the caller's company (admin)",
)
async def create_user(ctx: Ctx, admin: AdminUser, body: UserCreateIn, response: Response) -> dict[str, Any]:
    async with ctx.db.write() as conn:
        user = await user_store.create_user(
            conn,
            admin.company_id,
            email=body.email,
            name=body.name,
            admin=body.role == "admin",
            aliases=body.aliases,
            autolink=body.autolink,
        )
        token = await user_store.create_token(conn, user.id) if body.token else None
    if token is not None:
        response.headers["Cache-Control"] = "no-store"
    log.info("user_created", user=user.id, role=user.role, actor=f"user:{admin.id}")
    return {**_out(ctx, user), "api_token": token}


@router.get("/users/{user_id}", response_model=UserOut, summary="One user (admin, or the user themself)")
async def get_user(ctx: Ctx, actor: CurrentUser, user_id: UserId) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        user = await _target(conn, actor, user_id)
    return _out(ctx, user)


async def _keeps_an_admin(conn: AsyncConnection, user: User, role: str | None) -> None:
    if role != "regular" or not user.is_admin:
        return
    admins = [u for u in await user_store.list_users(conn, user.company_id) if u.is_admin]
    if len(admins) <= 1:
        raise ApiError(409, "conflict", "the company must keep at least one admin")


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    responses={409: {"model": ErrorOut, "description": "would leave the company without an admin"}},
    summary="Change name, autolink, role or alternative addresses",
)
async def patch_user(ctx: Ctx, actor: CurrentUser, user_id: UserId, body: UserPatchIn) -> dict[str, Any]:
    async with ctx.db.write() as conn:
        user = await _target(conn, actor, user_id)
        if not actor.is_admin and (body.role is not None or body.aliases is not None):
            raise ApiError(403, "forbidden", "only an admin may change roles and alternative addresses")
        await _keeps_an_admin(conn, user, body.role)
        user = await user_store.update_user(
            conn, user.id, autolink=body.autolink, role=body.role, aliases=body.aliases, name=body.name
        )
    log.info("user_changed", user=user.id, fields=sorted(body.model_fields_set), actor=f"user:{actor.id}")
    return _out(ctx, user)


@router.post(
    "/users/{user_id}/rotate-address",
    response_model=UserOut,
    summary="New Smart Bcc address; the old one is refused from now on (T2)",
)
async def rotate_address(ctx: Ctx, actor: CurrentUser, user_id: UserId) -> dict[str, Any]:
    async with ctx.db.write() as conn:
        user = await _target(conn, actor, user_id)
        user = await user_store.rotate_address(conn, user.id)
    log.info("smart_bcc_rotated", user=user.id, actor=f"user:{actor.id}")
    return _out(ctx, user)


@router.post(
    "/users/{user_id}/tokens",
    response_model=TokenOut,
    status_code=201,
    summary="Issue an API token (admin, or the user themself); shown once",
)
async def create_token(ctx: Ctx, actor: CurrentUser, user_id: UserId, response: Response) -> dict[str, Any]:
    async with ctx.db.write() as conn:
        user = await _target(conn, actor, user_id)
        token = await user_store.create_token(conn, user.id)
    # The token is a credential: keep it out of shared caches.
    response.headers["Cache-Control"] = "no-store"
    log.info("api_token_created", user=user.id, actor=f"user:{actor.id}")
    return {"user": user.id, "api_token": token}
