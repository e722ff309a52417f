"""The group commit's plain-sqlite3 write path (bccd.store.sqlite_writes) against the SQLAlchemy reference.

The same batches are stored through `store_messages` (plain sqlite3 on SQLite) in one database and through
`store_messages_reference` (SQLAlchemy Core) in another, both seeded alike; every row of every table the
path writes must come out identical, value and storage type, and so must the answers and the errors.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.health import is_storage_failure
from bccd.store import raw_chunks, sqlite_inline, sqlite_writes
from bccd.store.database import Database
from bccd.store.sqlite_writes import savepoint, timestamp
from bccd.store.thread_batch import store_messages, store_messages_reference
from bccd.store.threads import MessageRow, ParticipantRow, StoredThread, ThreadDraft
from bccd.webhooks.store import create_endpoint
from tests.conftest import copy_sqlite_template
from tests.store.factories import PAULA, PETER, STRANGER, World, draft, message, seed

Store = Callable[
    [AsyncConnection, Sequence[tuple[MessageRow, Sequence[ThreadDraft]]]], Awaitable[list[list[StoredThread]]]
]
TABLES = (
    "messages",
    "threads",
    "thread_participants",
    "thread_persons",
    "thread_organizations",
    "link_history",
    "thread_search",
)


@pytest.fixture
async def two_dbs(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    raw = Database(copy_sqlite_template(sqlite_template, tmp_path / "raw.sqlite3"))
    ref = Database(copy_sqlite_template(sqlite_template, tmp_path / "ref.sqlite3"))
    yield raw, ref
    await raw.close()
    await ref.close()


def _dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    path = db.url.split("///", 1)[1]
    out: dict[str, list[tuple[Any, ...]]] = {}
    with closing(sqlite3.connect(path)) as conn:
        for table in TABLES:
            names = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            types = ", ".join(f"typeof({n})" for n in names)
            cols = ", ".join(names)
            out[table] = conn.execute(f"SELECT rowid, {cols}, {types} FROM {table} ORDER BY rowid").fetchall()  # noqa: S608
    return out


def _rich(d: ThreadDraft, **changes: Any) -> ThreadDraft:
    """A draft using every column: names, unicode, a person-less participant, authentication JSON, a
    creation time given in another zone."""
    participants = [
        *d.participants,
        ParticipantRow("zoë@example.org", "Zoë Ünïcode", "cc", None),
        ParticipantRow(STRANGER, None, "original_from", None),
    ]
    fields: dict[str, Any] = {
        "participants": participants,
        "authentication": {
            "verdict": "pass",
            "spf": {"result": "pass", "domain": "initech.example"},
            "dkim": [{"result": "pass", "domain": "initech.example", "selector": "s1"}],
            "dmarc": {"result": "pass", "policy": "reject", "aligned": ["dkim"]},
        },
        "created_at": datetime(2026, 12, 7, 15, 4, 5, 6, tzinfo=timezone(timedelta(hours=2))),
    }
    fields.update(changes)
    return dataclasses.replace(d, **fields)


async def _batches(db: Database, world: World) -> list[list[tuple[MessageRow, list[ThreadDraft]]]]:
    linked = _rich(
        await draft(db, world.alice, (PETER,), subject="Linked")
    )  # L6: deal d-1, its person and org
    paula = await draft(db, world.bob, (PAULA,), subject="Paula")
    plain = dataclasses.replace(
        await draft(db, world.alice, (STRANGER,), subject="Nobody"), smtp_session=None
    )
    big_body = "word " * 250_000  # over sqlite_inline.LARGE_PARAMETER_BYTES: that statement runs in a thread
    first = message(
        "m1",
        subject="Grüße",
        date="Mon, 7 Dec 2026 10:00:00 +0100",
        html_body="<p>Hi</p>",
        attachments=[{"name": "a.pdf", "content_type": "application/pdf", "size": 3, "sha256": "ab" * 32}],
        defects=["missing_date"],
        forward={"understood": True, "kind": "attachment", "from": [{"address": PETER, "name": None}]},
        received_at=datetime(2026, 12, 7, 14, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5))),
    )
    big = message("big", body=big_body.encode())
    assert len(big.raw) >= sqlite_inline.LARGE_PARAMETER_BYTES
    return [
        [(first, [linked, paula])],
        [
            (first, [linked]),  # a retry of a stored message for the same owner (S3): the same thread
            (message("m2"), [plain, _rich(plain, subject="again")]),  # the same owner twice: one thread
            (first, [dataclasses.replace(linked, owner_id=world.carol.id)]),  # a stored message, a new owner
            (big, [plain]),
            (message("m2"), [plain]),  # the same bytes again later in the batch
        ],
        [(message("m3"), [])],  # a message no owner kept
    ]


async def _run(db: Database, store: Store, batches: list[list[tuple[MessageRow, list[ThreadDraft]]]]) -> Any:
    answers = []
    for batch in batches:
        async with db.write() as conn:
            answers.append(await store(conn, batch))
    return answers


async def _setup(db: Database) -> World:
    world = await seed(db)
    async with db.write() as conn:
        await create_endpoint(
            conn, world.company_id, url="https://hooks.test/x", events=["thread.created"], description=""
        )
    return world


async def test_the_plain_sqlite3_path_stores_what_the_reference_stores(
    two_dbs: tuple[Database, Database],
) -> None:
    raw_db, ref_db = two_dbs
    world, ref_world = await _setup(raw_db), await _setup(ref_db)
    assert world.ids == ref_world.ids and world.alice.id == ref_world.alice.id
    batches = await _batches(raw_db, world)
    seen: list[str] = []
    event.listen(raw_db.writer.sync_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    # A big message written ahead in pieces (bccd.store.raw_chunks): raw empty, raw_chunks set.
    huge = message("huge", body=b"y" * (raw_chunks.CHUNKED_MIN_BYTES + 10))
    written = await raw_chunks.write_ahead(raw_db, huge)
    assert written.chunks == 3 and await raw_chunks.write_ahead(ref_db, huge) == written
    batches.append([(written, [await draft(raw_db, world.bob, subject="huge")])])
    raw_answers = await _run(raw_db, store_messages, batches)
    ref_answers = await _run(ref_db, store_messages_reference, batches)
    assert raw_answers == ref_answers
    assert [[t.created for t in r] for r in raw_answers[1]] == [
        [False],
        [True, False],
        [True],
        [True],
        [False],
    ]
    # The rows went through plain sqlite3, not SQLAlchemy (else this compared the reference with itself).
    assert not [s for s in seen if "INSERT INTO messages" in s or "INSERT INTO threads " in s]
    assert any("webhook" in s for s in seen)  # the outbox still ran, in the same transaction
    raw_rows, ref_rows = _dump(raw_db), _dump(ref_db)
    for table in TABLES:
        assert raw_rows[table] == ref_rows[table], table
    assert len(raw_rows["messages"]) == 5 and len(raw_rows["thread_persons"]) == 4
    assert len(raw_rows["thread_organizations"]) == 3 and len(raw_rows["threads"]) == 6
    with closing(sqlite3.connect(raw_db.url.split("///", 1)[1])) as check:
        stored = check.execute(
            "SELECT raw, size, raw_chunks FROM messages WHERE sha256 = ?", (written.sha256,)
        ).fetchone()
    assert stored == (b"", len(huge.raw), 3)


async def test_a_driver_error_is_raised_as_the_reference_raises_it(
    two_dbs: tuple[Database, Database],
) -> None:
    """An FK violation: SQLAlchemy's IntegrityError around sqlite3's, a storage failure for readiness, and
    nothing of the transaction left behind."""
    raw_db, ref_db = two_dbs
    errors = []
    for db, store in ((raw_db, store_messages), (ref_db, store_messages_reference)):
        world = await seed(db)
        bad = dataclasses.replace(
            await draft(db, world.alice), participants=[ParticipantRow("x@y.test", None, "to", 987654321)]
        )
        with pytest.raises(IntegrityError) as caught:
            async with db.write() as conn:
                await store(conn, [(message("ok"), [await draft(db, world.alice)]), (message("bad"), [bad])])
        assert isinstance(caught.value.orig, sqlite3.IntegrityError)
        assert is_storage_failure(caught.value)
        errors.append(str(caught.value.orig))
    assert errors[0] == errors[1]
    assert _dump(raw_db) == _dump(ref_db)
    assert _dump(raw_db)["messages"] == []


def test_timestamps_are_stored_as_sqlalchemy_stores_them() -> None:
    from sqlalchemy.dialects import sqlite

    process = sqlite.DATETIME().bind_processor(sqlite.dialect())  # type: ignore[no-untyped-call]
    assert process is not None
    for value in (
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-11))),
        datetime(2026, 6, 1, 0, 0, 0, 10, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ):
        assert timestamp(value) == process(value.astimezone(UTC).replace(tzinfo=None))
    assert timestamp(None) is None
    with pytest.raises(ValueError, match="naive"):
        timestamp(datetime(2026, 1, 1))


async def test_the_batch_savepoint_keeps_the_transaction_and_drops_the_block(
    two_dbs: tuple[Database, Database],
) -> None:
    """commit_queue's SAVEPOINT, as plain statements on SQLite: a failing block leaves nothing of its own
    behind and the rest of the transaction commits; a good block is kept; nested ones work."""
    db, _ = two_dbs
    world = await seed(db)
    seen: list[str] = []
    event.listen(db.writer.sync_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    async with db.write() as conn:
        await store_messages(conn, [(message("before"), [await draft(db, world.alice, subject="before")])])
        with pytest.raises(IntegrityError):
            async with savepoint(conn):
                await store_messages(conn, [(message("in"), [await draft(db, world.alice, subject="in")])])
                bad = dataclasses.replace(
                    await draft(db, world.alice),
                    participants=[ParticipantRow("x@y.test", None, "to", 987654321)],
                )
                await store_messages(conn, [(message("bad"), [bad])])
        async with savepoint(conn), savepoint(conn):
            await store_messages(conn, [(message("kept"), [await draft(db, world.alice, subject="kept")])])
    subjects = [r[5] for r in _dump(db)["threads"]]  # rowid, id, company_id, owner_id, message_pk, subject
    assert subjects == ["before", "kept"]
    assert not [s for s in seen if "SAVEPOINT" in s.upper()]


async def test_a_large_message_is_written_off_the_event_loop(
    two_dbs: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8: a statement binding a value of LARGE_PARAMETER_BYTES or more runs in a thread (as
    sqlite_inline runs them); small ones stay on the loop."""
    db, _ = two_dbs
    world = await seed(db)
    threaded: list[int] = []
    real = sqlite_inline.finish_in_thread

    async def spy(fn: Callable[[], Any]) -> Any:
        threaded.append(1)
        return await real(fn)

    monkeypatch.setattr(sqlite_writes, "finish_in_thread", spy)
    async with db.write() as conn:
        await store_messages(conn, [(message("small"), [await draft(db, world.alice)])])
    assert threaded == []
    big = message("large", body=b"x" * sqlite_inline.LARGE_PARAMETER_BYTES)
    async with db.write() as conn:
        await store_messages(conn, [(big, [await draft(db, world.alice)])])
    assert threaded == [1]  # the messages INSERT; the thread's own rows are small
    assert len(_dump(db)["messages"]) == 2
