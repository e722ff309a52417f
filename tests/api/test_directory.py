"""Directory sync by the CRM's ids: PUT/GET/DELETE persons, organizations, deals, leads, projects; import."""

from __future__ import annotations

import json

import pytest

from tests.api.support import Api, assert_error

PLURAL = {
    "person": "persons",
    "organization": "organizations",
    "deal": "deals",
    "lead": "leads",
    "project": "projects",
}
BODIES = {
    "organization": {"name": "Client Corp"},
    "person": {"name": "Carol", "emails": ["Carol@Client.TEST"], "organization": "o1"},
    "deal": {"title": "Big deal", "person": "p1", "organization": "o1", "participants": ["p1"]},
    "lead": {"title": "A lead", "person": "p1", "status": "archived"},
    "project": {"title": "A project", "organization": "o1", "status": "completed"},
}


async def _seed_org_and_person(api: Api) -> None:
    assert (await api.admin.put("/api/v1/organizations/o1", json=BODIES["organization"])).status_code == 201
    assert (await api.admin.put("/api/v1/persons/p1", json=BODIES["person"])).status_code == 201


@pytest.mark.parametrize("kind", ["organization", "person", "deal", "lead", "project"])
async def test_put_is_an_idempotent_upsert_and_get_reads_it(api: Api, kind: str) -> None:
    if kind != "organization":
        await _seed_org_and_person(api)
    url = f"/api/v1/{PLURAL[kind]}/x-1"
    created = await api.admin.put(url, json=BODIES[kind])
    assert created.status_code == 201, created.text
    again = await api.admin.put(url, json=BODIES[kind])
    assert again.status_code == 200
    assert again.json() == created.json()
    read = await api.colleague.get(url)  # every user of the company reads the directory
    assert read.status_code == 200 and read.json() == created.json()
    assert read.json()["id"] == "x-1"
    if kind == "person":
        assert read.json()["emails"] == ["carol@client.test"]
    if kind == "deal":
        assert read.json()["participants"] == ["p1"] and read.json()["status"] == "open"


async def test_status_changes_are_plain_puts(api: Api) -> None:
    await _seed_org_and_person(api)
    first = (await api.admin.put("/api/v1/deals/d1", json={"title": "Deal", "person": "p1"})).json()
    won = await api.admin.put("/api/v1/deals/d1", json={"title": "Deal", "person": "p1", "status": "won"})
    assert won.status_code == 200
    assert won.json()["status"] == "won"
    assert won.json()["status_changed_at"] > first["status_changed_at"]
    bad = await api.admin.put("/api/v1/deals/d1", json={"title": "Deal", "status": "archived"})
    assert_error(bad, 422, "validation_error")
    assert bad.json()["field"] == "status" and "won" in bad.json()["detail"]


async def test_validation_errors_name_the_field(api: Api) -> None:
    cases = [
        ("/api/v1/persons/p9", {"name": "X", "emails": ["nope"]}, "emails"),
        ("/api/v1/persons/p9", {"emails": []}, "name"),
        ("/api/v1/organizations/o9", {"name": ""}, "name"),
        ("/api/v1/deals/d9", {"title": "T", "colour": "red"}, "colour"),
        ("/api/v1/leads/l9", {"title": "T", "created_at": "yesterday"}, "created_at"),
        ("/api/v1/deals/d9", {"title": "T", "created_at": "0001-01-01T00:00:00+05:00"}, "created_at"),
        ("/api/v1/projects/j9", {"title": "T", "participants": []}, "participants"),
    ]
    for url, body, field in cases:
        response = await api.admin.put(url, json=body)
        assert_error(response, 422, "validation_error")
        assert response.json()["field"] == field, response.json()
    not_json = await api.admin.put(
        "/api/v1/organizations/o9", content=b"{", headers={"content-type": "application/json"}
    )
    assert_error(not_json, 422, "validation_error")
    padded = await api.admin.put("/api/v1/organizations/%20o9", json={"name": "X"})
    assert padded.status_code == 422 and padded.json()["field"] == "external_id"


async def test_unknown_references_are_422(api: Api) -> None:
    response = await api.admin.put("/api/v1/deals/d1", json={"title": "Deal", "person": "ghost"})
    body = assert_error(response, 422, "unknown_reference")
    assert "ghost" in body["detail"]
    assert (await api.admin.get("/api/v1/deals/d1")).status_code == 404  # nothing half-written


async def test_only_admins_write_and_nothing_crosses_companies(api: Api) -> None:
    await _seed_org_and_person(api)
    assert_error(await api.owner.put("/api/v1/organizations/o2", json={"name": "X"}), 403, "forbidden")
    assert_error(await api.owner.delete("/api/v1/persons/p1"), 403, "forbidden")
    # T1: the other company's admin sees nothing of ours, and its writes go to its own directory.
    assert_error(await api.outsider.get("/api/v1/persons/p1"), 404, "not_found")
    assert_error(await api.outsider.delete("/api/v1/persons/p1"), 404, "not_found")
    theirs = await api.outsider.put("/api/v1/persons/p1", json={"name": "Their Carol"})
    assert theirs.status_code == 201
    assert (await api.owner.get("/api/v1/persons/p1")).json()["name"] == "Carol"


