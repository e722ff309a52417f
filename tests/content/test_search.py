"""Issue 9 "Search": GET /api/v1/threads?q= / `threads list --query` — one contract, both backends.

Threads are found by words in their subject, text body, participants' names and addresses and
attachment names, best match first, never past the caller's visibility (§3 privacy, T1); the index is
written in the thread's own transaction and migration 0003 indexes threads that existed before it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bccd.services.threads import list_visible
from bccd.store import search_index
from bccd.store.database import Database
from bccd.store.migrate import alembic_config, upgrade
from bccd.store.search_index import SearchQuery, terms
from bccd.store.thread_batch import store_messages
from bccd.store.threads import ParticipantRow, ThreadDraft, set_visibility
from bccd.store.users import User
from tests.store.factories import World, decide, message, seed


async def _thread(
    db: Database,
    owner: User,
    tag: str,
    *,
    subject: str,
    body: str = "",
    people: tuple[tuple[str, str | None], ...] = (),
    attachments: tuple[str, ...] = (),
) -> int:
    async with db.read() as conn:
        decision = await decide(conn, owner, [a for a, _ in people])
    draft = ThreadDraft(
        company_id=owner.company_id,
        owner_id=owner.id,
        subject=subject,
        created_at=datetime.now(UTC),
        participants=[ParticipantRow(a, n, "to", None) for a, n in people],
        decision=decision,
    )
    row = message(
        tag,
        subject=subject,
        body=body.encode(),
        attachments=[
            {"name": n, "content_type": "application/octet-stream", "size": 1, "sha256": "0"}
            for n in attachments
        ],
    )
    async with db.write() as conn:
        ((stored,),) = await store_messages(conn, [(row, [draft])])
    return stored.id


async def count_rows(db: Database, table: str) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


@dataclasses.dataclass
class Corpus:
    db: Database
    world: World
    ids: dict[str, int]


@pytest.fixture
async def corpus(any_db_url: str) -> AsyncIterator[Corpus]:
    db = Database(any_db_url)
    corpus = Corpus(db, None, {})  # type: ignore[arg-type]  # filled in below
    try:
        w = await seed(db)
        ids = {
            "offer": await _thread(
                db,
                w.alice,
                "offer",
                subject="Quarterly proposal",
                body="Numbers for the Tromsø office.\n",
                people=(("peter@initech.example", "Peter Gibbons"),),
                attachments=("budget-2024.xlsx",),
            ),
            "lunch": await _thread(db, w.alice, "lunch", subject="Lunch", body="The proposal is attached.\n"),
            "bob_private": await _thread(db, w.bob, "bp", subject="Proposal for Bob only"),
            "bob_shared": await _thread(db, w.bob, "bs", subject="Proposal for everyone"),
            "globex": await _thread(db, w.eve, "gx", subject="Proposal at Globex"),
        }
        async with db.write() as conn:
            await set_visibility(conn, ids["bob_shared"], "shared", actor="test")
        corpus = Corpus(db, w, ids)
        yield corpus
    finally:
        await db.close()
        if corpus.db is not db:  # the migration test reopens it
            await corpus.db.close()


async def _search(c: Corpus, actor: User | None, q: str, **kw: object) -> list[int]:
    company = c.world.company_id if actor is None else None
    found = await list_visible(c.db, actor=actor, company_id=company, query=q, **kw)  # type: ignore[arg-type]
    return [t.id for t in found]


async def test_regular_user_finds_own_and_shared_never_a_colleagues_private_thread(corpus: Corpus) -> None:
    ids, w = corpus.ids, corpus.world
    found = await _search(corpus, w.alice, "proposal")
    assert set(found) == {ids["offer"], ids["lunch"], ids["bob_shared"]}
    assert ids["bob_private"] not in found and ids["globex"] not in found
    # Subject matches rank above a match in the body alone.
    assert found.index(ids["offer"]) < found.index(ids["lunch"])
    assert found.index(ids["bob_shared"]) < found.index(ids["lunch"])


async def test_admin_searches_the_company_and_other_companies_stay_apart(corpus: Corpus) -> None:
    ids, w = corpus.ids, corpus.world
    assert set(await _search(corpus, w.carol, "proposal")) == {
        ids["offer"],
        ids["lunch"],
        ids["bob_private"],
        ids["bob_shared"],
    }
    assert await _search(corpus, w.eve, "proposal") == [ids["globex"]]  # T1
    assert ids["globex"] not in await _search(corpus, None, "proposal")  # the operator names a company


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tromsø", ["offer"]),
        ("TROMSO", ["offer"]),  # case and accents ignored
        ("gibbons", ["offer"]),  # a participant's name
        ("peter@initech.example", ["offer"]),  # a participant's address
        ("initech", ["offer"]),
        ("budget", ["offer"]),  # an attachment's name
        ("xlsx", ["offer"]),
        ("proposal lunch", ["lunch"]),  # every word must match
        ("propos*", ["offer", "bob_shared", "lunch"]),  # a prefix
        ("propos", []),  # words match whole unless asked for a prefix
        ("nothing-like-this", []),
        ("!!! ---", []),  # no searchable word at all
    ],
)
async def test_what_is_searched(corpus: Corpus, query: str, expected: list[str]) -> None:
    found = await _search(corpus, corpus.world.alice, query)
    assert sorted(found) == sorted(corpus.ids[k] for k in expected)


async def test_visibility_is_checked_at_query_time(corpus: Corpus) -> None:
    ids, w = corpus.ids, corpus.world
    async with corpus.db.write() as conn:
        await set_visibility(conn, ids["bob_shared"], "private", actor="test")
    assert ids["bob_shared"] not in await _search(corpus, w.alice, "proposal")


async def test_search_combines_with_filters_and_pages(corpus: Corpus) -> None:
    ids, w = corpus.ids, corpus.world
    assert await _search(corpus, w.carol, "proposal", owner_id=w.bob.id) != []
    assert set(await _search(corpus, w.carol, "proposal", owner_id=w.bob.id)) == {
        ids["bob_private"],
        ids["bob_shared"],
    }
    everything = await _search(corpus, w.carol, "proposal")
    first = await _search(corpus, w.carol, "proposal", limit=2)
    second = await _search(corpus, w.carol, "proposal", limit=2, offset=2)
    assert first + second == everything


async def test_index_is_written_in_the_threads_transaction(corpus: Corpus) -> None:
    """A batch that rolls back leaves neither the thread nor its index row behind."""
    threads_before = await count_rows(corpus.db, "threads")
    index_before = await count_rows(corpus.db, "thread_search")
    assert index_before == threads_before  # every stored thread has its document
    w = corpus.world
    async with corpus.db.read() as conn:
        decision = await decide(conn, w.alice, [])
    draft = ThreadDraft(w.company_id, w.alice.id, "Rollback zebra", datetime.now(UTC), [], decision)
    with pytest.raises(RuntimeError):
        async with corpus.db.write() as conn:
            await store_messages(conn, [(message("rb", subject="Rollback zebra"), [draft])])
            raise RuntimeError("the commit fails")
    assert await count_rows(corpus.db, "threads") == threads_before
    assert await count_rows(corpus.db, "thread_search") == index_before
    assert await _search(corpus, w.alice, "zebra") == []


async def test_migration_0003_indexes_threads_that_existed_before_it(corpus: Corpus) -> None:
    url = corpus.db.url
    await corpus.db.close()
    try:
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0006")  # drops the index
    finally:
        await asyncio.to_thread(upgrade, url)  # 0003 again: creates it and indexes every thread
    corpus.db = Database(url)
    assert set(await _search(corpus, corpus.world.carol, "proposal")) == {
        corpus.ids["offer"],
        corpus.ids["lunch"],
        corpus.ids["bob_private"],
        corpus.ids["bob_shared"],
    }
    assert await _search(corpus, corpus.world.alice, "gibbons budget tromso") == [corpus.ids["offer"]]


def test_words_and_queries() -> None:
    assert terms("Grüße, Anna@Client.test! x_y") == ["grusse", "anna", "client", "test", "x", "y"]
    assert terms("a" * 65 + " ok") == ["ok"]
    parsed = SearchQuery.parse("Offer* offer OFFER 2024")
    assert parsed.words == (("offer", True), ("offer", False), ("2024", False))
    assert not SearchQuery.parse("*** ---")


async def test_the_newest_visible_matches_are_ranked_and_older_ones_follow(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 target 5: a search ranks the newest SEARCH_WINDOW matches the caller may see; older
    matches follow newest first, so every match is still reached, and pages neither repeat nor skip."""
    ids, w = corpus.ids, corpus.world
    # Alice sees offer (subject), lunch (body) and bob_shared (subject); bob_private is not hers to see.
    assert await _search(corpus, w.alice, "proposal") == [ids["bob_shared"], ids["offer"], ids["lunch"]]
    monkeypatch.setattr(search_index, "SEARCH_WINDOW", 2)
    # The window is the two newest she may see (bob_private takes no place in it): bob_shared and lunch,
    # ranked; offer is older than the window and follows it, though its subject holds the word.
    full = await _search(corpus, w.alice, "proposal")
    assert full == [ids["bob_shared"], ids["lunch"], ids["offer"]]
    for size in (1, 2):
        pages = [await _search(corpus, w.alice, "proposal", limit=size, offset=o) for o in range(0, 4, size)]
        assert [t for page in pages for t in page] == full
    monkeypatch.setattr(search_index, "SEARCH_WINDOW", 1)
    assert await _search(corpus, w.alice, "proposal") == [ids["bob_shared"], ids["lunch"], ids["offer"]]


