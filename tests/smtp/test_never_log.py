"""Never-log (SPEC §3, issue 11): a never-logged address is in no participant, in no stored From/To/Cc or
forwarded-header JSON, and in no thread read — also for rows stored before the entry was added. The raw
message is kept as received (docs/rules.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bccd.never_log import NeverLog, every_company_never_logs, scrub_message_values
from bccd.services.companies import update_settings
from bccd.services.threads import list_visible
from bccd.store.schema import messages
from bccd.store.users import create_user
from tests.conftest import AppFactory
from tests.helpers import BCC_DOMAIN, forward_as_attachment, make_mail, only_thread, seed_world, send

HIDDEN = "robot@mail.noreply.test"  # seed_world's company never-logs noreply.test (and its subdomains)


def _addresses(entries: list[dict[str, Any]]) -> list[str | None]:
    return [e["address"] for e in entries]


async def _stored_row(app: Any) -> dict[str, Any]:
    async with app.db.read() as conn:
        row = (await conn.execute(select(messages))).mappings().one()
    return dict(row)


def test_entries_match_addresses_domains_and_subdomains_only() -> None:
    never = NeverLog(["noreply.test", "boss@acme.test"])
    assert never.matches("x@noreply.test") and never.matches("x@mail.noreply.test")
    assert never.matches("boss@acme.test")
    assert not never.matches("x@notnoreply.test") and not never.matches("other@acme.test")
    assert not NeverLog([])
    # A message shared by two companies: the row leaves out only what both never-log.
    both = every_company_never_logs([never, NeverLog(["noreply.test"])])
    assert both("x@noreply.test") and not both("boss@acme.test")
    assert not every_company_never_logs([])("x@noreply.test")


def test_names_without_an_address_are_kept() -> None:
    values = {
        "from_addrs": [{"address": HIDDEN, "name": "Robot"}],
        "to_addrs": [],
        "cc_addrs": [],
        "forward": {"understood": True, "from": [{"address": None, "name": "Someone"}], "to": [], "cc": []},
    }
    out = scrub_message_values(values, NeverLog(["noreply.test"]).matches)
    assert out["from_addrs"] == [] and out["forward"]["from"] == [{"address": None, "name": "Someone"}]


async def test_never_logged_addresses_are_not_stored_in_the_message(make_app: AppFactory) -> None:
    app = await make_app()
    world = await seed_world(app.db)
    original = make_mail(
        sender=f"Robot <{HIDDEN}>", to="Carol <carol@client.test>", cc="news@noreply.test", subject="Offer"
    )
    raw = forward_as_attachment(original, to=f"Robot <{HIDDEN}>, Dave <dave@other.test>")
    result = await send(app.smtp.port, [world.bcc], raw)
    assert result.code == 250, result

    t = await only_thread(app.db, world.company_id)
    message = t["message"]
    assert _addresses(message["to"]) == ["dave@other.test"]
    forward = message["forward"]
    assert forward["understood"] is True
    assert _addresses(forward["from"]) == [] and _addresses(forward["cc"]) == []
    assert _addresses(forward["to"]) == ["carol@client.test"]
    parts = [p["address"] for p in t["participants"]]
    assert HIDDEN not in parts and "news@noreply.test" not in parts and "carol@client.test" in parts

    stored = await _stored_row(app)  # not only hidden on reads: the row never held them
    assert _addresses(stored["to_addrs"]) == ["dave@other.test"]
    assert stored["forward"]["from"] == [] and stored["forward"]["cc"] == []
    assert HIDDEN.encode() in stored["raw"]  # the raw message is kept as received (documented)

    # The search index holds participants only: the never-logged address finds nothing, a kept one does.
    assert await list_visible(app.db, actor=world.admin, query="robot") == []
    assert await list_visible(app.db, actor=world.admin, query="noreply") == []
    assert [t.id for t in await list_visible(app.db, actor=world.admin, query="carol")] == [t["id"]]


async def test_rows_stored_before_the_entry_are_filtered_on_read(make_app: AppFactory) -> None:
    app = await make_app()
    world = await seed_world(app.db)
    raw = make_mail(to="Carol <carol@client.test>", cc="Boss <boss@partner.test>")
    assert (await send(app.smtp.port, [world.bcc], raw)).code == 250
    before = await only_thread(app.db, world.company_id)
    assert _addresses(before["message"]["cc"]) == ["boss@partner.test"]
    assert "boss@partner.test" in [p["address"] for p in before["participants"]]

    await update_settings(app.db, world.company_id, never_log=["noreply.test", "partner.test"])
    after = await only_thread(app.db, world.company_id)
    assert after["message"]["cc"] == []
    assert "boss@partner.test" not in [p["address"] for p in after["participants"]]
    assert _addresses(after["message"]["to"]) == ["carol@client.test"]


async def test_each_company_sees_the_shared_message_through_its_own_list(make_app: AppFactory) -> None:
    app = await make_app()
    world = await seed_world(app.db)  # Acme never-logs noreply.test; Globex nothing
    async with app.db.write() as conn:
        eve = await create_user(conn, world.other_company_id, email="eve2@globex.test", name="Eve")
    await update_settings(app.db, world.other_company_id, sender_policy="any")
    raw = make_mail(to=f"Carol <carol@client.test>, {HIDDEN}")
    result = await send(app.smtp.port, [world.bcc, f"{eve.smart_bcc_local}@{BCC_DOMAIN}"], raw)
    assert result.code == 250, result

    acme = await only_thread(app.db, world.company_id)
    globex = await only_thread(app.db, world.other_company_id)
    assert _addresses(acme["message"]["to"]) == ["carol@client.test"]
    assert _addresses(globex["message"]["to"]) == ["carol@client.test", HIDDEN]
    assert HIDDEN in [p["address"] for p in globex["participants"]]
    # Only Globex needs it, so the shared row keeps it; Acme's reads hide it.
    assert _addresses((await _stored_row(app))["to_addrs"]) == ["carol@client.test", HIDDEN]
