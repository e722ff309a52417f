"""Issue 12 item 2 (S4, T4): every way an SMTP connection ends gives its slot back.

Each test ends a connection one way on a server with `max_connections=1`, then checks that the gate and
the `bccd_smtp_connections` gauge are back at zero and that the next client is greeted with 220 (before
the fix a STARTTLS that never completed its handshake held its slot forever: 421 4.3.2 for everyone).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from bccd.app import BccdApp
from tests.conftest import AppFactory
from tests.smtp.wire import (
    client_tls,
    connect,
    greeting_seconds,
    make_cert,
    open_connections,
    read_reply,
    read_until_closed,
    reset,
    until,
)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    yield make_cert(tmp_path_factory.mktemp("tls"))


async def _tls_app(make_app: AppFactory, cert: tuple[Path, Path], **smtp: object) -> BccdApp:
    return await make_app(max_connections=1, tls_cert=str(cert[0]), tls_key=str(cert[1]), **smtp)


async def _slot_is_free(app: BccdApp, within: float = 5.0) -> None:
    assert await until(lambda: not app.smtp.gate.open, within), f"{len(app.smtp.gate.open)} slot(s) held"
    assert open_connections(app) == 0
    await asyncio.to_thread(greeting_seconds, app.smtp.port)  # the next client is served (220)


def _starttls_then(port: int, then: str) -> bytes:
    """EHLO, STARTTLS, then: `silence` (no handshake), `garbage`, `reset`, or `handshake` + silence."""
    sock = connect(port)
    read_reply(sock)
    sock.sendall(b"EHLO client.test\r\n")
    read_reply(sock)
    sock.sendall(b"STARTTLS\r\n")
    assert read_reply(sock).startswith(b"220")
    if then == "silence":
        with sock:
            return read_until_closed(sock)
    if then == "garbage":
        with sock:
            sock.sendall(b"\x16\x03\x01\x00\x05hello, this is no ClientHello\r\n" * 4)
            return read_until_closed(sock)
    if then == "reset":
        reset(sock)
        return b""
    tls = client_tls().wrap_socket(sock, server_hostname="localhost")
    with tls:
        tls.sendall(b"EHLO client.test\r\n")
        assert read_reply(tls).startswith(b"250")
        try:
            return read_until_closed(tls)  # silent until the server times the session out
        except (ssl.SSLError, OSError):
            return b""


class TestEveryWayOut:
    async def test_quit(self, make_app: AppFactory) -> None:
        app = await make_app(max_connections=1)

        def go() -> bytes:
            with connect(app.smtp.port) as sock:
                read_reply(sock)
                sock.sendall(b"QUIT\r\n")
                return read_until_closed(sock)

        assert (await asyncio.to_thread(go)).startswith(b"221")
        await _slot_is_free(app)

    async def test_client_closes(self, make_app: AppFactory) -> None:
        app = await make_app(max_connections=1)

        def go() -> None:
            with connect(app.smtp.port) as sock:
                read_reply(sock)
                sock.sendall(b"EHLO client.test\r\n")
                read_reply(sock)

        await asyncio.to_thread(go)
        await _slot_is_free(app)

    async def test_client_resets(self, make_app: AppFactory) -> None:
        app = await make_app(max_connections=1)

        def go() -> None:
            sock = connect(app.smtp.port)
            read_reply(sock)
            sock.sendall(b"EHLO client.test\r\nMAIL FROM:<a@acme.test>\r\n")
            reset(sock)

        await asyncio.to_thread(go)
        await _slot_is_free(app)

    async def test_reset_during_data(self, make_app: AppFactory) -> None:
        from tests.helpers import seed_world

        app = await make_app(max_connections=1)
        world = await seed_world(app.db)

        def go() -> None:
            sock = connect(app.smtp.port)
            read_reply(sock)
            rcpt = b"RCPT TO:<" + world.bcc.encode() + b">\r\n"
            sock.sendall(b"EHLO c\r\nMAIL FROM:<alice@acme.test>\r\n" + rcpt)
            read_reply(sock), read_reply(sock), read_reply(sock)
            sock.sendall(b"DATA\r\n")
            assert read_reply(sock).startswith(b"354")
            sock.sendall(b"Subject: cut\r\n\r\nhalf a mess")
            reset(sock)

        await asyncio.to_thread(go)
        await _slot_is_free(app)

    async def test_timeout_before_starttls(self, make_app: AppFactory, cert: tuple[Path, Path]) -> None:
        app = await _tls_app(make_app, cert, command_timeout=0.3)

        def go() -> bytes:
            with connect(app.smtp.port) as sock:
                read_reply(sock)
                return read_until_closed(sock)

        assert b"421 4.4.2" in await asyncio.to_thread(go)
        await _slot_is_free(app)

    async def test_timeout_during_starttls_handshake(
        self, make_app: AppFactory, cert: tuple[Path, Path]
    ) -> None:
        """The reported leak: STARTTLS, then silence until the timeout."""
        app = await _tls_app(make_app, cert, command_timeout=0.3)
        await asyncio.to_thread(_starttls_then, app.smtp.port, "silence")
        await _slot_is_free(app)
        assert app.metrics.registry.get_sample_value(
            "bccd_smtp_sessions_closed_total", {"reason": "tls_handshake_timeout"}
        ) == 1

    async def test_timeout_after_starttls(self, make_app: AppFactory, cert: tuple[Path, Path]) -> None:
        app = await _tls_app(make_app, cert, command_timeout=0.5)
        task = asyncio.create_task(asyncio.to_thread(_starttls_then, app.smtp.port, "handshake"))
        # The slot is free within a second of the timeout, not after TLS's 30-second shutdown wait.
        assert await until(lambda: app.smtp.gate.open != {}, 5)
        await _slot_is_free(app, within=3.0)
        await asyncio.wait_for(task, 40)

    async def test_garbage_handshake(self, make_app: AppFactory, cert: tuple[Path, Path]) -> None:
        app = await _tls_app(make_app, cert, command_timeout=30)
        await asyncio.to_thread(_starttls_then, app.smtp.port, "garbage")
        await _slot_is_free(app)

    async def test_reset_during_handshake(self, make_app: AppFactory, cert: tuple[Path, Path]) -> None:
        app = await _tls_app(make_app, cert, command_timeout=30)
        await asyncio.to_thread(_starttls_then, app.smtp.port, "reset")
        await _slot_is_free(app)

    async def test_client_closes_after_starttls(self, make_app: AppFactory, cert: tuple[Path, Path]) -> None:
        app = await _tls_app(make_app, cert, command_timeout=30)

        def go() -> None:
            sock = connect(app.smtp.port)
            read_reply(sock)
            sock.sendall(b"EHLO c\r\nSTARTTLS\r\n")
            read_reply(sock), read_reply(sock)
            with client_tls().wrap_socket(sock, server_hostname="localhost") as tls:
                tls.sendall(b"EHLO c\r\n")
                read_reply(tls)

        await asyncio.to_thread(go)
        await _slot_is_free(app)

    async def test_refused_connection_holds_no_slot(self, make_app: AppFactory) -> None:
        app = await make_app(max_connections=1)

        def go() -> bytes:
            with connect(app.smtp.port) as first:
                read_reply(first)
                with connect(app.smtp.port) as second:
                    return read_until_closed(second)

        assert (await asyncio.to_thread(go)).startswith(b"421 4.3.2")
        await _slot_is_free(app)


async def test_many_abandoned_handshakes_do_not_lock_out_clients(
    make_app: AppFactory, cert: tuple[Path, Path]
) -> None:
    """The issue's scenario: max_connections such sessions, then an ordinary client still gets 220."""
    app = await make_app(max_connections=3, tls_cert=str(cert[0]), tls_key=str(cert[1]), command_timeout=0.3)
    await asyncio.gather(*(asyncio.to_thread(_starttls_then, app.smtp.port, "silence") for _ in range(3)))
    await _slot_is_free(app)
