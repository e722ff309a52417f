"""Big messages stored in pieces (issue 13 target 4): byte-identical reads, S3 dedupe, small mail between the
pieces, a message missing pieces refused alone, orphan pieces tidied. Both backends; PostgreSQL keeps every
message whole, so the same observable behaviour is checked there without pieces."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from bccd.services.threads import raw_message
from bccd.store import raw_chunks
from bccd.store.commit_queue import CommitQueue
from bccd.store.content import RawReader, stored_message
from bccd.store.database import Database
from bccd.store.raw_chunks import CHUNK_BYTES, ChunksMissing, remove_orphans, write_ahead
from bccd.store.schema import message_chunks, messages, threads
from bccd.store.threads import MessageRow
from tests.store.factories import World, count, draft, message

SIZE = 5 * CHUNK_BYTES + 12_345  # the body: with the headers, six pieces, the last one short


def _sqlite_only(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("pieces are SQLite's: PostgreSQL has no single writer for a big message to hold")


def big_message(tag: str, size: int = SIZE) -> MessageRow:
    line = f"{tag} 0123456789 abcdefghijklmnopqrstuvwxyz ".encode()
    lines = bytearray()
    n = 0
    while len(lines) < size:  # every line differs, so a piece read from the wrong offset shows
        lines += line + str(n).encode() + b"\r\n"
        n += 1
    return message(tag, body=bytes(lines[:size]))


async def test_a_big_message_reads_back_byte_for_byte(
    store_db: Database, world: World, queue: CommitQueue
) -> None:
    msg = big_message("big-read")
    (stored,) = await queue.submit_message(msg, [await draft(store_db, world.alice)])
    assert stored.created
    assert await raw_message(store_db, stored.id, actor=None) == msg.raw

    async with store_db.read() as conn:
        meta = await stored_message(conn, stored.id)
    assert meta.size == len(msg.raw)
    reader = await RawReader(store_db, meta.pk, meta.size, meta.chunked).open()
    try:
        end = len(msg.raw)
        for offset, size in [
            (0, 100),
            (CHUNK_BYTES - 5, 10),  # across the first boundary
            (2 * CHUNK_BYTES - 1, CHUNK_BYTES + 2),  # three pieces
            (end - 7, 100),  # past the end: cut
            (0, end),
        ]:
            assert await asyncio.to_thread(reader.read, offset, size) == msg.raw[offset : offset + size]
    finally:
        await reader.aclose()

    pieces = await count(store_db, message_chunks)
    async with store_db.read() as conn:
        raw, chunks = (await conn.execute(select(messages.c.raw, messages.c.raw_chunks))).one()
    if store_db.is_sqlite:
        assert (pieces, chunks, bytes(raw)) == (6, 6, b"")
    else:  # no single writer to spare: stored whole
        assert (pieces, chunks, bytes(raw)) == (0, 0, msg.raw)


async def test_s3_the_same_big_message_again_is_the_same_thread_and_the_same_pieces(
    store_db: Database, world: World, queue: CommitQueue
) -> None:
    msg = big_message("big-again")
    (first,) = await queue.submit_message(msg, [await draft(store_db, world.alice)])
    (again,) = await queue.submit_message(msg, [await draft(store_db, world.alice)])
    (bobs,) = await queue.submit_message(msg, [await draft(store_db, world.bob)])
    assert again.id == first.id and not again.created
    assert bobs.created and bobs.id != first.id
    assert await count(store_db, messages) == 1
    assert await count(store_db, message_chunks) == (6 if store_db.is_sqlite else 0)
    assert await raw_message(store_db, bobs.id, actor=None) == msg.raw


async def test_small_messages_commit_between_the_pieces_of_a_big_one(
    store_db: Database, world: World, queue: CommitQueue
) -> None:
    _sqlite_only(store_db)
    big_draft = await draft(store_db, world.alice, subject="big")
    small_drafts = [await draft(store_db, world.bob, subject=f"small {i}") for i in range(3)]
    finished: list[str] = []

    async def send(name: str, row: MessageRow, drafts: list[object]) -> None:
        await queue.submit_message(row, drafts)  # type: ignore[arg-type]
        finished.append(name)

    big = asyncio.create_task(send("big", big_message("big-first"), [big_draft]))
    await asyncio.sleep(0)  # the big one is on its way (writing its first piece) before the small ones
    smalls = [
        asyncio.create_task(send(f"small{i}", message(f"small-{i}"), [d])) for i, d in enumerate(small_drafts)
    ]
    await asyncio.gather(big, *smalls)
    # One 5 MB statement in the batch made the small ones wait for all of it; piece by piece they do not.
    assert finished[-1] == "big", finished
    assert await count(store_db, threads) == 4


async def test_a_message_missing_a_piece_fails_alone(
    store_db: Database, world: World, queue: CommitQueue
) -> None:
    _sqlite_only(store_db)
    whole = big_message("big-torn")
    row = await write_ahead(store_db, whole)
    assert row.raw == b"" and row.chunks == 6 and row.octets == len(whole.raw)
    async with store_db.write() as conn:
        await conn.execute(delete(message_chunks).where(message_chunks.c.seq == 3))
    torn = asyncio.create_task(
        queue.submit_message(row, [await draft(store_db, world.alice, subject="torn")])
    )
    fine = asyncio.create_task(queue.submit_message(message("fine"), [await draft(store_db, world.bob)]))
    with pytest.raises(ChunksMissing):
        await torn
    (stored,) = await fine
    assert stored.created
    assert await count(store_db, messages) == 1  # the torn one left no row: a retry writes its pieces again


async def test_orphan_pieces_are_removed_once_old_and_never_a_stored_messages(
    store_db: Database, world: World, queue: CommitQueue
) -> None:
    _sqlite_only(store_db)
    kept = big_message("big-kept")
    await queue.submit_message(kept, [await draft(store_db, world.alice)])
    await write_ahead(
        store_db, big_message("big-orphan", 3 * CHUNK_BYTES - 500)
    )  # its session died before the commit
    assert await count(store_db, message_chunks) == 6 + 3
    now = datetime.now(UTC)
    assert await remove_orphans(store_db, now=now) == 0  # young: its message may still be on its way
    assert await remove_orphans(store_db, now=now + raw_chunks.ORPHAN_AGE + timedelta(minutes=1)) == 3
    assert await count(store_db, message_chunks) == 6
    (thread_id,) = [t for (t,) in await _thread_ids(store_db)]
    assert await raw_message(store_db, thread_id, actor=None) == kept.raw


async def _thread_ids(db: Database) -> list[tuple[int]]:
    async with db.read() as conn:
        return [(int(r[0]),) for r in await conn.execute(select(threads.c.id))]
