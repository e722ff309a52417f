"""Me: my Smart Bcc address (copy, the +deal-42 syntax, rotate), my sender addresses (add one, confirm it
with the mailed code: S5, issue 11), my autolink setting, tokens, sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response

from bccd.api.context import Ctx
from bccd.api.params import MAX_ID
from bccd.errors import ConfirmationFailed, Conflict, NotFound
from bccd.services import aliases, tokens, users, web_auth
from bccd.web.render import page
from bccd.web.routing import BadForm, see_other, web_router
from bccd.web.session import Posted, SignedIn, Viewer

router = web_router()

DONE = {
    "rotated": "You have a new Smart Bcc address. The old one refuses mail from now on.",
    "autolink_on": "Autolink is on: new mail links itself when exactly one open item matches.",
    "autolink_off": "Autolink is off: new mail links contacts only; you pick the deal.",
    "sessions": "Signed out everywhere else.",
    "token_revoked": "Token revoked: it is refused from now on, everywhere.",
    "alias_sent": "A confirmation code is on its way to that address. Enter it below to confirm the address.",
    "alias_not_sent": "The address was added, but bccd could not mail it a code. Ask an admin to confirm it, "
    "or add it again later for a new code.",
    "alias_confirmed": "Address confirmed: mail you send from it to your Smart Bcc address is filed.",
    "alias_failed": "That code is wrong or has expired. Add the address again to get a new code.",
    "alias_refused": "That address cannot be added: it is your login email or already confirmed.",
}


def _when(value: str | None) -> str | None:
    """An ISO timestamp as the page shows it: UTC, to the minute."""
    return None if value is None else value[:16].replace("T", " ")


async def _my_tokens(ctx: Ctx, viewer: Viewer) -> list[dict[str, Any]]:
    _, found = await tokens.list_tokens(ctx.db, viewer.user.id, actor=viewer.user)
    now = datetime.now(UTC)
    return [
        {
            "id": t.id,
            "prefix": t.prefix,
            "created": _when(d["created_at"]),
            "last_used": _when(d["last_used_at"]),
            "expires": _when(d["expires_at"]),
            "expired": t.expired(now),
        }
        for t, d in ((t, t.as_json()) for t in found)
    ]


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
        tokens=await _my_tokens(ctx, viewer),
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


@router.post("/me/aliases")
async def add_alias(ctx: Ctx, form: Posted) -> Response:
    viewer, fields = form
    address = fields.get("address", "").strip()
    if not address:
        raise BadForm("an address is needed")
    try:
        added = await aliases.add_alias(
            ctx.db, viewer.user.id, address, actor=viewer.user, mailer=ctx.mailer, web_url=ctx.public_url
        )
    except (Conflict, ValueError):
        return see_other("/me?done=alias_refused")
    return see_other("/me?done=alias_sent" if added.confirmation_sent else "/me?done=alias_not_sent")


@router.post("/me/aliases/confirm")
async def confirm_alias(ctx: Ctx, form: Posted) -> Response:
    viewer, fields = form
    address, code = fields.get("address", "").strip(), fields.get("code", "").strip()
    if not address or not code:
        raise BadForm("an address and its code are needed")
    try:
        await aliases.confirm_alias(ctx.db, viewer.user.id, address, actor=viewer.user, code=code)
    except (ConfirmationFailed, Conflict, ValueError):
        return see_other("/me?done=alias_failed")
    return see_other("/me?done=alias_confirmed")


@router.post("/me/tokens")
async def new_token(request: Request, ctx: Ctx, form: Posted) -> Response:
    viewer, _ = form
    _, raw = await users.issue_token(ctx.db, viewer.user.id, actor=viewer.user)
    # Shown on this response only (no redirect: a URL would keep it in the history).
    return await _me_page(request, ctx, viewer, token=raw)


@router.post("/me/tokens/{token_id}/revoke")
async def revoke_token(ctx: Ctx, form: Posted, token_id: int) -> Response:
    viewer, _ = form
    # My tokens only, even for an admin: the API and the CLI revoke other people's.
    if not 1 <= token_id <= MAX_ID or token_id not in {t["id"] for t in await _my_tokens(ctx, viewer)}:
        raise NotFound(f"token {token_id} not found")
    await tokens.revoke_token(ctx.db, token_id, actor=viewer.user)
    return see_other("/me?done=token_revoked")
