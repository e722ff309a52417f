"""Path parameters and error-response tables the API routers (and the web pages) share, written once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from bccd.api.models import ErrorOut

MAX_ID = 2**63 - 1  # ids are 64-bit integers on both backends

UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="the user's id")]
ThreadId = Annotated[int, Path(ge=1, le=MAX_ID, description="the thread's id")]
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="the webhook's id")]


def error_responses(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a router: `{code: {"model": ErrorOut}}`, with a description where given
    (`error_responses(401, 403, s404="no such …")` — keyword names are `s` + the status code)."""
    table: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in codes}
    for key, text in described.items():
        table[int(key.removeprefix("s"))] = {"model": ErrorOut, "description": text}
    return dict(sorted(table.items(), key=lambda kv: int(kv[0])))
