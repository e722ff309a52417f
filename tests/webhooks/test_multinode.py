"""Issue 9 webhooks: several nodes on one PostgreSQL never deliver one event twice concurrently
(FOR UPDATE SKIP LOCKED claims with a lease), and one thread's events stay in order across nodes."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bccd.config import WebhookSettings
from bccd.metrics import Metrics
from bccd.services import webhooks
from bccd.store.database import Database
from bccd.store.users import create_company
from bccd.webhooks.worker import WebhookWorker
from tests.conftest import empty_pg
from tests.webhooks.conftest import FAST
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.postgres


async def test_two_nodes_deliver_each_event_once(pg_url: str, receiver: Receiver) -> None:
    await empty_pg(pg_url)
    setup = Database(pg_url)
    nodes = [Database(pg_url) for _ in range(3)]
    settings = WebhookSettings(**{**FAST, "per_endpoint_concurrency": 8})
    workers = [WebhookWorker(db, settings, Metrics()) for db in nodes]
    receiver.delay = 0.01
    try:
        async with setup.write() as conn:
            company = await create_company(conn, "Acme")
        endpoint, _ = await webhooks.create_endpoint(
            setup, actor=None, company=company.id, url=receiver.url, allow_private=True
        )
        sent = [(await webhooks.send_test(setup, endpoint.id, actor=None))["event"] for _ in range(60)]
        for worker in workers:
            worker.start()
        await receiver.wait_for(lambda r: len(r.all()) >= len(sent), within=60)
        await asyncio.sleep(0.5)  # time for any duplicate to show up
        counts = Counter(r.webhook_id for r in receiver.all())
        assert set(counts) == set(sent)
        assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
    finally:
        for worker in workers:
            await worker.stop()
        for db in (setup, *nodes):
            await db.close()
