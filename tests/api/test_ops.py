"""Ops endpoints and API-wide behaviour: health, readiness, metrics, OpenAPI, docs, the error shape."""

from __future__ import annotations

import httpx

from bccd.api.app import create_api
from bccd.api.context import ApiContext
from bccd.metrics import Metrics
from bccd.store.database import Database
from tests.api.support import Api, assert_error


async def test_health_and_readiness(api: Api) -> None:
    health = await api.anonymous.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    ready = await api.anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": True, "writes": True, "smtp": True}}


async def test_not_ready_without_smtp_or_database(db: Database) -> None:
    unreachable = Database("sqlite+aiosqlite:////nonexistent-dir/bccd.sqlite3")
    try:
        for database, smtp_up, failed in ((db, False, "smtp"), (unreachable, True, "database")):
            ctx = ApiContext(
                db=database,
                metrics=Metrics(),
                bcc_domain="bcc.test",
                smtp_listening=(lambda: True) if smtp_up else (lambda: False),
            )
            transport = httpx.ASGITransport(app=create_api(ctx))
            async with httpx.AsyncClient(transport=transport, base_url="http://bccd.test") as client:
                response = await client.get("/readyz")
                assert (await client.get("/healthz")).status_code == 200  # alive, just not ready
            assert response.status_code == 503
            assert response.json()["status"] == "unavailable"
            assert response.json()["checks"][failed] is False
    finally:
        await unreachable.close()


async def test_metrics_count_smtp_links_and_http(api: Api) -> None:
    await api.mail_thread()
    await api.anonymous.get("/api/v1/me")  # a 401
    response = await api.anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "bccd_smtp_sessions_total 1.0" in text
    assert 'bccd_smtp_replies_total{code="250",command="DATA"} 1.0' in text
    assert "bccd_messages_accepted_total 1.0" in text
    assert 'bccd_link_outcomes_total{reason="no_matching_person"} 1.0' in text
    assert "bccd_ingest_seconds_count 1.0" in text
    assert 'bccd_http_requests_total{code="401"} 1.0' in text
    assert 'bccd_http_requests_total{code="200"}' in text


async def test_openapi_document_and_docs(api: Api) -> None:
    spec = (await api.anonymous.get("/openapi.json")).json()
    assert spec["info"]["title"] == "bccd"
    paths = spec["paths"]
    for path in (
        "/api/v1/persons/{external_id}",
        "/api/v1/deals/{external_id}/threads",
        "/api/v1/threads/{thread_id}/item",
        "/api/v1/threads/{thread_id}/organizations/{external_id}",
        "/api/v1/users/{user_id}/rotate-address",
        "/api/v1/search",
        "/api/v1/import",
        "/readyz",
    ):
        assert path in paths, path
    assert set(paths["/api/v1/deals/{external_id}"]) == {"put", "get", "delete"}
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    docs = await api.anonymous.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_errors_share_one_shape(api: Api) -> None:
    assert_error(await api.owner.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await api.owner.post("/api/v1/me"), 405, "method_not_allowed")
    response = await api.owner.get("/api/v1/me")
    assert len(response.headers["x-request-id"]) == 16
