"""The inbox (`/`): my threads newest first, the unresolved ones on top with their reason in words.

The search box is the thread search (the API's `GET /api/v1/threads?q=`: subject, text, participants and
attachment names, best match first); the filters and pages keep working together with it. Records whose
name matches are listed too, as shortcuts to their threads.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request, Response

from bccd.api.context import Ctx
from bccd.errors import NotFound
from bccd.services import search, threads
from bccd.services.users import User
from bccd.web.names import Names
from bccd.web.render import page
from bccd.web.routing import web_router
from bccd.web.session import SignedIn

router = web_router()

PAGE_SIZE = 25
UNRESOLVED_MAX = 50  # the "needs you" block of the first page; more behind the "unlinked" filter
SEARCH_RESULTS = 5  # matching records shown above the matching threads
MAX_OFFSET = 10_000  # search pages are counted by offset (best match first has no id cursor)
SHOWS = ("all", "unlinked", "linked")
ITEM_TYPES = ("deal", "lead", "project")
Text = Annotated[str | None, Query(max_length=200)]


def _records(person: str | None, organization: str | None, item: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if person:
        out["person"] = person
    if organization:
        out["organization"] = organization
    if item:
        kind, _, ext = item.partition(":")
        if kind in ITEM_TYPES and ext:
            out[kind] = ext
    return out


async def thread_rows(
    names: Names, found: list[dict[str, Any]], owners: dict[int, str]
) -> list[dict[str, Any]]:
    rows = []
    for t in found:
        item = t["item"]
        rows.append(
            {
                "id": t["id"],
                "subject": t["subject"] or "(no subject)",
                "created_at": t["created_at"],
                "visibility": t["visibility"],
                "owner": owners.get(t["owner"]),
                "item": None if item is None else await names.ref(item["type"], item["id"]),
                "persons": [await names.ref("person", p) for p in t["persons"]],
                "reason": None if item is not None else await names.reason(t),
            }
        )
    return rows


async def _owner_names(ctx: Ctx, user: User, company: bool) -> dict[int, str]:
    if not company:
        return {}
    from bccd.services.users import list_users

    return {u.id: u.name for u in await list_users(ctx.db, actor=user)}


@router.get("/")
async def inbox(
    request: Request,
    ctx: Ctx,
    viewer: SignedIn,
    show: Annotated[str, Query(pattern="^(all|unlinked|linked)$")] = "all",
    scope: Annotated[str, Query(pattern="^(mine|company)$")] = "mine",
    person: Text = None,
    organization: Text = None,
    item: Text = None,
    q: Text = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    user = viewer.user
    company = scope == "company" and user.is_admin
    owner_id = None if company else user.id
    records = _records(person, organization, item)
    names = Names(ctx.db, user)
    filters_named = [await names.ref(kind, ext) for kind, ext in records.items()]

    async def listing(**kw: Any) -> list[dict[str, Any]]:
        try:
            found = await threads.list_visible(ctx.db, actor=user, owner_id=owner_id, records=records, **kw)
            return [t.as_json() for t in found]
        except NotFound:  # a filter naming a record that is not (or no longer) in the CRM
            return []

    query = q.strip() if q and q.strip() and "\x00" not in q else None
    owners = await _owner_names(ctx, user, company)
    main_filter = {"all": {}, "unlinked": {"unlinked": True}, "linked": {"linked": True}}[show]
    unresolved: list[dict[str, Any]] = []
    if query is not None:  # best match first, every filter still applies
        found = await listing(limit=PAGE_SIZE, query=query, offset=offset, **main_filter)
    else:
        if show == "all":  # the unresolved ones on top (first page), the linked ones below
            main_filter = {"linked": True}
            if cursor is None:
                unresolved = await thread_rows(
                    names, await listing(unlinked=True, limit=UNRESOLVED_MAX), owners
                )
        found = await listing(limit=PAGE_SIZE, before_id=cursor, **main_filter)
    rows = await thread_rows(names, found, owners)

    keep = {"show": show, "scope": scope, "person": person, "organization": organization, "item": item}
    keep["q"] = query
    base = {k: v for k, v in keep.items() if v and (k, v) not in (("show", "all"), ("scope", "mine"))}

    def url(**changes: Any) -> str:
        params = {**base, **changes}
        clean = {k: v for k, v in params.items() if v is not None and v != ""}
        return "/?" + urlencode(clean) if clean else "/"

    hits: list[dict[str, Any]] = []
    if query is not None and offset == 0:
        for h in await search.search_records(ctx.db, query, actor=user, limit=SEARCH_RESULTS):
            key, value = (
                (h.type, h.id) if h.type in ("person", "organization") else ("item", f"{h.type}:{h.id}")
            )
            hits.append(
                {
                    **(await names.ref(h.type, h.id)),
                    "status": h.status,
                    "threads_url": url(**{key: value, "q": None}),
                }
            )

    next_url = first_url = None
    if len(found) == PAGE_SIZE:
        next_url = url(offset=offset + PAGE_SIZE) if query is not None else url(cursor=found[-1]["id"])
    if cursor is not None or offset:
        first_url = url()
    return page(
        request,
        "inbox.html",
        viewer,
        show=show,
        scope="company" if company else "mine",
        unresolved=unresolved,
        rows=rows,
        hits=hits,
        q=query or "",
        searching=query is not None,
        filters=filters_named,
        filter_params=[(k, v) for k, v in base.items() if k in ("person", "organization", "item")],
        url=url,
        next_url=next_url,
        first_url=first_url,
        show_owner=company,
    )
