"""The API on each database backend (SQLite and PostgreSQL): the same answers, never a 5xx (T4)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bccd.api.app import create_api
from bccd.api.context import ApiContext
from bccd.metrics import Metrics
from bccd.store.database import Database
from bccd.store.users import create_company, create_token, create_user
from tests.api.support import Caller, assert_error


@pytest.fixture
async def admin(any_db_url: str) -> AsyncIterator[Caller]:
    db = Database(any_db_url)
    try:
        async with db.write() as conn:
            company = await create_company(conn, "Acme")
            user = await create_user(conn, company.id, email="root@acme.test", name="Root", admin=True)
            token = await create_token(conn, user.id)
        transport = httpx.ASGITransport(app=create_api(ApiContext(db, Metrics(), "bcc.test")))
        async with httpx.AsyncClient(transport=transport, base_url="http://bccd.test") as client:
            yield Caller(client, token)
    finally:
        await db.close()


async def test_directory_search_and_bad_text(admin: Caller, any_db_url: str) -> None:
    assert (await admin.put("/api/v1/organizations/o1", json={"name": "Ørsted Wind"})).status_code == 201
    person = {"name": "Carol", "emails": ["carol@client.test"], "organization": "o1"}
    assert (await admin.put("/api/v1/persons/p1", json=person)).status_code == 201
    deal = {"title": "Wind farm", "person": "p1", "participants": ["p1"]}
    assert (await admin.put("/api/v1/deals/d1", json=deal)).status_code == 201
    assert (await admin.put("/api/v1/deals/d1", json={**deal, "status": "won"})).json()["status"] == "won"
    lines = b'{"kind": "lead", "external_id": "l1", "title": "Wind lead", "person": "p1"}\n'
    assert (await admin.post("/api/v1/import", content=lines)).json()["created"] == 1

    hits = (await admin.get("/api/v1/search", params={"q": "WIND"})).json()["results"]
    assert [(h["type"], h["id"]) for h in hits] == [("deal", "d1"), ("lead", "l1"), ("organization", "o1")]
    assert [h["id"] for h in (await admin.get("/api/v1/search?q=ørsted")).json()["results"]] == ["o1"]
    assert_error(await admin.get("/api/v1/search?q=%00"), 422, "validation_error")
    assert (await admin.delete("/api/v1/persons/p1")).status_code == 204
    assert (await admin.get("/api/v1/deals/d1")).json()["person"] is None

    # Control characters (NUL, which PostgreSQL refuses) are refused by validation on both backends (T4).
    nul = await admin.put("/api/v1/organizations/o2", json={"name": "a\x00b"})
    assert_error(nul, 422, "validation_error")
    assert_error(
        await admin.get("/api/v1/threads?person=a%00b"),
        *((422, "invalid_value") if any_db_url.startswith("postgresql") else (404, "not_found")),
    )
