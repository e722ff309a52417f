"""The request guard around every API call: size cap, crash barrier, metrics and one access-log line.

A pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed bodies and run handlers in
another task). It sits inside Starlette's ServerErrorMiddleware, so an unexpected exception stops here:
it is logged with its error code and, for a classified failure, the driver's scrubbed first line (never
SQL parameters, which could carry request bodies; see bccd.logs.error_fields) and answered with the
JSON error shape instead of being re-raised into the server's own traceback logging.
"""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bccd.api.errors import error_response
from bccd.logs import error_fields, get_logger
from bccd.metrics import Metrics

log = get_logger("bccd.api")

MAX_BODY_BYTES = 1024 * 1024  # JSON bodies: the largest (a deal with 500 participants) is far smaller
MAX_IMPORT_BYTES = 32 * 1024 * 1024  # a whole CRM directory in one all-or-nothing import
IMPORT_PATH = "/api/v1/import"
CLIENT_CLOSED = 499  # nginx's convention for "client closed the request": not a server error in metrics


class BodyTooLarge(HTTPException):
    """The request body grew past the cap while streaming (no or a false Content-Length).

    An HTTPException so that FastAPI's body parsing passes it through (it turns other exceptions raised
    while reading the body into a 400) and the error handlers answer 413 in the usual shape.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body may have at most {limit} bytes")


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 2)[-1]}:{last.lineno} in {last.name}"


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class RequestGuard:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        limit = MAX_IMPORT_BYTES if scope.get("path") == IMPORT_PATH else MAX_BODY_BYTES
        status = 500
        response_started = False
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def observing_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("ascii"))]
            await send(message)

        with structlog.contextvars.bound_contextvars(request=request_id):
            try:
                declared = _declared_length(scope)
                if declared is not None and declared > limit:
                    await self._answer(scope, receive, observing_send, BodyTooLarge(limit))
                else:
                    await self.app(scope, counting_receive, observing_send)
            except BodyTooLarge as exc:
                if not response_started:
                    await self._answer(scope, receive, observing_send, exc)
            except asyncio.CancelledError:
                if not response_started:
                    status = CLIENT_CLOSED  # the client went away (or shutdown cancelled the request)
                raise
            except Exception as exc:
                log.error("http_unhandled_error", where=_where(exc), **error_fields(exc))
                if not response_started:
                    await self._respond(
                        scope, receive, observing_send, 500, "internal_error", "an internal error occurred"
                    )
            finally:
                self._observe(scope, status, time.perf_counter() - started)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, exc: BodyTooLarge) -> None:
        await self._respond(scope, receive, send, 413, "payload_too_large", str(exc.detail))

    async def _respond(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str
    ) -> None:
        await error_response(status, code, detail)(scope, receive, send)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        self.metrics.http_requests.labels(str(status)).inc()
        route: Any = scope.get("route")
        # The route template, not the path: paths carry CRM ids, which do not belong in logs.
        path = getattr(route, "path", None) or "unmatched"
        log.info(
            "http_request",
            method=scope.get("method"),
            route=path,
            status=status,
            ms=round(seconds * 1000, 1),
        )
