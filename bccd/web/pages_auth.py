"""Sign in by one-time link, sign out, and end the other sessions (issue 10)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Path, Request, Response

from bccd.api.context import Ctx
from bccd.services import web_auth
from bccd.web.render import page
from bccd.web.routing import see_other, web_router
from bccd.web.session import SESSION_COOKIE, MaybeSignedIn, Posted, form_of, is_tls, set_session_cookie

router = web_router()

# Login CSRF: the sign-in form only works in the browser that opened the link page (double submit), so
# another site cannot sign a victim into the attacker's account.
LOGIN_NONCE_COOKIE = "bccd_login"
LOGIN_NONCE_SECONDS = 15 * 60
TokenPath = Annotated[str, Path(min_length=1, max_length=web_auth.MAX_SECRET_CHARS)]


@router.get("/login")
async def login_help(request: Request, viewer: MaybeSignedIn) -> Response:
    if viewer is not None:
        return see_other("/")
    return page(request, "login.html", None, signed_out=request.query_params.get("signed_out") == "1")


@router.get("/login/{token}")
async def login_form(request: Request, ctx: Ctx, token: TokenPath) -> Response:
    """The link's landing page. Following the link signs nothing in by itself: mail scanners open links."""
    nonce = secrets.token_urlsafe(24)
    response = page(request, "login_confirm.html", None, token=token, nonce=nonce)
    response.set_cookie(
        LOGIN_NONCE_COOKIE,
        nonce,
        max_age=LOGIN_NONCE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=is_tls(request, ctx),
        path="/login",
    )
    return response


@router.post("/login/{token}")
async def login(request: Request, ctx: Ctx, token: TokenPath) -> Response:
    fields = await form_of(request)
    cookie = request.cookies.get(LOGIN_NONCE_COOKIE, "")
    nonce = fields.get("nonce", "")
    if not cookie or not hmac.compare_digest(cookie, nonce):
        return page(request, "login_failed.html", None, status=400, why="nonce")
    opened = await web_auth.open_session(ctx.db, token)
    if opened is None:
        return page(request, "login_failed.html", None, status=400, why="link")
    _, raw_session = opened
    response = see_other("/")
    set_session_cookie(response, request, ctx, raw_session)
    response.delete_cookie(LOGIN_NONCE_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, ctx: Ctx, form: Posted) -> Response:
    viewer, _ = form
    await web_auth.close_session(ctx.db, viewer.session)
    response = see_other("/login?signed_out=1")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/me/sessions/close-others")
async def close_others(ctx: Ctx, form: Posted) -> Response:
    viewer, _ = form
    ended = await web_auth.close_other_sessions(ctx.db, viewer.user, keep=viewer.session)
    return see_other(f"/me?done=sessions&n={ended}")
