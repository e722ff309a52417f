"""The API served for real by uvicorn inside BccdApp: same loop as SMTP, own port, clean start and stop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from bccd.api.service import HttpApiService
from bccd.app import BccdApp
from bccd.config import Settings
from bccd.store.users import create_token
from tests.api.support import http_settings
from tests.helpers import add_item, add_org, add_person, make_mail, seed_world, send


@pytest.fixture
async def served(api_db_url: str) -> AsyncIterator[BccdApp]:
    app = BccdApp(http_settings(api_db_url))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def _port(app: BccdApp) -> int:
    assert isinstance(app.http, HttpApiService)
    return app.http.port


async def test_smtp_in_http_out_on_one_loop(served: BccdApp) -> None:
    """Send mail over SMTP, read the thread over HTTP, link it, see it on the deal — real sockets only."""
    world = await seed_world(served.db)
    await add_org(served.db, world.company_id, "o1", "Client Corp")
    await add_person(served.db, world.company_id, "p1", "Carol", ["carol@client.test"], org="o1")
    await add_item(served.db, world.company_id, "deal", "A", person="p1")
    await add_item(served.db, world.company_id, "deal", "B", person="p1")
    async with served.db.write() as conn:
        token = await create_token(conn, world.owner.id)

    assert (await send(served.smtp.port, [world.bcc], make_mail(subject="Quote"))).code == 250

    base = f"http://127.0.0.1:{_port(served)}"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        checks = (await client.get("/readyz")).json()["checks"]
        assert checks == {"database": True, "writes": True, "smtp": True}
        [summary] = (await client.get("/api/v1/threads?unlinked=true")).json()["threads"]
        assert summary["subject"] == "Quote" and summary["decision"]["reason"] == "ambiguous"
        linked = await client.put(f"/api/v1/threads/{summary['id']}/item", json={"type": "deal", "id": "B"})
        assert linked.status_code == 200 and linked.json()["result"] == "linked"
        on_deal = (await client.get("/api/v1/deals/B/threads")).json()["threads"]
        assert [t["id"] for t in on_deal] == [summary["id"]]
        raw = await client.get(f"/api/v1/threads/{summary['id']}/raw")
        assert raw.headers["content-type"] == "message/rfc822" and b"Subject: Quote" in raw.content
        assert "server" not in raw.headers  # no software banner


async def test_stop_closes_the_port(api_db_url: str) -> None:
    app = BccdApp(http_settings(api_db_url))
    await app.start()
    port = _port(app)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/healthz")).status_code == 200
    await app.stop()
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()


async def test_busy_port_fails_start_with_oserror(served: BccdApp, api_db_url: str) -> None:
    taken = _port(served)
    conf = http_settings(api_db_url)
    settings = Settings(
        smtp=conf.smtp,
        http={"enabled": True, "host": "127.0.0.1", "port": taken},
        database=conf.database,
        log=conf.log,
    )
    service = HttpApiService(BccdApp(settings))
    with pytest.raises(OSError):
        await service.start()
    await service.stop()  # never started: nothing to do, and no error
    with pytest.raises(RuntimeError):
        _ = service.port


async def test_an_idle_keep_alive_connection_does_not_hold_up_stop(api_db_url: str) -> None:
    app = BccdApp(http_settings(api_db_url))
    await app.start()
    sock = socket.create_connection(("127.0.0.1", _port(app)))
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b'"status":"ok"' not in answer:  # headers and body may arrive in separate segments
            answer += await asyncio.to_thread(sock.recv, 4096)
        assert answer.startswith(b"HTTP/1.1 200")
        # The connection stays open (keep-alive); stop closes it instead of waiting for the client.
        await asyncio.wait_for(app.stop(), 5)
        assert await asyncio.to_thread(sock.recv, 4096) == b""
    finally:
        sock.close()
