"""Issue 12 item 4 (S6, T4): crafted mail under the size threshold is parsed off the event loop; ordinary
small mail stays on it. The crafted shapes are the ones that held the loop for 57–200 ms each."""

from __future__ import annotations

import threading

import pytest

from bccd import ingest
from bccd.parse_cost import INLINE_BUDGET_US, estimated_us, parse_inline
from tests.conftest import AppFactory
from tests.helpers import make_mail, seed_world, send, threads_of


def crafted(kind: str) -> bytes:
    head = b"From: alice@acme.test\r\nTo: bob@client.test\r\nSubject: crafted " + kind.encode() + b"\r\n"
    if kind == "parts":
        return (
            head
            + b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
            + b"--x\r\n\r\nq\r\n" * 21_000
            + b"--x--\r\n"
        )
    if kind == "headers":
        return head + b"X-H: v\r\n" * 25_000 + b"\r\nbody\r\n"
    if kind == "markers":
        block = (
            b"---------- Forwarded message ---------\r\nFrom: c@d.test\r\nSubject: y\r\nTo: e@f.test\r\n\r\n"
        )
        return head + b"\r\n" + block * 2_500
    raise ValueError(kind)


KINDS = ("parts", "headers", "markers")


@pytest.mark.parametrize("kind", KINDS)
def test_crafted_messages_under_the_size_threshold_are_priced_high(kind: str) -> None:
    raw = crafted(kind)
    assert len(raw) < ingest.INLINE_PARSE_MAX_BYTES
    assert estimated_us(raw) > 10 * INLINE_BUDGET_US
    assert not parse_inline(raw, ingest.INLINE_PARSE_MAX_BYTES)


def test_ordinary_mail_is_parsed_inline() -> None:
    raw = make_mail(body="Hello,\n\nthe quote is attached.\n" * 20)
    assert estimated_us(raw) < INLINE_BUDGET_US / 4
    assert parse_inline(raw, ingest.INLINE_PARSE_MAX_BYTES)


async def test_crafted_mail_is_parsed_in_the_parse_thread_over_smtp(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_app()
    world = await seed_world(app.db)
    seen: list[str] = []
    real = ingest.parse_and_detect

    def recording(raw: bytes) -> object:
        seen.append(threading.current_thread().name)
        return real(raw)

    monkeypatch.setattr(ingest, "parse_and_detect", recording)
    assert (await send(app.smtp.port, [world.bcc], make_mail(subject="small"))).code == 250
    for kind in KINDS:
        assert (await send(app.smtp.port, [world.bcc], crafted(kind))).code == 250
    main = threading.main_thread().name
    assert seen[0] == main
    assert all(name.startswith("bccd-parse") for name in seen[1:]), seen
    assert len(await threads_of(app.db, world.company_id)) == 1 + len(KINDS)  # all stored (S6)
