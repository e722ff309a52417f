"""API test support: callers acting as one user, the seeded world with tokens, the error-shape check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bccd.api.app import create_api
from bccd.api.service import api_context
from bccd.app import BccdApp
from bccd.config import Settings
from bccd.store.users import create_token
from tests.helpers import BCC_DOMAIN, World, make_mail, seed_world, send

ROLES = ("owner", "colleague", "admin", "outsider")


def http_settings(url: str) -> Settings:
    """Like tests.conftest.app_settings, but with the HTTP API on an ephemeral loopback port."""
    return Settings(
        smtp={"host": "127.0.0.1", "port": 0, "bcc_domains": [BCC_DOMAIN]},
        http={"enabled": True, "host": "127.0.0.1", "port": 0},
        database={"url": url},
        log={"level": "warning"},
    )


class Caller:
    """An HTTP client acting as one user (or anonymously when token is None)."""

    def __init__(self, client: httpx.AsyncClient, token: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)


@dataclass
class Api:
    app: BccdApp
    world: World
    client: httpx.AsyncClient
    tokens: dict[str, str]

    def as_(self, role: str) -> Caller:
        return Caller(self.client, self.tokens[role])

    @property
    def anonymous(self) -> Caller:
        return Caller(self.client, None)

    @property
    def owner(self) -> Caller:
        return self.as_("owner")

    @property
    def colleague(self) -> Caller:
        return self.as_("colleague")

    @property
    def admin(self) -> Caller:
        return self.as_("admin")

    @property
    def outsider(self) -> Caller:
        return self.as_("outsider")

    async def mail_thread(self, **mail: Any) -> dict[str, Any]:
        """Send one mail to the owner's Smart Bcc address over real SMTP; return its stored thread."""
        before = {t["id"] for t in (await self.owner.get("/api/v1/threads?owner=me")).json()["threads"]}
        result = await send(self.app.smtp.port, [self.world.bcc], make_mail(**mail))
        assert result.code == 250, result
        page = (await self.owner.get("/api/v1/threads?owner=me")).json()["threads"]
        [new] = [t for t in page if t["id"] not in before]
        response = await self.owner.get(f"/api/v1/threads/{new['id']}")
        assert response.status_code == 200, response.text
        thread: dict[str, Any] = response.json()
        return thread


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the API's error shape with this status and code."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


Seeded = tuple[BccdApp, World, dict[str, str], httpx.ASGITransport]


@asynccontextmanager
async def seeded_app(settings: Settings) -> AsyncIterator[Seeded]:
    """A started app on `settings` with the seeded world, a token per role and an in-process transport to
    its API; stopped afterwards."""
    app = BccdApp(settings)
    await app.start()
    try:
        world = await seed_world(app.db)
        async with app.db.write() as conn:
            tokens = {role: await create_token(conn, getattr(world, role).id) for role in ROLES}
        yield app, world, tokens, httpx.ASGITransport(app=create_api(api_context(app)))
    finally:
        await app.stop()


@asynccontextmanager
async def api_for(settings: Settings) -> AsyncIterator[Api]:
    """`seeded_app` with one client (callers pick their token with Api.as_)."""
    async with seeded_app(settings) as (app, world, tokens, transport), httpx.AsyncClient(
        transport=transport, base_url="http://bccd.test"
    ) as client:
        yield Api(app, world, client, tokens)
