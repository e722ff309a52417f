"""PostgreSQL: pooled connections the server closed are replaced at checkout, so the next delivery's
reads and writes succeed (no pre-ping round trip; bccd.store.database._postgresql_setup)."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bccd.store.database import Database
from bccd.store.hot_reads import facts
from tests.conftest import empty_pg
from tests.store.factories import PETER, seed


async def _terminate_other_backends(url: str) -> int:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await admin.close()


async def test_connections_closed_by_the_server_are_replaced(pg_url: str) -> None:
    await empty_pg(pg_url)
    db = Database(pg_url, pool_size=2)
    try:
        world = await seed(db)
        # Fill the pool: four connections checked out at once, then returned.
        async with db.read() as a, db.read() as b, db.read() as c, db.read() as d:
            for conn in (a, b, c, d):
                await conn.execute(text("SELECT 1"))
        assert await _terminate_other_backends(pg_url) >= 4
        await asyncio.sleep(0.2)  # the server's close reaches asyncpg through the event loop
        async with facts(db) as reads:
            found = await reads.owner_by_smart_bcc_local(world.alice.smart_bcc_local)
            assert found is not None and found[0].id == world.alice.id
            assert [p.external_id for p in await reads.persons_by_addresses(world.company_id, [PETER])] == [
                "p-1"
            ]
        async with db.write() as conn:
            await conn.execute(
                text("UPDATE users SET name = 'Alice A.' WHERE id = :id"), {"id": world.alice.id}
            )
        async with db.read() as conn:
            assert (
                await conn.execute(text("SELECT name FROM users WHERE id = :id"), {"id": world.alice.id})
            ).scalar_one() == "Alice A."
    finally:
        await db.close()
