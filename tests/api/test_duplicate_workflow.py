"""The core issue's duplicate workflow, driven through the API (SPEC L7, M2, M7, F3).

A person with two open deals; the Bcc'd mail stays unlinked with reason `ambiguous` and both candidates;
linked by hand to deal A; the same mail forwarded becomes a second thread, linked by hand to deal B;
each deal lists its own thread.
"""

from __future__ import annotations

from tests.api.support import Api, assert_error
from tests.helpers import forward_as_attachment, make_mail, send


async def test_duplicate_workflow_through_the_api(api: Api) -> None:
    admin, owner = api.admin, api.owner
    # The CRM syncs its directory.
    assert (await admin.put("/api/v1/organizations/o1", json={"name": "Client Corp"})).status_code == 201
    carol = {"name": "Carol", "emails": ["carol@client.test"], "organization": "o1"}
    assert (await admin.put("/api/v1/persons/p1", json=carol)).status_code == 201
    old = "2020-01-01T00:00:00Z"
    for deal in ("A", "B"):
        body = {"title": f"Deal {deal}", "person": "p1", "created_at": old}
        assert (await admin.put(f"/api/v1/deals/{deal}", json=body)).status_code == 201

    # Alice Bcc's her Smart Bcc address on a mail to Carol.
    sent = make_mail(to="Carol <carol@client.test>", subject="Offer")
    assert (await send(api.app.smtp.port, [api.world.bcc], sent)).code == 250

    # It waits in her unresolved view, with the reason and both candidates (L7, M7).
    unresolved = (await owner.get("/api/v1/threads?owner=me&unlinked=true")).json()["threads"]
    assert len(unresolved) == 1
    first = unresolved[0]
    assert first["item"] is None
    assert first["decision"]["reason"] == "ambiguous"
    assert first["decision"]["candidates"] == [{"type": "deal", "id": "A"}, {"type": "deal", "id": "B"}]
    assert first["persons"] == ["p1"] and first["organizations"] == ["o1"]

    # She searches for the deal and links the thread to deal A by hand (M6, M2).
    hits = (await owner.get("/api/v1/search?q=deal&types=deal")).json()["results"]
    assert [h["id"] for h in hits] == ["A", "B"]
    linked = await owner.put(f"/api/v1/threads/{first['id']}/item", json={"type": "deal", "id": "A"})
    assert linked.status_code == 200 and linked.json()["result"] == "linked"
    # Deal B too? A thread has one item (L9): the API says to forward the mail to duplicate it.
    refused = await owner.put(f"/api/v1/threads/{first['id']}/item", json={"type": "deal", "id": "B"})
    assert "forward" in assert_error(refused, 409, "already_linked")["detail"]

    # She forwards the same mail to her Smart Bcc address: a second, independent thread (F3).
    forward = forward_as_attachment(sent, to=api.world.bcc)
    assert (await send(api.app.smtp.port, [api.world.bcc], forward)).code == 250
    unresolved = (await owner.get("/api/v1/threads?owner=me&unlinked=true")).json()["threads"]
    assert len(unresolved) == 1
    second = unresolved[0]
    assert second["id"] != first["id"]
    assert second["subject"] == "Offer"  # F2: the original's subject
    assert second["decision"]["reason"] == "ambiguous"
    linked_b = await owner.put(f"/api/v1/threads/{second['id']}/item", json={"type": "deal", "id": "B"})
    assert linked_b.json()["thread"]["item"] == {"type": "deal", "id": "B"}

    # Each deal lists its own thread: the "email threads" section of each deal's page.
    on_a = (await owner.get("/api/v1/deals/A/threads")).json()["threads"]
    on_b = (await owner.get("/api/v1/deals/B/threads")).json()["threads"]
    assert [t["id"] for t in on_a] == [first["id"]]
    assert [t["id"] for t in on_b] == [second["id"]]
    assert (await owner.get("/api/v1/threads?owner=me&unlinked=true")).json()["threads"] == []
    # M5: each manual link is in its thread's history, with Alice as the actor.
    for tid, deal in ((first["id"], "A"), (second["id"], "B")):
        history = (await owner.get(f"/api/v1/threads/{tid}")).json()["history"]
        assert history[-1]["action"] == "link_item"
        assert history[-1]["actor"] == f"user:{api.world.owner.id}"
        assert history[-1]["after"] == {"item": {"type": "deal", "id": deal}}
