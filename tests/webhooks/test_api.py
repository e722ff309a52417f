"""Issue 9 webhooks, the API: admins manage their company's endpoints; a regular user gets 403, another
company's admin 404 (T1); the secret is shown once; the SSRF guard refuses private hosts."""

from __future__ import annotations

import asyncio

import pytest

from tests.webhooks.conftest import api_client, settled
from tests.webhooks.receiver import Receiver, verify


async def test_admin_registers_lists_patches_tests_and_deletes(api_db_url: str, receiver: Receiver) -> None:
    async with api_client(api_db_url) as (app, world, c):
        admin = c["admin"]
        created = await admin.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["thread.created"], "description": "CRM"},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_") and body["events"] == ["thread.created"]
        assert created.headers["cache-control"] == "no-store"
        hook = body["id"]
        listed = (await admin.get("/api/v1/webhooks")).json()
        assert [h["id"] for h in listed] == [hook] and "secret" not in listed[0]
        one = (await admin.get(f"/api/v1/webhooks/{hook}")).json()
        assert "secret" not in one and one["description"] == "CRM" and one["company"] == world.company_id

        patched = await admin.patch(f"/api/v1/webhooks/{hook}", json={"events": [], "enabled": False})
        assert patched.status_code == 200
        assert patched.json()["enabled"] is False and len(patched.json()["events"]) == 5  # [] = all
        bad = await admin.patch(f"/api/v1/webhooks/{hook}", json={"events": ["thread.exploded"]})
        assert bad.status_code == 422
        assert (await admin.patch(f"/api/v1/webhooks/{hook}", json={"enabled": True})).status_code == 200

        sent = await admin.post(f"/api/v1/webhooks/{hook}/test")
        assert sent.status_code == 202
        await receiver.wait_for(lambda r: len(r.delivered()) == 1)
        [request] = receiver.delivered()
        assert request.webhook_id == sent.json()["event"] and verify(body["secret"], request)
        assert request.json["type"] == "webhook.test"
        await settled(app.db, hook)  # the result is written just after the 200
        deliveries = (await admin.get(f"/api/v1/webhooks/{hook}/deliveries")).json()
        assert deliveries[0]["event"] == sent.json()["event"]
        assert deliveries[0]["status"] == "delivered" and deliveries[0]["attempts"] == 1

        rotated = await admin.post(f"/api/v1/webhooks/{hook}/rotate-secret")
        assert rotated.status_code == 200 and rotated.json()["secret"] != body["secret"]
        assert rotated.json()["secret_rotated_at"] is not None

        assert (await admin.delete(f"/api/v1/webhooks/{hook}")).status_code == 204
        assert (await admin.get(f"/api/v1/webhooks/{hook}")).status_code == 404
        assert (await admin.get("/api/v1/webhooks")).json() == []


ROUTES = [
    ("GET", "/api/v1/webhooks/{id}", None),
    ("PATCH", "/api/v1/webhooks/{id}", {"enabled": False}),
    ("DELETE", "/api/v1/webhooks/{id}", None),
    ("POST", "/api/v1/webhooks/{id}/test", None),
    ("POST", "/api/v1/webhooks/{id}/rotate-secret", None),
    ("GET", "/api/v1/webhooks/{id}/deliveries", None),
]


async def test_permission_matrix(api_db_url: str, receiver: Receiver) -> None:
    async with api_client(api_db_url) as (_, _world, c):
        hook = (await c["admin"].post("/api/v1/webhooks", json={"url": receiver.url})).json()["id"]
        for role in ("owner", "colleague"):  # regular users of the company: 403 everywhere
            assert (await c[role].get("/api/v1/webhooks")).status_code == 403
            assert (await c[role].post("/api/v1/webhooks", json={"url": receiver.url})).status_code == 403
            for method, path, json in ROUTES:
                r = await c[role].request(method, path.format(id=hook), json=json)
                assert r.status_code == 403, (role, method, path, r.text)
        # the other company's admin: Acme's endpoint does not exist for them (T1)
        assert (await c["outsider"].get("/api/v1/webhooks")).json() == []
        for method, path, json in ROUTES:
            r = await c["outsider"].request(method, path.format(id=hook), json=json)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"] == "not_found"
        assert (await c["anonymous"].get("/api/v1/webhooks")).status_code == 401
        # nothing above changed the endpoint
        one = (await c["admin"].get(f"/api/v1/webhooks/{hook}")).json()
        assert one["enabled"] is True and one["secret_rotated_at"] is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "http://user:pw@93.184.216.34/hook",
    ],
)
async def test_ssrf_guard_refuses_private_hosts_at_registration(api_db_url: str, url: str) -> None:
    async with api_client(api_db_url, allow_private=False) as (_, _world, c):
        r = await c["admin"].post("/api/v1/webhooks", json={"url": url})
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "unsafe_url"
        assert (await c["admin"].get("/api/v1/webhooks")).json() == []


async def test_ssrf_guard_accepts_a_public_address(api_db_url: str) -> None:
    async with api_client(api_db_url, allow_private=False) as (_, _world, c):
        r = await c["admin"].post("/api/v1/webhooks", json={"url": "https://93.184.216.34/hook"})
        assert r.status_code == 201, r.text
        hook = r.json()["id"]
        moved = await c["admin"].patch(f"/api/v1/webhooks/{hook}", json={"url": "http://127.0.0.1/x"})
        assert moved.status_code == 422 and moved.json()["error"] == "unsafe_url"


async def test_ssrf_guard_checks_again_at_delivery_time(api_db_url: str, receiver: Receiver) -> None:
    """Registered while allowed, delivered by a node that refuses private hosts: nothing is sent."""
    from bccd.services import webhooks

    async with api_client(api_db_url, allow_private=False) as (app, world, _c):
        endpoint, _ = await webhooks.create_endpoint(
            app.db, actor=world.admin, url=receiver.url, allow_private=True
        )
        await webhooks.send_test(app.db, endpoint.id, actor=world.admin)
        for _ in range(200):
            [delivery] = await webhooks.list_deliveries(app.db, endpoint.id, actor=None)
            if delivery["attempts"] >= 1 and delivery["last_error"]:
                break
            await asyncio.sleep(0.02)
        assert "non-public address" in delivery["last_error"]
        assert receiver.all() == []


async def test_openapi_documents_routes_and_event_payloads(api_db_url: str) -> None:
    async with api_client(api_db_url) as (_, _world, c):
        doc = (await c["anonymous"].get("/openapi.json")).json()
        assert {"/api/v1/webhooks", "/api/v1/webhooks/{webhook_id}/rotate-secret"} <= set(doc["paths"])
        assert "thread.needs_attention" in doc["webhooks"]
        assert "WebhookEventOut" in doc["components"]["schemas"]
