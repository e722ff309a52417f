"""Issue 12 item 13 (S2, S4): on SIGTERM a DATA transfer in progress finishes (within drain_timeout)
and gets its 250; idle sessions get 421 4.3.2 at once; what misses the drain is not stored."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from pathlib import Path

from tests.conftest import AppFactory
from tests.helpers import seed_world, threads_of
from tests.processes import CLI, bootstrap, free_port, serve_env, wait_listening
from tests.smtp.wire import connect, read_reply, read_until_closed, until


def _open_data(port: int, rcpt: str) -> socket.socket:
    sock = connect(port, timeout=30)
    read_reply(sock)
    sock.sendall(b"EHLO c\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n")
    for _ in range(3):
        read_reply(sock)
    assert read_reply(sock).startswith(b"354")
    sock.sendall(b"From: alice@acme.test\r\nSubject: drained\r\n\r\nfirst half\r\n")
    return sock


async def test_data_in_progress_finishes_and_idle_sessions_get_421(make_app: AppFactory) -> None:
    app = await make_app(drain_timeout=20)
    world = await seed_world(app.db)
    sending = await asyncio.to_thread(_open_data, app.smtp.port, world.bcc)
    idle = await asyncio.to_thread(connect, app.smtp.port)
    await asyncio.to_thread(read_reply, idle)
    assert await until(lambda: app.smtp.gate.busy == 1)
    stopping = asyncio.create_task(app.smtp.stop())
    # The idle session is told at once, while the transfer is still open.
    with idle:
        assert (await asyncio.to_thread(read_until_closed, idle)).startswith(b"421 4.3.2")
    assert not stopping.done()

    def finish() -> bytes:
        sending.sendall(b"second half\r\n.\r\n")
        with sending:
            return read_until_closed(sending)

    replies = await asyncio.to_thread(finish)
    assert replies.startswith(b"250 2.0.0"), replies
    assert b"421 4.3.2" in replies  # then the session is closed: the server is going away
    await asyncio.wait_for(stopping, 10)
    [stored] = await threads_of(app.db, world.company_id)
    assert stored["subject"] == "drained"


async def test_transfer_that_misses_the_drain_gets_421_and_is_not_stored(make_app: AppFactory) -> None:
    app = await make_app(drain_timeout=0.5)
    world = await seed_world(app.db)
    sending = await asyncio.to_thread(_open_data, app.smtp.port, world.bcc)
    await app.smtp.stop()
    with sending:
        assert b"421 4.3.2" in await asyncio.to_thread(read_until_closed, sending)
    assert await threads_of(app.db, world.company_id) == []


def test_sigterm_on_serve_lets_data_finish(tmp_path: Path) -> None:
    """The whole path: `bccd serve`, SIGTERM mid-DATA, the 250 still arrives and the mail is stored."""
    port = free_port()
    env = serve_env(f"sqlite+aiosqlite:///{tmp_path / 'bccd.sqlite3'}", port)
    user = bootstrap(env)
    proc = subprocess.Popen([*CLI, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        sending = _open_data(port, user["smart_bcc_address"])
        os.kill(proc.pid, signal.SIGTERM)
        with sending:
            sending.sendall(b"second half\r\n.\r\n")
            replies = read_until_closed(sending)
        assert replies.startswith(b"250 2.0.0"), replies
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    from tests.processes import cli_json

    found = cli_json(env, "threads", "list", "--company", str(user["company_id"]))
    assert [t["subject"] for t in (found["threads"] if isinstance(found, dict) else found)] == ["drained"]
