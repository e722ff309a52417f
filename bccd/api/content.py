"""What a thread's message says: its body (text, HTML, the new writing alone) — issue 9.

Only adapts HTTP: the use cases and the read rule are in bccd.services.content.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from bccd.api.auth import CurrentUser
from bccd.api.context import Ctx
from bccd.api.threads import ERRORS, ThreadId
from bccd.services.content import thread_body

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
