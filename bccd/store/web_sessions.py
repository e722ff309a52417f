"""One-time login links and browser sessions (issue 10): rows keyed by the sha256 of their secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store.schema import login_links, web_sessions


async def add_login_link(
    conn: AsyncConnection, user_id: int, token_hash: str, *, now: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        insert(login_links).values(
            user_id=user_id, token_hash=token_hash, created_at=now, expires_at=expires_at
        )
    )


async def use_login_link(conn: AsyncConnection, token_hash: str, *, now: datetime) -> int | None:
    """Mark a live, unused link used and return its user; None when unknown, used or expired.

    The UPDATE is the compare-and-set: of two requests racing with one link, one changes the row.
    """
    row = (
        await conn.execute(
            select(login_links.c.id, login_links.c.user_id).where(login_links.c.token_hash == token_hash)
        )
    ).first()
    if row is None:
        return None
    result = await conn.execute(
        update(login_links)
        .where(
            login_links.c.id == row[0],
            login_links.c.used_at.is_(None),
            login_links.c.expires_at > now,
        )
        .values(used_at=now)
    )
    return int(row[1]) if result.rowcount == 1 else None


async def add_session(
    conn: AsyncConnection, user_id: int, session_hash: str, *, now: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        insert(web_sessions).values(
            user_id=user_id, session_hash=session_hash, created_at=now, expires_at=expires_at
        )
    )
    # Expired rows are of no use to anyone: sweep this user's on every sign-in.
    await conn.execute(
        delete(web_sessions).where(web_sessions.c.user_id == user_id, web_sessions.c.expires_at <= now)
    )


async def session_user_id(conn: AsyncConnection, session_hash: str, *, now: datetime) -> int | None:
    row = (
        await conn.execute(
            select(web_sessions.c.user_id).where(
                web_sessions.c.session_hash == session_hash, web_sessions.c.expires_at > now
            )
        )
    ).first()
    return None if row is None else int(row[0])


async def remove_session(conn: AsyncConnection, session_hash: str) -> bool:
    result = await conn.execute(delete(web_sessions).where(web_sessions.c.session_hash == session_hash))
    return result.rowcount > 0


async def remove_other_sessions(conn: AsyncConnection, user_id: int, keep_hash: str | None) -> int:
    cond = web_sessions.c.user_id == user_id
    if keep_hash is not None:
        cond = and_(cond, web_sessions.c.session_hash != keep_hash)
    result = await conn.execute(delete(web_sessions).where(cond))
    return int(result.rowcount)


async def count_sessions(conn: AsyncConnection, user_id: int, *, now: datetime) -> int:
    found = await conn.execute(
        select(func.count())
        .select_from(web_sessions)
        .where(web_sessions.c.user_id == user_id, web_sessions.c.expires_at > now)
    )
    return int(found.scalar_one())
