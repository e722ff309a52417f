"""Threads over the API: listings, filters, pagination, the thread JSON, raw bytes, manual linking (M1–M5)."""

from __future__ import annotations

import asyncio
from typing import Any

from bccd.store.thread_views import get_raw, get_thread
from tests.api.support import Api, assert_error
from tests.helpers import add_item, add_org, add_person


async def _directory(api: Api) -> None:
    w = api.world
    await add_org(api.app.db, w.company_id, "o1", "Client Corp")
    await add_person(api.app.db, w.company_id, "p1", "Carol", ["carol@client.test"], org="o1")
    await add_person(api.app.db, w.company_id, "p2", "Dave", ["dave@other.test"])
    await add_item(api.app.db, w.company_id, "deal", "A", person="p1")
    await add_item(api.app.db, w.company_id, "deal", "B", person="p1")
    await add_item(api.app.db, w.company_id, "lead", "L", person="p2")


def _ids(page: dict[str, Any]) -> list[int]:
    return [t["id"] for t in page["threads"]]


async def test_thread_json_is_the_clis_and_raw_is_byte_identical(api: Api) -> None:
    await _directory(api)
    thread = await api.mail_thread(subject="Offer", cc="Dave <dave@other.test>")
    async with api.app.db.read() as conn:
        # the same JSON `bccd threads show --json` prints: the typed read model's, key for key
        assert thread == (await get_thread(conn, thread["id"])).as_json()
        stored = await get_raw(conn, thread["id"])
    assert thread["subject"] == "Offer" and thread["owner"] == api.world.owner.id
    assert thread["visibility"] == "private"
    assert {p["address"] for p in thread["participants"]} == {"carol@client.test", "dave@other.test"}
    assert thread["history"][0]["actor"] == "bccd"

    raw = await api.owner.get(f"/api/v1/threads/{thread['id']}/raw")
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.content == stored and b"Subject: Offer" in raw.content


async def test_unresolved_view_lists_unlinked_threads_with_their_reason(api: Api) -> None:
    await _directory(api)
    ambiguous = await api.mail_thread(subject="one")  # Carol has deals A and B: L7
    linked = await api.mail_thread(to="Dave <dave@other.test>", subject="two")  # Dave: lead L only (L6)
    nobody = await api.mail_thread(to="stranger@nowhere.test", subject="three")
    assert linked["item"] == {"type": "lead", "id": "L"}

    page = (await api.owner.get("/api/v1/threads?owner=me&unlinked=true")).json()
    assert _ids(page) == [nobody["id"], ambiguous["id"]]  # newest first, linked one left out
    reasons = {t["id"]: t["decision"] for t in page["threads"]}
    assert reasons[nobody["id"]]["reason"] == "no_matching_person"
    assert reasons[ambiguous["id"]]["reason"] == "ambiguous"
    assert reasons[ambiguous["id"]]["candidates"] == [
        {"type": "deal", "id": "A"},
        {"type": "deal", "id": "B"},
    ]


