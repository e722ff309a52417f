"""Webhook fixtures: a running bccd app with fast retries and private endpoints allowed, and a receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bccd.app import BccdApp
from bccd.config import Settings
from bccd.services import webhooks
from tests.api.support import seeded_app
from tests.helpers import BCC_DOMAIN, World, seed_world
from tests.webhooks.receiver import Receiver

FAST = {"allow_private": True, "poll_interval": 0.02, "retry_base": 0.05, "retry_max": 0.2, "timeout": 2.0}


def hook_settings(url: str, **webhook: Any) -> Settings:
    return Settings(
        smtp={"host": "127.0.0.1", "port": 0, "bcc_domains": [BCC_DOMAIN]},
        http={"enabled": False, "port": 0},
        database={"url": url},
        log={"level": "warning"},
        webhooks={**FAST, **webhook},
    )


@dataclass
class Hooked:
    app: BccdApp
    world: World
    receiver: Receiver
    endpoint_id: int
    secret: str

    @property
    def port(self) -> int:
        return self.app.smtp.port


@pytest.fixture
def api_db_url(sqlite_url: str) -> str:
    """A migrated SQLite database of this test (the root conftest copies a template)."""
    return sqlite_url


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture
async def hooked(api_db_url: str, receiver: Receiver) -> AsyncIterator[Hooked]:
    app = BccdApp(hook_settings(api_db_url))
    await app.start()
    try:
        world = await seed_world(app.db)
        endpoint, secret = await webhooks.create_endpoint(
            app.db, actor=world.admin, url=receiver.url, allow_private=True
        )
        yield Hooked(app, world, receiver, endpoint.id, secret)
    finally:
        await app.stop()


@asynccontextmanager
async def api_client(
    url: str, **webhook: Any
) -> AsyncIterator[tuple[BccdApp, World, dict[str, httpx.AsyncClient]]]:
    """The app, its seeded world and one in-process API client per role (plus `anonymous`)."""
    async with (
        seeded_app(hook_settings(url, **webhook)) as (app, world, tokens, transport),
        AsyncExitStack() as stack,
    ):
        clients = {
            role: await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=transport,
                    base_url="http://bccd.test",
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
            for role, token in tokens.items()
        }
        clients["anonymous"] = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://bccd.test")
        )
        yield app, world, clients


async def settled(db: Any, endpoint_id: int, *, within: float = 10.0) -> list[dict[str, Any]]:
    """The endpoint's deliveries once none is pending (results are saved just after the answer)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await webhooks.list_deliveries(db, endpoint_id, actor=None)
        if all(d["status"] != "pending" for d in found) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.02)
