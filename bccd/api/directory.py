"""Directory sync keyed by the CRM's ids: upsert, read, delete persons, organizations and items; import.

Admins write, every user of the company reads. Routes are generated per record kind from one template.
This module does not use `from __future__ import annotations`: FastAPI reads the body type of each
generated handler from its annotations, which must be the real class captured by the closure.
"""

import json
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.api.auth import AdminUser, CurrentUser
from bccd.api.context import Ctx
from bccd.api.errors import ApiError
from bccd.api.models import DealOut, ErrorOut, ImportOut, ItemOut, OrganizationOut, PersonOut
from bccd.directory_models import DealIn, ItemIn, LeadIn, OrganizationIn, PersonIn, ProjectIn
from bccd.importer import import_lines
from bccd.logs import get_logger
from bccd.store import directory as store

log = get_logger("bccd.api.directory")

# The CRM's id as it appears in paths: no surrounding whitespace (bodies strip it in references, so a
# padded id could never be referenced) and no control characters.
EXTERNAL_ID_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
ExternalIdPath = Annotated[
    str, Path(min_length=1, max_length=200, pattern=EXTERNAL_ID_PATTERN, description="the CRM's id")
]

PLURALS = {
    "person": "persons",
    "organization": "organizations",
    "deal": "deals",
    "lead": "leads",
    "project": "projects",
}
BODY_MODELS: dict[str, type[BaseModel]] = {
    "person": PersonIn,
    "organization": OrganizationIn,
    "deal": DealIn,
    "lead": LeadIn,
    "project": ProjectIn,
}
OUT_MODELS: dict[str, type[BaseModel]] = {
    "person": PersonOut,
    "organization": OrganizationOut,
    "deal": DealOut,
    "lead": ItemOut,
    "project": ItemOut,
}

router = APIRouter(
    prefix="/api/v1",
    tags=["directory"],
    responses={
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
        404: {"model": ErrorOut},
        422: {"model": ErrorOut, "description": "invalid body, or a reference to an unknown record"},
    },
)


async def read_record(conn: AsyncConnection, company_id: int, kind: str, external_id: str) -> dict[str, Any]:
    if kind == "person":
        return await store.get_person(conn, company_id, external_id)
    if kind == "organization":
        return await store.get_organization(conn, company_id, external_id)
    return await store.get_item(conn, company_id, kind, external_id)


async def _upsert(conn: AsyncConnection, company_id: int, kind: str, external_id: str, body: Any) -> bool:
    if kind == "person":
        _, created = await store.upsert_person(conn, company_id, external_id, body)
    elif kind == "organization":
        _, created = await store.upsert_organization(conn, company_id, external_id, body)
    else:
        assert isinstance(body, ItemIn)
        _, created = await store.upsert_item(conn, company_id, kind, external_id, body)
    return created


Handler = Callable[..., Awaitable[Any]]


def _check_storable(body: BaseModel) -> None:
    """Refuse what the models accept but the store cannot keep: a timestamp that overflows in UTC."""
    created_at = getattr(body, "created_at", None)
    if created_at is None:
        return
    try:
        created_at.astimezone(UTC)
    except OverflowError:
        raise ApiError(
            422, "validation_error", "created_at: out of range in UTC", field="created_at"
        ) from None


def _put(kind: str, body_model: type[BaseModel]) -> Handler:
    async def put(
        ctx: Ctx,
        admin: AdminUser,
        external_id: ExternalIdPath,
        body: Annotated[body_model, Body()],  # type: ignore[valid-type]
        response: Response,
    ) -> dict[str, Any]:
        _check_storable(body)
        async with ctx.db.write() as conn:
            created = await _upsert(conn, admin.company_id, kind, external_id, body)
            record = await read_record(conn, admin.company_id, kind, external_id)
        response.status_code = 201 if created else 200
        log.info("directory_upserted", kind=kind, created=created, actor=f"user:{admin.id}")
        return record

    return put


