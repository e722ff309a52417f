"""Thread reads: listings (incl. the unresolved view, M7), one thread's JSON, the raw message (§3, T1).

A user sees the threads `bccd.permissions.VISIBILITY` lets them read; the operator (actor=None) sees
every thread of the company the listing names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bccd.permissions import check_thread_access
from bccd.records import record_type
from bccd.services.runtime import Database
from bccd.services.users import User
from bccd.store.directory import record_internal_id
from bccd.store.search_index import SearchQuery, ranker
from bccd.store.thread_views import MAX_PAGE as MAX_PAGE  # re-exported: the largest page
from bccd.store.thread_views import ThreadFilter, get_raw, get_thread, list_threads, search_threads
from bccd.store.threads import thread_header
from bccd.thread_models import ThreadSummary, ThreadView


async def list_visible(
    db: Database,
    *,
    actor: User | None,
    company_id: int | None = None,
    owner_id: int | None = None,
    unlinked: bool = False,
    linked: bool = False,
    records: Mapping[str, str] | None = None,
    limit: int = 50,
    before_id: int | None = None,
    query: str | None = None,
    offset: int = 0,
) -> list[ThreadSummary]:
    """Threads newest first, `before_id` the cursor. A user lists their own company; `records` maps a
    record kind (person, organization, deal, lead, project) to the external id a thread must be linked to.
    With `query` (issue 9 search): only threads holding every word of it, best match first, paged by
    `offset`; a query without a searchable word finds nothing.
    """
    if actor is not None:
        company_id = actor.company_id
    if company_id is None:
        raise ValueError("a listing needs a company")
    filters: dict[str, Any] = {}
    if query is not None and not SearchQuery.parse(query):
        return []
    async with db.read() as conn:
        for kind, external_id in (records or {}).items():
            key = "item_id" if record_type(kind).is_item else f"{kind}_id"  # a ThreadFilter field
            filters[key] = await record_internal_id(conn, company_id, kind, external_id)
        where = ThreadFilter(
            company_id=company_id,
            owner_id=owner_id,
            unlinked=unlinked,
            linked=linked,
            viewer_id=None if actor is None else actor.id,
            viewer_is_admin=actor is not None and actor.is_admin,
            **filters,
        )
        if query is not None:
            rank = ranker(conn.dialect.name, SearchQuery.parse(query), where)
            return await search_threads(conn, where, rank, limit=limit, offset=offset)
        return await list_threads(conn, where, limit=limit, before_id=before_id)


async def show_thread(db: Database, thread_id: int, *, actor: User | None) -> ThreadView:
    """The thread, if the actor may read it (NotFound for another company, PermissionDenied)."""
    async with db.read() as conn:
        if actor is None:
            return await get_thread(conn, thread_id)
        check_thread_access(actor, await thread_header(conn, thread_id), write=False)
        return await get_thread(conn, thread_id, company_id=actor.company_id)


async def raw_message(db: Database, thread_id: int, *, actor: User | None) -> bytes:
    """The stored message, byte for byte, if the actor may read the thread."""
    async with db.read() as conn:
        check_thread_access(actor, await thread_header(conn, thread_id), write=False)
        return await get_raw(conn, thread_id)
