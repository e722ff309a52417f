"""What a thread's message says, for the CRM: its body (text, HTML, new writing), under the thread's
read rule (§3 privacy, T1 — bccd.permissions, exactly as for the thread itself)."""

from __future__ import annotations

import asyncio

from bccd.mail.body import MAX_BODY_CHARS, MessageBody, message_body
from bccd.permissions import check_thread_access
from bccd.store.content import read_bodies
from bccd.store.database import Database
from bccd.store.threads import thread_header
from bccd.store.users import User

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
