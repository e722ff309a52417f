"""What a thread's message says: its body (text, HTML, the new writing alone) and its attachments — issue 9.

Only adapts HTTP: the use cases and the read rule are in bccd.services.content.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from bccd.api.auth import CurrentUser
from bccd.api.context import Ctx
from bccd.api.errors import ApiError
from bccd.api.params import ThreadId
from bccd.api.threads import ERRORS
from bccd.services.content import AttachmentUnreadable, open_attachment, thread_body

MAX_ATTACHMENTS_INDEX = 10_000  # far past the parser's part limit (bccd.mail.mimetree.MAX_PARTS)
MAX_FILENAME_CHARS = 150
AttachmentIndex = Annotated[
    int, Path(ge=0, le=MAX_ATTACHMENTS_INDEX, description="`index` of the attachment in message.attachments")
]
# RFC 8187 §3.2.1 attr-char, the characters that stay as they are in filename*=UTF-8''…
_ATTR_CHARS = "!#$&+-.^_`|~"
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()+-]")
_SPACES = re.compile(r"\s+")
# Letters NFKD does not reduce to ASCII, common in the languages the forward detector knows.
_TRANSLITERATE = str.maketrans(
    {
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "ß": "ss",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "þ": "th",
        "Þ": "Th",
        "ð": "d",
        "ı": "i",
    }
)

router = APIRouter(prefix="/api/v1", tags=["threads"], responses=ERRORS)


class BodyOut(BaseModel):
    text: str = Field(
        description="the decoded text/plain part; text derived from the HTML part when there is none"
    )
    html: str | None = Field(description="the text/html part as sent (decoded to text), null when none")
    stripped_text: str = Field(
        description="the new writing only: no quoted history, no signature after '-- ', and for a forward"
        " only the note above the forwarded block"
    )
    truncated: bool = Field(description="text or html was longer than the cap (1,000,000 characters)")


@router.get(
    "/threads/{thread_id}/body",
    response_model=BodyOut,
    summary="The message's text, HTML and new writing (same read rule as the thread)",
)
async def body(ctx: Ctx, user: CurrentUser, thread_id: ThreadId) -> dict[str, Any]:
    return (await thread_body(ctx.db, thread_id, actor=user)).as_json()


def _clean_filename(name: str | None, index: int, content_type: str) -> str:
    """A file name safe to offer: the last path component, no control or format characters, not hidden,
    bounded; `attachment-<n><ext>` when nothing usable is left."""
    text = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] not in ("C", "Z") or c == " ")
    text = _SPACES.sub(" ", text).strip().lstrip(".").strip()
    if len(text) > MAX_FILENAME_CHARS:
        _stem, dot, ext = text.rpartition(".")
        keep = "." + ext if dot and len(ext) <= 10 else ""
        text = text[: MAX_FILENAME_CHARS - len(keep)].rstrip() + keep
    if not text:
        ext = ".eml" if content_type.startswith("message/") else mimetypes.guess_extension(content_type) or ""
        text = f"attachment-{index}{ext}"
    return text


def content_disposition(name: str | None, index: int, content_type: str) -> str:
    """RFC 6266: `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded name>`."""
    clean = _clean_filename(name, index, content_type)
    decomposed = unicodedata.normalize("NFKD", clean.translate(_TRANSLITERATE))
    ascii_name = "".join(c for c in decomposed if not unicodedata.combining(c))
    ascii_name = _ASCII_UNSAFE.sub("_", ascii_name).strip()
    if not ascii_name.strip("._ "):
        ascii_name = _clean_filename(None, index, content_type)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(clean, safe=_ATTR_CHARS)}"


@router.get(
    "/threads/{thread_id}/attachments/{index}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the attachment's decoded bytes"},
        422: {"description": "a large malformed message whose attachment cannot be located; use /raw"},
    },
    summary="Download attachment n (its `index` in message.attachments), streamed",
)
async def attachment(
    ctx: Ctx, user: CurrentUser, thread_id: ThreadId, index: AttachmentIndex
) -> StreamingResponse:
    try:
        found = await open_attachment(ctx.db, thread_id, index, actor=user)
    except AttachmentUnreadable as exc:
        raise ApiError(422, "attachment_unreadable", str(exc) + "; GET …/raw has the whole message") from None
    return StreamingResponse(
        found.chunks,
        media_type=found.content_type,
        headers={
            "Content-Disposition": content_disposition(found.name, index, found.content_type),
            "Content-Length": str(found.size),
            # Served from the API's origin: never let a browser sniff or run it (an HTML attachment).
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
