"""SPEC S1–S6 and T2/T3 on the wire: every reply bccd gives, through a real socket on loopback."""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from bccd.app import BccdApp
from bccd.store.users import rotate_address
from tests.conftest import AppFactory
from tests.helpers import BCC_DOMAIN, World, make_mail, seed_world, send, set_policy, threads_of


async def _app(make_app: AppFactory, **smtp: object) -> tuple[BccdApp, World]:
    app = await make_app(**smtp)
    return app, await seed_world(app.db)


def _rcpt_blocking(port: int, rcpts: list[str]) -> list[tuple[int, str]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        c.mail("alice@acme.test")
        return [(code, msg.decode()) for code, msg in (c.rcpt(r) for r in rcpts)]


async def rcpt_replies(port: int, rcpts: list[str]) -> list[tuple[int, str]]:
    return await asyncio.to_thread(_rcpt_blocking, port, rcpts)


class TestS1Recipients:
    async def test_foreign_domain_is_relaying_denied(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        [(code, msg)] = await rcpt_replies(app.smtp.port, [f"{world.owner.smart_bcc_local}@gmail.test"])
        assert (code, msg[:5]) == (550, "5.7.1")

    async def test_unknown_local_part(self, make_app: AppFactory) -> None:
        app, _ = await _app(make_app)
        [(code, msg)] = await rcpt_replies(app.smtp.port, [f"nobody1234567890@{BCC_DOMAIN}"])
        assert (code, msg[:5]) == (550, "5.1.1")

    async def test_plus_tag_and_case_are_accepted(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        local = world.owner.smart_bcc_local.upper()
        [(code, msg)] = await rcpt_replies(app.smtp.port, [f"{local}+deal-42@{BCC_DOMAIN.upper()}"])
        assert (code, msg[:5]) == (250, "2.1.5")

    async def test_rotated_address_is_refused_new_one_accepted(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        async with app.db.write() as conn:
            rotated = await rotate_address(conn, world.owner.id)
        replies = await rcpt_replies(app.smtp.port, [world.bcc, f"{rotated.smart_bcc_local}@{BCC_DOMAIN}"])
        assert replies[0][0] == 550 and replies[0][1].startswith("5.1.1")
        assert replies[1][0] == 250


class TestS2Durability:
    async def test_storage_failure_answers_451_and_stores_nothing(
        self, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        app, world = await _app(make_app)

        async def broken(*args: object) -> object:
            raise OSError("disk full")

        monkeypatch.setattr(app.commits, "submit_message", broken)
        result = await send(app.smtp.port, [world.bcc], make_mail())
        assert result.code == 451 and result.message.startswith("4.3.0")
        assert "disk full" not in result.message and "OSError" not in result.message
        assert await threads_of(app.db, world.company_id) == []

    async def test_250_means_committed(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        result = await send(app.smtp.port, [world.bcc], make_mail())
        assert result.code == 250 and result.message.startswith("2.0.0")
        assert len(await threads_of(app.db, world.company_id)) == 1


class TestS3RetryDedupe:
    async def test_byte_identical_retry_gets_250_and_no_second_thread(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        raw = make_mail()
        first = await send(app.smtp.port, [world.bcc], raw)
        second = await send(app.smtp.port, [world.bcc], raw)
        assert first.code == second.code == 250
        assert len(await threads_of(app.db, world.company_id)) == 1

    async def test_changed_bytes_are_a_new_thread(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        await send(app.smtp.port, [world.bcc], make_mail(subject="a"))
        await send(app.smtp.port, [world.bcc], make_mail(subject="b"))
        assert len(await threads_of(app.db, world.company_id)) == 2


def _ehlo_blocking(port: int) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        code, msg = c.ehlo("client.test")
        return code, msg.decode()


class TestS4Limits:
    async def test_ehlo_advertises_extensions_and_no_auth(self, make_app: AppFactory) -> None:
        app, _ = await _app(make_app, max_message_size=123456)
        code, text = await asyncio.to_thread(_ehlo_blocking, app.smtp.port)
        lines = text.upper().splitlines()
        assert code == 250
        for ext in ("SIZE 123456", "8BITMIME", "SMTPUTF8", "PIPELINING"):
            assert ext in lines
        assert not any(line.startswith("AUTH") for line in lines)  # T3
        assert "STARTTLS" not in lines  # no certificate configured

    async def test_mail_from_size_over_limit(self, make_app: AppFactory) -> None:
        app, _ = await _app(make_app, max_message_size=2000)

        def go() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", app.smtp.port, timeout=10) as c:
                c.ehlo("x")
                return c.mail("alice@acme.test", ["SIZE=5000"])

        code, msg = await asyncio.to_thread(go)
        assert (code, msg[:5]) == (552, b"5.3.4")

    async def test_data_over_limit(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app, max_message_size=2000)
        result = await send(app.smtp.port, [world.bcc], make_mail(body="x" * 70 + ("\n" + "y" * 70) * 60))
        assert result.code == 552 and result.message.startswith("5.3.4")
        assert await threads_of(app.db, world.company_id) == []

    async def test_too_many_recipients(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app, max_recipients=2)
        await set_policy(app.db, world.company_id, "any")  # one sender class: only the limit defers
        bob = f"{world.colleague.smart_bcc_local}@{BCC_DOMAIN}"
        replies = await rcpt_replies(app.smtp.port, [world.bcc, bob, world.bcc])
        assert [c for c, _ in replies] == [250, 250, 452]
        assert replies[2][1].startswith("4.5.3")

    async def test_connection_cap(self, make_app: AppFactory) -> None:
        app, _ = await _app(make_app, max_connections=1)

        def go() -> bytes:
            with socket.create_connection(("127.0.0.1", app.smtp.port), timeout=10) as first:
                assert first.recv(1024).startswith(b"220")
                with socket.create_connection(("127.0.0.1", app.smtp.port), timeout=10) as second:
                    return second.recv(1024)

        assert (await asyncio.to_thread(go)).startswith(b"421 4.3.2")

    async def test_command_timeout_closes_idle_session(self, make_app: AppFactory) -> None:
        app, _ = await _app(make_app, command_timeout=0.3)

        def go() -> bytes:
            with socket.create_connection(("127.0.0.1", app.smtp.port), timeout=10) as s:
                s.recv(1024)
                data = b""
                while chunk := s.recv(1024):  # the server closes the idle session
                    data += chunk
                return data

        assert b"421" in await asyncio.to_thread(go)

    async def test_each_command_moves_the_idle_deadline(self, make_app: AppFactory) -> None:
        """The timer kept across commands (aiosmtpd_compat._reset_timeout) fires at the last command's
        deadline: commands 0.4 s apart on a 0.6 s timeout keep the session, then 0.6 s of silence ends it."""
        app, _ = await _app(make_app, command_timeout=0.6)

        def go() -> tuple[list[bytes], bytes, float]:
            with socket.create_connection(("127.0.0.1", app.smtp.port), timeout=10) as s:
                s.recv(1024)
                answers = []
                for _ in range(4):  # 1.6 s in all: past the first command's deadline
                    s.sendall(b"NOOP\r\n")
                    answers.append(s.recv(1024))
                    time.sleep(0.4)
                quiet = time.monotonic()
                data = b""
                while chunk := s.recv(1024):
                    data += chunk
                return answers, data, time.monotonic() - quiet

        answers, tail, silent = await asyncio.to_thread(go)
        assert all(a.startswith(b"250") for a in answers), answers
        assert b"421" in tail
        assert 0.1 < silent < 2.0  # the last NOOP's deadline (0.6 s after it), not an early or no close

    async def test_data_timeout_closes_a_stalled_transfer(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app, data_timeout=0.5, command_timeout=30)

        def go() -> bytes:
            with socket.create_connection(("127.0.0.1", app.smtp.port), timeout=10) as s:
                s.recv(1024)
                s.sendall(
                    b"EHLO x\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<" + world.bcc.encode() + b">\r\n"
                )
                s.sendall(b"DATA\r\nSubject: slow\r\n\r\nfirst line\r\n")  # … then the sender stalls
                data = b""
                while chunk := s.recv(1024):
                    data += chunk
                return data

        replies = await asyncio.to_thread(go)
        assert b"354" in replies and b"421 4.4.2" in replies
        assert await threads_of(app.db, world.company_id) == []  # a cut-off message is never stored

    async def test_long_line_is_stored_verbatim_with_a_defect(self, make_app: AppFactory) -> None:
        """Issue 12 item 5: a line over RFC 5321's limit is the user's own client's doing; refusing it
        would bounce their Bcc copy. Stored byte for byte, the defect recorded."""
        from bccd.store.thread_views import get_raw

        app, world = await _app(make_app)
        long_line = b"H" * 5000
        raw = make_mail().replace(b"Hello,", long_line)
        result = await send(app.smtp.port, [world.bcc], raw)
        assert result.code == 250 and result.message.startswith("2.0.0")
        [summary] = await threads_of(app.db, world.company_id)
        from tests.helpers import thread

        stored = await thread(app.db, summary["id"])
        assert "line_too_long" in stored["message"]["defects"]
        async with app.db.read() as conn:
            assert long_line + b"\r\n" in await get_raw(conn, summary["id"])

    async def test_short_lines_record_no_long_line_defect(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        assert (await send(app.smtp.port, [world.bcc], make_mail())).code == 250
        [summary] = await threads_of(app.db, world.company_id)
        from tests.helpers import thread

        assert "line_too_long" not in (await thread(app.db, summary["id"]))["message"]["defects"]

    async def test_line_over_the_hard_cap_is_a_clear_5xx(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app, max_data_line_length=4000)
        raw = make_mail().replace(b"Hello,", b"H" * 5000)
        result = await send(app.smtp.port, [world.bcc], raw)
        assert result.code == 500 and result.message.startswith("5.5.2 Line too long")
        assert await threads_of(app.db, world.company_id) == []
        assert (await send(app.smtp.port, [world.bcc], make_mail())).code == 250  # the session recovers

    async def test_starttls_offered_when_certificate_configured(
        self, make_app: AppFactory, tmp_path: Path
    ) -> None:
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        await asyncio.to_thread(
            subprocess.run,
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        app, world = await _app(make_app, tls_cert=str(cert), tls_key=str(key))

        def go() -> tuple[str, int]:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with smtplib.SMTP("127.0.0.1", app.smtp.port, timeout=10) as c:
                c.ehlo("x")
                offered = c.esmtp_features
                c.starttls(context=ctx)
                c.ehlo("x")
                assert "auth" not in c.esmtp_features  # T3: not even over TLS
                c.sendmail("alice@acme.test", [world.bcc], make_mail())
                return ",".join(offered), 250

        offered, code = await asyncio.to_thread(go)
        assert "starttls" in offered and code == 250
        assert len(await threads_of(app.db, world.company_id)) == 1


class TestS5SenderPolicy:
    async def test_owner_policy_refuses_stranger(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        raw = make_mail(sender="mallory@evil.test")
        result = await send(app.smtp.port, [world.bcc], raw, mail_from="mallory@evil.test")
        assert result.code == 550 and result.message.startswith("5.7.1")
        assert await threads_of(app.db, world.company_id) == []

    async def test_owner_alias_is_accepted(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        raw = make_mail(sender="alice@home.test")
        result = await send(app.smtp.port, [world.bcc], raw, mail_from="alice@home.test")
        assert result.code == 250

    async def test_company_policy_accepts_colleague(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        raw = make_mail(sender="bob@acme.test")
        assert (await send(app.smtp.port, [world.bcc], raw, mail_from="bob@acme.test")).code == 550
        await set_policy(app.db, world.company_id, "company")
        assert (await send(app.smtp.port, [world.bcc], raw, mail_from="bob@acme.test")).code == 250

    async def test_any_policy(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        await set_policy(app.db, world.company_id, "any")
        raw = make_mail(sender="x@y.test")
        assert (await send(app.smtp.port, [world.bcc], raw, mail_from="x@y.test")).code == 250


def _raw_session(port: int, lines: list[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.recv(1024)
        s.sendall(b"".join(lines))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk
            if b"221" in data:
                return data


class TestS6Malformed:
    async def test_bare_lf_dot_does_not_split_message(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        smuggled = (
            b"From: alice@acme.test\r\nTo: carol@client.test\r\nSubject: one\r\n\r\nbody\n.\n"
            b"MAIL FROM:<alice@acme.test>\r\nRCPT TO:<" + world.bcc.encode() + b">\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nx\r.\r\nmore\r\n.\r\n"
        )
        replies = await asyncio.to_thread(
            _raw_session,
            app.smtp.port,
            [
                b"EHLO x\r\n",
                b"MAIL FROM:<alice@acme.test>\r\n",
                b"RCPT TO:<" + world.bcc.encode() + b">\r\n",
                b"DATA\r\n",
                smuggled,
                b"QUIT\r\n",
            ],
        )
        assert replies.count(b"250 2.0.0 OK: stored") == 1, replies
        found = await threads_of(app.db, world.company_id)
        assert len(found) == 1 and found[0]["subject"] == "one"

    async def test_garbage_mime_is_stored_with_defects(self, make_app: AppFactory) -> None:
        app, world = await _app(make_app)
        raw = (
            b"From: alice@acme.test\r\nSubject: =?bogus?Q?=FF?=\r\nContent-Type: multipart/mixed\r\n\r\n"
            b"no boundary\xff\xfe here\r\n"
        )
        result = await send(app.smtp.port, [world.bcc], raw)
        assert result.code == 250
        [summary] = await threads_of(app.db, world.company_id)
        from tests.helpers import thread

        t = await thread(app.db, summary["id"])
        assert t["message"]["defects"], t["message"]
        assert (await send(app.smtp.port, [world.bcc], make_mail())).code == 250  # still serving


@pytest.mark.parametrize("cmd", [b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", b"AUTH LOGIN\r\n"])
async def test_t3_auth_is_not_offered(make_app: AppFactory, cmd: bytes) -> None:
    app, _ = await _app(make_app)
    reply = await asyncio.to_thread(_raw_session, app.smtp.port, [b"EHLO x\r\n", cmd, b"QUIT\r\n"])
    assert b"502 5.5.1" in reply


async def test_large_messages_are_parsed_off_the_event_loop(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import threading

    from bccd import ingest
    from tests.parse_spy import ParseSpy

    app, world = await _app(make_app)
    spy = ParseSpy(monkeypatch)
    small = make_mail(subject="small")
    large = make_mail(subject="large", body=("y" * 70 + "\n") * (ingest.INLINE_PARSE_MAX_BYTES // 70 + 10))
    assert (await send(app.smtp.port, [world.bcc], small)).code == 250
    assert (await send(app.smtp.port, [world.bcc], large)).code == 250
    assert spy.inline_threads == [threading.main_thread().name]
    assert len(spy.process_pids) == 1 and spy.process_pids[0] != os.getpid()
    assert {t["subject"] for t in await threads_of(app.db, world.company_id)} == {"small", "large"}


async def test_enhanced_status_codes_on_every_reply_but_greeting_and_ehlo(make_app: AppFactory) -> None:
    app, world = await _app(make_app)

    def greeting() -> bytes:
        with socket.create_connection(("127.0.0.1", app.smtp.port), timeout=10) as sock:
            return sock.recv(1024)

    assert (await asyncio.to_thread(greeting)).startswith(b"220 bccd.localhost ")  # no enhanced code
    raw = await asyncio.to_thread(
        _raw_session,
        app.smtp.port,
        [b"EHLO x\r\n", b"NOOP\r\n", b"RCPT TO:<" + world.bcc.encode() + b">\r\n", b"FOO\r\n", b"QUIT\r\n"],
    )
    lines = raw.decode().splitlines()  # _raw_session has read the greeting already
    ehlo = [line for line in lines if line.startswith("250-") or line == "250 HELP"]
    assert "250-ENHANCEDSTATUSCODES" in ehlo
    assert not any(re.match(r"\d{3}[ -][245]\.\d+\.\d+ ", line) for line in ehlo)
    rest = lines[len(ehlo) :]
    assert [line[:9] for line in rest] == ["250 2.0.0", "503 5.5.1", "500 5.5.2", "221 2.0.0"]
