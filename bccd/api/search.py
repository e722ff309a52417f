"""Search the caller's company's directory by name, to pick what to link (SPEC M6)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from bccd.api.auth import CurrentUser
from bccd.api.context import Ctx
from bccd.api.errors import ApiError
from bccd.api.models import ErrorOut, SearchOut
from bccd.services.search import MAX_QUERY_CHARS, MAX_RESULTS, SEARCH_KINDS, search_records

router = APIRouter(
    prefix="/api/v1", tags=["search"], responses={401: {"model": ErrorOut}, 422: {"model": ErrorOut}}
)


@router.get(
    "/search",
    response_model=SearchOut,
    summary="Case-insensitive substring search over names, titles and person emails; prefix matches first",
)
async def search(
    ctx: Ctx,
    user: CurrentUser,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="text to look for")],
    types: Annotated[
        str | None,
        Query(
            max_length=200,
            description="comma-separated record types to search: "
            + ", ".join(SEARCH_KINDS)
            + " (default all)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 20,
) -> dict[str, Any]:
    kinds: list[str] = list(SEARCH_KINDS)
    if types is not None:
        kinds = [t.strip().lower() for t in types.split(",") if t.strip()]
        unknown = sorted(set(kinds) - set(SEARCH_KINDS))
        if unknown or not kinds:
            raise ApiError(
                422,
                "validation_error",
                f"types: expected a comma-separated list of {', '.join(SEARCH_KINDS)}",
                field="types",
            )
    if not q.strip() or "\x00" in q:
        raise ApiError(422, "validation_error", "q: must not be blank or contain NUL", field="q")
    hits = await search_records(ctx.db, q, actor=user, kinds=kinds, limit=limit)
    return {"results": [h.as_json() for h in hits]}
