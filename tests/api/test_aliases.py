"""Confirmed alternative sender addresses (SPEC S5, issue 11): a new alias is mailed a one-time code through
a real loopback SMTP relay (`[outbound]`), does not satisfy the sender policy over real SMTP until it is
confirmed, and is confirmed by that code (once, before it expires) or by an admin, who is recorded."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bccd.config import OutboundSettings, Settings
from bccd.store.schema import user_addresses
from tests.api.support import Api, api_for, assert_error
from tests.conftest import app_settings, copy_sqlite_template
from tests.helpers import make_mail, send, threads_of
from tests.relay import Relay, free_port

WORK = "alice@work.test"


@pytest.fixture
def relay() -> Iterator[Relay]:
    with Relay() as r:
        yield r


def _settings(url: str, outbound: dict[str, object] | None) -> Settings:
    settings = app_settings(url)
    if outbound is None:
        return settings
    return settings.model_copy(update={"outbound": OutboundSettings.model_validate(outbound)})


@pytest.fixture
async def api(relay: Relay, sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Api]:
    url = copy_sqlite_template(sqlite_template, tmp_path / "bccd.sqlite3")
    async with api_for(_settings(url, relay.outbound())) as a:
        yield a


async def _mail_from_work(api: Api) -> int:
    """Alice sends from her work address to her own Smart Bcc address over real SMTP (S5 `owner`)."""
    result = await send(api.app.smtp.port, [api.world.bcc], make_mail(sender=WORK), mail_from=WORK)
    return result.code


async def _alias_row(api: Api, address: str) -> dict[str, object]:
    async with api.app.db.read() as conn:
        found = await conn.execute(select(user_addresses).where(user_addresses.c.address == address))
        return dict(found.mappings().one())


async def test_code_is_mailed_and_the_alias_counts_only_once_confirmed(api: Api, relay: Relay) -> None:
    me = api.world.owner.id
    added = await api.owner.post(f"/api/v1/users/{me}/aliases", json={"address": " Alice@Work.TEST "})
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["address"], body["confirmed"], body["confirmation_sent"]) == (WORK, False, True)
    assert body["code_expires_at"] is not None

    [mail] = relay.to(WORK)  # the relay got it, addressed to the alias itself
    assert mail["From"] == "bccd@bccd.test" and mail["Auto-Submitted"] == "auto-generated"
    code = relay.code_for(WORK)
    row = await _alias_row(api, WORK)  # only the hash is stored (like API tokens, T2)
    assert row["confirmation_hash"] == hashlib.sha256(code.replace("-", "").encode()).hexdigest()
    assert code not in str(row) and code.replace("-", "") not in str(row)

    # Unconfirmed: neither in the user's aliases nor good enough for the sender policy, over real SMTP.
    user = (await api.owner.get(f"/api/v1/users/{me}")).json()
    assert WORK not in user["aliases"]
    assert next(a for a in user["alternative_addresses"] if a["address"] == WORK)["confirmed"] is False
    assert await _mail_from_work(api) == 550
    assert await threads_of(api.app.db, api.world.company_id) == []

    wrong = await api.owner.post(
        f"/api/v1/users/{me}/aliases/confirm", json={"address": WORK, "code": "AAAAA-AAAAA"}
    )
    assert_error(wrong, 422, "confirmation_failed")
    assert await _mail_from_work(api) == 550

    typed = code.lower().replace("-", " ")  # typing is forgiving: case, spaces and dashes do not matter
    confirmed = await api.owner.post(
        f"/api/v1/users/{me}/aliases/confirm", json={"address": WORK, "code": typed}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["confirmed"], confirmed.json()["confirmed_by"]) == (True, "code")
    assert confirmed.json()["confirmed_at"] is not None and confirmed.json()["code_expires_at"] is None
    assert (await _alias_row(api, WORK))["confirmation_hash"] is None
    assert WORK in (await api.owner.get("/api/v1/me")).json()["aliases"]

    assert await _mail_from_work(api) == 250  # now S5 counts it
    assert len(await threads_of(api.app.db, api.world.company_id)) == 1
    again = await api.owner.post(f"/api/v1/users/{me}/aliases/confirm", json={"address": WORK, "code": code})
    assert_error(again, 409, "conflict")  # the code worked once


async def test_expired_code_is_refused_and_a_new_code_replaces_the_old(api: Api, relay: Relay) -> None:
    me = api.world.owner.id
    assert (await api.owner.post(f"/api/v1/users/{me}/aliases", json={"address": WORK})).status_code == 201
    first = relay.code_for(WORK)
    async with api.app.db.write() as conn:
        await conn.execute(
            update(user_addresses)
            .where(user_addresses.c.address == WORK)
            .values(confirmation_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    confirm = f"/api/v1/users/{me}/aliases/confirm"
    expired = await api.owner.post(confirm, json={"address": WORK, "code": first})
    assert_error(expired, 422, "confirmation_failed")
    assert "expired" in expired.json()["detail"]
    assert await _mail_from_work(api) == 550

    # Adding the pending address again mails a new code; the old one no longer works.
    resent = await api.owner.post(f"/api/v1/users/{me}/aliases", json={"address": WORK})
    assert resent.status_code == 201 and resent.json()["confirmation_sent"] is True
    second = relay.code_for(WORK)
    assert len(relay.to(WORK)) == 2 and second != first
    old = await api.owner.post(confirm, json={"address": WORK, "code": first})
    assert_error(old, 422, "confirmation_failed")
    ok = await api.owner.post(confirm, json={"address": WORK, "code": second})
    assert ok.status_code == 200 and ok.json()["confirmed"] is True


async def test_admin_confirms_on_the_users_behalf_and_is_recorded(api: Api, relay: Relay) -> None:
    me = api.world.owner.id
    assert (await api.owner.post(f"/api/v1/users/{me}/aliases", json={"address": WORK})).status_code == 201
    # Without a code only an admin may confirm; another company's admin does not even see the user (T1).
    confirm = f"/api/v1/users/{me}/aliases/confirm"
    assert_error(await api.owner.post(confirm, json={"address": WORK}), 403, "forbidden")
    assert_error(await api.outsider.post(confirm, json={"address": WORK}), 404, "not_found")
    other = await api.colleague.post(f"/api/v1/users/{me}/aliases", json={"address": "x@work.test"})
    assert_error(other, 403, "forbidden")  # a colleague may not add addresses to Alice
    done = await api.admin.post(confirm, json={"address": WORK})
    assert done.status_code == 200, done.text
    assert done.json()["confirmed_by"] == f"user:{api.world.admin.id}" and done.json()["confirmed_at"]
    listed = (await api.owner.get(f"/api/v1/users/{me}/aliases")).json()
    assert {a["address"]: a["confirmed_by"] for a in listed}[WORK] == f"user:{api.world.admin.id}"
    row = await _alias_row(api, WORK)
    assert row["confirmed_by"] == f"user:{api.world.admin.id}" and row["confirmed_at"] is not None
    assert await _mail_from_work(api) == 250


async def test_replacing_the_list_mails_only_new_addresses(api: Api, relay: Relay) -> None:
    me = api.world.owner.id
    patched = await api.admin.patch(f"/api/v1/users/{me}", json={"aliases": ["alice@home.test", WORK]})
    assert patched.status_code == 200, patched.text
    states = {a["address"]: a["confirmed"] for a in patched.json()["alternative_addresses"]}
    assert states == {"alice@home.test": True, WORK: False}  # the kept one stays confirmed
    assert patched.json()["aliases"] == ["alice@home.test"]
    assert len(relay.to(WORK)) == 1 and relay.to("alice@home.test") == []
    code = relay.code_for(WORK)
    ok = await api.owner.post(f"/api/v1/users/{me}/aliases/confirm", json={"address": WORK, "code": code})
    assert ok.status_code == 200


async def test_without_a_working_relay_nothing_is_sent(sqlite_template: Path, tmp_path: Path) -> None:
    dead = {"host": "127.0.0.1", "port": free_port(), "starttls": False}  # nothing listens there
    for name, outbound in (("none", None), ("dead", dead)):
        url = copy_sqlite_template(sqlite_template, tmp_path / f"{name}.sqlite3")
        async with api_for(_settings(url, outbound)) as api:
            me = api.world.owner.id
            added = await api.owner.post(f"/api/v1/users/{me}/aliases", json={"address": WORK})
            assert added.status_code == 201, added.text
            assert (added.json()["confirmed"], added.json()["confirmation_sent"]) == (False, False), name
            assert await _mail_from_work(api) == 550
