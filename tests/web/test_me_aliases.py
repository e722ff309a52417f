"""The Me page adds a sender address and confirms it with the code mailed through a real loopback relay
(S5, issue 11); until then mail from it is refused over real SMTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bccd.api.app import create_api
from bccd.api.service import api_context
from bccd.app import BccdApp
from bccd.config import OutboundSettings
from tests.conftest import app_settings, copy_sqlite_template
from tests.helpers import World, make_mail, seed_world, send
from tests.relay import Relay
from tests.web.support import Browser, sign_in
from tests.web.test_accessibility import check_page

WORK = "alice@work.test"


@pytest.fixture
async def me(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[tuple[BccdApp, World, Browser, Relay]]:
    with Relay() as relay:
        settings = app_settings(copy_sqlite_template(sqlite_template, tmp_path / "bccd.sqlite3"))
        outbound = OutboundSettings.model_validate(relay.outbound())
        app = BccdApp(settings.model_copy(update={"outbound": outbound}))
        await app.start()
        try:
            world = await seed_world(app.db)
            transport = httpx.ASGITransport(app=create_api(api_context(app)))
            async with httpx.AsyncClient(transport=transport, base_url="http://bccd.test") as client:
                await sign_in(client, app, world.owner.id)
                yield app, world, Browser(client), relay
        finally:
            await app.stop()


async def test_add_and_confirm_a_sender_address_on_the_me_page(
    me: tuple[BccdApp, World, Browser, Relay],
) -> None:
    app, world, owner, relay = me
    added = await owner.post("/me/aliases", {"address": "Alice@Work.test"}, from_page="/me")
    assert added.status_code == 303 and added.headers["location"] == "/me?done=alias_sent"
    code = relay.code_for(WORK)
    page = await owner.page("/me?done=alias_sent")
    assert "confirmation code is on its way" in page and f"<code>{WORK}</code> —" in page
    assert "not confirmed yet" in page and code not in page
    check_page(page, "/me")  # the pending address's code form is labelled like every other control
    refused = await send(app.smtp.port, [world.bcc], make_mail(sender=WORK), mail_from=WORK)
    assert refused.code == 550

    wrong = await owner.post("/me/aliases/confirm", {"address": WORK, "code": "AAAAA-AAAAA"}, from_page="/me")
    assert wrong.headers["location"] == "/me?done=alias_failed"
    ok = await owner.post("/me/aliases/confirm", {"address": WORK, "code": code}, from_page="/me")
    assert ok.status_code == 303 and ok.headers["location"] == "/me?done=alias_confirmed"
    page = await owner.page("/me?done=alias_confirmed")
    item = re.search(r'<li id="alias-\d+"><code>alice@work.test</code>(.*?)</li>', page, re.S)
    assert item and "confirmed" in item.group(1) and "not confirmed" not in item.group(1), page
    accepted = await send(app.smtp.port, [world.bcc], make_mail(sender=WORK), mail_from=WORK)
    assert accepted.code == 250

    login = await owner.post("/me/aliases", {"address": "alice@acme.test"}, from_page="/me")
    assert login.headers["location"] == "/me?done=alias_refused"  # the login email is no alias