async def test_filters_and_cursor_pagination(api: Api) -> None:
    await _directory(api)
    made = [await api.mail_thread(subject=f"mail {i}") for i in range(5)]
    dave = await api.mail_thread(to="Dave <dave@other.test>", subject="dave")
    newest_first = [dave["id"], *[t["id"] for t in reversed(made)]]

    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        url = "/api/v1/threads?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.admin.get(url)).json()
        seen += _ids(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first and pages == 4  # the last page is empty: 6 threads, pages of 2

    def listing(query: str) -> str:
        return "/api/v1/threads?" + query

    assert _ids((await api.admin.get(listing("person=p2"))).json()) == [dave["id"]]
    assert _ids((await api.admin.get(listing("organization=o1"))).json()) == [t["id"] for t in reversed(made)]
    assert _ids((await api.admin.get(listing("item_type=lead&item_id=L"))).json()) == [dave["id"]]
    assert _ids((await api.admin.get(listing(f"owner={api.world.owner.id}&limit=1"))).json()) == [dave["id"]]
    assert _ids((await api.admin.get(listing("owner=me"))).json()) == []  # the admin owns no thread
    assert_error(await api.admin.get(listing("item_type=deal")), 422, "validation_error")
    assert_error(await api.admin.get(listing("person=ghost")), 404, "not_found")
    assert_error(await api.admin.get(listing("cursor=abc")), 422, "validation_error")
    assert_error(await api.admin.get(listing("limit=0")), 422, "validation_error")
    assert_error(await api.admin.get(listing("owner=99999999999999999999")), 422, "validation_error")


async def test_link_conflict_replace_and_unlink(api: Api) -> None:
    await _directory(api)
    thread = await api.mail_thread()
    url = f"/api/v1/threads/{thread['id']}/item"
    linked = await api.owner.put(url, json={"type": "deal", "id": "A"})
    assert linked.status_code == 200
    assert linked.json()["result"] == "linked"
    assert linked.json()["thread"]["item"] == {"type": "deal", "id": "A"}

    same = await api.owner.put(url, json={"type": "deal", "id": "A"})  # M2: same item again
    assert same.status_code == 200 and same.json()["result"] == "unchanged"

    other = await api.owner.put(url, json={"type": "deal", "id": "B"})
    body = assert_error(other, 409, "already_linked")
    assert "forward" in body["detail"] and "Smart Bcc" in body["detail"]
    assert body["current_item"] == {"type": "deal", "id": "A"}

    replaced = await api.owner.put(url + "?replace=true", json={"type": "deal", "id": "B"})
    assert replaced.json()["result"] == "replaced" and replaced.json()["thread"]["item"]["id"] == "B"

    # M4: any item of the company, whatever its status.
    await add_item(api.app.db, api.world.company_id, "project", "closed", status="completed")
    closed = await api.owner.put(url + "?replace=true", json={"type": "project", "id": "closed"})
    assert closed.json()["thread"]["item"] == {"type": "project", "id": "closed"}

    unlinked = await api.owner.delete(url)
    assert unlinked.json()["result"] == "unlinked" and unlinked.json()["thread"]["item"] is None
    again = await api.owner.delete(url)
    assert again.status_code == 200 and again.json()["result"] == "unchanged"

    history = (await api.owner.get(f"/api/v1/threads/{thread['id']}")).json()["history"]
    actor = f"user:{api.world.owner.id}"
    assert [(h["action"], h["actor"]) for h in history] == [
        ("auto_link", "bccd"),
        ("link_item", actor),
        ("replace_item", actor),
        ("replace_item", actor),
        ("unlink_item", actor),
    ]
    assert history[2]["before"] == {"item": {"type": "deal", "id": "A"}}
    assert history[2]["after"] == {"item": {"type": "deal", "id": "B"}}


async def test_link_errors(api: Api) -> None:
    await _directory(api)
    thread = await api.mail_thread()
    url = f"/api/v1/threads/{thread['id']}/item"
    assert_error(await api.owner.put(url, json={"type": "deal", "id": "ghost"}), 404, "not_found")
    bad_type = await api.owner.put(url, json={"type": "person", "id": "p1"})
    assert assert_error(bad_type, 422, "validation_error")["field"] == "type"
    assert (
        assert_error(await api.owner.put(url, json={"type": "deal"}), 422, "validation_error")["field"]
        == "id"
    )
    assert_error(
        await api.owner.put("/api/v1/threads/999999/item", json={"type": "deal", "id": "A"}), 404, "not_found"
    )
    assert_error(await api.owner.get("/api/v1/threads/0"), 422, "validation_error")
    assert_error(await api.owner.get("/api/v1/threads/abc"), 422, "validation_error")
    # A deal of the other company is not found (T1), even with the same external id.
    await add_item(api.app.db, api.world.other_company_id, "deal", "theirs")
    assert_error(await api.owner.put(url, json={"type": "deal", "id": "theirs"}), 404, "not_found")


async def test_persons_and_organizations_by_hand(api: Api) -> None:
    await _directory(api)
    thread = await api.mail_thread(to="stranger@nowhere.test")
    tid = thread["id"]
    assert thread["persons"] == [] and thread["organizations"] == []

    put = await api.owner.put(f"/api/v1/threads/{tid}/persons/p2")
    assert put.json()["result"] == "linked" and put.json()["thread"]["persons"] == ["p2"]
    assert (await api.owner.put(f"/api/v1/threads/{tid}/persons/p2")).json()["result"] == "unchanged"
    org = await api.admin.put(f"/api/v1/threads/{tid}/organizations/o1")
    assert org.json()["thread"]["organizations"] == ["o1"]
    assert_error(await api.owner.put(f"/api/v1/threads/{tid}/persons/ghost"), 404, "not_found")

    by_person = (await api.owner.get("/api/v1/persons/p2/threads")).json()
    assert _ids(by_person) == [tid]
    dropped = await api.owner.delete(f"/api/v1/threads/{tid}/persons/p2")
    assert dropped.json()["result"] == "unlinked" and dropped.json()["thread"]["persons"] == []
    assert (await api.owner.delete(f"/api/v1/threads/{tid}/persons/p2")).json()["result"] == "unchanged"
    assert (await api.owner.delete(f"/api/v1/threads/{tid}/organizations/o1")).json()["result"] == "unlinked"

    history = (await api.owner.get(f"/api/v1/threads/{tid}")).json()["history"]
    assert [h["action"] for h in history] == [
        "auto_link",
        "link_person",
        "link_organization",
        "unlink_person",
        "unlink_organization",
    ]
    assert history[2]["actor"] == f"user:{api.world.admin.id}"


async def test_item_side_lists_the_records_threads(api: Api) -> None:
    await _directory(api)
    first = await api.mail_thread(subject="first")
    second = await api.mail_thread(subject="second")
    await api.owner.put(f"/api/v1/threads/{first['id']}/item", json={"type": "deal", "id": "A"})
    await api.owner.put(f"/api/v1/threads/{second['id']}/item", json={"type": "deal", "id": "A"})
    on_a = (await api.owner.get("/api/v1/deals/A/threads")).json()
    assert _ids(on_a) == [second["id"], first["id"]] and on_a["next_cursor"] is None
    assert (await api.owner.get("/api/v1/deals/B/threads")).json()["threads"] == []
    assert _ids((await api.owner.get("/api/v1/organizations/o1/threads")).json()) == [
        second["id"],
        first["id"],
    ]
    assert_error(await api.owner.get("/api/v1/leads/A/threads"), 404, "not_found")  # A is a deal
    assert_error(await api.outsider.get("/api/v1/deals/A/threads"), 404, "not_found")  # T1
    # Privacy (§3): a colleague sees the deal, but not the owner's private threads on it.
    assert (await api.colleague.get("/api/v1/deals/A/threads")).json()["threads"] == []
    paged = (await api.admin.get("/api/v1/deals/A/threads?limit=1")).json()
    assert _ids(paged) == [second["id"]] and paged["next_cursor"] == str(second["id"])
    rest = (await api.admin.get(f"/api/v1/deals/A/threads?limit=1&cursor={paged['next_cursor']}")).json()
    assert _ids(rest) == [first["id"]]


async def test_sharing_makes_a_thread_readable_by_the_company(api: Api) -> None:
    thread = await api.mail_thread()
    url = f"/api/v1/threads/{thread['id']}"
    assert_error(await api.colleague.get(url), 403, "forbidden")
    assert (await api.colleague.get("/api/v1/threads")).json()["threads"] == []

    shared = await api.owner.patch(url, json={"visibility": "shared"})
    assert shared.status_code == 200 and shared.json()["visibility"] == "shared"
    assert shared.json()["history"][-1]["action"] == "visibility"
    assert (await api.colleague.get(url)).status_code == 200
    assert (await api.colleague.get(url + "/raw")).status_code == 200
    assert _ids((await api.colleague.get("/api/v1/threads")).json()) == [thread["id"]]
    # Shared is readable, not writable: linking stays with the owner and admins (M1).
    assert_error(await api.colleague.delete(url + "/item"), 403, "forbidden")

    assert (await api.owner.patch(url, json={"visibility": "private"})).json()["visibility"] == "private"
    assert_error(await api.colleague.get(url), 403, "forbidden")
    bad = await api.owner.patch(url, json={"visibility": "public"})
    assert assert_error(bad, 422, "validation_error")["field"] == "visibility"


async def test_racing_links_to_two_items_one_wins(api: Api) -> None:
    """L9/M2 under concurrency: the database decides; the loser gets the 409, not a silent overwrite."""
    await _directory(api)
    thread = await api.mail_thread()
    url = f"/api/v1/threads/{thread['id']}/item"
    first, second = await asyncio.gather(
        api.owner.put(url, json={"type": "deal", "id": "A"}),
        api.admin.put(url, json={"type": "deal", "id": "B"}),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 409]
    winner = first if first.status_code == 200 else second
    final = (await api.owner.get(f"/api/v1/threads/{thread['id']}")).json()
    assert final["item"] == winner.json()["thread"]["item"]
    assert [h["action"] for h in final["history"]] == ["auto_link", "link_item"]
