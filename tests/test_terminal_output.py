"""Issue 12 item 11: attacker bytes never reach the operator's terminal raw — neither through library
log records (aiosmtpd's mail.log) nor through `threads list` / `threads show`."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from bccd.app import BccdApp
from bccd.cli import main
from bccd.logs import LIBRARY_EVENT, configure_logging
from bccd.textsafe import escape_terminal, is_terminal_safe
from tests.conftest import app_settings
from tests.smtp.wire import connect, read_reply, read_until_closed

EVIL = "Invoice \x1b[2J\x1b]0;pwned\x07 \u202egnp.exe\u202c done\r"


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    configure_logging("warning", "json", stream=io.StringIO())


def test_escape_terminal() -> None:
    assert escape_terminal("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert escape_terminal("\u202eexe.txt") == "\\u202eexe.txt"
    assert escape_terminal("x\ry\nz\x9b") == "x\\x0dy\\x0az\\x9b"
    assert escape_terminal("x\ny\tz", keep_newlines=True) == "x\ny\tz"
    assert (
        escape_terminal("Grüße, 東京, مرحبا") == "Grüße, 東京, مرحبا"
    )  # printable text of any script passes
    assert is_terminal_safe(escape_terminal(EVIL)) and not is_terminal_safe(EVIL)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_library_records_go_through_the_sanitizing_pipeline(
    fmt: str, capfd: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    configure_logging("info", fmt, stream=stream)
    logging.getLogger("mail.log").warning("%r unrecognised: %s", ("127.0.0.1", 1), EVIL)
    logging.getLogger("asyncio").error("loop trouble %s", EVIL)
    out = stream.getvalue()
    assert "unrecognised" in out and "loop trouble" in out
    assert is_terminal_safe(out.replace("\n", "")), out
    if fmt == "json":
        records = [json.loads(line) for line in out.splitlines()]
        assert {r["event"] for r in records} == {LIBRARY_EVENT}
        assert {r["logger"] for r in records} == {"mail.log", "asyncio"}
        assert records[0]["level"] == "warning" and "\\x1b[2J" in records[0]["message"]
    _, raw_err = capfd.readouterr()
    assert "unrecognised" not in raw_err  # nothing bypasses the pipeline to stderr


async def test_aiosmtpd_warning_from_a_real_session_is_escaped(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from bccd.store.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    stream = io.StringIO()
    configure_logging("info", "console", stream=stream)
    app = BccdApp(app_settings(url))
    await app.start()
    try:

        def go() -> bytes:
            with connect(app.smtp.port) as sock:
                read_reply(sock)
                sock.sendall(b"\x1b]0;PWNED\x07BOGUS x\r\nQUIT\r\n")
                return read_until_closed(sock)

        assert b"221" in await asyncio.to_thread(go)
    finally:
        await app.stop()
    out, err = capfd.readouterr()
    logged = stream.getvalue() + out + err
    assert "PWNED" in logged  # aiosmtpd did log the bogus command …
    assert "\x1b" not in logged and "\x07" not in logged  # … escaped


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "bccd.toml"
    config.write_text(
        '[smtp]\nbcc_domains = ["bcc.test"]\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "db.sqlite3"}"\n'
        '[log]\nlevel = "warning"\n'
    )
    return config


def _cli(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main([*args, "--config", str(config)]) == 0
    return capsys.readouterr().out


def test_threads_list_and_show_escape_subjects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    _cli(config, capsys, "db", "upgrade")
    _cli(config, capsys, "company", "create", "--name", "Acme")
    user = json.loads(
        _cli(
            config,
            capsys,
            "user",
            "create",
            "--company",
            "Acme",
            "--email",
            "alice@acme.test",
            "--name",
            "Alice",
            "--json",
        )
    )
    from email.header import Header

    subject = Header(EVIL, "utf-8").encode()
    raw = (
        f"From: alice@acme.test\r\nTo: Bob <bob@client.test>\r\nSubject: {subject}\r\n"
        "Message-ID: <evil@acme.test>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nhello\r\n"
    ).encode()

    async def deliver() -> None:
        from bccd.config import load_settings

        settings = load_settings(config).model_copy(
            update={"smtp": load_settings(config).smtp.model_copy(update={"port": 0, "host": "127.0.0.1"})}
        )
        app = BccdApp(
            settings.model_copy(update={"http": settings.http.model_copy(update={"enabled": False})})
        )
        await app.start()
        try:

            def send() -> None:
                with smtplib.SMTP("127.0.0.1", app.smtp.port, timeout=10) as client:
                    client.sendmail("alice@acme.test", [user["smart_bcc_address"]], raw)

            await asyncio.to_thread(send)
        finally:
            await app.stop()

    asyncio.run(deliver())
    listed = _cli(config, capsys, "threads", "list")
    assert "Invoice" in listed and "\\x1b[2J" in listed and "\\u202e" in listed
    assert is_terminal_safe(listed.replace("\n", ""))
    thread_id = listed.split()[0]
    shown = _cli(config, capsys, "threads", "show", thread_id)
    assert "Invoice" in shown and "\\u202egnp.exe" in shown
    assert is_terminal_safe(shown.replace("\n", ""))
