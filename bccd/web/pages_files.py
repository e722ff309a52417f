"""Attachments to download from the thread page: the API's streaming download (bccd.services.content,
never a whole attachment in memory) behind the session cookie, with the API's safe Content-Disposition."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import StreamingResponse

from bccd.api.content import AttachmentIndex, content_disposition
from bccd.api.context import Ctx
from bccd.api.params import ThreadId
from bccd.services.content import open_attachment
from bccd.web.routing import web_router
from bccd.web.session import SignedIn

router = web_router()

# An attachment is served from the pages' origin: never sniffed, never run (an HTML or SVG attachment).
DOWNLOAD_CSP = "default-src 'none'; sandbox"


def attachment_url(thread_id: int, index: int) -> str:
    return f"/threads/{thread_id}/attachments/{index}"


@router.get("/threads/{thread_id}/attachments/{index}")
async def attachment(ctx: Ctx, viewer: SignedIn, thread_id: ThreadId, index: AttachmentIndex) -> Response:
    # NotFound / PermissionDenied (the thread's read rule) and AttachmentUnreadable become error pages.
    found = await open_attachment(ctx.db, thread_id, index, actor=viewer.user)
    return StreamingResponse(
        found.chunks,
        media_type=found.content_type,
        headers={
            "Content-Disposition": content_disposition(found.name, index, found.content_type),
            "Content-Length": str(found.size),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": DOWNLOAD_CSP,
        },
    )
