"""Two API "nodes" on one database, on each backend: two engines, two apps, two clients (issue 9 tests).

What one node commits, the other must see on its very next request: nothing may be cached per process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from bccd.api.app import create_api
from bccd.api.context import ApiContext
from bccd.metrics import Metrics
from bccd.store.database import Database
from bccd.store.users import create_token
from tests.api.support import Caller
from tests.helpers import World, seed_world

ROLES = ("owner", "colleague", "admin", "outsider")


@dataclass
class Node:
    db: Database
    client: httpx.AsyncClient

    def as_(self, token: str | None) -> Caller:
        return Caller(self.client, token)


@dataclass
class Cluster:
    a: Node
    b: Node
    world: World
    tokens: dict[str, str]

    def on_a(self, role: str) -> Caller:
        return self.a.as_(self.tokens[role])

    def on_b(self, role: str) -> Caller:
        return self.b.as_(self.tokens[role])


@pytest.fixture
async def cluster(any_db_url: str) -> AsyncIterator[Cluster]:
    dbs = [Database(any_db_url), Database(any_db_url)]
    try:
        world = await seed_world(dbs[0])
        async with dbs[0].write() as conn:
            tokens = {role: await create_token(conn, getattr(world, role).id) for role in ROLES}
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_api(ApiContext(db, Metrics(), "bcc.test"))),
                base_url="http://bccd.test",
            )
            for db in dbs
        ]
        try:
            yield Cluster(Node(dbs[0], clients[0]), Node(dbs[1], clients[1]), world, tokens)
        finally:
            for client in clients:
                await client.aclose()
    finally:
        for db in dbs:
            await db.close()
