"""Operator endpoints: liveness, readiness, Prometheus metrics. No authentication (bind to loopback)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from bccd.api.context import Ctx
from bccd.api.models import HealthOut

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=HealthOut, summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "not ready"}},
    summary="Ready to serve: the database answers, the last write succeeded and SMTP is listening",
)
async def readyz(ctx: Ctx) -> JSONResponse:
    # `writes`: the last write transaction's result (a full disk fails writes while reads still work).
    writes = ctx.db.write_health
    checks = {"database": await ctx.db.ping(), "writes": writes.ok, "smtp": ctx.smtp_listening()}
    ok = all(checks.values())
    body: dict[str, object] = {"status": "ok" if ok else "unavailable", "checks": checks}
    if not writes.ok:
        body["last_write_error"] = writes.error_code
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
    summary="Prometheus metrics",
)
async def metrics(ctx: Ctx) -> Response:
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
