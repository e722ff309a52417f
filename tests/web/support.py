"""Web test support: a signed-in httpx browser (cookies, CSRF from the page), and the seeded sales world."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from bccd.app import BccdApp
from bccd.services import web_auth
from tests.helpers import World, add_item, add_org, add_person, make_mail, send

CSRF_INPUT = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
NONCE_INPUT = re.compile(r'name="nonce" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, app: BccdApp, user_id: int) -> None:
    """Follow a fresh login link the way a browser does: open it, press Sign in."""
    link = await web_auth.issue_login_link(app.db, user_id, actor=None, public_url=str(client.base_url))
    landing = await client.get(link.url)
    assert landing.status_code == 200, landing.text
    nonce = NONCE_INPUT.search(landing.text)
    assert nonce
    done = await client.post(link.url, data={"nonce": nonce.group(1)})
    assert done.status_code == 303 and done.headers["location"] == "/", done.text


async def seed_sales(app: BccdApp, world: World) -> None:
    """Carol Jensen (Client Corp) has two open deals, Wind farm and Solar park: her mail is ambiguous (L7)."""
    db, company = app.db, world.company_id
    await add_org(db, company, "o1", "Client Corp")
    await add_person(db, company, "p1", "Carol Jensen", ["carol@client.test"], org="o1")
    await add_item(db, company, "deal", "A", person="p1", title="Wind farm")
    await add_item(db, company, "deal", "B", person="p1", title="Solar park")
    await add_item(db, company, "lead", "L1", title="Harbour lights")


async def mail(app: BccdApp, world: World, **fields: Any) -> None:
    result = await send(app.smtp.port, [world.bcc], make_mail(**fields))
    assert result.code == 250, result


@dataclass
class Browser:
    """An httpx client with a cookie jar acting as one signed-in person."""

    client: httpx.AsyncClient

    async def page(self, url: str, status: int = 200) -> str:
        response = await self.client.get(url)
        assert response.status_code == status, (url, response.status_code, response.text[:500])
        return response.text

    async def post(self, url: str, data: dict[str, str] | None = None, *, from_page: str) -> httpx.Response:
        """Submit a form found on `from_page` (its CSRF token), as the page's form would."""
        html = await self.page(from_page)
        return await self.client.post(url, data={"csrf": csrf_of(html), **(data or {})})
