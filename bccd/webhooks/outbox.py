"""The outbox: event rows written in the caller's transaction, so a committed thread or link change always
has its events, across a crash (issue 9, "nothing lost").

Events are written only for companies with at least one enabled endpoint subscribed to the type (one
indexed query per batch; nothing else when no company uses webhooks), each with one delivery row per
subscribed endpoint. The thread JSON is rendered in the same transaction, so `data` is the thread as of
the event even when it changes again before delivery.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store.schema import threads, webhook_deliveries, webhook_events, webhooks
from bccd.store.thread_views import get_thread
from bccd.webhooks.events import MANUAL_ACTIONS, EventType, creation_events

Subscribers = dict[int, list[tuple[int, list[str]]]]  # company → [(endpoint id, subscribed types)]


def _now() -> datetime:
    return datetime.now(UTC)


# Built once: every group commit runs it, and building a statement (and its cache key) cost more than
# SQLite took to answer it.
_SUBSCRIBERS = select(webhooks.c.id, webhooks.c.company_id, webhooks.c.events).where(
    webhooks.c.company_id.in_(bindparam("ids", expanding=True)), webhooks.c.enabled.is_(True)
)


async def subscribers(conn: AsyncConnection, company_ids: Iterable[int]) -> Subscribers:
    ids = sorted(set(company_ids))
    out: Subscribers = {}
    if not ids:
        return out
    rows = await conn.execute(_SUBSCRIBERS, {"ids": ids})
    for eid, company, events in rows:
        out.setdefault(int(company), []).append((int(eid), list(events)))
    return out


async def write_event(
    conn: AsyncConnection,
    *,
    company_id: int,
    thread_id: int | None,
    type_: str,
    data: dict[str, Any],
    endpoint_ids: Sequence[int],
) -> str:
    """Insert one event and its deliveries; returns the event's public id (the webhook-id)."""
    now = _now()
    uid = "evt_" + uuid.uuid4().hex
    result = await conn.execute(
        insert(webhook_events)
        .values(
            uid=uid,
            company_id=company_id,
            thread_id=thread_id,
            type=type_,
            data=data,
            created_at=now,
        )
        .returning(webhook_events.c.id)
    )
    event_id = int(result.scalar_one())
    if endpoint_ids:
        await conn.execute(
            insert(webhook_deliveries),
            [
                {
                    "event_id": event_id,
                    "endpoint_id": eid,
                    "thread_id": thread_id,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for eid in endpoint_ids
            ],
        )
    return uid


async def _emit(
    conn: AsyncConnection,
    subs: Subscribers,
    company_id: int,
    thread_id: int,
    types: Sequence[EventType],
    extra: dict[str, Any] | None = None,
) -> None:
    endpoints = subs.get(company_id, [])
    wanted = [(t, [eid for eid, events in endpoints if t in events]) for t in types]
    wanted = [(t, eids) for t, eids in wanted if eids]
    if not wanted:
        return
    data = (await get_thread(conn, thread_id)).as_json()
    if extra:
        data.update(extra)
    for type_, eids in wanted:
        await write_event(
            conn, company_id=company_id, thread_id=thread_id, type_=type_, data=data, endpoint_ids=eids
        )


async def record_new_threads(conn: AsyncConnection, new: Sequence[tuple[int, int, str, str]]) -> None:
    """Events of threads created in this transaction: (thread id, company id, outcome, reason) each."""
    if not new:
        return
    subs = await subscribers(conn, (company for _, company, _, _ in new))
    if not subs:
        return
    for thread_id, company_id, outcome, reason in new:
        if company_id in subs:
            await _emit(conn, subs, company_id, thread_id, creation_events(outcome, reason))


async def record_manual_change(conn: AsyncConnection, thread_id: int, *, action: str, actor: str) -> None:
    """Events of one manual link change (called where its history entry is written)."""
    if action not in MANUAL_ACTIONS:
        return  # not a link change (visibility)
    company_id = (
        await conn.execute(select(threads.c.company_id).where(threads.c.id == thread_id))
    ).scalar_one()
    subs = await subscribers(conn, [int(company_id)])
    if not subs:
        return
    types: list[EventType] = [*MANUAL_ACTIONS[action], "thread.link_changed"]
    change = {"change": {"action": action, "actor": actor}}
    await _emit(conn, subs, int(company_id), thread_id, types, change)
