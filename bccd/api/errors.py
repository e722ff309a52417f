"""Every error the API answers has one JSON shape: {"error": "<code>", "detail": "<sentence>"} (+ context).

Domain exceptions raised by the store, linking and permission layers map to status codes here, in one
table, so routers never translate them by hand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bccd.errors import (
    AlreadyLinked,
    ConfirmationFailed,
    Conflict,
    NotFound,
    PermissionDenied,
    UnknownReference,
)
from bccd.logs import error_fields, get_logger
from bccd.services.directory import ImportError_

log = get_logger("bccd.api")

# Status → error code for errors raised by the framework itself (unknown route, wrong method, …).
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "unavailable",
}

DUPLICATE_HINT = (
    "to link this mail to another item as well, forward it to your Smart Bcc address (the copy becomes a "
    "new thread you can link), or repeat the request with ?replace=true to move the link"
)


class ApiError(Exception):
    """An error a router raises on purpose, with its status, code, sentence and optional context."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


def error_response(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status, headers=headers)


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


# Friendlier words than pydantic's where its message would show a regular expression or a parser detail.
_PATTERN_MESSAGES = {
    "external_id": "must not be blank, padded with spaces or contain control characters",
    "cursor": "not a cursor from this API",
    "owner": "a user id or `me`",
}


def _message(err: Mapping[str, Any], field: str) -> str:
    if err.get("type") == "json_invalid":
        return "invalid JSON"
    if err.get("type") == "string_pattern_mismatch" and field in _PATTERN_MESSAGES:
        return _PATTERN_MESSAGES[field]
    return str(err.get("msg", "invalid"))


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # The first element says where (body, query, path, header); the rest names the field.
    parts = [str(p) for p in loc[1:] if not isinstance(p, int)] if len(loc) > 1 else []
    return ".".join(parts) or (str(loc[0]) if loc else "request")


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        field = _field(loc)
        message = _message(err, field)
        errors.append({"field": field, "in": str(loc[0]) if loc else "request", "message": message})
    first = errors[0] if errors else {"field": "request", "message": "invalid request"}
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    return error_response(422, "validation_error", detail, field=first["field"], errors=errors)


# Starlette's own 404/405 carry only the reason phrase; say what it means here.
_ROUTING_DETAIL = {
    (404, "Not Found"): "no such endpoint; see /openapi.json",
    (405, "Method Not Allowed"): "this endpoint does not support the method; see /openapi.json",
}


# FastAPI answers 400 when the body cannot be decoded at all (not UTF-8, nested too deeply) but 422 for
# malformed JSON; both are the same mistake to a client, so both are a 422 about the body.
_UNPARSABLE_BODY = "There was an error parsing the body"


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        return error_response(
            422,
            "validation_error",
            "body: not valid JSON (UTF-8 expected)",
            field="body",
            errors=[{"field": "body", "in": "body", "message": "not valid JSON (UTF-8 expected)"}],
        )
    code = STATUS_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    detail = _ROUTING_DETAIL.get((exc.status_code, detail), detail)
    return error_response(exc.status_code, code, detail, headers=exc.headers)


async def _already_linked(request: Request, exc: AlreadyLinked) -> JSONResponse:
    return error_response(409, "already_linked", f"{exc}; {DUPLICATE_HINT}", current_item=dict(exc.current))


async def _import_error(request: Request, exc: ImportError_) -> JSONResponse:
    return error_response(
        422,
        "import_error",
        f"line {exc.line}: {exc.detail}; nothing was imported",
        line=exc.line,
        errors=[{"line": n, "detail": d} for n, d in exc.errors],  # every bad line, up to a cap
        truncated=exc.truncated,
    )


async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
    # Locked or unreachable database: a retry may succeed. No SQL or parameters in the log (bodies).
    log.warning("http_database_unavailable", **error_fields(exc))
    return error_response(
        503, "unavailable", "the database is busy or unreachable; retry later", {"Retry-After": "1"}
    )


async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
    # Two requests raced on a unique key; the loser gets a 409 and may simply retry.
    return error_response(409, "conflict", "a concurrent change conflicted with this request; retry it")


def _is_data_exception(exc: StatementError) -> bool:
    if isinstance(exc, DataError) or isinstance(exc.orig, ValueError | OverflowError):
        return True
    # SQLSTATE class 22 is "data exception" (e.g. 22021: NUL in PostgreSQL text); asyncpg's driver
    # errors do not always map to DataError, but they carry the SQLSTATE.
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


async def _unstorable(request: Request, exc: StatementError) -> JSONResponse:
    """A value passed validation but the database refuses it: the request is wrong, not the server."""
    if _is_data_exception(exc):
        return error_response(
            422, "invalid_value", "a value in the request cannot be stored or compared (e.g. a NUL character)"
        )
    raise exc


Handler = Callable[[Request, Any], Awaitable[JSONResponse]]

_SIMPLE: list[tuple[type[Exception], int, str]] = [
    (NotFound, 404, "not_found"),
    (PermissionDenied, 403, "forbidden"),
    (Conflict, 409, "conflict"),
    (UnknownReference, 422, "unknown_reference"),
    (ConfirmationFailed, 422, "confirmation_failed"),
]


def _simple(status: int, code: str) -> Handler:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return error_response(status, code, str(exc) or code.replace("_", " "))

    return handler


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.detail, exc.headers or None, **exc.extra)


def install_error_handlers(app: FastAPI) -> None:
    handlers: dict[type[Exception], Handler] = {
        ApiError: _api_error,
        RequestValidationError: _validation,
        StarletteHTTPException: _http,
        AlreadyLinked: _already_linked,
        ImportError_: _import_error,
        OperationalError: _database_unavailable,
        IntegrityError: _integrity,
        StatementError: _unstorable,
    }
    for exc_type, status, code in _SIMPLE:
        handlers[exc_type] = _simple(status, code)
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
