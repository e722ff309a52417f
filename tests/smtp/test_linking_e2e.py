"""SPEC L1–L11 through the real SMTP server on loopback: mail in, thread stored, decision checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bccd.app import BccdApp
from bccd.directory_models import DealIn
from bccd.store.directory import upsert_item
from bccd.store.users import update_user
from tests.conftest import AppFactory
from tests.helpers import (
    BCC_DOMAIN,
    World,
    add_item,
    add_org,
    add_person,
    make_mail,
    only_thread,
    seed_world,
    send,
    thread,
    threads_of,
)


async def _setup(make_app: AppFactory) -> tuple[BccdApp, World]:
    app = await make_app()
    world = await seed_world(app.db)
    await add_org(app.db, world.company_id, "o-client", "Client Corp")
    await add_person(app.db, world.company_id, "p-carol", "Carol", ["carol@client.test"], org="o-client")
    await add_person(app.db, world.company_id, "p-dave", "Dave", ["dave@other.test", "dave@alt.test"])
    await add_person(app.db, world.company_id, "p-erin", "Erin", ["erin@erin.test"])
    return app, world


async def _deliver(app: BccdApp, world: World, raw: bytes, rcpt: str | None = None) -> dict[str, object]:
    result = await send(app.smtp.port, [rcpt or world.bcc], raw)
    assert result.code == 250, result
    found = await threads_of(app.db, world.company_id)
    return await thread(app.db, found[0]["id"])


class TestL1PersonsAndOrganizations:
    async def test_matching_person_and_their_organization_are_linked(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        t = await _deliver(app, world, make_mail(to="Carol <CAROL@Client.Test>"))
        assert t["persons"] == ["p-carol"]
        assert t["organizations"] == ["o-client"]
        parts = {p["address"]: p for p in t["participants"]}  # type: ignore[attr-defined]
        assert parts["carol@client.test"]["person"] == "p-carol"
        assert "alice@acme.test" not in parts  # the owner is never a participant (§3)
        assert not any(a.endswith("@" + BCC_DOMAIN) for a in parts)

    async def test_persons_link_even_with_autolink_off(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        async with app.db.write() as conn:
            await update_user(conn, world.owner.id, autolink=False)
        await add_item(app.db, world.company_id, "deal", "d1", person="p-carol")
        t = await _deliver(app, world, make_mail())
        assert t["persons"] == ["p-carol"]
        assert t["item"] is None
        assert t["decision"]["reason"] == "autolink_disabled"  # type: ignore[index]

    async def test_no_matching_person(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        t = await _deliver(app, world, make_mail(to="stranger@nowhere.test"))
        assert t["persons"] == [] and t["item"] is None
        assert t["decision"]["reason"] == "no_matching_person"  # type: ignore[index]

    async def test_never_log_addresses_are_not_participants(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        t = await _deliver(app, world, make_mail(cc="robot@mail.noreply.test, carol@client.test"))
        addresses = [p["address"] for p in t["participants"]]  # type: ignore[attr-defined]
        assert "robot@mail.noreply.test" not in addresses and "carol@client.test" in addresses


class TestL2Autolink:
    async def test_autolink_off_keeps_item_unlinked(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "d1", person="p-carol")
        async with app.db.write() as conn:
            await update_user(conn, world.owner.id, autolink=False)
        t = await _deliver(app, world, make_mail())
        assert t["item"] is None
        assert t["decision"]["rule"] == "L2"  # type: ignore[index]


class TestL3L6SingleCandidate:
    async def test_contact_person_with_one_open_deal_links_it(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "d1", person="p-carol")
        t = await _deliver(app, world, make_mail())
        assert t["item"] == {"type": "deal", "id": "d1"}
        assert t["decision"] == {  # L11: the decision is recorded with its rule and candidates
            "outcome": "linked",
            "reason": "linked",
            "rule": "L6",
            "candidates": [{"type": "deal", "id": "d1"}],
        }
        assert t["history"][0]["actor"] == "bccd"  # type: ignore[index]

    async def test_deal_participant_counts_as_candidate(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "d2", person="p-erin", participants=["p-dave"])
        t = await _deliver(app, world, make_mail(to="dave@alt.test"))
        assert t["item"] == {"type": "deal", "id": "d2"}

    async def test_single_open_lead_and_project_link_too(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "project", "pr1", person="p-dave")
        t = await _deliver(app, world, make_mail(to="dave@other.test"))
        assert t["item"] == {"type": "project", "id": "pr1"}


class TestL4OpenOnly:
    async def test_only_closed_items(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "won", person="p-carol", status="won")
        await add_item(app.db, world.company_id, "lead", "arch", person="p-carol", status="archived")
        t = await _deliver(app, world, make_mail())
        assert t["item"] is None
        assert t["decision"]["reason"] == "only_closed_items"  # type: ignore[index]

    async def test_mail_after_deal_closed_does_not_link(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "d1", person="p-carol")
        first = await _deliver(app, world, make_mail(subject="first"))
        assert first["item"] == {"type": "deal", "id": "d1"}
        await add_item(app.db, world.company_id, "deal", "d1", person="p-carol", status="lost")
        second = await _deliver(app, world, make_mail(subject="second"))
        assert second["item"] is None
        assert second["decision"]["reason"] == "only_closed_items"  # type: ignore[index]
        assert (await thread(app.db, int(first["id"])))["item"] == {"type": "deal", "id": "d1"}  # type: ignore[call-overload]


class TestL5NoRetroactiveLinking:
    async def test_item_created_after_thread_is_not_linked(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        before = await _deliver(app, world, make_mail(subject="before"))
        assert before["decision"]["reason"] == "no_open_items"  # type: ignore[index]
        await add_item(app.db, world.company_id, "deal", "late", person="p-carol", created_at=None)
        # Creating the item never links the thread that already exists.
        assert (await thread(app.db, int(before["id"])))["item"] is None  # type: ignore[call-overload]

    async def test_item_dated_after_acceptance_is_not_a_candidate(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        future = datetime.now(UTC) + timedelta(days=1)
        await add_item(app.db, world.company_id, "deal", "future", person="p-carol", created_at=future)
        t = await _deliver(app, world, make_mail())
        assert t["item"] is None
        assert t["decision"]["reason"] == "items_newer_than_thread"  # type: ignore[index]


class TestL7Ambiguous:
    async def test_one_contact_two_open_items(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "dA", person="p-carol")
        await add_item(app.db, world.company_id, "lead", "lB", person="p-carol")
        t = await _deliver(app, world, make_mail())
        assert t["item"] is None
        assert t["decision"]["reason"] == "ambiguous"  # type: ignore[index]
        assert t["decision"]["candidates"] == [{"type": "deal", "id": "dA"}, {"type": "lead", "id": "lB"}]  # type: ignore[index]

    async def test_two_participants_with_different_open_items(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "dC", person="p-carol")
        await add_item(app.db, world.company_id, "deal", "dD", person="p-dave")
        t = await _deliver(app, world, make_mail(to="carol@client.test, dave@other.test"))
        assert t["item"] is None and t["decision"]["rule"] == "L7"  # type: ignore[index]


class TestL8ManyRecipients:
    async def test_exactly_one_open_item_among_many_recipients_links(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "dD", person="p-dave")
        await add_item(app.db, world.company_id, "deal", "old", person="p-carol", status="won")
        t = await _deliver(
            app, world, make_mail(to="carol@client.test, dave@other.test", cc="erin@erin.test, x@y.test")
        )
        assert t["item"] == {"type": "deal", "id": "dD"}
        assert t["persons"] == ["p-carol", "p-dave", "p-erin"]

    async def test_no_recipient_has_an_open_item(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        t = await _deliver(app, world, make_mail(to="carol@client.test, dave@other.test, erin@erin.test"))
        assert t["item"] is None and t["decision"]["reason"] == "no_open_items"  # type: ignore[index]


class TestL9OneItem:
    async def test_database_holds_one_item_per_thread(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "d1", person="p-carol")
        t = await _deliver(app, world, make_mail())
        assert isinstance(t["item"], dict) and set(t["item"]) == {"type", "id"}


class TestL10ExplicitTarget:
    async def test_plus_tag_links_closed_item_directly(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "d9", person="p-dave", status="won")
        await add_item(app.db, world.company_id, "deal", "d1", person="p-carol")
        local = world.owner.smart_bcc_local
        t = await _deliver(app, world, make_mail(), rcpt=f"{local}+deal-d9@{BCC_DOMAIN}")
        assert t["item"] == {"type": "deal", "id": "d9"}
        assert t["decision"]["reason"] == "explicit_target" and t["decision"]["rule"] == "L10"  # type: ignore[index]

    async def test_unknown_target_falls_back_and_says_so(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "d1", person="p-carol")
        local = world.owner.smart_bcc_local
        t = await _deliver(app, world, make_mail(), rcpt=f"{local}+deal-nope@{BCC_DOMAIN}")
        assert t["item"] == {"type": "deal", "id": "d1"}
        assert t["decision"]["reason"] == "target_not_found"  # type: ignore[index]
        assert t["decision"]["fallback_reason"] == "linked"  # type: ignore[index]

    async def test_other_companys_item_is_not_a_target(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        async with app.db.write() as conn:
            await upsert_item(conn, world.other_company_id, "deal", "foreign", DealIn(title="Globex deal"))
        local = world.owner.smart_bcc_local
        t = await _deliver(app, world, make_mail(), rcpt=f"{local}+deal-foreign@{BCC_DOMAIN}")
        assert t["item"] is None
        assert t["decision"]["reason"] == "target_not_found"  # type: ignore[index]


class TestOneThreadPerOwner:
    async def test_two_owners_in_one_transaction_get_two_threads(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await add_item(app.db, world.company_id, "deal", "d1", person="p-carol")
        bob_bcc = f"{world.colleague.smart_bcc_local}@{BCC_DOMAIN}"
        raw = make_mail(sender="Alice <alice@acme.test>", cc="bob@acme.test")
        await _set_any_policy(app, world)
        result = await send(app.smtp.port, [world.bcc, bob_bcc], raw)
        assert result.code == 250
        found = await threads_of(app.db, world.company_id)
        assert sorted(t["owner"] for t in found) == sorted([world.owner.id, world.colleague.id])
        for summary in found:
            t = await thread(app.db, summary["id"])
            owner_addr = "alice@acme.test" if summary["owner"] == world.owner.id else "bob@acme.test"
            assert owner_addr not in [p["address"] for p in t["participants"]]
            assert t["item"] == {"type": "deal", "id": "d1"}

    async def test_only_thread_helper_sees_one(self, make_app: AppFactory) -> None:
        app, world = await _setup(make_app)
        await send(app.smtp.port, [world.bcc], make_mail())
        t = await only_thread(app.db, world.company_id)
        assert t["owner"] == world.owner.id


async def _set_any_policy(app: BccdApp, world: World) -> None:
    from tests.helpers import set_policy

    await set_policy(app.db, world.company_id, "company")
