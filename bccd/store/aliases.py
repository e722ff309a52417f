"""Alternative sender addresses and their confirmation (SPEC S5, issue 11).

A new alias is stored unconfirmed with the sha256 hash of a one-time code and the code's expiry; the code
itself is never stored or logged. It is confirmed by that code (once: the hash is cleared) or by an admin
or the operator, and `confirmed_by` / `confirmed_at` record who and when. Only confirmed aliases are
loaded into `User.aliases`, which is what the sender policy and the participant exclusion count.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from bccd.errors import ConfirmationFailed, Conflict, NotFound
from bccd.store.schema import user_addresses
from bccd.store.users import _ALIAS_COLUMNS, Alias, _clean_email, alias_of, get_user

BY_CODE = "code"
BY_OPERATOR = "operator"


def by_user(user_id: int) -> str:
    return f"user:{user_id}"


def _key(user_id: int, address: str) -> ColumnElement[bool]:
    return and_(user_addresses.c.user_id == user_id, user_addresses.c.address == address)


async def get_alias(conn: AsyncConnection, user_id: int, address: str) -> Alias:
    row = (
        await conn.execute(select(*_ALIAS_COLUMNS).where(_key(user_id, _clean_email(address))))
    ).mappings().first()
    if row is None:
        raise NotFound(f"user {user_id} has no alternative address {address!r}")
    return alias_of(row)


async def add_pending(
    conn: AsyncConnection, user_id: int, address: str, *, code_hash: str, expires_at: datetime
) -> Alias:
    """Add an unconfirmed alias with a code, or give a pending one a new code (the old one stops working)."""
    user = await get_user(conn, user_id)
    clean = _clean_email(address)
    if clean == user.email:
        raise Conflict("the login email is already the user's own address")
    current = next((a for a in user.alternatives if a.address == clean), None)
    if current is not None and current.confirmed:
        raise Conflict(f"{clean} is already a confirmed address of the user")
    values = {"confirmation_hash": code_hash, "confirmation_expires_at": expires_at}
    if current is None:
        await conn.execute(
            insert(user_addresses).values(user_id=user_id, address=clean, confirmed=False, **values)
        )
    else:
        await conn.execute(update(user_addresses).where(_key(user_id, clean)).values(**values))
    return await get_alias(conn, user_id, clean)


async def remove(conn: AsyncConnection, user_id: int, addresses: Iterable[str]) -> None:
    gone = [_clean_email(a) for a in addresses]
    if gone:
        await conn.execute(
            delete(user_addresses).where(
                user_addresses.c.user_id == user_id, user_addresses.c.address.in_(gone)
            )
        )


async def confirm_with_code(
    conn: AsyncConnection, user_id: int, address: str, *, code_hash: str, now: datetime
) -> Alias:
    """The mailed code proves the address is the user's. Wrong, expired or used codes: ConfirmationFailed."""
    clean = _clean_email(address)
    row = (
        await conn.execute(
            select(
                user_addresses.c.confirmed,
                user_addresses.c.confirmation_hash,
                user_addresses.c.confirmation_expires_at,
            ).where(_key(user_id, clean))
        )
    ).mappings().first()
    if row is None:
        raise NotFound(f"user {user_id} has no alternative address {clean!r}")
    if row["confirmed"]:
        raise Conflict(f"{clean} is already confirmed")
    stored = row["confirmation_hash"]
    if stored is None:
        raise ConfirmationFailed("no confirmation code is pending for this address; add it again")
    if row["confirmation_expires_at"] is None or row["confirmation_expires_at"] <= now:
        raise ConfirmationFailed("the confirmation code has expired; add the address again for a new one")
    if not hmac.compare_digest(str(stored), code_hash):
        raise ConfirmationFailed("wrong confirmation code")
    return await _confirm(conn, user_id, clean, BY_CODE, now, code_hash=code_hash)


async def confirm_by(conn: AsyncConnection, user_id: int, address: str, *, by: str, now: datetime) -> Alias:
    """An admin (or the operator) confirms on the user's behalf; `by` is recorded with the time."""
    clean = _clean_email(address)
    alias = await get_alias(conn, user_id, clean)
    if alias.confirmed:
        raise Conflict(f"{clean} is already confirmed")
    return await _confirm(conn, user_id, clean, by, now)


async def _confirm(
    conn: AsyncConnection, user_id: int, address: str, by: str, now: datetime, *, code_hash: str | None = None
) -> Alias:
    cond: list[ColumnElement[bool]] = [_key(user_id, address), user_addresses.c.confirmed.is_(False)]
    if code_hash is not None:
        cond.append(user_addresses.c.confirmation_hash == code_hash)  # a concurrent confirmation wins once
    result = await conn.execute(
        update(user_addresses)
        .where(*cond)
        .values(
            confirmed=True,
            confirmed_at=now,
            confirmed_by=by,
            confirmation_hash=None,
            confirmation_expires_at=None,
        )
    )
    if result.rowcount != 1:
        raise Conflict(f"{address} was confirmed meanwhile")
    return await get_alias(conn, user_id, address)


async def requested_changes(
    conn: AsyncConnection, user_id: int, requested: Iterable[str]
) -> tuple[list[str], list[str]]:
    """For "the aliases are now exactly these": (addresses to add, addresses to remove), normalized; the
    login email is never an alias, and addresses kept keep their state (confirmed or pending)."""
    user = await get_user(conn, user_id)
    wanted = {_clean_email(a) for a in requested} - {user.email}
    have = {a.address for a in user.alternatives}
    return sorted(wanted - have), sorted(have - wanted)