async def test_fields_rank_subject_people_attachments_then_body(any_db_url: str) -> None:
    """The score of a match is which fields hold the word: subject, then people, then attachment names,
    then the body alone (SQLite reads the fields from FTS5's content table, PostgreSQL weighs A-D)."""
    db = Database(any_db_url)
    try:
        w = await seed(db)
        ids = [  # oldest first: the best match is the oldest, so newest-first would reverse them
            await _thread(db, w.alice, "s", subject="The zeppelin plan"),
            await _thread(db, w.alice, "p", subject="Hello", people=(("z@x.example", "Zeppelin Co"),)),
            await _thread(db, w.alice, "a", subject="Notes", attachments=("zeppelin.pdf",)),
            await _thread(db, w.alice, "b", subject="Lunch", body="about the zeppelin\n"),
        ]
        for query in ("zeppelin", "zeppel*", "ZEPPELIN"):
            assert [t.id for t in await list_visible(db, actor=w.alice, query=query)] == ids
    finally:
        await db.close()


async def test_migration_0011_gives_older_documents_their_readers(corpus: Corpus) -> None:
    """PostgreSQL's documents name who may read a thread (owner, shared) and the blocks of its id; 0011
    adds them to documents written before it (its downgrade strips them), and a shared thread that
    lacked them would not be found by a colleague."""
    url, ids = corpus.db.url, corpus.ids
    await corpus.db.close()
    try:
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0010")
        if not url.startswith("sqlite"):
            stripped = Database(url)
            try:
                # Without its lexemes, the shared thread is invisible to a colleague's search.
                assert ids["bob_shared"] not in await _search(
                    Corpus(stripped, corpus.world, ids), corpus.world.alice, "proposal"
                )
            finally:
                await stripped.close()
    finally:
        await asyncio.to_thread(upgrade, url)
    corpus.db = Database(url)
    assert set(await _search(corpus, corpus.world.alice, "proposal")) == {
        ids["offer"],
        ids["lunch"],
        ids["bob_shared"],
    }
    assert set(await _search(corpus, corpus.world.bob, "proposal")) == {ids["bob_private"], ids["bob_shared"]}


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 3000), st.integers(1, 3000))
def test_id_blocks_cover_exactly_the_range(lo_blocks: int, width_blocks: int) -> None:
    block = 1 << search_index.BUCKET_SHIFTS[0]
    lo, hi = lo_blocks * block, (lo_blocks + width_blocks) * block
    covered: list[tuple[int, int]] = []
    for lexeme in search_index._cover(lo, hi):
        shift, n = lexeme[1:].split(":")
        assert int(shift) in search_index.BUCKET_SHIFTS
        covered.append((int(n) << int(shift), (int(n) + 1) << int(shift)))
    covered.sort()
    assert covered[0][0] == lo and covered[-1][1] == hi
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))  # no gap, no overlap
    assert len(covered) <= 2 * 7 * len(search_index.BUCKET_SHIFTS) + (hi - lo) // (1 << 16)


