"""Alias confirmation in the store (S5, issue 11), on SQLite and PostgreSQL: pending aliases do not count,
a code confirms once and only before it expires, an admin's confirmation is recorded, a new code replaces
the old one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bccd.errors import ConfirmationFailed, Conflict, NotFound
from bccd.store import aliases
from bccd.store.database import Database
from bccd.store.users import company_addresses, get_user, owner_by_smart_bcc_local
from tests.store.factories import World

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
WORK = "bob@work.test"


async def _add(db: Database, world: World, code_hash: str, *, expires: datetime) -> None:
    async with db.write() as conn:
        pending = await aliases.add_pending(
            conn, world.bob.id, "Bob@Work.TEST", code_hash=code_hash, expires_at=expires
        )
    assert (pending.address, pending.confirmed, pending.expires_at) == (WORK, False, expires)


async def _counts(db: Database, world: World) -> bool:
    """Whether S5 counts the alias: in the owner's addresses at RCPT and in the company's addresses."""
    async with db.read() as conn:
        found = await owner_by_smart_bcc_local(conn, world.bob.smart_bcc_local)
        assert found is not None
        in_owner = WORK in found[0].addresses
        assert in_owner == (WORK in await company_addresses(conn, world.company_id))
    return in_owner


async def test_code_confirms_once_before_it_expires(store_db: Database, world: World) -> None:
    await _add(store_db, world, "a" * 64, expires=NOW + timedelta(hours=1))
    assert not await _counts(store_db, world)
    async with store_db.read() as conn:
        bob = await get_user(conn, world.bob.id)
    assert bob.aliases == () and [a.address for a in bob.alternatives] == [WORK]

    async with store_db.write() as conn:
        with pytest.raises(ConfirmationFailed, match="wrong"):
            await aliases.confirm_with_code(conn, world.bob.id, WORK, code_hash="b" * 64, now=NOW)
        with pytest.raises(ConfirmationFailed, match="expired"):
            later = NOW + timedelta(hours=2)
            await aliases.confirm_with_code(conn, world.bob.id, WORK, code_hash="a" * 64, now=later)
        with pytest.raises(NotFound):
            await aliases.confirm_with_code(conn, world.alice.id, WORK, code_hash="a" * 64, now=NOW)
    assert not await _counts(store_db, world)

    async with store_db.write() as conn:
        done = await aliases.confirm_with_code(conn, world.bob.id, WORK, code_hash="a" * 64, now=NOW)
    assert (done.confirmed, done.confirmed_by, done.confirmed_at) == (True, "code", NOW)
    assert done.expires_at is None
    assert await _counts(store_db, world)
    async with store_db.write() as conn:
        with pytest.raises(Conflict):
            await aliases.confirm_with_code(conn, world.bob.id, WORK, code_hash="a" * 64, now=NOW)
        with pytest.raises(Conflict):  # confirmed: not pending again
            await aliases.add_pending(conn, world.bob.id, WORK, code_hash="c" * 64, expires_at=NOW)


async def test_new_code_replaces_the_old_and_admin_confirmation_is_recorded(
    store_db: Database, world: World
) -> None:
    await _add(store_db, world, "a" * 64, expires=NOW + timedelta(hours=1))
    await _add(store_db, world, "b" * 64, expires=NOW + timedelta(hours=3))
    async with store_db.write() as conn:
        with pytest.raises(ConfirmationFailed):
            await aliases.confirm_with_code(conn, world.bob.id, WORK, code_hash="a" * 64, now=NOW)
        admin = aliases.by_user(world.carol.id)
        by_admin = await aliases.confirm_by(conn, world.bob.id, WORK, by=admin, now=NOW)
    assert (by_admin.confirmed_by, by_admin.confirmed_at) == (f"user:{world.carol.id}", NOW)
    assert await _counts(store_db, world)
    async with store_db.write() as conn:
        with pytest.raises(Conflict):
            await aliases.add_pending(conn, world.bob.id, world.bob.email, code_hash="c" * 64, expires_at=NOW)
        await aliases.remove(conn, world.bob.id, [WORK])
    assert not await _counts(store_db, world)
