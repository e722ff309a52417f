"""The readable bodies of a thread's message for the web pages (issue 10), under the thread's read rights.

A small local extraction until the message body use case of the integration issue (services/content.py)
lands: the stored raw message is parsed again and its text and HTML parts are returned as decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from bccd.mail.message import parse_message
from bccd.services.runtime import Database
from bccd.services.threads import raw_message
from bccd.services.users import User

MAX_BODY_CHARS = 512 * 1024  # a page shows at most this much of a body; the raw download has the rest


@dataclass(frozen=True, slots=True)
class MessageBody:
    text: str | None
    html: str | None
    truncated: bool


def _cap(value: str | None) -> tuple[str | None, bool]:
    if value is None or len(value) <= MAX_BODY_CHARS:
        return value, False
    return value[:MAX_BODY_CHARS], True


async def message_body(db: Database, thread_id: int, *, actor: User | None) -> MessageBody:
    """The text and HTML parts of the thread's message, as sent (NotFound / PermissionDenied as reads)."""
    parsed = parse_message(await raw_message(db, thread_id, actor=actor))
    text, cut_text = _cap(parsed.text_body)
    html, cut_html = _cap(parsed.html_body)
    return MessageBody(text, html, cut_text or cut_html)
