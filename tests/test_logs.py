"""Ops: one JSON object per log line, stable event names, correlation ids, no bodies or tokens."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from bccd.logs import configure_logging, get_logger
from tests.conftest import AppFactory
from tests.helpers import make_mail, seed_world, send


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    yield stream
    structlog.reset_defaults()


async def test_json_lines_with_event_names_and_ids_and_no_body(
    make_app: AppFactory, log_stream: io.StringIO
) -> None:
    app = await make_app()
    world = await seed_world(app.db)
    secret_body = "SECRET-BODY-MARKER quarterly numbers"
    result = await send(app.smtp.port, [world.bcc], make_mail(subject="Hello", body=secret_body))
    assert result.code == 250
    text = log_stream.getvalue()
    assert "SECRET-BODY-MARKER" not in text
    events = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    names = [e["event"] for e in events]
    for expected in ("smtp_session_started", "smtp_rcpt_accepted", "thread_created", "message_accepted"):
        assert expected in names
    created = next(e for e in events if e["event"] == "thread_created")
    accepted = next(e for e in events if e["event"] == "message_accepted")
    assert created["session"] == accepted["session"] and len(created["session"]) == 16
    assert created["reason"] == "no_matching_person" and isinstance(created["thread"], int)
    assert all("timestamp" in e and "level" in e for e in events)


def test_crlf_is_stripped_from_values(log_stream: io.StringIO) -> None:
    get_logger("t").info("header_seen", subject="evil\r\nInjected: yes")
    [line] = log_stream.getvalue().splitlines()
    assert json.loads(line)["subject"] == "evil  Injected: yes"
