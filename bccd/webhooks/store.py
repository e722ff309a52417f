"""Endpoint rows and the delivery queue: registration, secret rotation, claiming due deliveries, results.

Claiming is `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL (several nodes never take the same delivery)
and moves `next_attempt_at` forward by a lease: a node that dies mid-delivery leaves the row to be taken
again once the lease ends (at-least-once). A delivery is only due when no earlier delivery of the same
thread to the same endpoint is still pending, so one thread's events arrive in order. SQLite has a single
writer (BEGIN IMMEDIATE), which serializes claims without row locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.errors import NotFound
from bccd.store.schema import webhook_deliveries, webhook_events, webhooks
from bccd.webhooks.signing import new_secret

ROTATION_GRACE = timedelta(hours=24)  # the previous secret still signs this long after a rotation

_d = webhook_deliveries


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    company_id: int
    url: str
    events: tuple[str, ...]
    description: str
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    rotated_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "company": self.company_id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "created_at": _iso(self.created_at),
            "secret_rotated_at": _iso(self.rotated_at),
        }


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=int(row["id"]),
        company_id=int(row["company_id"]),
        url=row["url"],
        events=tuple(row["events"]),
        description=row["description"],
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        created_at=row["created_at"],
        rotated_at=row["rotated_at"],
    )


async def create_endpoint(
    conn: AsyncConnection, company_id: int, *, url: str, events: Sequence[str], description: str
) -> tuple[Endpoint, str]:
    secret = new_secret()
    result = await conn.execute(
        insert(webhooks)
        .values(
            company_id=company_id,
            url=url,
            events=list(events),
            description=description,
            enabled=True,
            secret=secret,
            created_at=_now(),
        )
        .returning(webhooks.c.id)
    )
    return await get_endpoint(conn, int(result.scalar_one())), secret


async def get_endpoint(conn: AsyncConnection, endpoint_id: int, *, company_id: int | None = None) -> Endpoint:
    stmt = select(webhooks).where(webhooks.c.id == endpoint_id)
    if company_id is not None:
        stmt = stmt.where(webhooks.c.company_id == company_id)
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        raise NotFound(f"webhook {endpoint_id} not found")
    return _endpoint(row)


async def list_endpoints(conn: AsyncConnection, company_id: int | None = None) -> list[Endpoint]:
    stmt = select(webhooks).order_by(webhooks.c.id)
    if company_id is not None:
        stmt = stmt.where(webhooks.c.company_id == company_id)
    return [_endpoint(r) for r in (await conn.execute(stmt)).mappings()]


async def update_endpoint(conn: AsyncConnection, endpoint_id: int, **values: Any) -> Endpoint:
    values = {k: v for k, v in values.items() if v is not None}
    if "events" in values:
        values["events"] = list(values["events"])
    if values.get("enabled") is True:
        values["disabled_reason"] = None
    if values:
        await conn.execute(update(webhooks).where(webhooks.c.id == endpoint_id).values(**values))
    return await get_endpoint(conn, endpoint_id)


async def delete_endpoint(conn: AsyncConnection, endpoint_id: int) -> None:
    await conn.execute(delete(_d).where(_d.c.endpoint_id == endpoint_id))
    await conn.execute(delete(webhooks).where(webhooks.c.id == endpoint_id))


async def rotate_secret(conn: AsyncConnection, endpoint_id: int) -> str:
    """A new secret; the current one keeps signing (as a second signature) for ROTATION_GRACE."""
    current = (
        await conn.execute(select(webhooks.c.secret).where(webhooks.c.id == endpoint_id).with_for_update())
    ).scalar_one()
    secret = new_secret()
    await conn.execute(
        update(webhooks)
        .where(webhooks.c.id == endpoint_id)
        .values(secret=secret, previous_secret=current, rotated_at=_now())
    )
    return secret


async def disable_endpoint(conn: AsyncConnection, endpoint_id: int, reason: str) -> None:
    await conn.execute(
        update(webhooks).where(webhooks.c.id == endpoint_id).values(enabled=False, disabled_reason=reason)
    )


async def list_deliveries(
    conn: AsyncConnection, endpoint_id: int, *, limit: int = 100
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(_d, webhook_events.c.uid, webhook_events.c.type)
        .join(webhook_events, webhook_events.c.id == _d.c.event_id)
        .where(_d.c.endpoint_id == endpoint_id)
        .order_by(_d.c.id.desc())
        .limit(max(1, min(limit, 500)))
    )
    return [
        {
            "id": int(r["id"]),
            "event": r["uid"],
            "type": r["type"],
            "thread": r["thread_id"],
            "status": r["status"],
            "attempts": int(r["attempts"]),
            "next_attempt_at": _iso(r["next_attempt_at"]) if r["status"] == "pending" else None,
            "last_status": r["last_status"],
            "last_error": r["last_error"],
            "delivered_at": _iso(r["delivered_at"]),
            "created_at": _iso(r["created_at"]),
        }
        for r in rows.mappings()
    ]


# -- the queue -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """One delivery taken by this node until `lease_until`, with all it needs to send it."""

    id: int
    endpoint_id: int
    url: str
    secrets: tuple[str, ...]  # the current secret, then the previous one during its grace period
    event_uid: str
    event_type: str
    event_at: datetime
    company_id: int
    data: dict[str, Any]
    attempts: int  # including this one


def _due(now: datetime) -> Any:
    earlier = _d.alias("earlier")
    blocked = exists().where(
        earlier.c.endpoint_id == _d.c.endpoint_id,
        earlier.c.thread_id == _d.c.thread_id,
        earlier.c.id < _d.c.id,
        earlier.c.status == "pending",
    )
    return and_(_d.c.status == "pending", _d.c.next_attempt_at <= now, ~blocked)


async def due_endpoints(conn: AsyncConnection, *, limit: int = 100) -> list[int]:
    """Enabled endpoints with a delivery due now (no lock: claim() decides)."""
    rows = await conn.execute(
        select(_d.c.endpoint_id)
        .join(webhooks, webhooks.c.id == _d.c.endpoint_id)
        .where(_d.c.status == "pending", _d.c.next_attempt_at <= _now(), webhooks.c.enabled.is_(True))
        .distinct()
        .limit(limit)
    )
    return [int(r[0]) for r in rows]


async def claim(conn: AsyncConnection, endpoint_id: int, *, limit: int, lease: float) -> list[Claimed]:
    """Take up to `limit` due deliveries of one endpoint, oldest first, for `lease` seconds."""
    now = _now()
    stmt = (
        select(_d.c.id)
        .where(_d.c.endpoint_id == endpoint_id, _due(now))
        .order_by(_d.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [int(r[0]) for r in await conn.execute(stmt)]
    if not ids:
        return []
    await conn.execute(
        update(_d)
        .where(_d.c.id.in_(ids))
        .values(next_attempt_at=now + timedelta(seconds=lease), attempts=_d.c.attempts + 1)
    )
    rows = await conn.execute(
        select(
            _d.c.id,
            _d.c.attempts,
            webhooks.c.url,
            webhooks.c.enabled,
            webhooks.c.secret,
            webhooks.c.previous_secret,
            webhooks.c.rotated_at,
            webhook_events.c.uid,
            webhook_events.c.type,
            webhook_events.c.created_at,
            webhook_events.c.company_id,
            webhook_events.c.data,
        )
        .join(webhooks, webhooks.c.id == _d.c.endpoint_id)
        .join(webhook_events, webhook_events.c.id == _d.c.event_id)
        .where(_d.c.id.in_(ids))
        .order_by(_d.c.id)
    )
    out = []
    for r in rows.mappings():
        secrets = [r["secret"]]
        if r["previous_secret"] and r["rotated_at"] and now - r["rotated_at"] < ROTATION_GRACE:
            secrets.append(r["previous_secret"])
        out.append(
            Claimed(
                id=int(r["id"]),
                endpoint_id=endpoint_id,
                url=r["url"],
                secrets=tuple(secrets),
                event_uid=r["uid"],
                event_type=r["type"],
                event_at=r["created_at"],
                company_id=int(r["company_id"]),
                data=r["data"],
                attempts=int(r["attempts"]),
            )
        )
    return out


async def mark_delivered(conn: AsyncConnection, delivery_id: int, status: int) -> None:
    now = _now()
    await conn.execute(
        update(_d)
        .where(_d.c.id == delivery_id)
        .values(status="delivered", delivered_at=now, last_status=status, last_error=None)
    )


async def mark_failed(
    conn: AsyncConnection, delivery_id: int, *, status: int | None, error: str, retry_at: datetime | None
) -> None:
    """Record a failed attempt: retried at `retry_at`, or given up (status failed) when None."""
    values: dict[str, Any] = {"last_status": status, "last_error": error[:500]}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    await conn.execute(update(_d).where(_d.c.id == delivery_id).values(**values))


async def queue_depth(conn: AsyncConnection) -> int:
    return int(
        (
            await conn.execute(select(func.count()).select_from(_d).where(_d.c.status == "pending"))
        ).scalar_one()
    )
