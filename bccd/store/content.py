"""Reading a thread's message content: its bodies, bounded, and its raw bytes piece by piece (issue 9).

Bodies are read as a prefix plus their full length, so that a 20 MB text part never travels whole
from the database to serve a capped JSON document. The raw message is read in chunks: on SQLite
through the incremental BLOB API of a private connection in a worker thread, on PostgreSQL with
`substring()` queries, so a 25 MB attachment is never held in memory whole.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store.database import SQLITE_BUSY_TIMEOUT_MS, Database
from bccd.store.schema import messages, threads
from bccd.store.users import NotFound

RAW_CHUNK = 1 << 20  # bytes per read of the raw message: few round trips, bounded memory


@dataclass(frozen=True, slots=True)
class StoredBodies:
    text: str | None  # the first `limit` characters of the text part, None when the message had none
    text_length: int | None
    html: str | None
    html_length: int | None


async def read_bodies(conn: AsyncConnection, thread_id: int, limit: int) -> StoredBodies:
    """The stored text and HTML bodies of a thread's message, each cut to `limit` characters."""
    row = (
        await conn.execute(
            select(
                func.substr(messages.c.text_body, 1, limit),
                func.length(messages.c.text_body),
                func.substr(messages.c.html_body, 1, limit),
                func.length(messages.c.html_body),
            )
            .join(threads, threads.c.message_pk == messages.c.id)
            .where(threads.c.id == thread_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"thread {thread_id} not found")
    text, text_length, html, html_length = row
    return StoredBodies(
        text,
        None if text_length is None else int(text_length),
        html,
        None if html_length is None else int(html_length),
    )


async def message_location(conn: AsyncConnection, thread_id: int) -> tuple[int, int]:
    """(message row id, raw size in bytes) of the thread's message."""
    row = (
        await conn.execute(
            select(messages.c.id, func.length(messages.c.raw))
            .join(threads, threads.c.message_pk == messages.c.id)
            .where(threads.c.id == thread_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"thread {thread_id} not found")
    return int(row[0]), int(row[1])


async def raw_chunks(
    db: Database, message_pk: int, start: int, end: int, chunk: int = RAW_CHUNK
) -> AsyncIterator[bytes]:
    """Bytes [start, end) of a stored raw message, `chunk` bytes at a time."""
    if db.is_sqlite:
        async for piece in _sqlite_chunks(db, message_pk, start, end, chunk):
            yield piece
        return
    position = start
    while position < end:
        size = min(chunk, end - position)
        async with db.read() as conn:
            piece = (
                await conn.execute(
                    select(func.substring(messages.c.raw, position + 1, size)).where(
                        messages.c.id == message_pk
                    )
                )
            ).scalar_one()
        data = bytes(piece)
        if not data:
            return
        yield data
        position += len(data)


async def _sqlite_chunks(
    db: Database, message_pk: int, start: int, end: int, chunk: int
) -> AsyncIterator[bytes]:
    path = make_url(db.url).database or ""

    def open_blob() -> tuple[sqlite3.Connection, sqlite3.Blob]:
        conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        try:
            conn.execute("BEGIN")  # one snapshot for every read of this message
            return conn, conn.blobopen("messages", "raw", message_pk, readonly=True)
        except Exception:
            conn.close()
            raise

    conn, blob = await asyncio.to_thread(open_blob)
    with closing(conn), closing(blob):
        position = start
        while position < end:
            size = min(chunk, end - position)

            def read(at: int = position, n: int = size) -> bytes:
                blob.seek(at)
                return blob.read(n)

            data = await asyncio.to_thread(read)
            if not data:
                return
            yield data
            position += len(data)
