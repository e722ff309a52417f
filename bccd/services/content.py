"""What a thread's message says, for the CRM: its body (text, HTML, new writing) and its attachments,
under the thread's read rule (§3 privacy, T1 — bccd.permissions, exactly as for the thread itself)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bccd.errors import NotFound
from bccd.mail.body import MAX_BODY_CHARS, MessageBody, message_body
from bccd.mail.mime_scan import (
    AttachmentPart,
    Read,
    ScanError,
    attachment_by_full_parse,
    decoded_chunks,
    locate_attachments,
)
from bccd.permissions import check_thread_access
from bccd.services.runtime import Database
from bccd.services.users import User
from bccd.store.content import RawReader, read_bodies, stored_message
from bccd.store.threads import thread_header

# Bodies longer than this are prepared in a worker thread: the serve loop also runs the SMTP sessions.
_INLINE_CHARS = 64 * 1024


async def thread_body(
    db: Database, thread_id: int, *, actor: User | None, limit: int = MAX_BODY_CHARS
) -> MessageBody:
    """The thread's message body, if the actor may read the thread (NotFound / PermissionDenied)."""
    async with db.read() as conn:
        check_thread_access(actor, await thread_header(conn, thread_id), write=False)
        stored = await read_bodies(conn, thread_id, limit)
    size = len(stored.text or "") + len(stored.html or "")

    def build() -> MessageBody:
        return message_body(
            stored.text,
            stored.html,
            text_length=stored.text_length,
            html_length=stored.html_length,
            limit=limit,
        )

    return build() if size <= _INLINE_CHARS else await asyncio.to_thread(build)


# Mail that the streaming scan cannot follow is parsed whole, but only up to this size: a full parse
# holds every part in memory (issue 9: never a 25 MB attachment whole).
FALLBACK_MAX_BYTES = 4 * 1024 * 1024


class AttachmentUnreadable(Exception):
    """The attachment could not be located in a large malformed message (the raw download still works)."""


@dataclass(frozen=True, slots=True)
class AttachmentDownload:
    index: int
    name: str | None
    content_type: str
    size: int  # decoded bytes that `chunks` yields
    chunks: AsyncIterator[bytes]


def _matches(part: AttachmentPart, meta: dict[str, Any]) -> bool:
    return part.content_type == meta.get("content_type") and part.name == meta.get("name")


def _measure(read: Read, part: AttachmentPart) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for piece in decoded_chunks(read, part):
        digest.update(piece)
        size += len(piece)
    return digest.hexdigest(), size


async def _locate(reader: RawReader, index: int, meta: dict[str, Any]) -> tuple[AttachmentPart, int] | None:
    """The part and its decoded size, when the scan finds the very bytes the parser recorded."""
    try:
        parts = await asyncio.to_thread(locate_attachments, reader.read, reader.size)
    except ScanError:
        return None
    if index >= len(parts) or not _matches(parts[index], meta):
        return None
    part = parts[index]
    sha, size = await asyncio.to_thread(_measure, reader.read, part)
    if not part.enclosed and (sha != meta.get("sha256") or size != meta.get("size")):
        return None  # enclosed messages were hashed as regenerated, so only their type and name count
    return part, size


async def _stream(reader: RawReader, part: AttachmentPart) -> AsyncIterator[bytes]:
    try:
        pieces = decoded_chunks(reader.read, part)
        while True:
            piece = await asyncio.to_thread(next, pieces, None)
            if piece is None:
                return
            yield piece
    finally:
        await reader.aclose()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def open_attachment(
    db: Database, thread_id: int, index: int, *, actor: User | None
) -> AttachmentDownload:
    """Attachment `index` of the thread's message (its place in message.attachments), as a stream of
    decoded chunks, if the actor may read the thread. NotFound when there is no such attachment."""
    async with db.read() as conn:
        check_thread_access(actor, await thread_header(conn, thread_id), write=False)
        stored = await stored_message(conn, thread_id)
    if not 0 <= index < len(stored.attachments):
        raise NotFound(f"thread {thread_id} has no attachment {index}")
    meta = stored.attachments[index]
    reader = await RawReader(db, stored.pk, stored.size, stored.chunked).open()
    try:
        found = await _locate(reader, index, meta)
        if found is None:
            if stored.size > FALLBACK_MAX_BYTES:
                raise AttachmentUnreadable(f"attachment {index} of thread {thread_id} cannot be located")
            raw = await asyncio.to_thread(reader.read, 0, stored.size)
            data = await asyncio.to_thread(attachment_by_full_parse, raw, index)
            if data is None:
                raise AttachmentUnreadable(f"attachment {index} of thread {thread_id} cannot be located")
            await reader.aclose()
            return AttachmentDownload(index, meta.get("name"), meta["content_type"], len(data), _once(data))
    except BaseException:
        await reader.aclose()
        raise
    part, size = found
    return AttachmentDownload(index, meta.get("name"), meta["content_type"], size, _stream(reader, part))
