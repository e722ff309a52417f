"""The delivery path's reads (bccd.store.hot_reads): plain sqlite3 / asyncpg statements answer exactly
what the SQLAlchemy store functions answer, on the same data — owners with confirmed and pending aliases,
never-log lists, company addresses, persons with several emails, items by contact and by participant,
explicit targets, other companies' records (T1) and things that do not exist."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from bccd.directory_models import DealIn, PersonIn
from bccd.store import aliases
from bccd.store.database import Database
from bccd.store.directory import upsert_item, upsert_person
from bccd.store.hot_reads import AsyncpgFacts, Facts, SqlaFacts, SqliteFacts, facts, statement_observers
from bccd.store.users import update_company
from tests.store.factories import PAULA, PETER, STRANGER, World

EXPIRES = datetime(2026, 12, 7, 12, 30, 15, 123456, tzinfo=UTC)


async def _enrich(db: Database, world: World) -> None:
    async with db.write() as conn:
        await aliases.add_pending(
            conn, world.bob.id, "bob@pending.test", code_hash="b" * 64, expires_at=EXPIRES
        )
        await aliases.add_pending(conn, world.bob.id, "bob@home.test", code_hash="c" * 64, expires_at=EXPIRES)
        await aliases.confirm_by(
            conn, world.bob.id, "bob@home.test", by="operator", now=EXPIRES - timedelta(hours=2)
        )
        await update_company(conn, world.company_id, never_log=["secret.example", "ceo@acme.test"])
        await upsert_person(
            conn, world.company_id, "p-3", PersonIn(name="Pat", emails=["pat@a.example", PAULA])
        )
        await upsert_item(
            conn,
            world.company_id,
            "deal",
            "d-3",
            DealIn(title="Shared", person="p-3", participants=["p-1", "p-2"]),
        )


async def _answers(reader: Facts, world: World) -> list[object]:
    p1, p2 = world.ids["person:p-1"], world.ids["person:p-2"]
    out: list[object] = []
    for user in (world.alice, world.bob, world.eve):
        out.append(await reader.owner_by_smart_bcc_local(user.smart_bcc_local.upper()))
    out.append(await reader.owner_by_smart_bcc_local("nobody-here"))
    for company in (world.company_id, world.other_company_id, 999_999):
        out.append(await reader.company_addresses(company))
    for company in (world.company_id, world.other_company_id):
        out.append(
            await reader.persons_by_addresses(company, [PETER, PAULA, STRANGER, "pat@a.example", PETER])
        )
        out.append(await reader.persons_by_addresses(company, []))
        out.append(await reader.items_for_persons(company, [p1]))
        out.append(await reader.items_for_persons(company, [p2, p1, p2]))
        out.append(await reader.items_for_persons(company, []))
        for kind, ref in (
            ("deal", "d-3"),
            ("deal", "gd-1"),
            ("lead", "l-1"),
            ("deal", "missing"),
            ("lead", "d-1"),
        ):
            out.append(await reader.item_fact(company, kind, ref))
    return out


async def test_plain_driver_reads_answer_what_the_store_functions_answer(
    store_db: Database, world: World
) -> None:
    await _enrich(store_db, world)
    async with store_db.read() as conn:
        reference = await _answers(SqlaFacts(conn), world)
    async with facts(store_db) as plain_facts:
        assert isinstance(plain_facts, SqliteFacts if store_db.is_sqlite else AsyncpgFacts)
        plain = await _answers(plain_facts, world)
    assert plain == reference
    bob = reference[1]
    assert isinstance(bob, tuple)
    assert bob[0].aliases == ("bob@home.test",)  # pending aliases never count (S5)
    assert {a.address: a.expires_at for a in bob[0].alternatives} == {
        "bob@home.test": None,
        "bob@pending.test": EXPIRES,
    }
    assert bob[1].never_log == ("ceo@acme.test", "secret.example")
    deal = next(r for r in reference if getattr(r, "external_id", None) == "d-3")
    assert deal.participant_ids == {world.ids["person:p-1"], world.ids["person:p-2"]}  # type: ignore[attr-defined]


async def test_facts_observes_every_statement_and_reuses_its_connection(
    store_db: Database, world: World
) -> None:
    seen: list[str] = []

    def observe(sql: str, params: object) -> None:
        seen.append(sql)

    statement_observers.append(observe)
    try:
        async with facts(store_db) as first:
            assert await first.owner_by_smart_bcc_local(world.alice.smart_bcc_local) is not None
        async with facts(store_db) as second:
            assert await second.persons_by_addresses(world.company_id, [PETER]) != []
    finally:
        statement_observers.remove(observe)
    assert len(seen) == 3  # owner, aliases, persons: every statement is observed
    if store_db.is_sqlite:
        assert len(store_db._raw_idle) == 1  # given back and used again, not one per read


async def test_a_failed_read_closes_its_connection(store_db: Database, world: World) -> None:
    if not store_db.is_sqlite:
        pytest.skip("raw_read is SQLite's")
    with pytest.raises(ZeroDivisionError):
        async with store_db.raw_read() as raw:
            raw.execute("SELECT 1")
            _ = 1 / 0
    assert store_db._raw_idle == []
    async with store_db.raw_read() as raw:  # a new one opens
        assert raw.execute("SELECT count(*) FROM users").fetchone()[0] >= 4


async def test_a_raw_connection_in_use_when_the_database_closes_is_closed_on_return(
    store_db: Database, world: World
) -> None:
    if not store_db.is_sqlite:
        pytest.skip("raw_read is SQLite's")
    async with store_db.raw_read() as raw:
        await store_db.close()
    assert store_db._raw_idle == []
    with pytest.raises(sqlite3.ProgrammingError):  # closed, not leaked
        raw.execute("SELECT 1")


async def test_facts_opens_its_snapshot_with_the_first_statement(store_db: Database, world: World) -> None:
    """Nothing read, nothing opened (RCPT's sender class for an `owner` policy); once read, every later
    statement of the same use sees the same snapshot, even across a commit in between."""
    if not store_db.is_sqlite:
        pytest.skip("raw_read is SQLite's")
    async with facts(store_db):
        pass
    assert store_db._raw_idle == []  # no connection was taken, so none was given back
    async with facts(store_db) as reader:
        before = await reader.persons_by_addresses(world.company_id, ["new@person.test"])
        async with store_db.write() as conn:
            await upsert_person(
                conn, world.company_id, "p-new", PersonIn(name="New", emails=["new@person.test"])
            )
        during = await reader.persons_by_addresses(world.company_id, ["new@person.test"])
    async with facts(store_db) as reader:
        after = await reader.persons_by_addresses(world.company_id, ["new@person.test"])
    assert (before, during, len(after)) == ([], [], 1)
    assert len(store_db._raw_idle) == 1


async def test_a_use_of_facts_that_fails_closes_its_connection(store_db: Database, world: World) -> None:
    if not store_db.is_sqlite:
        pytest.skip("raw_read is SQLite's")
    with pytest.raises(ZeroDivisionError):
        async with facts(store_db) as reader:
            assert await reader.company_addresses(world.company_id)
            _ = 1 / 0
    assert store_db._raw_idle == []  # not given back for reuse: closed
    async with facts(store_db) as reader:  # a new one opens, and goes back to the pool
        assert await reader.company_addresses(world.company_id)
    assert len(store_db._raw_idle) == 1


async def test_delivery_reads_do_not_map_the_file_and_listing_reads_do(
    store_db: Database, world: World
) -> None:
    """SQLite drops a connection's memory map whenever another connection wrote since its last transaction:
    under a delivering writer the linker's few look-ups faulted every page in again (at 1M persons 2x the
    CPU of plain reads). Searches and listings read thousands of rows per transaction and keep the map."""
    if not store_db.is_sqlite:
        pytest.skip("raw_read is SQLite's")
    async with store_db.raw_read() as raw:
        assert raw.execute("PRAGMA mmap_size").fetchone()[0] == 0
    async with store_db.read() as conn:
        assert int((await conn.exec_driver_sql("PRAGMA mmap_size")).scalar_one()) > 0
