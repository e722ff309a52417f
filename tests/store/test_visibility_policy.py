"""§3 privacy, T1 (issue 8 "permissions in one place"): the read rule has one source, `VISIBILITY`, whose
Python check and SQL predicate agree for every actor × thread of a matrix, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bccd.errors import NotFound, PermissionDenied
from bccd.permissions import VISIBILITY, check_thread_access
from bccd.services import threads as thread_reads
from bccd.store.database import Database
from bccd.store.schema import threads
from bccd.store.threads import ThreadHeader, set_visibility, thread_header
from bccd.store.users import User
from tests.store.factories import World, new_thread


async def _matrix(db: Database, world: World) -> dict[str, int]:
    made = {
        "alice_private": await new_thread(db, world.alice, "ap"),
        "alice_shared": await new_thread(db, world.alice, "as"),
        "bob_private": await new_thread(db, world.bob, "bp"),
        "carol_private": await new_thread(db, world.carol, "cp"),
        "eve_private": await new_thread(db, world.eve, "ep"),
        "eve_shared": await new_thread(db, world.eve, "es"),
    }
    async with db.write() as conn:
        for name in ("alice_shared", "eve_shared"):
            await set_visibility(conn, made[name], "shared", actor="operator")
    return made


async def _headers(db: Database, ids: list[int]) -> list[ThreadHeader]:
    async with db.read() as conn:
        return [await thread_header(conn, i) for i in ids]


async def _sql_visible(db: Database, actor: User) -> set[int]:
    async with db.read() as conn:
        rows = await conn.execute(select(threads.c.id).where(VISIBILITY.sql_predicate(actor, threads)))
        return {int(r[0]) for r in rows}


async def test_python_check_and_sql_predicate_agree(store_db: Database, world: World) -> None:
    made = await _matrix(store_db, world)
    headers = await _headers(store_db, list(made.values()))
    names = {v: k for k, v in made.items()}
    expected = {
        "alice": {"alice_private", "alice_shared"},
        "bob": {"alice_shared", "bob_private"},
        "carol": {"alice_private", "alice_shared", "bob_private", "carol_private"},  # admin: all of Acme
        "eve": {"eve_private", "eve_shared"},  # an admin of Globex sees nothing of Acme (T1)
    }
    for who, want in expected.items():
        actor: User = getattr(world, who)
        by_python = {names[h.id] for h in headers if VISIBILITY.allows(h, actor)}
        by_sql = {names[i] for i in await _sql_visible(store_db, actor)}
        assert by_python == by_sql == want, who
        # The interfaces' two paths (a listing, one thread) give the same answer as the policy.
        listed = {names[t.id] for t in await thread_reads.list_visible(store_db, actor=actor, limit=200)}
        assert listed == want, who
        for h in headers:
            if VISIBILITY.allows(h, actor):
                check_thread_access(actor, h, write=False)
                continue
            refused = NotFound if h.company_id != actor.company_id else PermissionDenied
            with pytest.raises(refused):
                check_thread_access(actor, h, write=False)