async def test_delete_marks_items_deleted_and_removes_persons(api: Api) -> None:
    await _seed_org_and_person(api)
    await api.admin.put("/api/v1/deals/d1", json={"title": "Deal", "person": "p1"})
    thread = await api.mail_thread()  # Alice → carol@client.test: links p1 (L1) and deal d1 (L6)
    assert thread["item"] == {"type": "deal", "id": "d1"} and thread["persons"] == ["p1"]

    deleted = await api.admin.delete("/api/v1/deals/d1")
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert (await api.admin.delete("/api/v1/deals/d1")).status_code == 200  # already deleted: still there
    assert (await api.owner.get("/api/v1/deals/d1")).json()["status"] == "deleted"

    gone = await api.admin.delete("/api/v1/persons/p1")
    assert gone.status_code == 204 and gone.content == b""
    assert_error(await api.admin.get("/api/v1/persons/p1"), 404, "not_found")
    assert_error(await api.admin.delete("/api/v1/persons/p1"), 404, "not_found")
    assert (await api.admin.delete("/api/v1/organizations/o1")).status_code == 204
    assert_error(await api.admin.delete("/api/v1/leads/nope"), 404, "not_found")

    after = (await api.owner.get(f"/api/v1/threads/{thread['id']}")).json()
    assert after["persons"] == [] and after["organizations"] == []
    carol = [p for p in after["participants"] if p["address"] == "carol@client.test"]
    assert carol and carol[0]["person"] is None  # the thread keeps the participant's address
    assert after["item"] == {"type": "deal", "id": "d1"}


def _lines(*records: dict[str, object]) -> bytes:
    return b"\n".join(json.dumps(r).encode() for r in records) + b"\n"


async def test_import_is_all_or_nothing(api: Api) -> None:
    good = _lines(
        {
            "kind": "person",
            "external_id": "p1",
            "name": "Carol",
            "emails": ["carol@client.test"],
            "organization": "o1",
        },
        {"kind": "organization", "external_id": "o1", "name": "Client Corp"},
        {
            "kind": "deal",
            "company": api.world.company_id,
            "external_id": "d1",
            "title": "Deal",
            "person": "p1",
        },
    )
    response = await api.admin.post(
        "/api/v1/import", content=good, headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 3, "updated": 0, "total": 3}
    assert (await api.owner.get("/api/v1/persons/p1")).json()["organization"] == "o1"

    bad = _lines(
        {"kind": "organization", "external_id": "o2", "name": "New Corp"},
        {"kind": "deal", "external_id": "d2", "title": "Deal", "person": "ghost"},
    )
    failed = await api.admin.post("/api/v1/import", content=bad)
    body = assert_error(failed, 422, "import_error")
    assert body["line"] == 2 and "ghost" in body["detail"]
    assert_error(await api.admin.get("/api/v1/organizations/o2"), 404, "not_found")  # nothing written

    broken = await api.admin.post(
        "/api/v1/import", content=b'{"kind": "organization", "external_id": "o3", "name": "A"}\n{oops\n'
    )
    assert assert_error(broken, 422, "import_error")["line"] == 2
    invalid = await api.admin.post("/api/v1/import", content=_lines({"kind": "deal", "external_id": "d3"}))
    assert "title" in assert_error(invalid, 422, "import_error")["detail"]
    nested = await api.admin.post("/api/v1/import", content=b"[" * 100_000)
    assert assert_error(nested, 422, "import_error")["line"] == 1


async def test_import_is_restricted_to_the_callers_company(api: Api) -> None:
    foreign = _lines({"kind": "organization", "company": "Globex", "external_id": "o1", "name": "Sneaky"})
    assert_error(await api.admin.post("/api/v1/import", content=foreign), 422, "import_error")
    by_id = _lines(
        {"kind": "organization", "company": api.world.other_company_id, "external_id": "o1", "name": "X"}
    )
    assert_error(await api.admin.post("/api/v1/import", content=by_id), 422, "import_error")
    assert_error(await api.outsider.get("/api/v1/organizations/o1"), 404, "not_found")
    assert_error(await api.owner.post("/api/v1/import", content=b""), 403, "forbidden")
    empty = await api.admin.post("/api/v1/import", content=b"\n\n")
    assert empty.json() == {"created": 0, "updated": 0, "total": 0}


async def test_oversized_bodies_are_refused(api: Api) -> None:
    huge = {"name": "x" * (2 * 1024 * 1024)}
    assert_error(await api.admin.put("/api/v1/organizations/o1", json=huge), 413, "payload_too_large")

    async def stream() -> object:
        for _ in range(3):
            yield b"x" * (512 * 1024)

    streamed = await api.admin.put(
        "/api/v1/organizations/o1", content=stream(), headers={"content-type": "application/json"}
    )
    assert_error(streamed, 413, "payload_too_large")
