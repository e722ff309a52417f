"""Search as you type on the thread page: the API's search answer (SearchOut), for the session's user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.responses import JSONResponse

from bccd.api.context import Ctx
from bccd.services import search
from bccd.web.routing import web_router
from bccd.web.session import SignedIn

router = web_router()
KINDS = ("deal", "lead", "project", "person", "organization")


@router.get("/search.json")
async def search_json(
    ctx: Ctx,
    viewer: SignedIn,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    types: Annotated[str, Query(pattern=r"^[a-z,]{1,80}$")] = "deal,lead,project",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> JSONResponse:
    kinds = [k for k in types.split(",") if k in KINDS] or list(KINDS)
    if not q.strip() or "\x00" in q:
        return JSONResponse({"results": []})
    hits = await search.search_records(ctx.db, q, actor=viewer.user, kinds=kinds, limit=limit)
    return JSONResponse({"results": [h.as_json() for h in hits]}, headers={"Cache-Control": "no-store"})
