"""A big message's raw bytes in pieces, written before its row so that no transaction holds the writer long.

On SQLite one writer serves every session. Storing a 20 MB message in one statement held it for 100-300 ms
(copying the bytes into pages, writing them to the WAL, the fsync) while every small message queued
behind it (issue 13 target 4). A message of `CHUNKED_MIN_BYTES` or more is therefore written ahead, before
it joins the group commit: `CHUNK_BYTES` at a time, one short transaction per piece, so the writer's FIFO
lets other sessions' batches in between. Then the group commit stores its `messages` row with `raw` empty
and `raw_chunks` = the number of pieces, and its threads, as for any message.

Durability (S2) is unchanged: the pieces are committed without their own fsync (`synced=False`), and the
group commit's synced COMMIT, which comes after them in the same WAL, makes them durable together with
the row that refers to them; nobody is told 250 before that. The group commit checks that every piece is
there (`missing_chunks`) and fails the message (451) otherwise.

Pieces whose message was never stored (the session failed, the process died in between) are keyed by
the message's sha256: a retry of the same bytes writes the same pieces again, and `remove_orphans` drops
the ones older than `ORPHAN_AGE` (the oldest a piece can be while its message is still being accepted).
PostgreSQL has no single writer and keeps every message whole in `messages.raw`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.logs import error_fields, get_logger
from bccd.store.database import Database
from bccd.store.schema import message_chunks, messages
from bccd.store.threads import MessageRow

CHUNK_BYTES = 1024 * 1024
CHUNKED_MIN_BYTES = 2 * CHUNK_BYTES
ORPHAN_AGE = timedelta(hours=1)

log = get_logger(__name__)

_UPSERT = insert(message_chunks).prefix_with("OR REPLACE")  # the same bytes again: the same piece


def wants_chunks(db: Database, row: MessageRow) -> bool:
    return db.is_sqlite and row.chunks == 0 and len(row.raw) >= CHUNKED_MIN_BYTES


def chunk_count(size: int) -> int:
    return -(-size // CHUNK_BYTES)


async def write_ahead(db: Database, row: MessageRow) -> MessageRow:
    """Write `row`'s raw bytes as pieces, one short transaction each; the row to store instead (raw empty,
    `chunks` set). Bytes stored before (the same message again, S3) are not written twice."""
    count = chunk_count(len(row.raw))
    async with db.read() as conn:
        stored = (
            await conn.execute(select(messages.c.raw_chunks).where(messages.c.sha256 == row.sha256))
        ).first()
    if stored is not None:  # the batch's INSERT … ON CONFLICT DO NOTHING keeps the stored row
        return row if stored.raw_chunks == 0 else replace(row, raw=b"", size=len(row.raw), chunks=count)
    view = memoryview(row.raw)
    for seq in range(count):
        piece = view[seq * CHUNK_BYTES : (seq + 1) * CHUNK_BYTES]
        async with db.write(synced=False) as conn:
            await conn.execute(
                _UPSERT, {"sha256": row.sha256, "seq": seq, "data": piece, "written_at": datetime.now(UTC)}
            )
    return replace(row, raw=b"", size=len(row.raw), chunks=count)


class ChunksMissing(RuntimeError):
    """A chunked message's pieces are not all stored: it is not accepted (451), and a retry writes them."""


async def missing_chunks(conn: AsyncConnection, rows: Sequence[MessageRow]) -> list[str]:
    """The sha256 of every chunked row in `rows` whose pieces are not all stored."""
    wanted = {r.sha256: r.chunks for r in rows if r.chunks}
    if not wanted:
        return []
    counted = await conn.execute(
        select(message_chunks.c.sha256, func.count())
        .where(message_chunks.c.sha256.in_(list(wanted)))
        .group_by(message_chunks.c.sha256)
    )
    found = {str(sha): int(n) for sha, n in counted}
    return [sha for sha, n in wanted.items() if found.get(sha, 0) != n]


def read_range(conn: sqlite3.Connection, sha256: str, offset: int, size: int) -> bytes:
    """`size` bytes from `offset` of a chunked message (blocking: a worker thread's connection)."""
    out = bytearray()
    end = offset + size
    seq = offset // CHUNK_BYTES
    while offset < end:
        start = offset - seq * CHUNK_BYTES
        take = min(end - offset, CHUNK_BYTES - start)
        row = conn.execute(
            "SELECT substr(data, ?, ?) FROM message_chunks WHERE sha256 = ? AND seq = ?",
            (start + 1, take, sha256, seq),
        ).fetchone()
        if row is None or len(row[0]) != take:
            raise LookupError(f"message {sha256[:12]}…: piece {seq} is missing or short")
        out += row[0]
        offset += take
        seq += 1
    return bytes(out)


async def read_all(conn: AsyncConnection, sha256: str) -> bytes:
    pieces = await conn.execute(
        select(message_chunks.c.data).where(message_chunks.c.sha256 == sha256).order_by(message_chunks.c.seq)
    )
    return b"".join(bytes(p) for (p,) in pieces)


async def remove_orphans(db: Database, *, now: datetime | None = None) -> int:
    """Drop pieces older than `ORPHAN_AGE` that no stored message refers to; how many were dropped."""
    cutoff = (now or datetime.now(UTC)) - ORPHAN_AGE
    async with db.write() as conn:
        done = await conn.execute(
            delete(message_chunks).where(
                and_(
                    message_chunks.c.written_at < cutoff,
                    ~exists().where(messages.c.sha256 == message_chunks.c.sha256),
                )
            )
        )
    return int(done.rowcount or 0)


async def tidy_forever(db: Database, *, every: timedelta = ORPHAN_AGE / 2) -> None:
    """Run `remove_orphans` now and then every `every`, for as long as the server runs (SQLite)."""
    while True:
        try:
            removed = await remove_orphans(db)
            if removed:
                log.info("orphan_chunks_removed", chunks=removed)
        except Exception as exc:  # the next round tries again; a sweep never takes the server down
            log.warning("orphan_chunks_sweep_failed", **error_fields(exc))
        await asyncio.sleep(every.total_seconds())
