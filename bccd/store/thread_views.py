"""Thread reads: the typed thread (bccd.thread_models) shared by CLI and API, listings with filters and
cursor pagination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.never_log import NeverLog, scrub_message_json
from bccd.permissions import VISIBILITY, Viewer
from bccd.store import raw_chunks
from bccd.store.schema import (
    companies,
    items,
    link_history,
    messages,
    organizations,
    persons,
    thread_organizations,
    thread_participants,
    thread_persons,
    threads,
)
from bccd.store.search_index import Ranking
from bccd.store.users import NotFound
from bccd.thread_models import (
    AuthenticationView,
    Decision,
    HistoryEntry,
    ItemRef,
    MessageView,
    ParticipantView,
    ThreadSummary,
    ThreadView,
)

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class ThreadFilter:
    company_id: int
    owner_id: int | None = None
    unlinked: bool = False
    linked: bool = False  # only threads with an item (the web inbox's "linked" filter)
    item_id: int | None = None
    person_id: int | None = None
    organization_id: int | None = None
    # Privacy (§3): when set, only threads this user may read (own, shared, or all for admins).
    viewer_id: int | None = None
    viewer_is_admin: bool = False


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


async def _ext_ids(
    conn: AsyncConnection, link: Any, column: str, source: Any, ids: list[int]
) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await conn.execute(
        select(link.c.thread_id, source.c.external_id)
        .join(source, source.c.id == link.c[column])
        .where(link.c.thread_id.in_(ids))
        .order_by(source.c.external_id)
    )
    for tid, ext in rows:
        out[int(tid)].append(ext)
    return out


def _summary(row: Any, thread_persons_: list[str], thread_orgs: list[str]) -> ThreadSummary:
    item = None if row["item_type"] is None else ItemRef(row["item_type"], row["item_ext"])
    return ThreadSummary(
        id=int(row["id"]),
        owner=int(row["owner_id"]),
        subject=row["subject"],
        created_at=_iso(row["created_at"]),
        visibility=row["visibility"],
        item=item,
        persons=tuple(thread_persons_),
        organizations=tuple(thread_orgs),
        decision=Decision.from_json(row["decision"]),
    )


def _base() -> Select[Any]:
    return select(
        threads,
        items.c.type.label("item_type"),
        items.c.external_id.label("item_ext"),
    ).outerjoin(items, items.c.id == threads.c.item_id)


async def get_thread(conn: AsyncConnection, thread_id: int, *, company_id: int | None = None) -> ThreadView:
    """The full thread (SPEC thread shape). With company_id, another company's thread is NotFound."""
    stmt = (
        _base()
        .add_columns(
            messages.c.message_id.label("m_message_id"),
            messages.c.date.label("m_date"),
            messages.c.from_addrs,
            messages.c.to_addrs,
            messages.c.cc_addrs,
            messages.c.size.label("m_size"),
            messages.c.attachments,
            messages.c.defects,
            messages.c.forward,
            messages.c.subject.label("m_subject"),
            companies.c.never_log,
        )
        .join(messages, messages.c.id == threads.c.message_pk)
        .join(companies, companies.c.id == threads.c.company_id)
    )
    stmt = stmt.where(threads.c.id == thread_id)
    if company_id is not None:
        stmt = stmt.where(threads.c.company_id == company_id)
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        raise NotFound(f"thread {thread_id} not found")
    linked_persons = await _ext_ids(conn, thread_persons, "person_id", persons, [thread_id])
    linked_orgs = await _ext_ids(conn, thread_organizations, "organization_id", organizations, [thread_id])
    summary = _summary(row, linked_persons[thread_id], linked_orgs[thread_id])
    # Never-log (§3): rows stored before an entry was added, or shared with another company, keep it.
    never_log = NeverLog(row["never_log"] or ())
    from_, to, cc, forward = scrub_message_json(
        row["from_addrs"], row["to_addrs"], row["cc_addrs"], row["forward"], never_log
    )
    message = MessageView(
        message_id=row["m_message_id"],
        date=row["m_date"],
        subject=row["m_subject"],
        from_=from_,
        to=to,
        cc=cc,
        size=row["m_size"],
        # `index` is what GET /threads/{id}/attachments/{n} takes (issue 9); older rows lack it in JSON.
        attachments=[{**a, "index": i} for i, a in enumerate(row["attachments"])],
        defects=row["defects"],
        forward=forward,
    )
    parts = await conn.execute(
        select(thread_participants, persons.c.external_id.label("person_ext"))
        .outerjoin(persons, persons.c.id == thread_participants.c.person_id)
        .where(thread_participants.c.thread_id == thread_id)
        .order_by(thread_participants.c.id)
    )
    participants = tuple(
        ParticipantView(p["address"], p["name"], p["role"], p["person_ext"])
        for p in parts.mappings()
        if not never_log.matches(p["address"])
    )
    hist = await conn.execute(
        select(link_history).where(link_history.c.thread_id == thread_id).order_by(link_history.c.id)
    )
    history = tuple(
        HistoryEntry(h["actor"], _iso(h["at"]), h["action"], h["before"], h["after"], h["reason"])
        for h in hist.mappings()
    )
    authentication = AuthenticationView.from_json(row["authentication"])
    return ThreadView(summary, message, participants, history, authentication)