async def test_the_window_is_probed_newest_ids_first_without_missing_a_match(
    any_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL finds the window in ranges of ids, newest first (blocks of 2 ids here instead of 1,024):
    whatever the ranges, the window is the newest visible matches, and older ones follow it."""
    monkeypatch.setattr(search_index, "BUCKET_SHIFTS", (1, 2, 3))
    monkeypatch.setattr(search_index, "_BLOCK", 2)
    monkeypatch.setattr(search_index, "FIRST_SPAN", 2)
    monkeypatch.setattr(search_index, "SEARCH_WINDOW", 4)
    probes: list[tuple[int, int]] = []
    probe = search_index.Ranking._pg_probe

    async def counted(self: search_index.Ranking, conn: Any, stmt: Any, lo: int, hi: int, *a: Any) -> Any:
        probes.append((lo, hi))
        return await probe(self, conn, stmt, lo, hi, *a)

    monkeypatch.setattr(search_index.Ranking, "_pg_probe", counted)
    db = Database(any_db_url)
    try:
        w = await seed(db)
        visible_to_alice, everything = [], []
        for i in range(40):
            owner = (w.alice, w.bob)[i % 2]
            # Matches thin out towards the newest ids, so that the ranges must grow.
            subject = "Walrus report" if i < 16 or i % 3 == 0 else "Other report"
            tid = await _thread(db, owner, f"w{i}", subject=subject)
            if i % 6 == 1:
                async with db.write() as conn:
                    await set_visibility(conn, tid, "shared", actor="test")
            if subject.startswith("Walrus"):
                everything.append(tid)
                if owner is w.alice or i % 6 == 1:
                    visible_to_alice.append(tid)
        for actor, expected in ((w.alice, visible_to_alice), (w.carol, everything)):
            # Every match scores the same (the subject): the window is newest first, then the older ones.
            first = await list_visible(db, actor=actor, query="walrus", limit=4)
            assert [t.id for t in first] == sorted(expected, reverse=True)[:4]
            pages = [
                [t.id for t in await list_visible(db, actor=actor, query="walrus", limit=3, offset=o)]
                for o in range(0, len(expected) + 3, 3)
            ]
            assert [t for page in pages for t in page] == sorted(expected, reverse=True)
        if not db.is_sqlite:
            blocked = sorted({p for p in probes if p[0] > 0}, key=lambda p: p[0] - p[1])
            assert len(blocked) >= 2 and blocked[0][1] - blocked[0][0] > 2  # ranges with blocks, grown
            assert any(lo == 0 for lo, _ in probes)  # and the rest of the ids at once
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("per_id", "below", "rest", "wide"),
    [
        (0.0005, 998_000, 990, True),  # a rare word: its ~500 matches are fewer than wanted
        (0.0045, 996_000, 991, True),  # two middling words: 4,500 matches cost less than the blocks
        (0.11, 998_000, 990, False),  # a common word: ~9,000 ids of blocks instead of ~110,000 matches
        (0.02, 990_000, 500, False),
    ],
)
def test_the_rest_is_probed_at_once_when_that_costs_less_than_blocks(
    per_id: float, below: int, rest: int, wide: bool
) -> None:
    assert search_index.wide_is_cheaper(per_id, below, rest) is wide
