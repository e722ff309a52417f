"""Storing accepted messages as threads, many messages per statement (the group commit's write path).

A batch of N messages costs a fixed handful of statements instead of ~7 per message: one multi-row INSERT
per table, each deciding conflicts in the database (ON CONFLICT DO NOTHING) and RETURNING exactly the rows
it inserted, so S3's "same owner + same bytes = same thread" holds even when another node inserts the same
row at the same moment. Rows are inserted in the caller's order; the commit queue sorts by sha256 so that
every node locks the same messages in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store.raw_chunks import ChunksMissing, missing_chunks
from bccd.store.schema import (
    link_history,
    messages,
    thread_organizations,
    thread_participants,
    thread_persons,
    threads,
)
from bccd.store.search_index import index_new_threads
from bccd.store.sqlite_writes import InsertStatement, RawWriter, plain_sqlite3
from bccd.store.threads import AUTO_ACTOR, MessageRow, StoredThread, ThreadDraft
from bccd.webhooks.outbox import record_new_threads


def _insert(conn: AsyncConnection, table: Any) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


# The group commit's statements, built once per dialect: building one (and its cache key) cost more Python
# time than SQLite took to run it.
_BUILT: dict[tuple[str, str], Any] = {}


def _built(conn: AsyncConnection, name: str, build: Any) -> Any:
    key = (conn.dialect.name, name)
    stmt = _BUILT.get(key)
    if stmt is None:
        stmt = _BUILT[key] = build(conn)
    return stmt


_PLAIN_INSERTS = {
    t.name: insert(t) for t in (thread_participants, thread_persons, thread_organizations, link_history)
}


async def _message_ids(conn: AsyncConnection, rows: list[MessageRow]) -> dict[str, int]:
    unique = _unique_messages(rows)
    values = [_message_values(r) for r in unique]
    # One statement for any batch size (executemany, which SQLAlchemy sends as batched INSERT ... VALUES
    # ... RETURNING): compiled once and cached. A .values([...]) per batch was compiled again and again
    # (~8 % of the CPU per message in the ingest bench).
    stmt = _built(
        conn,
        "messages",
        lambda c: (
            _insert(c, messages)
            .on_conflict_do_nothing(index_elements=["sha256"])
            .returning(messages.c.id, messages.c.sha256)
        ),
    )
    ids = {sha: int(pk) for pk, sha in await conn.execute(stmt, values)}
    missing = [r.sha256 for r in unique if r.sha256 not in ids]
    if missing:  # stored before (a retry, S3) or just now by another node
        found = await conn.execute(
            select(messages.c.id, messages.c.sha256).where(messages.c.sha256.in_(missing))
        )
        ids.update({sha: int(pk) for pk, sha in found})
    return ids


def _thread_values(draft: ThreadDraft, msg_pk: int) -> dict[str, Any]:
    decision = draft.decision
    return {
        "company_id": draft.company_id,
        "owner_id": draft.owner_id,
        "message_pk": msg_pk,
        "subject": draft.subject,
        "created_at": draft.created_at,
        "visibility": "private",
        "item_id": decision.item_id,
        "decision_outcome": decision.outcome,
        "decision_reason": decision.reason,
        "decision_rule": decision.rule,
        "decision": decision.as_json(),
        "smtp_session": draft.smtp_session,
        "authentication": draft.authentication,
    }


def _plan(
    batch: Sequence[tuple[MessageRow, Sequence[ThreadDraft]]], msg_ids: dict[str, int]
) -> tuple[list[list[tuple[int, int]]], dict[tuple[int, int], ThreadDraft]]:
    """Per batch entry the (owner, message) key of each draft, and the first draft of each key."""
    keyed: list[list[tuple[int, int]]] = []
    first_draft: dict[tuple[int, int], ThreadDraft] = {}
    for row, drafts in batch:
        keys = [(d.owner_id, msg_ids[row.sha256]) for d in drafts]
        keyed.append(keys)
        for key, draft in zip(keys, drafts, strict=True):
            first_draft.setdefault(key, draft)  # the same owner + bytes twice in one batch: one thread
    return keyed, first_draft


def _results(
    keyed: list[list[tuple[int, int]]],
    created: dict[tuple[int, int], int],
    existing: dict[tuple[int, int], int],
) -> list[list[StoredThread]]:
    out: list[list[StoredThread]] = []
    claimed: set[tuple[int, int]] = set()
    for keys in keyed:
        stored = []
        for key in keys:
            is_new = key in created and key not in claimed
            claimed.add(key)
            stored.append(StoredThread(created.get(key) or existing[key], key[0], created=is_new))
        out.append(stored)
    return out


def _message_values(row: MessageRow) -> dict[str, Any]:
    return {"sha256": row.sha256, "raw": row.raw, "size": row.octets, "raw_chunks": row.chunks, **row.values}


def _unique_messages(rows: Iterable[MessageRow]) -> list[MessageRow]:
    return list({row.sha256: row for row in rows}.values())


def _new_threads(
    batch: Sequence[tuple[MessageRow, Sequence[ThreadDraft]]],
    msg_ids: dict[str, int],
    first_draft: dict[tuple[int, int], ThreadDraft],
    created: dict[tuple[int, int], int],
) -> list[tuple[int, ThreadDraft, MessageRow]]:
    by_pk = {msg_ids[row.sha256]: row for row, _ in batch}
    return [(created[k], first_draft[k], by_pk[k[1]]) for k in first_draft if k in created]


async def store_messages(
    conn: AsyncConnection, batch: Sequence[tuple[MessageRow, Sequence[ThreadDraft]]]
) -> list[list[StoredThread]]:
    """Store every message once and one thread per draft; the result lines up with `batch`.

    On SQLite the rows go through the plain sqlite3 connection under `conn` (bccd.store.sqlite_writes),
    in the same transaction; elsewhere through SQLAlchemy (`store_messages_reference`)."""
    raw = await plain_sqlite3(conn)
    if raw is not None:
        return await _store_messages_sqlite(conn, RawWriter(raw), batch)
    return await store_messages_reference(conn, batch)


async def _check_chunks(conn: AsyncConnection, rows: list[MessageRow]) -> None:
    """Every piece of a message written ahead (bccd.store.raw_chunks) is there, or the batch fails."""
    if any(row.chunks for row in rows):
        short = await missing_chunks(conn, rows)
        if short:
            raise ChunksMissing(f"{len(short)} message(s) without all their pieces")


async def store_messages_reference(
    conn: AsyncConnection, batch: Sequence[tuple[MessageRow, Sequence[ThreadDraft]]]
) -> list[list[StoredThread]]:
    """`store_messages` through SQLAlchemy Core, on either backend: the reference the raw path must match."""
    message_rows = [row for row, _ in batch]
    await _check_chunks(conn, message_rows)
    msg_ids = await _message_ids(conn, message_rows)
    keyed, first_draft = _plan(batch, msg_ids)

    created: dict[tuple[int, int], int] = {}
    if first_draft:
        stmt = _built(
            conn,
            "threads",
            lambda c: (
                _insert(c, threads)
                .on_conflict_do_nothing(index_elements=["owner_id", "message_pk"])
                .returning(threads.c.id, threads.c.owner_id, threads.c.message_pk)
            ),
        )
        params = [_thread_values(d, key[1]) for key, d in first_draft.items()]
        created = {(int(o), int(m)): int(tid) for tid, o, m in await conn.execute(stmt, params)}
    existing: dict[tuple[int, int], int] = {}
    missing = [key for key in first_draft if key not in created]
    if missing:
        found = await conn.execute(
            select(threads.c.id, threads.c.owner_id, threads.c.message_pk).where(
                tuple_(threads.c.owner_id, threads.c.message_pk).in_(missing)
            )
        )
        existing = {(int(o), int(m)): int(tid) for tid, o, m in found}

    new = [(created[key], first_draft[key]) for key in first_draft if key in created]
    for table, rows in _thread_rows(new):
        if rows:
            await conn.execute(_PLAIN_INSERTS[table.name], rows)
    await _after_threads(conn, new, _new_threads(batch, msg_ids, first_draft, created))
    return _results(keyed, created, existing)


async def _after_threads(
    conn: AsyncConnection,
    new: list[tuple[int, ThreadDraft]],
    indexed: list[tuple[int, ThreadDraft, MessageRow]],
) -> None:
    """The webhook outbox and the search index of new threads, in this transaction (issue 9)."""
    if not new:
        return
    await record_new_threads(
        conn, [(tid, d.company_id, d.decision.outcome, d.decision.reason) for tid, d in new]
    )
    await index_new_threads(conn, indexed)


def _thread_rows(new: list[tuple[int, ThreadDraft]]) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Participants, automatic person/organization links and the first history entry of new threads."""
    participants = [
        {"thread_id": tid, "address": p.address, "name": p.name, "role": p.role, "person_id": p.person_id}
        for tid, d in new
        for p in d.participants
    ]
    persons = [
        {"thread_id": tid, "person_id": pid, "source": "auto"}
        for tid, d in new
        for pid in d.decision.person_ids
    ]
    orgs = [
        {"thread_id": tid, "organization_id": oid, "source": "auto"}
        for tid, d in new
        for oid in d.decision.organization_ids
    ]
    history = [
        {
            "thread_id": tid,
            "at": d.created_at,
            "actor": AUTO_ACTOR,
            "action": "auto_link",
            "before": None,
            "after": {"item": d.decision.item.as_json() if d.decision.item else None},
            "reason": f"{d.decision.reason} ({d.decision.rule})",
        }
        for tid, d in new
    ]
    return [
        (thread_participants, participants),
        (thread_persons, persons),
        (thread_organizations, orgs),
        (link_history, history),
    ]


