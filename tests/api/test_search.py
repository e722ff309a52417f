"""SPEC M6 search: case-insensitive substring over names, titles and person emails, prefix matches first."""

from __future__ import annotations

import pytest

from bccd.store.database import Database
from bccd.store.search import escape_like, search_directory
from bccd.store.users import create_company
from tests.api.support import Api, assert_error
from tests.helpers import add_item, add_org, add_person


async def _directory(db: Database, company_id: int) -> None:
    await add_org(db, company_id, "o1", "Acme Industries")
    await add_org(db, company_id, "o2", "Big ACME")
    await add_org(db, company_id, "o3", "Ørsted Wind")
    await add_person(db, company_id, "p1", "Carol Acme", ["carol@client.test"])
    await add_person(db, company_id, "p2", "Dave", ["dave@acme-corp.test"])
    await add_person(db, company_id, "p3", "Erin", ["acme.erin@else.test"])
    await add_item(db, company_id, "deal", "d1", title="acme")
    await add_item(db, company_id, "deal", "d2", title="Renewal for Acmeco", status="lost")
    await add_item(db, company_id, "lead", "l1", title="50% discount_offer")
    await add_item(db, company_id, "project", "j1", title="Rollout 50x")


def _refs(results: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(r["type"], r["id"]) for r in results]


async def test_ranked_case_insensitive_search_over_all_kinds(api: Api) -> None:
    await _directory(api.app.db, api.world.company_id)
    response = await api.colleague.get("/api/v1/search", params={"q": "ACME"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert _refs(results) == [
        ("deal", "d1"),  # the whole title
        ("organization", "o1"),  # name prefix
        ("person", "p3"),  # email prefix
        ("organization", "o2"),  # a word of the name, then by name
        ("person", "p1"),
        ("deal", "d2"),  # a word of the title ("Acmeco")
        ("person", "p2"),  # only inside an email
    ]
    assert results[0] == {"type": "deal", "id": "d1", "name": "acme", "status": "open"}
    assert results[-2]["status"] == "lost"  # closed items are found too: manual links take any (M4)
    assert next(r for r in results if r["id"] == "o1")["status"] is None


async def test_types_limit_and_tenancy(api: Api) -> None:
    await _directory(api.app.db, api.world.company_id)
    only = (await api.owner.get("/api/v1/search?q=acme&types=deal,person")).json()["results"]
    assert {r["type"] for r in only} == {"deal", "person"}
    limited = (await api.owner.get("/api/v1/search?q=acme&limit=2")).json()["results"]
    assert _refs(limited) == [("deal", "d1"), ("organization", "o1")]
    # T1: another company's records are never found, nor does it find ours.
    assert (await api.outsider.get("/api/v1/search?q=acme")).json()["results"] == []
    assert_error(await api.owner.get("/api/v1/search?q=acme&types=deal,user"), 422, "validation_error")
    assert_error(await api.owner.get("/api/v1/search?q="), 422, "validation_error")
    assert_error(await api.owner.get("/api/v1/search?q=%20%20"), 422, "validation_error")
    assert_error(await api.owner.get("/api/v1/search?q=a&limit=1000"), 422, "validation_error")
    assert_error(await api.anonymous.get("/api/v1/search?q=acme"), 401, "unauthorized")


async def test_wildcards_are_literal_and_unicode_folds(api: Api) -> None:
    await _directory(api.app.db, api.world.company_id)

    async def ids(q: str) -> list[object]:
        return [r["id"] for r in (await api.owner.get("/api/v1/search", params={"q": q})).json()["results"]]

    assert await ids("50%") == ["l1"]  # not "Rollout 50x"
    assert await ids("t_5") == []  # `_` is not "any character" ("Rollout 50x")
    assert await ids("discount_o") == ["l1"]
    assert await ids("\\") == []
    assert await ids("ørsted") == ["o3"]  # folds beyond ASCII on SQLite too


def test_escape_like() -> None:
    assert escape_like("50%_a\\b") == "50\\%\\_a\\\\b"


async def test_store_search_on_every_backend(any_db_url: str) -> None:
    """The same statement ranks the same way on SQLite and PostgreSQL (DESIGN: one suite, every backend)."""
    db = Database(any_db_url)
    try:
        async with db.write() as conn:
            company = await create_company(conn, "Acme")
            other = await create_company(conn, "Globex")
        await _directory(db, company.id)
        await add_org(db, other.id, "x", "Acme Elsewhere")
        async with db.read() as conn:
            hits = await search_directory(conn, company.id, "acme", limit=4)
            wild = await search_directory(conn, company.id, "50%", kinds=["lead", "project"])
            nothing = await search_directory(conn, company.id, "acme", kinds=[])
            with pytest.raises(ValueError, match="unknown record types"):
                await search_directory(conn, company.id, "acme", kinds=["user"])
        assert [(h.type, h.id, h.rank) for h in hits] == [
            ("deal", "d1", 0),
            ("organization", "o1", 1),
            ("person", "p3", 1),
            ("organization", "o2", 2),
        ]
        assert [h.id for h in wild] == ["l1"]
        assert nothing == []
    finally:
        await db.close()
