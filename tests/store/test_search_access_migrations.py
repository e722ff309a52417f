"""PostgreSQL search across a rolling upgrade: the access lexemes of migrations 0011 and 0012.

A node of a release before 0011 still running while the new release serves writes thread_search documents
without the access lexemes (owner, shared, id blocks) that new-release searches look for. Migration 0012's
BEFORE INSERT trigger adds them; its one-time repair completes the documents old nodes wrote between 0011
and 0012. The migrations hold their SQL frozen; these tests check that what it produces equals what the
Python writer (bccd.store.search_index) produces for the same thread, on real PostgreSQL. Each test has a
database of its own, migrated to the revision it needs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.services.threads import list_visible
from bccd.store import search_index
from bccd.store.database import Database
from bccd.store.migrate import alembic_config, upgrade
from bccd.store.thread_batch import store_messages
from bccd.store.threads import ParticipantRow, ThreadDraft, set_visibility
from bccd.store.users import User
from tests.conftest import _pg_admin
from tests.store.factories import World, decide, message, seed

# Thread ids start here, so that every block lexeme (b10:N … b18:N) has an N other than 0.
FIRST_ID = 3 * (1 << 18) + 5 * (1 << 14) + 777


@asynccontextmanager
async def _database(pg_url: str, revision: str) -> AsyncIterator[str]:
    name = f"bccd_access_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(upgrade, url, revision)
        db = Database(url)
        try:
            async with db.write() as conn:
                await conn.execute(
                    text("SELECT setval(pg_get_serial_sequence('threads', 'id'), :n)"), {"n": FIRST_ID}
                )
        finally:
            await db.close()
        yield url
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _old_release() -> Iterator[None]:
    """The thread_search writer of a release before 0011: the same document without the access lexemes
    (its _tsvector was today's without `_pg_access`); the same INSERT … ON CONFLICT statement."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search_index, "_pg_access", lambda doc: [])
        yield


async def _thread(db: Database, owner: User, tag: str, subject: str, *, shared: bool = False) -> int:
    async with db.read() as conn:
        decision = await decide(conn, owner, ["peter@initech.example"])
    draft = ThreadDraft(
        company_id=owner.company_id,
        owner_id=owner.id,
        subject=subject,
        created_at=datetime.now(UTC),
        participants=[ParticipantRow("peter@initech.example", "Peter Gibbons", "to", None)],
        decision=decision,
    )
    row = message(tag, subject=subject, body=b"Numbers for the Troms\xc3\xb8 office.\r\n")
    async with db.write() as conn:
        ((stored,),) = await store_messages(conn, [(row, [draft])])
        if shared:
            await set_visibility(conn, stored.id, "shared", actor="test")
    return stored.id


async def _search(db: Database, actor: User, q: str) -> set[int]:
    return {t.id for t in await list_visible(db, actor=actor, query=q)}


# Stored and expected documents without the company lexeme, and whether the stored one has it: 0011's
# trigger on threads (a visibility change) re-adds it without its position (1D), which the Python writer
# gives it; ranking weighs the words alone, so the difference is harmless, and no concern of 0012.
_SAME = text(
    "SELECT ts_delete(document, CAST(:scope AS text)) "
    "= ts_delete(CAST(:doc AS tsvector), CAST(:scope AS text)) "
    "AND CAST(:scope AS text) = ANY (tsvector_to_array(document)) FROM thread_search WHERE thread_id = :id"
)


def _differing(conn: Connection) -> tuple[list[int], int]:
    """Threads whose stored document is not the one the Python writer makes for them now, and how many
    threads were compared."""
    docs = search_index._documents(conn, 0)
    differing = [
        d.thread_id
        for d in docs
        if not conn.execute(
            _SAME,
            {
                "doc": search_index._tsvector(d),
                "id": d.thread_id,
                "scope": search_index._pg_scope(d.company_id),
            },
        ).scalar()
    ]
    return differing, len(docs)


async def _differing_documents(db: Database) -> list[int]:
    async with db.read() as conn:
        differing, compared = await conn.run_sync(_differing)
    assert compared > 0
    return differing


async def _row_versions(conn: AsyncConnection) -> dict[int, str]:
    """Each document's xmin: which transaction wrote the row version there is."""
    rows = await conn.execute(text("SELECT thread_id, xmin::text FROM thread_search"))
    return {int(tid): str(xmin) for tid, xmin in rows}


async def _old_node_threads(db: Database, w: World, tag: str = "") -> dict[str, int]:
    with _old_release():
        return {
            "alice": await _thread(db, w.alice, f"{tag}a", "Walrus proposal"),
            "bob_private": await _thread(db, w.bob, f"{tag}bp", "Walrus for Bob only"),
            "bob_shared": await _thread(db, w.bob, f"{tag}bs", "Walrus for everyone", shared=True),
        }


async def test_a_thread_an_old_node_stores_after_the_upgrade_is_found_by_who_may_see_it(pg_url: str) -> None:
    async with _database(pg_url, "head") as url:
        db = Database(url)
        try:
            w = await seed(db)
            ids = await _old_node_threads(db, w)
            assert await _search(db, w.alice, "walrus") == {ids["alice"], ids["bob_shared"]}
            assert await _search(db, w.bob, "walrus tromso") == {ids["bob_private"], ids["bob_shared"]}
            assert await _search(db, w.carol, "walrus") == set(ids.values())
            assert await _search(db, w.eve, "walrus") == set()
            # The trigger's lexemes are exactly the Python writer's, for private and shared threads.
            assert await _differing_documents(db) == []
            # An old node's upsert over an existing document (ON CONFLICT DO UPDATE) keeps them too.
            async with db.read() as conn:
                docs = await conn.run_sync(lambda c: search_index._documents(c, 0))
            with _old_release():
                async with db.write() as conn:
                    await conn.run_sync(lambda c: search_index.index_threads_sync(c, docs))
            assert await _differing_documents(db) == []
            assert await _search(db, w.alice, "walrus") == {ids["alice"], ids["bob_shared"]}
            # A document for no thread still fails on its foreign key, not on a NULL document.
            with pytest.raises(IntegrityError, match="foreign key"):
                async with db.write() as conn:
                    await conn.execute(
                        text("INSERT INTO thread_search (thread_id, document) VALUES (1, 'x'::tsvector)")
                    )
        finally:
            await db.close()


async def test_0012_repairs_what_old_nodes_wrote_after_0011_and_only_that(pg_url: str) -> None:
    async with _database(pg_url, "0011") as url:
        db = Database(url)
        try:
            w = await seed(db)
            complete = await _thread(db, w.alice, "new", "Walrus notes")  # a node of the new release
            ids = await _old_node_threads(db, w)
            # Making bob_shared shared gave it its lexemes (0011's trigger on threads); an old node's
            # upsert of the documents takes them away again, as it can between 0011 and 0012.
            async with db.read() as conn:
                docs = await conn.run_sync(lambda c: search_index._documents(c, complete))
            with _old_release():
                async with db.write() as conn:
                    await conn.run_sync(lambda c: search_index.index_threads_sync(c, docs))
            # The bug 0012 fixes: without the lexemes, even the owner's search misses the thread.
            assert await _search(db, w.alice, "walrus") == {complete}
            assert set(await _differing_documents(db)) == set(ids.values())
            async with db.read() as conn:
                before = await _row_versions(conn)
        finally:
            await db.close()
        await asyncio.to_thread(upgrade, url, "0012")
        db = Database(url)
        try:
            assert await _differing_documents(db) == []
            assert await _search(db, w.alice, "walrus") == {complete, ids["alice"], ids["bob_shared"]}
            assert await _search(db, w.bob, "walrus") == {ids["bob_private"], ids["bob_shared"]}
            async with db.read() as conn:
                after = await _row_versions(conn)
            # Only the incomplete documents were rewritten.
            assert {tid for tid in before if before[tid] != after[tid]} == set(ids.values())
        finally:
            await db.close()


async def test_0012_downgrades_to_0011_and_upgrades_again(pg_url: str) -> None:
    async with _database(pg_url, "head") as url:
        db = Database(url)
        try:
            w = await seed(db)
            first = await _old_node_threads(db, w)
        finally:
            await db.close()
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0011")
        db = Database(url)
        try:
            async with db.read() as conn:
                left = await conn.execute(
                    text(
                        "SELECT proname FROM pg_proc WHERE proname LIKE 'thread_search%' "
                        "UNION ALL SELECT tgname FROM pg_trigger WHERE tgname LIKE 'thread_search%'"
                    )
                )
                assert sorted(r[0] for r in left) == ["thread_search_access", "thread_search_access"]
            # The documents keep the lexemes (0011's state); an old node's new one lacks them again
            # (bob's shared one gets them from 0011's trigger on threads when it is made shared).
            seen = {first["alice"], first["bob_shared"]}
            assert await _search(db, w.alice, "walrus") == seen
            again = await _old_node_threads(db, w, tag="again")
            assert await _search(db, w.alice, "walrus") == {*seen, again["bob_shared"]}
        finally:
            await db.close()
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        try:
            assert await _search(db, w.alice, "walrus") == {*seen, again["alice"], again["bob_shared"]}
            assert await _differing_documents(db) == []
        finally:
            await db.close()


async def test_0011_gives_documents_the_python_writers_lexemes(pg_url: str) -> None:
    """0011's frozen SQL (its downgrade strips the lexemes, its upgrade adds them back) against the writer."""
    async with _database(pg_url, "head") as url:
        db = Database(url)
        try:
            w = await seed(db)
            ids = {
                await _thread(db, w.alice, "a", "Walrus"),
                await _thread(db, w.bob, "b", "Walrus", shared=True),
            }
        finally:
            await db.close()
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0010")
        db = Database(url)
        try:
            assert set(await _differing_documents(db)) == ids
        finally:
            await db.close()
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        try:
            assert await _differing_documents(db) == []
            assert await _search(db, w.alice, "walrus") == ids
        finally:
            await db.close()
