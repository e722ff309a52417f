"""The thread page: the mail, its participants and CRM records, the decision explained, history, actions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response

from bccd.api.context import Ctx
from bccd.api.params import ThreadId
from bccd.errors import AlreadyLinked
from bccd.services import content, links, search, threads
from bccd.web.headers import with_remote_images
from bccd.web.mailhtml import sanitize
from bccd.web.names import Names
from bccd.web.render import page
from bccd.web.routing import BadForm, see_other, web_router
from bccd.web.sender_check import sender_check
from bccd.web.session import Posted, SignedIn, Viewer

router = web_router()

ITEM_TYPES = ("deal", "lead", "project")
SEARCH_RESULTS = 10
PAGE_BODY_CHARS = 512 * 1024  # a page shows at most this much of a body; the raw download has the rest

# What a redirect after an action says on the page: fixed sentences, never text from the request.
DONE = {
    "linked": "Linked.",
    "replaced": "The link was replaced.",
    "unchanged": "Nothing changed: the thread was already linked to that item.",
    "unlinked": "Unlinked: the thread has no item now.",
    "nothing": "Nothing changed: the thread had no item.",
    "shared": "Shared with your company.",
    "private": "Private again: only you and the admins see it.",
}


def _may_change(viewer: Viewer, thread: dict[str, Any]) -> bool:
    # Same rule as bccd.permissions (M1), only to decide which buttons to show; the service decides.
    return viewer.user.id == thread["owner"] or viewer.user.is_admin


async def _thread_page(
    request: Request,
    ctx: Ctx,
    viewer: Viewer,
    thread_id: int,
    *,
    q: str | None = None,
    images: bool = False,
    conflict: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    user = viewer.user
    thread = (await threads.show_thread(ctx.db, thread_id, actor=user)).as_json()
    body = await content.thread_body(ctx.db, thread_id, actor=user, limit=PAGE_BODY_CHARS)
    safe = sanitize(body.html, remote_images=images) if body.html is not None else None
    names = Names(ctx.db, user)
    item = thread["item"]
    decision = thread["decision"]
    candidates = []
    for c in decision.get("candidates", []):
        info = await names.candidate(c["type"], c["id"])
        record = await names.record(c["type"], c["id"])
        candidates.append(
            {
                **(await names.ref(c["type"], c["id"])),
                "person": info.person,
                "status": None if record is None else record.get("status"),
                "current": item is not None and item["type"] == c["type"] and item["id"] == c["id"],
            }
        )
    participants = []
    for p in thread["participants"]:
        participants.append(
            {**p, "person_ref": None if p["person"] is None else await names.ref("person", p["person"])}
        )
    hits: list[dict[str, Any]] = []
    if q and q.strip() and "\x00" not in q:
        for h in await search.search_records(ctx.db, q, actor=user, kinds=ITEM_TYPES, limit=SEARCH_RESULTS):
            hits.append({**(await names.ref(h.type, h.id)), "status": h.status})
    headers = {"Content-Security-Policy": with_remote_images()} if images else None
    return page(
        request,
        "thread.html",
        viewer,
        status=status,
        headers=headers,
        thread=thread,
        message=thread["message"],
        sender=sender_check(thread["authentication"]),
        body=body,
        safe_html=safe,
        images=images,
        item=None if item is None else await names.ref(item["type"], item["id"]),
        reason=await names.reason(thread),
        candidates=candidates,
        participants=participants,
        persons=[await names.ref("person", p) for p in thread["persons"]],
        organizations=[await names.ref("organization", o) for o in thread["organizations"]],
        may_change=_may_change(viewer, thread),
        may_share=viewer.user.id == thread["owner"],
        q=q or "",
        hits=hits,
        conflict=conflict,
        done=DONE.get(request.query_params.get("done", "")),
    )


@router.get("/threads/{thread_id}")
async def thread_page(
    request: Request,
    ctx: Ctx,
    viewer: SignedIn,
    thread_id: ThreadId,
    q: Annotated[str | None, Query(max_length=200)] = None,
    images: Annotated[bool, Query()] = False,
) -> Response:
    return await _thread_page(request, ctx, viewer, thread_id, q=q, images=images)


@router.post("/threads/{thread_id}/link")
async def link(request: Request, ctx: Ctx, form: Posted, thread_id: ThreadId) -> Response:
    viewer, fields = form
    kind, external_id = fields.get("type", ""), fields.get("id", "")
    if kind not in ITEM_TYPES or not external_id.strip() or len(external_id) > 200:
        raise BadForm("choose a deal, lead or project")
    replace = fields.get("replace") == "1"
    try:
        result, _ = await links.link_item(
            ctx.db, thread_id, kind, external_id, actor=viewer.user, replace=replace
        )
    except AlreadyLinked as exc:
        names = Names(ctx.db, viewer.user)
        conflict = {
            "current": await names.ref(exc.current["type"], exc.current["id"]),
            "wanted": await names.ref(kind, external_id),
        }
        return await _thread_page(request, ctx, viewer, thread_id, conflict=conflict, status=409)
    return see_other(f"/threads/{thread_id}?done={result}")


@router.post("/threads/{thread_id}/unlink")
async def unlink(ctx: Ctx, form: Posted, thread_id: ThreadId) -> Response:
    viewer, _ = form
    changed, _ = await links.unlink_item(ctx.db, thread_id, actor=viewer.user)
    return see_other(f"/threads/{thread_id}?done={'unlinked' if changed else 'nothing'}")


@router.post("/threads/{thread_id}/visibility")
async def visibility(ctx: Ctx, form: Posted, thread_id: ThreadId) -> Response:
    viewer, fields = form
    wanted = fields.get("visibility", "")
    if wanted not in ("private", "shared"):
        raise BadForm("visibility is private or shared")
    await links.change_visibility(ctx.db, thread_id, wanted, actor=viewer.user)
    return see_other(f"/threads/{thread_id}?done={wanted}")