def _get(kind: str) -> Handler:
    async def get(ctx: Ctx, user: CurrentUser, external_id: ExternalIdPath) -> dict[str, Any]:
        async with ctx.db.read() as conn:
            return await read_record(conn, user.company_id, kind, external_id)

    return get


def _delete(kind: str) -> Handler:
    async def delete(ctx: Ctx, admin: AdminUser, external_id: ExternalIdPath) -> Any:
        try:
            async with ctx.db.write() as conn:
                if kind == "person":
                    await store.delete_person(conn, admin.company_id, external_id)
                elif kind == "organization":
                    await store.delete_organization(conn, admin.company_id, external_id)
                else:
                    await store.delete_item(conn, admin.company_id, kind, external_id)
                    record = await read_record(conn, admin.company_id, kind, external_id)
        except store.UnknownReference:
            # The store names a missing record an unknown reference; in the path it is a plain 404.
            raise ApiError(404, "not_found", f"{kind} {external_id!r} not found") from None
        log.info("directory_deleted", kind=kind, actor=f"user:{admin.id}")
        if kind in ("person", "organization"):
            return Response(status_code=204)
        return record

    return delete


for _kind, _plural in PLURALS.items():
    _path = f"/{_plural}/{{external_id}}"
    _out = OUT_MODELS[_kind]
    router.add_api_route(
        _path,
        _put(_kind, BODY_MODELS[_kind]),
        methods=["PUT"],
        name=f"put_{_kind}",
        response_model=_out,
        status_code=200,
        responses={201: {"model": _out, "description": "created"}},
        summary=f"Create or update a {_kind} (admin; idempotent: 201 created, 200 updated)",
    )
    router.add_api_route(
        _path,
        _get(_kind),
        methods=["GET"],
        name=f"get_{_kind}",
        response_model=_out,
        summary=f"Read a {_kind}",
    )
    _removes = _kind in ("person", "organization")
    _delete_kwargs: dict[str, Any] = (
        {"status_code": 204, "response_class": Response, "response_model": None}
        if _removes
        else {"status_code": 200, "response_model": _out}
    )
    router.add_api_route(
        _path,
        _delete(_kind),
        methods=["DELETE"],
        name=f"delete_{_kind}",
        summary=(
            f"Remove a {_kind}; threads keep their participants' addresses (admin)"
            if _removes
            else f"Mark a {_kind} deleted; its threads keep the link and history (admin)"
        ),
        **_delete_kwargs,
    )


def _with_company(number: int, line: bytes, company_id: int) -> bytes:
    """Lines may leave out "company": the caller's company is meant. Anything else is left to the importer."""
    try:
        data = json.loads(line)
    except ValueError:
        return line  # the importer reports it with its line number
    except RecursionError:
        # json.loads gives up on deeply nested arrays with RecursionError, which is not a ValueError.
        raise ApiError(
            422, "import_error", f"line {number}: nested too deeply; nothing was imported", line=number
        ) from None
    if isinstance(data, dict) and "company" not in data:
        data["company"] = company_id
        return json.dumps(data).encode("utf-8")
    return line


@router.post(
    "/import",
    response_model=ImportOut,
    summary="Import JSON lines in the CLI format, all or nothing (admin, caller's company only)",
    description=(
        "One JSON object per line: `kind` (person, organization, deal, lead, project), `external_id`, "
        "optional `company` (must be the caller's), and the record's fields. The first bad line is "
        "reported as 422 with its number and nothing is written."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
    responses={413: {"model": ErrorOut}},
)
async def import_directory(ctx: Ctx, admin: AdminUser, request: Request) -> dict[str, int]:
    raw = await request.body()  # size-capped by the request guard (MAX_IMPORT_BYTES)
    lines = [_with_company(n, line, admin.company_id) for n, line in enumerate(raw.split(b"\n"), start=1)]
    result = await import_lines(ctx.db, lines, only_company=admin.company_id)
    log.info("directory_imported", created=result.created, updated=result.updated, actor=f"user:{admin.id}")
    return result.as_json()
