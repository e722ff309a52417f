"""Bearer-token authentication: the token names a user; admins manage their own company (SPEC T2)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bccd.api.context import Ctx
from bccd.api.errors import ApiError, unauthorized
from bccd.services.users import User, authenticate

bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `bccd user token` or POST /api/v1/users/{id}/tokens.",
)


async def current_user(
    ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User:
    if credentials is None:
        raise unauthorized("missing bearer token: send Authorization: Bearer <token>")
    user = await authenticate(ctx.db, credentials.credentials)
    if user is None:
        raise unauthorized("invalid, expired or revoked token")
    return user


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise ApiError(403, "forbidden", "only an admin of the company may do this")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(admin_user)]
