"""SPEC F3 / M2 end to end: one mail, two deals — the forwarded duplicate gets linked to the second deal."""

from __future__ import annotations

import pytest

from bccd.services.links import link_item
from bccd.store.directory import item_internal_id
from bccd.store.threads import AlreadyLinked
from tests.conftest import AppFactory
from tests.helpers import (
    add_item,
    add_org,
    add_person,
    forward_as_attachment,
    make_mail,
    seed_world,
    send,
    thread,
    threads_of,
)


async def test_f3_duplicate_workflow(make_app: AppFactory) -> None:
    app = await make_app()
    world = await seed_world(app.db)
    await add_org(app.db, world.company_id, "o1", "Client Corp")
    await add_person(app.db, world.company_id, "p1", "Carol", ["carol@client.test"], org="o1")
    await add_item(app.db, world.company_id, "deal", "A", person="p1")
    await add_item(app.db, world.company_id, "deal", "B", person="p1")

    original = make_mail(sender="Carol <carol@client.test>", to="Alice <alice@acme.test>", subject="Offer")
    # Alice Bcc's herself on a reply-like mail to Carol: ambiguous, both deals are candidates (L7).
    sent = make_mail(to="Carol <carol@client.test>", subject="Re: Offer")
    assert (await send(app.smtp.port, [world.bcc], sent)).code == 250
    [first_summary] = await threads_of(app.db, world.company_id)
    first = await thread(app.db, first_summary["id"])
    assert first["item"] is None
    assert first["decision"]["reason"] == "ambiguous"
    assert first["decision"]["candidates"] == [{"type": "deal", "id": "A"}, {"type": "deal", "id": "B"}]

    # Linked by hand to deal A (M2), by its owner.
    result, linked = await link_item(app.db, first["id"], "deal", "A", actor=world.owner)
    assert result == "linked" and linked.as_json()["item"] == {"type": "deal", "id": "A"}
    with pytest.raises(AlreadyLinked):  # a second deal needs the duplicate, not a second link
        await link_item(app.db, first["id"], "deal", "B", actor=world.owner)

    # The same mail forwarded to the Smart Bcc address: a new, independent thread (F3).
    fwd = forward_as_attachment(sent, to=world.bcc)
    assert (await send(app.smtp.port, [world.bcc], fwd)).code == 250
    summaries = await threads_of(app.db, world.company_id)
    assert len(summaries) == 2
    second_id = max(s["id"] for s in summaries)
    second = await thread(app.db, second_id)
    assert second["id"] != first["id"] and second["item"] is None
    assert second["subject"] == "Re: Offer"  # F2: the original's subject, without the forward prefix
    assert second["decision"]["reason"] == "ambiguous"
    await link_item(app.db, second_id, "deal", "B", actor=world.owner)

    # Each deal lists its own thread.
    async with app.db.read() as conn:
        deal_a = await item_internal_id(conn, world.company_id, "deal", "A")
        deal_b = await item_internal_id(conn, world.company_id, "deal", "B")
    on_a = await threads_of(app.db, world.company_id, item_id=deal_a)
    on_b = await threads_of(app.db, world.company_id, item_id=deal_b)
    assert [t["id"] for t in on_a] == [first["id"]]
    assert [t["id"] for t in on_b] == [second_id]
    # M5: both manual links are in the history with their actor.
    assert [h["action"] for h in (await thread(app.db, first["id"]))["history"]] == ["auto_link", "link_item"]
    assert (await thread(app.db, second_id))["history"][-1]["actor"] == f"user:{world.owner.id}"
    del original
