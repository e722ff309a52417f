"""API tokens after issue: look one up by its raw value, list, revoke, and record its last use (SPEC T2).

There is no cache of tokens anywhere: every request looks its token up by hash (one indexed read), so a
revocation (a DELETE) is seen by every process and node as soon as it commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.errors import NotFound
from bccd.store.schema import api_tokens, users
from bccd.store.users import hash_token


@dataclass(frozen=True, slots=True)
class Token:
    """What may be shown about a token: never the token nor its hash."""

    id: int
    user_id: int
    company_id: int
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "user": self.user_id,
            "prefix": self.prefix,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "expires_at": iso(self.expires_at),
        }


_COLUMNS = (
    api_tokens.c.id,
    api_tokens.c.user_id,
    users.c.company_id,
    api_tokens.c.prefix,
    api_tokens.c.created_at,
    api_tokens.c.last_used_at,
    api_tokens.c.expires_at,
)
_JOINED = api_tokens.join(users, users.c.id == api_tokens.c.user_id)
# Built once: every API request runs it.
_BY_HASH = select(*_COLUMNS).select_from(_JOINED).where(api_tokens.c.token_hash == bindparam("token_hash"))


def _token(row: Any) -> Token:
    return Token(
        id=int(row.id),
        user_id=int(row.user_id),
        company_id=int(row.company_id),
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
    )


async def token_by_raw(conn: AsyncConnection, raw: str) -> Token | None:
    """The token whose hash matches `raw` (expired ones included: the caller decides), or None."""
    row = (await conn.execute(_BY_HASH, {"token_hash": hash_token(raw)})).first()
    return None if row is None else _token(row)


async def list_tokens(conn: AsyncConnection, user_id: int) -> list[Token]:
    """The user's tokens, oldest first."""
    stmt = select(*_COLUMNS).select_from(_JOINED).where(api_tokens.c.user_id == user_id)
    return [_token(r) for r in await conn.execute(stmt.order_by(api_tokens.c.id))]


async def get_token(conn: AsyncConnection, token_id: int, *, company_id: int | None = None) -> Token:
    """One token by id; with company_id, another company's token is not found (T1)."""
    stmt = select(*_COLUMNS).select_from(_JOINED).where(api_tokens.c.id == token_id)
    if company_id is not None:
        stmt = stmt.where(users.c.company_id == company_id)
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"token {token_id} not found")
    return _token(row)


async def delete_token(conn: AsyncConnection, token_id: int) -> bool:
    """Revoke: the row goes, so the next lookup anywhere finds nothing. False when it was already gone."""
    result = await conn.execute(delete(api_tokens).where(api_tokens.c.id == token_id))
    return bool(result.rowcount)


async def touch_token(conn: AsyncConnection, token_id: int, now: datetime, granularity: timedelta) -> bool:
    """Set last_used_at = now unless it is already newer than `now - granularity` (so concurrent requests,
    on any node, write it at most about once per granularity). True when a row changed."""
    stmt = (
        update(api_tokens)
        .where(
            api_tokens.c.id == token_id,
            or_(api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at < now - granularity),
        )
        .values(last_used_at=now)
    )
    result = await conn.execute(stmt)
    return bool(result.rowcount)
