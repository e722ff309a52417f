"""Item and contact pages (/deals/{id}, /leads/{id}, /projects/{id}, /persons/{id}, /organizations/{id}):
the record as the CRM synced it and the threads linked to it that I may see."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request, Response

from bccd.api.context import Ctx
from bccd.services import directory, threads
from bccd.web.names import KIND_LABELS, PLURALS, Names
from bccd.web.pages_inbox import PAGE_SIZE, thread_rows
from bccd.web.render import page
from bccd.web.routing import web_router
from bccd.web.session import SignedIn

router = web_router()

ExternalId = Annotated[str, Path(min_length=1, max_length=200)]
Cursor = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


def _record_page(kind: str) -> Any:
    async def record_page(
        request: Request, ctx: Ctx, viewer: SignedIn, external_id: ExternalId, cursor: Cursor = None
    ) -> Response:
        user = viewer.user
        record = await directory.read_record(ctx.db, kind, external_id, actor=user)
        names = Names(ctx.db, user)
        related = []
        for key in ("person", "organization"):
            if record.get(key):
                related.append(await names.ref(key, str(record[key])))
        listed = await threads.list_visible(
            ctx.db, actor=user, records={kind: external_id}, limit=PAGE_SIZE, before_id=cursor
        )
        found = [t.as_json() for t in listed]
        rows = await thread_rows(names, found, {})
        next_url = f"?cursor={found[-1]['id']}" if len(found) == PAGE_SIZE else None
        return page(
            request,
            "record.html",
            viewer,
            kind=kind,
            label=KIND_LABELS[kind],
            record=record,
            name=record.get("title") or record.get("name") or external_id,
            related=related,
            rows=rows,
            next_url=next_url,
        )

    return record_page


for _kind, _plural in PLURALS.items():
    router.add_api_route(
        f"/{_plural}/{{external_id}}", _record_page(_kind), methods=["GET"], name=f"{_kind}_page"
    )