_RAW_MESSAGES = InsertStatement(messages, " ON CONFLICT (sha256) DO NOTHING RETURNING id")
_RAW_THREADS = InsertStatement(threads, " ON CONFLICT (owner_id, message_pk) DO NOTHING RETURNING id")
_RAW_PLAIN = {
    t.name: InsertStatement(t)
    for t in (thread_participants, thread_persons, thread_organizations, link_history)
}
_MESSAGE_BY_SHA = "SELECT id FROM messages WHERE sha256 = ?"
_THREAD_BY_KEY = "SELECT id FROM threads WHERE owner_id = ? AND message_pk = ?"


async def _store_messages_sqlite(
    conn: AsyncConnection, raw: RawWriter, batch: Sequence[tuple[MessageRow, Sequence[ThreadDraft]]]
) -> list[list[StoredThread]]:
    """`store_messages_reference`'s rows, in its order, through plain sqlite3: one prepared INSERT …
    RETURNING per message and per thread (sqlite3's statement cache prepares each once), executemany for
    the rest. Conflicts are decided by the database as there (ON CONFLICT DO NOTHING)."""
    message_rows = [row for row, _ in batch]
    await _check_chunks(conn, message_rows)
    msg_ids: dict[str, int] = {}
    for row in _unique_messages(message_rows):
        values = _message_values(row)
        columns = tuple(values)
        inserted = await raw.one(_RAW_MESSAGES.sql(columns), _RAW_MESSAGES.params(columns, values))
        if inserted is None:  # stored before (a retry, S3) or just now by another process
            inserted = await raw.one(_MESSAGE_BY_SHA, (row.sha256,))
        msg_ids[row.sha256] = int(inserted[0])
    keyed, first_draft = _plan(batch, msg_ids)

    created: dict[tuple[int, int], int] = {}
    existing: dict[tuple[int, int], int] = {}
    for key, draft in first_draft.items():
        values = _thread_values(draft, key[1])
        columns = tuple(values)
        inserted = await raw.one(_RAW_THREADS.sql(columns), _RAW_THREADS.params(columns, values))
        if inserted is not None:
            created[key] = int(inserted[0])
        else:
            existing[key] = int((await raw.one(_THREAD_BY_KEY, key))[0])

    new = [(created[key], first_draft[key]) for key in first_draft if key in created]
    for table, rows in _thread_rows(new):
        if rows:
            insert_ = _RAW_PLAIN[table.name]
            columns = tuple(rows[0])
            await raw.many(insert_.sql(columns), [insert_.params(columns, r) for r in rows])
    await _after_threads(conn, new, _new_threads(batch, msg_ids, first_draft, created))
    return _results(keyed, created, existing)
