"""Directory sync keyed by the CRM's ids: upsert, read, delete persons, organizations and items; import.

Admins write, every user of the company reads. Routes are generated per record kind from one template.
This module does not use `from __future__ import annotations`: FastAPI reads the body type of each
generated handler from its annotations, which must be the real class captured by the closure.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response
from pydantic import BaseModel

from bccd.api.auth import AdminUser, CurrentUser
from bccd.api.context import Ctx
from bccd.api.errors import ApiError
from bccd.api.models import ErrorOut, ImportOut
from bccd.api.params import error_responses
from bccd.logs import get_logger
from bccd.records import RECORD_TYPES
from bccd.services import directory as service

log = get_logger("bccd.api.directory")

# The CRM's id as it appears in paths: no surrounding whitespace (bodies strip it in references, so a
# padded id could never be referenced) and no control characters.
EXTERNAL_ID_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
ExternalIdPath = Annotated[
    str, Path(min_length=1, max_length=200, pattern=EXTERNAL_ID_PATTERN, description="the CRM's id")
]

# Kind → plural in paths (/api/v1/deals/…), from the record registry.
PLURALS = {r.kind: r.plural for r in RECORD_TYPES}

router = APIRouter(
    prefix="/api/v1",
    tags=["directory"],
    responses=error_responses(401, 403, 404, s422="invalid body, or a reference to an unknown record"),
)


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
        record, created = await service.upsert_record(ctx.db, kind, external_id, body, actor=admin)
        response.status_code = 201 if created else 200
        log.info("directory_upserted", kind=kind, created=created, actor=f"user:{admin.id}")
        return record

    return put


def _get(kind: str) -> Handler:
    async def get(ctx: Ctx, user: CurrentUser, external_id: ExternalIdPath) -> dict[str, Any]:
        return await service.read_record(ctx.db, kind, external_id, actor=user)

    return get


def _delete(kind: str) -> Handler:
    async def delete(ctx: Ctx, admin: AdminUser, external_id: ExternalIdPath) -> Any:
        record = await service.delete_record(ctx.db, kind, external_id, actor=admin)
        log.info("directory_deleted", kind=kind, actor=f"user:{admin.id}")
        if record is None:
            return Response(status_code=204)
        return record

    return delete


for _record in RECORD_TYPES:
    _kind = _record.kind
    _path = f"/{_record.plural}/{{external_id}}"
    _out = _record.output_model
    router.add_api_route(
        _path,
        _put(_kind, _record.input_model),
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
    _removes = _record.removable
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
    # Streamed line by line (size-capped by the request guard, MAX_IMPORT_BYTES), never held whole.
    result = await service.import_records(ctx.db, service.split_stream(request.stream()), actor=admin)
    log.info("directory_imported", created=result.created, updated=result.updated, actor=f"user:{admin.id}")
    return result.as_json()
