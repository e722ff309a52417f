"""Thread writes: storing accepted messages as threads (ingest) and every link change with its history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.errors import AlreadyLinked as AlreadyLinked  # re-exported: defined in bccd.errors
from bccd.linker import LinkDecision
from bccd.store.dialect import insert_ignore
from bccd.store.schema import (
    items,
    link_history,
    organizations,
    persons,
    thread_organizations,
    thread_persons,
    threads,
)
from bccd.store.users import NotFound
from bccd.vocabulary import VISIBILITIES

AUTO_ACTOR = "bccd"


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    address: str
    name: str | None
    role: str
    person_id: int | None


@dataclass(frozen=True, slots=True)
class ThreadDraft:
    """One thread to create for one owner from one accepted message (SPEC §3)."""

    company_id: int
    owner_id: int
    subject: str
    created_at: datetime
    participants: Sequence[ParticipantRow]
    decision: LinkDecision
    smtp_session: str | None = None
    authentication: dict[str, Any] | None = None  # the sender authentication JSON; None: sender_auth off


@dataclass(frozen=True, slots=True)
class MessageRow:
    sha256: str
    raw: bytes  # empty when the bytes were written ahead in `chunks` pieces (bccd.store.raw_chunks)
    values: dict[str, Any] = field(default_factory=dict)  # parsed columns of `messages`
    size: int | None = None  # the raw message's octets; None: len(raw)
    chunks: int = 0

    @property
    def octets(self) -> int:
        return len(self.raw) if self.size is None else self.size


@dataclass(frozen=True, slots=True)
class StoredThread:
    id: int
    owner_id: int
    created: bool  # False: a byte-identical retry for this owner (S3); the existing thread's id


@dataclass(frozen=True, slots=True)
class ThreadHeader:
    id: int
    company_id: int
    owner_id: int
    visibility: str
    item_id: int | None


def _now() -> datetime:
    return datetime.now(UTC)


async def thread_header(conn: AsyncConnection, thread_id: int) -> ThreadHeader:
    return await _header(conn, thread_id, lock=False)


async def _locked_header(conn: AsyncConnection, thread_id: int) -> ThreadHeader:
    """The header, with the thread's row locked until the transaction ends (PostgreSQL).

    Under READ COMMITTED two nodes may both read "linked to X" and then both write; the row lock makes
    the second writer wait and read the first one's result, so `before` in the history is always the
    value actually replaced and "unchanged" is never decided on a stale read. SQLite renders no FOR
    UPDATE: its writers are already serialized by BEGIN IMMEDIATE.
    """
    return await _header(conn, thread_id, lock=True)


async def _header(conn: AsyncConnection, thread_id: int, *, lock: bool) -> ThreadHeader:
    stmt = select(
        threads.c.id,
        threads.c.company_id,
        threads.c.owner_id,
        threads.c.visibility,
        threads.c.item_id,
    ).where(threads.c.id == thread_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"thread {thread_id} not found")
    return ThreadHeader(
        int(row[0]), int(row[1]), int(row[2]), row[3], None if row[4] is None else int(row[4])
    )


async def _item_ref(conn: AsyncConnection, item_id: int | None) -> dict[str, str] | None:
    if item_id is None:
        return None
    row = (await conn.execute(select(items.c.type, items.c.external_id).where(items.c.id == item_id))).one()
    return {"type": row[0], "id": row[1]}


async def _history(
    conn: AsyncConnection, thread_id: int, actor: str, action: str, before: Any, after: Any, reason: str
) -> None:
    await conn.execute(
        insert(link_history).values(
            thread_id=thread_id,
            at=_now(),
            actor=actor,
            action=action,
            before=before,
            after=after,
            reason=reason,
        )
    )
    from bccd.webhooks.outbox import record_manual_change  # the outbox reads threads: import late

    await record_manual_change(conn, thread_id, action=action, actor=actor)  # issue 9, same transaction


async def set_item(
    conn: AsyncConnection, thread_id: int, item_id: int, *, actor: str, replace: bool = False
) -> str:
    """Link the thread to the item (M2, M4). Returns "unchanged", "linked" or "replaced".

    The compare-and-set UPDATE makes the database the judge when two requests race: only one of two
    different links to an unlinked thread wins; the other sees AlreadyLinked (SPEC L9, M2).
    """
    header = await _locked_header(conn, thread_id)
    if header.item_id == item_id:
        return "unchanged"
    cond = threads.c.id == thread_id
    if not replace:
        cond = cond & threads.c.item_id.is_(None)
    result = await conn.execute(update(threads).where(cond).values(item_id=item_id))
    if result.rowcount != 1:
        current = await thread_header(conn, thread_id)
        if current.item_id == item_id:
            return "unchanged"
        ref = await _item_ref(conn, current.item_id)
        assert ref is not None
        raise AlreadyLinked(ref)
    before = await _item_ref(conn, header.item_id)
    after = await _item_ref(conn, item_id)
    action = "replace_item" if before else "link_item"
    await _history(conn, thread_id, actor, action, {"item": before}, {"item": after}, "manual")
    return "replaced" if before else "linked"


async def clear_item(conn: AsyncConnection, thread_id: int, *, actor: str) -> bool:
    """Unlink the thread's item (M3). Returns False when it had none."""
    header = await _locked_header(conn, thread_id)
    if header.item_id is None:
        return False
    result = await conn.execute(
        update(threads)
        .where(threads.c.id == thread_id, threads.c.item_id == header.item_id)
        .values(item_id=None)
    )
    if result.rowcount != 1:
        return False
    before = await _item_ref(conn, header.item_id)
    await _history(conn, thread_id, actor, "unlink_item", {"item": before}, {"item": None}, "manual")
    return True


async def set_record_link(
    conn: AsyncConnection, thread_id: int, kind: str, record_id: int, *, actor: str, linked: bool
) -> bool:
    """Link or unlink a person/organization by hand (M3). Returns whether anything changed."""
    table, column, source = (
        (thread_persons, "person_id", persons)
        if kind == "person"
        else (thread_organizations, "organization_id", organizations)
    )
    ext = (await conn.execute(select(source.c.external_id).where(source.c.id == record_id))).scalar_one()
    if linked:
        changed = await insert_ignore(
            conn,
            table,
            {"thread_id": thread_id, column: record_id, "source": "manual"},
            ["thread_id", column],
        )
        if changed is None:
            return False
        await _history(conn, thread_id, actor, f"link_{kind}", None, {kind: ext}, "manual")
        return True
    result = await conn.execute(
        delete(table).where(table.c.thread_id == thread_id, table.c[column] == record_id)
    )
    if not result.rowcount:
        return False
    await _history(conn, thread_id, actor, f"unlink_{kind}", {kind: ext}, None, "manual")
    return True


async def set_visibility(conn: AsyncConnection, thread_id: int, visibility: str, *, actor: str) -> bool:
    if visibility not in VISIBILITIES:
        raise ValueError("visibility must be private or shared")
    header = await _locked_header(conn, thread_id)
    if header.visibility == visibility:
        return False
    await conn.execute(update(threads).where(threads.c.id == thread_id).values(visibility=visibility))
    await _history(
        conn,
        thread_id,
        actor,
        "visibility",
        {"visibility": header.visibility},
        {"visibility": visibility},
        "manual",
    )
    return True
