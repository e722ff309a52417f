"""The CRM directory copy: upserts by external id, uniqueness, the facts the linker is given (§2, L1, L3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bccd.directory_models import DealIn, LeadIn, OrganizationIn, PersonIn
from bccd.store.database import Database
from bccd.store.directory import (
    UnknownReference,
    delete_item,
    delete_organization,
    delete_person,
    get_item,
    get_organization,
    get_person,
    item_fact,
    item_internal_id,
    items_for_persons,
    persons_by_addresses,
    record_internal_id,
    upsert_item,
    upsert_organization,
    upsert_person,
)
from bccd.store.schema import item_participants, items, organizations, person_emails, persons
from bccd.store.users import NotFound
from tests.store.factories import LONG_AGO, PAULA, PETER, STRANGER, World, count


async def test_organization_upsert_is_idempotent(store_db: Database, world: World) -> None:
    async with store_db.write() as conn:
        first = await upsert_organization(conn, world.company_id, "o-9", OrganizationIn(name="Umbrella"))
        again = await upsert_organization(conn, world.company_id, "o-9", OrganizationIn(name="Umbrella Corp"))
    assert first[1] is True and again == (first[0], False)
    async with store_db.read() as conn:
        assert (await get_organization(conn, world.company_id, "o-9"))["name"] == "Umbrella Corp"
    assert await count(store_db, organizations, organizations.c.external_id == "o-9") == 1


async def test_person_upsert_replaces_fields_and_emails(store_db: Database, world: World) -> None:
    body = PersonIn(name="Quinn", emails=["Quinn@Example.org", "q@example.org"], organization="o-1")
    async with store_db.write() as conn:
        pid, created = await upsert_person(conn, world.company_id, "p-9", body)
        again = await upsert_person(conn, world.company_id, "p-9", body)
    assert created and again == (pid, False)
    async with store_db.read() as conn:
        person = await get_person(conn, world.company_id, "p-9")
    assert person["emails"] == ["q@example.org", "quinn@example.org"]
    assert person["organization"] == "o-1"
    async with store_db.write() as conn:
        await upsert_person(
            conn, world.company_id, "p-9", PersonIn(name="Quinn B", emails=["qb@example.org"])
        )
        person = await get_person(conn, world.company_id, "p-9")
    assert (person["name"], person["emails"], person["organization"]) == ("Quinn B", ["qb@example.org"], None)
    assert await count(store_db, persons, persons.c.external_id == "p-9") == 1
    assert await count(store_db, person_emails, person_emails.c.person_id == pid) == 1


async def test_external_ids_are_unique_per_company_and_kind(store_db: Database, world: World) -> None:
    async with store_db.write() as conn:
        acme = await upsert_person(conn, world.company_id, "shared", PersonIn(name="A"))
        globex = await upsert_person(conn, world.other_company_id, "shared", PersonIn(name="G"))
        deal = await upsert_item(conn, world.company_id, "deal", "7", DealIn(title="Deal 7"))
        lead = await upsert_item(conn, world.company_id, "lead", "7", LeadIn(title="Lead 7"))
        deal_again = await upsert_item(conn, world.company_id, "deal", "7", DealIn(title="Deal 7b"))
    assert acme[1] and globex[1] and acme[0] != globex[0]
    assert deal[1] and lead[1] and deal[0] != lead[0]
    assert deal_again == (deal[0], False)
    assert await count(store_db, items, items.c.external_id == "7") == 2


async def test_item_upsert_tracks_status_changes_and_participants(store_db: Database, world: World) -> None:
    async with store_db.write() as conn:
        await upsert_item(
            conn, world.company_id, "deal", "d-9", DealIn(title="T", participants=["p-1", "p-2", "p-1"])
        )
        opened = await get_item(conn, world.company_id, "deal", "d-9")
    assert opened["participants"] == ["p-1", "p-2"] and opened["status"] == "open"
    async with store_db.write() as conn:
        await upsert_item(conn, world.company_id, "deal", "d-9", DealIn(title="T", participants=["p-2"]))
        unchanged = await get_item(conn, world.company_id, "deal", "d-9")
        await upsert_item(conn, world.company_id, "deal", "d-9", DealIn(title="T2", status="lost"))
        lost = await get_item(conn, world.company_id, "deal", "d-9")
    assert unchanged["participants"] == ["p-2"]
    assert unchanged["status_changed_at"] == opened["status_changed_at"]
    assert (lost["title"], lost["status"], lost["participants"]) == ("T2", "lost", [])
    assert lost["status_changed_at"] > opened["status_changed_at"]
    item_id = world.ids["deal:d-1"]
    assert await count(store_db, item_participants, item_participants.c.item_id == item_id) == 0


async def test_item_created_at_round_trips_as_aware_utc(store_db: Database, world: World) -> None:
    async with store_db.read() as conn:
        fact = await item_fact(conn, world.company_id, "deal", "d-1")
        missing = await item_fact(conn, world.company_id, "deal", "nope")
    assert fact is not None and missing is None
    assert fact.created_at == LONG_AGO and fact.created_at.tzinfo is not None
    assert fact.person_id == world.ids["person:p-1"]


async def test_unknown_references_are_refused(store_db: Database, world: World) -> None:
    for body, kind in (
        (PersonIn(name="X", organization="o-404"), "person"),
        (DealIn(title="X", person="p-404"), "deal"),
    ):
        with pytest.raises(UnknownReference):
            async with store_db.write() as conn:
                if kind == "person":
                    assert isinstance(body, PersonIn)
                    await upsert_person(conn, world.company_id, "x", body)
                else:
                    assert isinstance(body, DealIn)
                    await upsert_item(conn, world.company_id, "deal", "x", body)
    # T1: a reference to another company's record is unknown too.
    with pytest.raises(UnknownReference):
        async with store_db.write() as conn:
            await upsert_item(conn, world.company_id, "deal", "x", DealIn(title="X", person="g-1"))
    assert await count(store_db, items, items.c.external_id == "x") == 0


async def test_deleting_records(store_db: Database, world: World) -> None:
    async with store_db.write() as conn:
        await delete_item(conn, world.company_id, "deal", "d-1")
        await delete_person(conn, world.company_id, "p-2")
        await delete_organization(conn, world.company_id, "o-1")
    async with store_db.read() as conn:
        # Items are only marked deleted (threads keep their history); persons and organizations go.
        assert (await get_item(conn, world.company_id, "deal", "d-1"))["status"] == "deleted"
        assert (await get_item(conn, world.company_id, "lead", "l-1"))["person"] is None
        assert (await get_person(conn, world.company_id, "p-1"))["organization"] is None
        with pytest.raises(NotFound):
            await get_person(conn, world.company_id, "p-2")
        with pytest.raises(NotFound):
            await record_internal_id(conn, world.company_id, "organization", "o-1")
        with pytest.raises(NotFound):
            await item_internal_id(conn, world.other_company_id, "deal", "d-1")
        assert await record_internal_id(conn, world.company_id, "deal", "d-1") == world.ids["deal:d-1"]


async def test_persons_by_addresses_stays_in_the_company(store_db: Database, world: World) -> None:
    async with store_db.write() as conn:
        await upsert_person(
            conn, world.company_id, "p-3", PersonIn(name="Pat", emails=["pat@a.example", PAULA])
        )
    async with store_db.read() as conn:
        found = await persons_by_addresses(conn, world.company_id, [PETER, PAULA, STRANGER, PETER])
        globex = await persons_by_addresses(conn, world.other_company_id, [PETER, PAULA])
        nothing = await persons_by_addresses(conn, world.company_id, [])
    by_ext = {p.external_id: p for p in found}
    assert sorted(by_ext) == ["p-1", "p-2", "p-3"]
    assert by_ext["p-1"].emails == {PETER} and by_ext["p-1"].organization_id == world.ids["organization:o-1"]
    assert by_ext["p-3"].emails == {PAULA}  # only the addresses asked about
    assert [p.external_id for p in globex] == ["g-1"]
    assert nothing == []


async def test_items_for_persons_covers_contacts_and_deal_participants(
    store_db: Database, world: World
) -> None:
    p1, p2 = world.ids["person:p-1"], world.ids["person:p-2"]
    async with store_db.write() as conn:
        await upsert_item(conn, world.company_id, "deal", "d-3", DealIn(title="Shared", participants=["p-1"]))
        await upsert_item(
            conn,
            world.company_id,
            "lead",
            "l-3",
            LeadIn(title="New", person="p-1", created_at=datetime.now(UTC)),
        )
    async with store_db.read() as conn:
        for_p1 = await items_for_persons(conn, world.company_id, [p1])
        for_p2 = await items_for_persons(conn, world.company_id, [p2, p2])
        other = await items_for_persons(conn, world.other_company_id, [p1, p2])
    assert sorted((i.type, i.external_id) for i in for_p1) == [
        ("deal", "d-1"),
        ("deal", "d-3"),
        ("lead", "l-3"),
    ]
    assert next(i for i in for_p1 if i.external_id == "d-3").participant_ids == {p1}
    # Every status and age comes back: the linker, not the query, applies L4 and L5.
    assert sorted((i.external_id, i.status) for i in for_p2) == [
        ("d-2", "won"),
        ("l-1", "open"),
        ("pr-1", "open"),
    ]
    assert other == []
