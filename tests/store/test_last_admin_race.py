"""Issue 8 / SPEC T2 admin rule: the company keeps at least one admin even when demotions race — on
PostgreSQL (READ COMMITTED, several connections) as on SQLite."""

from __future__ import annotations

import asyncio

from bccd.errors import Conflict
from bccd.services import users as user_service
from bccd.store.database import Database
from bccd.store.users import create_company, create_user, list_users

ADMINS = 4
ROUNDS = 3


async def test_concurrent_demotions_leave_one_admin(store_db: Database) -> None:
    for round_ in range(ROUNDS):
        async with store_db.write() as conn:
            company = await create_company(conn, f"Race {round_}")
            admins = [
                await create_user(conn, company.id, email=f"a{i}@race{round_}.test", name=f"A{i}", admin=True)
                for i in range(ADMINS)
            ]
        results = await asyncio.gather(
            *(user_service.update_user(store_db, a.id, actor=a, role="regular") for a in admins),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(r, Conflict) for r in refused), refused
        async with store_db.read() as conn:
            left = [u for u in await list_users(conn, company.id) if u.is_admin]
        assert len(left) == 1, f"round {round_}: {len(left)} admins left"
        assert len(refused) == 1  # every demotion but the last one went through
