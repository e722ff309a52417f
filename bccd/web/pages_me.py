"""Me: my Smart Bcc address (copy, the +deal-42 syntax, rotate), my autolink setting, tokens, sessions."""

from __future__ import annotations

from fastapi import Request, Response

from bccd.api.context import Ctx
from bccd.services import users, web_auth
from bccd.web.render import page
from bccd.web.routing import BadForm, see_other, web_router
from bccd.web.session import Posted, SignedIn, Viewer

router = web_router()

DONE = {
    "rotated": "You have a new Smart Bcc address. The old one refuses mail from now on.",
    "autolink_on": "Autolink is on: new mail links itself when exactly one open item matches.",
    "autolink_off": "Autolink is off: new mail links contacts only; you pick the deal.",
    "sessions": "Signed out everywhere else.",
}


async def _me_page(request: Request, ctx: Ctx, viewer: Viewer, *, token: str | None = None) -> Response:
    user = await users.find_user(ctx.db, viewer.user.id, actor=viewer.user)
    address = user.smart_bcc_address(ctx.bcc_domain)
    local, _, domain = address.partition("@")
    return page(
        request,
        "me.html",
        viewer,
        user=user,
        address=address,
        example=f"{local}+deal-42@{domain}",
        token=token,
        sessions=await web_auth.session_count(ctx.db, user),
        done=DONE.get(request.query_params.get("done", "")),
    )


@router.get("/me")
async def me(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    return await _me_page(request, ctx, viewer)


@router.post("/me/rotate-address")
async def rotate(ctx: Ctx, form: Posted) -> Response:
    viewer, fields = form
    if fields.get("confirm") != "yes":
        raise BadForm("tick the box to confirm")
    await users.rotate_address(ctx.db, viewer.user.id, actor=viewer.user)
    return see_other("/me?done=rotated")


@router.post("/me/autolink")
async def autolink(ctx: Ctx, form: Posted) -> Response:
    viewer, fields = form
    wanted = fields.get("autolink")
    if wanted not in ("on", "off"):
        raise BadForm("autolink is on or off")
    await users.update_user(ctx.db, viewer.user.id, actor=viewer.user, autolink=wanted == "on")
    return see_other(f"/me?done=autolink_{wanted}")


@router.post("/me/tokens")
async def new_token(request: Request, ctx: Ctx, form: Posted) -> Response:
    viewer, _ = form
    _, raw = await users.issue_token(ctx.db, viewer.user.id, actor=viewer.user)
    # Shown on this response only (no redirect: a URL would keep it in the history).
    return await _me_page(request, ctx, viewer, token=raw)
