"""Reading a thread's message content: its bodies, bounded, and its raw bytes piece by piece (issue 9).

Bodies are read as a prefix plus their full length, so that a 20 MB text part never travels whole
from the database to serve a capped JSON document. The raw message is read in chunks: on SQLite
through the incremental BLOB API of a private connection in a worker thread, on PostgreSQL with
`substring()` queries, so a 25 MB attachment is never held in memory whole.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store import raw_chunks
from bccd.store.database import SQLITE_BUSY_TIMEOUT_MS, Database
from bccd.store.schema import messages, threads
from bccd.store.users import NotFound


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


@dataclass(frozen=True, slots=True)
class StoredMessage:
    pk: int  # the messages row
    size: int  # bytes of the raw message
    attachments: list[dict[str, Any]]  # as bccd.mail.message recorded them, in order
    chunked: str | None = None  # the sha256 of a message stored in pieces (bccd.store.raw_chunks)


async def stored_message(conn: AsyncConnection, thread_id: int) -> StoredMessage:
    """The thread's message: its row id, raw size and attachment list (not the raw bytes)."""
    row = (
        await conn.execute(
            select(
                messages.c.id,
                messages.c.size,
                messages.c.attachments,
                messages.c.raw_chunks,
                messages.c.sha256,
            )
            .join(threads, threads.c.message_pk == messages.c.id)
            .where(threads.c.id == thread_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"thread {thread_id} not found")
    return StoredMessage(int(row[0]), int(row[1]), list(row[2] or []), row[4] if row[3] else None)


class RawReader:
    """Blocking random-access reads of one stored raw message, for worker threads only.

    `read()` must not run on the event loop: on SQLite it reads the BLOB through a private connection
    (incremental BLOB I/O, one snapshot); on PostgreSQL it hands a `substring()` query to the loop and
    waits for it, so the loop has to be free — call it through asyncio.to_thread.
    """

    def __init__(self, db: Database, message_pk: int, size: int, chunked: str | None = None) -> None:
        self.db = db
        self.message_pk = message_pk
        self.size = size
        self.chunked = chunked  # sha256: read from its pieces (SQLite only)
        self._loop = asyncio.get_running_loop()
        self._sqlite: tuple[sqlite3.Connection, sqlite3.Blob | None] | None = None

    async def open(self) -> RawReader:
        if self.db.is_sqlite:
            self._sqlite = await asyncio.to_thread(self._open_blob)
        return self

    def _open_blob(self) -> tuple[sqlite3.Connection, sqlite3.Blob | None]:
        path = make_url(self.db.url).database or ""
        conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        try:
            conn.execute("BEGIN")  # one snapshot for every read of this message
            if self.chunked is not None:
                return conn, None
            return conn, conn.blobopen("messages", "raw", self.message_pk, readonly=True)
        except Exception:
            conn.close()
            raise

    def read(self, offset: int, size: int) -> bytes:
        size = max(0, min(size, self.size - offset))
        if size == 0:
            return b""
        if self._sqlite is not None:
            conn, blob = self._sqlite
            if blob is None:
                return raw_chunks.read_range(conn, self.chunked or "", offset, size)
            blob.seek(offset)
            return blob.read(size)
        return asyncio.run_coroutine_threadsafe(self._fetch(offset, size), self._loop).result()

    async def _fetch(self, offset: int, size: int) -> bytes:
        async with self.db.read() as conn:
            piece = (
                await conn.execute(
                    select(func.substring(messages.c.raw, offset + 1, size)).where(
                        messages.c.id == self.message_pk
                    )
                )
            ).scalar_one()
        return bytes(piece)

    async def aclose(self) -> None:
        if self._sqlite is not None:
            conn, blob = self._sqlite
            self._sqlite = None
            await asyncio.to_thread(_close_blob, conn, blob)


def _close_blob(conn: sqlite3.Connection, blob: sqlite3.Blob | None) -> None:
    with closing(conn):
        if blob is not None:
            blob.close()
