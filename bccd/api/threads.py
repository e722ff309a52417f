"""Threads: list (incl. the unresolved view, M7), read, raw message, visibility, manual linking (M1–M5).

Permission checks, reads and link changes live in bccd.services (threads, links); this module adapts HTTP.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from bccd.api.auth import CurrentUser
from bccd.api.context import ApiContext, Ctx
from bccd.api.directory import ExternalIdPath
from bccd.api.errors import ApiError
from bccd.api.models import (
    ErrorOut,
    ItemLinkIn,
    ItemType,
    LinkResultOut,
    ThreadOut,
    ThreadPage,
    ThreadPatchIn,
)
from bccd.api.params import MAX_ID, ThreadId, error_responses
from bccd.records import CONTACT_TYPES, RECORD_TYPES, REGISTRY
from bccd.services.links import change_visibility, link_item, link_record, unlink_item
from bccd.services.threads import MAX_PAGE, list_visible, show_thread
from bccd.services.threads import raw_message as read_raw
from bccd.services.users import User

MAX_QUERY_CHARS = 500
DEFAULT_PAGE = 50
CURSOR_PATTERN = r"^[0-9]{1,19}$"

FilterId = Annotated[str | None, Query(min_length=1, max_length=200)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")]
Cursor = Annotated[
    str | None, Query(pattern=CURSOR_PATTERN, description="next_cursor of the previous page (opaque)")
]

ERRORS = error_responses(
    401,
    422,
    s403="a colleague's private thread, or not its owner/an admin",
    s404="no such thread in the caller's company (T1)",
)
router = APIRouter(prefix="/api/v1", tags=["threads"], responses=ERRORS)


def _cursor_id(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    value = int(cursor)
    if not 1 <= value <= MAX_ID:
        raise ApiError(422, "validation_error", "cursor: not a cursor of this API", field="cursor")
    return value


async def _page(
    ctx: ApiContext,
    user: User,
    limit: int,
    cursor: str | None,
    records: dict[str, str | None],
    **filters: Any,
) -> dict[str, Any]:
    """One page of threads the user may read (§3 privacy), newest first, linked to every named record —
    or, with a search query (issue 9), best match first, the cursor then counting results already shown."""
    # In registry order, so the first unknown record reported is always the same one.
    named: dict[str, str] = {k: ext for k in REGISTRY if (ext := records.get(k)) is not None}
    if filters.get("query") is not None:
        offset = int(cursor or 0)
        found = await list_visible(ctx.db, actor=user, records=named, limit=limit, offset=offset, **filters)
        next_offset = str(offset + limit) if len(found) == limit else None
        return {"threads": [t.as_json() for t in found], "next_cursor": next_offset}
    before = _cursor_id(cursor)
    found = await list_visible(ctx.db, actor=user, records=named, limit=limit, before_id=before, **filters)
    next_cursor = str(found[-1].id) if len(found) == limit else None
    return {"threads": [t.as_json() for t in found], "next_cursor": next_cursor}


@router.get("/threads", response_model=ThreadPage, summary="Threads the caller may read, newest first")
async def threads(
    ctx: Ctx,
    user: CurrentUser,
    owner: Annotated[
        str | None, Query(pattern=r"^(me|[0-9]{1,19})$", description="a user id, or `me`")
    ] = None,
    unlinked: Annotated[
        bool, Query(description="only threads without an item: the unresolved view (M7)")
    ] = False,
    item_type: Annotated[ItemType | None, Query()] = None,
    item_id: FilterId = None,
    person: FilterId = None,
    organization: FilterId = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_QUERY_CHARS,
            description="search: threads whose subject, text, participants' names and addresses or "
            "attachment names hold every word (case and accents ignored; `word*` matches a prefix), "
            "best match first",
        ),
    ] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> dict[str, Any]:
    filters: dict[str, Any] = {"unlinked": unlinked}
    records: dict[str, str | None] = {"person": person, "organization": organization}
    if q is not None:
        filters["query"] = q
    if (item_type is None) != (item_id is None):
        raise ApiError(422, "validation_error", "item_type and item_id go together", field="item_id")
    if item_type is not None:
        records[item_type] = item_id
    if owner is not None:
        owner_id = user.id if owner == "me" else int(owner)
        if owner_id > MAX_ID:
            raise ApiError(422, "validation_error", "owner: no such user id", field="owner")
        filters["owner_id"] = owner_id
    return await _page(ctx, user, limit, cursor, records, **filters)


def _record_threads(kind: str) -> Any:
    async def record_threads(
        ctx: Ctx,
        user: CurrentUser,
        external_id: ExternalIdPath,
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        return await _page(ctx, user, limit, cursor, {kind: external_id})

    return record_threads


for _record in RECORD_TYPES:
    _kind = _record.kind
    router.add_api_route(
        f"/{_record.plural}/{{external_id}}/threads",
        _record_threads(_kind),
        methods=["GET"],
        name=f"{_kind}_threads",
        response_model=ThreadPage,
        tags=["directory"],
        summary=f"Threads linked to a {_kind} that the caller may read, newest first",
    )


@router.get("/threads/{thread_id}", response_model=ThreadOut, summary="One thread (the CLI's thread JSON)")
async def thread(ctx: Ctx, user: CurrentUser, thread_id: ThreadId) -> dict[str, Any]:
    return (await show_thread(ctx.db, thread_id, actor=user)).as_json()


@router.get(
    "/threads/{thread_id}/raw",
    response_class=Response,
    responses={200: {"content": {"message/rfc822": {}}, "description": "the message exactly as received"}},
    summary="The stored message, byte for byte",
)
async def raw_message(ctx: Ctx, user: CurrentUser, thread_id: ThreadId) -> Response:
    raw = await read_raw(ctx.db, thread_id, actor=user)
    return Response(
        raw,
        media_type="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="thread-{thread_id}.eml"'},
    )


@router.patch(
    "/threads/{thread_id}",
    response_model=ThreadOut,
    summary="Share a thread with the whole company, or make it private again (owner only)",
)
async def patch_thread(
    ctx: Ctx, user: CurrentUser, thread_id: ThreadId, body: ThreadPatchIn
) -> dict[str, Any]:
    _, found = await change_visibility(ctx.db, thread_id, body.visibility, actor=user)
    return found.as_json()


@router.put(
    "/threads/{thread_id}/item",
    response_model=LinkResultOut,
    responses={409: {"model": ErrorOut, "description": "already linked to another item (M2)"}},
    summary="Link the thread to a deal, lead or project (owner or admin; M2, M4)",
)
async def put_item(
    ctx: Ctx,
    user: CurrentUser,
    thread_id: ThreadId,
    body: ItemLinkIn,
    replace: Annotated[bool, Query(description="move an existing link to this item")] = False,
) -> dict[str, Any]:
    result, found = await link_item(ctx.db, thread_id, body.type, body.id, actor=user, replace=replace)
    return {"result": result, "thread": found.as_json()}


@router.delete(
    "/threads/{thread_id}/item",
    response_model=LinkResultOut,
    summary="Remove the thread's item link (owner or admin; M3)",
)
async def delete_item(ctx: Ctx, user: CurrentUser, thread_id: ThreadId) -> dict[str, Any]:
    changed, found = await unlink_item(ctx.db, thread_id, actor=user)
    return {"result": "unlinked" if changed else "unchanged", "thread": found.as_json()}


def _record_link(kind: str, linked: bool) -> Any:
    async def record_link(
        ctx: Ctx, user: CurrentUser, thread_id: ThreadId, external_id: ExternalIdPath
    ) -> dict[str, Any]:
        changed, found = await link_record(ctx.db, thread_id, kind, external_id, actor=user, linked=linked)
        result = ("linked" if linked else "unlinked") if changed else "unchanged"
        return {"result": result, "thread": found.as_json()}

    return record_link


for _record in CONTACT_TYPES:
    _kind = _record.kind
    for _method, _linked in (("PUT", True), ("DELETE", False)):
        router.add_api_route(
            f"/threads/{{thread_id}}/{_record.plural}/{{external_id}}",
            _record_link(_kind, _linked),
            methods=[_method],
            name=f"{'link' if _linked else 'unlink'}_{_kind}",
            response_model=LinkResultOut,
            summary=f"{'Link' if _linked else 'Unlink'} a {_kind} by hand (owner or admin; M3)",
        )