async def get_raw(conn: AsyncConnection, thread_id: int) -> bytes:
    row = (
        await conn.execute(
            select(messages.c.raw, messages.c.raw_chunks, messages.c.sha256)
            .join(threads, threads.c.message_pk == messages.c.id)
            .where(threads.c.id == thread_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"thread {thread_id} not found")
    if row[1]:  # stored in pieces (bccd.store.raw_chunks)
        return await raw_chunks.read_all(conn, row[2])
    return bytes(row[0])


def _apply_filter(stmt: Select[Any], f: ThreadFilter) -> Select[Any]:
    conds: list[Any] = [threads.c.company_id == f.company_id]
    if f.owner_id is not None:
        conds.append(threads.c.owner_id == f.owner_id)
    if f.unlinked:
        conds.append(threads.c.item_id.is_(None))
    if f.linked:
        conds.append(threads.c.item_id.is_not(None))
    if f.item_id is not None:
        conds.append(threads.c.item_id == f.item_id)
    if f.person_id is not None:
        conds.append(
            exists().where(
                thread_persons.c.thread_id == threads.c.id, thread_persons.c.person_id == f.person_id
            )
        )
    if f.organization_id is not None:
        conds.append(
            exists().where(
                thread_organizations.c.thread_id == threads.c.id,
                thread_organizations.c.organization_id == f.organization_id,
            )
        )
    if f.viewer_id is not None:
        conds.append(VISIBILITY.sql_predicate(Viewer(f.viewer_id, f.company_id, f.viewer_is_admin), threads))
    return stmt.where(and_(*conds))


async def list_threads(
    conn: AsyncConnection, f: ThreadFilter, *, limit: int = 50, before_id: int | None = None
) -> list[ThreadSummary]:
    """Threads matching the filter, newest first; `before_id` is the cursor (ids grow with acceptance)."""
    limit = max(1, min(limit, MAX_PAGE))
    stmt = _apply_filter(_base(), f)
    if before_id is not None:
        stmt = stmt.where(threads.c.id < before_id)
    stmt = stmt.order_by(threads.c.id.desc()).limit(limit)
    return await _summaries(conn, stmt)


async def search_threads(
    conn: AsyncConnection,
    f: ThreadFilter,
    rank: Ranking,
    *,
    limit: int = 50,
    offset: int = 0,
) -> list[ThreadSummary]:
    """Threads matching the filter and a search, best first (issue 9): the newest SEARCH_WINDOW visible
    matches ranked, then older matches newest first (bccd.store.search_index.Ranking)."""
    limit, offset = max(1, min(limit, MAX_PAGE)), max(0, offset)
    base = _apply_filter(_base(), f)
    window = await rank.window_ids(conn, base)
    rows: list[Any] = []
    if offset < len(window):
        page = await rank.best_first(conn, window, offset, limit)
        found = (await conn.execute(base.where(threads.c.id.in_(page)))).mappings().all()
        by_id = {int(r["id"]): r for r in found}
        rows = [by_id[t] for t in page if t in by_id]
    # A window that holds fewer matches than it could holds them all; after a full one, older ones follow.
    if len(window) == rank.window and offset + limit > rank.window:
        skip = max(0, offset - rank.window)
        older = rank.older(base, window[-1]).offset(skip).limit(limit - len(rows))
        rows += list((await conn.execute(older)).mappings().all())
    return await _rows_to_summaries(conn, rows)


async def _summaries(conn: AsyncConnection, stmt: Select[Any]) -> list[ThreadSummary]:
    return await _rows_to_summaries(conn, list((await conn.execute(stmt)).mappings().all()))


async def _rows_to_summaries(conn: AsyncConnection, rows: list[Any]) -> list[ThreadSummary]:
    ids = [int(r["id"]) for r in rows]
    linked_persons = await _ext_ids(conn, thread_persons, "person_id", persons, ids)
    linked_orgs = await _ext_ids(conn, thread_organizations, "organization_id", organizations, ids)
    return [_summary(r, linked_persons[int(r["id"])], linked_orgs[int(r["id"])]) for r in rows]
