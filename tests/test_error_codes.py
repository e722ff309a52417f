"""Issue 12 item 12: failure log lines carry a stable error code and a scrubbed message; the traceback
only at debug level. The errors classified here are real ones, provoked from SQLite and the OS."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
import structlog

from bccd.error_codes import CODES, classify, scrub
from bccd.logs import configure_logging, error_fields
from tests.conftest import AppFactory
from tests.helpers import make_mail, seed_world, send


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    configure_logging("warning", "json", stream=io.StringIO())


def _raised(engine_url: str, *statements: str) -> BaseException:
    engine = sqlalchemy.create_engine(engine_url, connect_args={"timeout": 0})
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    except Exception as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no error")


def test_sqlite_failures_get_distinct_codes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    full = _raised(
        url,
        "CREATE TABLE t (x)",
        "PRAGMA max_page_count = 2",
        "INSERT INTO t SELECT randomblob(100000)",
    )
    assert isinstance(full, sqlalchemy.exc.OperationalError) and classify(full) == "disk_full"

    holder = sqlite3.connect(tmp_path / "a.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        locked = _raised(url, "BEGIN IMMEDIATE")
    finally:
        holder.close()
    assert classify(locked) == "db_locked"

    (tmp_path / "junk.sqlite3").write_bytes(b"this is not a database file at all" * 200)
    assert classify(_raised(f"sqlite:///{tmp_path / 'junk.sqlite3'}", "SELECT * FROM t")) == "db_corrupt"
    missing = _raised(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite3'}", "SELECT 1")
    assert classify(missing) == "db_unavailable"
    read_only_url = f"sqlite:///file:{tmp_path / 'a.sqlite3'}?mode=ro&uri=true"
    readonly = _raised(read_only_url, "INSERT INTO t VALUES (1)")
    assert classify(readonly) == "db_readonly"
    twice = ("INSERT INTO u VALUES (1)",) * 2
    integrity = _raised(url, "CREATE TABLE u (x UNIQUE)", *twice)
    assert classify(integrity) == "db_integrity"


def test_os_failures() -> None:
    assert classify(OSError(errno.ENOSPC, "No space left on device")) == "disk_full"
    assert classify(OSError(errno.EROFS, "Read-only file system")) == "db_readonly"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connecting is refused
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as exc:
            refused = exc
    assert classify(refused) == "db_unavailable"
    wrapped = RuntimeError("commit failed")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert classify(wrapped) == "disk_full"  # the chain is walked
    assert classify(KeyError("x")) == "internal"
    assert set(CODES) >= {"disk_full", "db_locked", "db_corrupt", "db_unavailable", "internal"}


def test_scrub_removes_addresses_values_and_tokens() -> None:
    text = (
        "duplicate key for alice@acme.test: 'Secret Subject' Key (email)=(bob@x.test) "
        "token AbCdEfGhIjKlMnOpQrStUvWxYz0123\nSQL: INSERT ..."
    )
    clean = scrub(text)
    assert "alice" not in clean and "bob@" not in clean and "Secret" not in clean
    assert "AbCdEfGh" not in clean and "SQL" not in clean  # one line only
    assert clean.startswith("duplicate key for <address>")


def test_internal_errors_carry_no_message() -> None:
    fields = error_fields(ValueError("the body said: quarterly numbers"))
    assert fields == {"error": "ValueError", "error_code": "internal"}


async def _disk_full_delivery(make_app: AppFactory, level: str) -> list[dict[str, object]]:
    stream = io.StringIO()
    configure_logging(level, "json", stream=stream)
    app = await make_app()
    world = await seed_world(app.db)
    async with app.db.write() as conn:
        pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
        await conn.exec_driver_sql(f"PRAGMA max_page_count = {int(pages)}")
    result = await send(app.smtp.port, [world.bcc], make_mail(body="numbers " * 30_000))
    assert result.code == 451
    await asyncio.sleep(0)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_store_failure_line_names_the_cause(make_app: AppFactory) -> None:
    records = await _disk_full_delivery(make_app, "info")
    [failed] = [r for r in records if r["event"] == "message_store_failed"]
    assert failed["error_code"] == "disk_full"
    assert failed["error_message"] == "database or disk is full"
    assert failed["level"] == "error"
    assert not any("exception" in r for r in records)  # no traceback above debug
    assert "numbers" not in json.dumps(records)


async def test_traceback_at_debug(make_app: AppFactory) -> None:
    records = await _disk_full_delivery(make_app, "debug")
    [failed] = [r for r in records if r["event"] == "message_store_failed"]
    assert failed["error_code"] == "disk_full"
    assert "Traceback" in str(failed.get("exception"))
