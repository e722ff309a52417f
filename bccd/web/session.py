"""Who is looking at a page: the session cookie, the signed-in user, and the CSRF check on every form post."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from bccd.api.context import ApiContext, Ctx
from bccd.services import web_auth
from bccd.services.users import User

SESSION_COOKIE = "bccd_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    """No live session: pages redirect to the sign-in page."""


class CsrfRejected(Exception):
    """A state-changing request without this session's CSRF token (a forged cross-site form)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    user: User
    session: str  # the raw session secret: compared and hashed, never rendered
    csrf: str


async def optional_viewer(request: Request, ctx: Ctx) -> Viewer | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    user = await web_auth.session_user(ctx.db, raw)
    if user is None:
        return None
    return Viewer(user, raw, web_auth.csrf_token(raw))


async def signed_in(viewer: Annotated[Viewer | None, Depends(optional_viewer)]) -> Viewer:
    if viewer is None:
        raise SignInRequired
    return viewer


async def form_of(request: Request) -> dict[str, str]:
    """The posted form's text fields (files are not accepted anywhere in the pages)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def posted(
    request: Request, viewer: Annotated[Viewer, Depends(signed_in)]
) -> tuple[Viewer, dict[str, str]]:
    """A signed-in form post carrying this session's CSRF token (field `csrf` or header X-CSRF-Token)."""
    fields = await form_of(request)
    submitted = fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not web_auth.csrf_ok(viewer.session, submitted):
        raise CsrfRejected
    return viewer, fields


def is_tls(request: Request, ctx: ApiContext) -> bool:
    """Secure cookies when the page is served over TLS, or when the public URL says it is (a TLS proxy)."""
    return request.url.scheme == "https" or (ctx.public_url or "").startswith("https://")


def public_url(request: Request, ctx: ApiContext) -> str:
    return ctx.public_url or str(request.base_url).rstrip("/")


def set_session_cookie(response: Response, request: Request, ctx: ApiContext, raw: str) -> None:
    """HttpOnly (no script reads it), SameSite=Lax (no cross-site posts carry it), Secure over TLS."""
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=int(web_auth.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=is_tls(request, ctx),
        path="/",
    )


SignedIn = Annotated[Viewer, Depends(signed_in)]
MaybeSignedIn = Annotated[Viewer | None, Depends(optional_viewer)]
Posted = Annotated[tuple[Viewer, dict[str, str]], Depends(posted)]
