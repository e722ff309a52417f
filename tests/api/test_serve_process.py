"""One run of the real `bccd serve` process: SMTP and HTTP on loopback, a token from the CLI, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bccd.store.database import Database
from bccd.store.users import create_company
from tests.helpers import make_mail, send

BCCD = str(Path(sys.executable).with_name("bccd"))
START_TIMEOUT = 90.0  # a loaded 2-core CI machine took over 30 s to start bccd serve


async def _cli(config: Path, *args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        BCCD, *args, "--config", str(config), "--json", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    data: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return data


class Served:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.ports: dict[str, int] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:  # keep draining: a full pipe would block the server
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self.events.append(event)
            if event.get("event") == "smtp_listening":
                self.ports["smtp"] = int(event["port"])
            if event.get("event") == "http_listening":
                self.ports["http"] = int(event["port"])

    async def wait_listening(self) -> None:
        async with asyncio.timeout(START_TIMEOUT):
            while len(self.ports) < 2:
                assert self.proc.returncode is None, "bccd serve exited during start-up"
                await asyncio.sleep(0.05)

    async def terminate(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(START_TIMEOUT):
            code = await self.proc.wait()
            await self._reader
        return code


@pytest.fixture
async def config(api_db_url: str, tmp_path: Path) -> Path:
    path = tmp_path / "bccd.toml"
    path.write_text(
        "[smtp]\nhost = '127.0.0.1'\nport = 0\nbcc_domains = ['bcc.test']\n"
        "[http]\nhost = '127.0.0.1'\nport = 0\n"
        f"[database]\nurl = '{api_db_url}'\n"
        "[log]\nlevel = 'info'\nformat = 'json'\n",
        encoding="utf-8",
    )
    db = Database(api_db_url)
    try:
        async with db.write() as conn:
            await create_company(conn, "Acme")
    finally:
        await db.close()
    return path


@pytest.fixture
async def served(config: Path) -> AsyncIterator[Served]:
    proc = await asyncio.create_subprocess_exec(
        BCCD, "serve", "--config", str(config), stdout=asyncio.subprocess.PIPE
    )
    server = Served(proc)
    try:
        await server.wait_listening()
        yield server
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.slow
async def test_bccd_serve_end_to_end(config: Path, served: Served) -> None:
    user = await _cli(
        config,
        "user",
        "create",
        "--company",
        "Acme",
        "--email",
        "alice@acme.test",
        "--name",
        "Alice",
        "--admin",
        "--token",
    )
    headers = {"Authorization": f"Bearer {user['api_token']}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{served.ports['http']}", headers=headers, timeout=10
    ) as client:
        me = (await client.get("/api/v1/me")).json()
        assert me["smart_bcc_address"] == user["smart_bcc_address"]
        assert (
            await client.put("/api/v1/persons/p1", json={"name": "Carol", "emails": ["carol@client.test"]})
        ).status_code == 201
        deal = {"title": "Deal", "person": "p1", "created_at": "2020-01-01T00:00:00Z"}
        assert (await client.put("/api/v1/deals/42", json=deal)).status_code == 201
        assert (await client.put("/api/v1/deals/43", json=deal)).status_code == 201

        result = await send(served.ports["smtp"], [me["smart_bcc_address"]], make_mail(subject="Contract"))
        assert result.code == 250

        [thread] = (await client.get("/api/v1/threads?owner=me&unlinked=true")).json()["threads"]
        assert thread["subject"] == "Contract" and thread["decision"]["reason"] == "ambiguous"
        linked = await client.put(f"/api/v1/threads/{thread['id']}/item", json={"type": "deal", "id": "42"})
        assert linked.status_code == 200
        on_deal = (await client.get("/api/v1/deals/42/threads")).json()["threads"]
        assert [t["id"] for t in on_deal] == [thread["id"]]
        assert (await client.get("/readyz")).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert "bccd_messages_accepted_total 1.0" in metrics

    # SIGTERM: a clean drain and exit, SMTP and HTTP both closed.
    assert await served.terminate() == 0
    names = [e.get("event") for e in served.events]
    assert names.index("bccd_stopping") < names.index("http_stopped") < names.index("bccd_stopped")
    # No token and no body ever reached the log.
    logged = json.dumps(served.events)
    assert user["api_token"] not in logged and "Hello," not in logged
