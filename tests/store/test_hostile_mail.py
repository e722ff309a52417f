"""What the parser hands over for hostile mail is stored on PostgreSQL exactly as on SQLite (S6, T4).

PostgreSQL is stricter than SQLite (it enforces VARCHAR lengths, refuses NUL in text, validates UTF-8), so
a message SQLite takes could be refused there and answered 451 on every retry, forever. These messages
go through the real parser and ingest's row builder, then the store, on both backends.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from bccd.ingest import message_row
from bccd.linker import LinkDecision
from bccd.mail.forwards import detect_forward
from bccd.mail.message import parse_message
from bccd.store.database import Database
from bccd.store.thread_views import get_raw, get_thread
from bccd.store.threads import ParticipantRow, ThreadDraft
from tests.store.factories import World, store_message_threads

LONG_LOCAL = "x" * 400
HOSTILE = {
    "over_long_address": (
        f"From: alice@acme.test\r\nTo: {LONG_LOCAL}@example.com, <{'y' * 70}@{'d' * 300}.com>\r\n"
        "Subject: long\r\n\r\nbody\r\n"
    ).encode(),
    "nul_bytes": (
        b"From: alice@acme.test\r\nTo: a\x00b@example.com\r\nSubject: nul\x00here\r\n\r\nbo\x00dy\r\n"
    ),
    "eight_bit_garbage": (
        b"From: \xff\xfe <alice@acme.test>\r\nTo: \xc3(@example.com\r\n"
        b"Subject: =?utf-8?b?/w==?= \xed\xa0\x80\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n\xed\xa0\x80 lone surrogate, \xff bad byte\r\n"
    ),
    "huge_header": b"From: alice@acme.test\r\nSubject: " + b"s" * 200_000 + b"\r\n\r\nx\r\n",
    "no_headers": b"\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_mail_is_stored_on_every_backend(store_db: Database, world: World, case: str) -> None:
    raw = HOSTILE[case]
    parsed = parse_message(raw)
    forward = detect_forward(parsed.message, parsed.text_body, parsed.html_body)
    row = message_row(raw, hashlib.sha256(raw).hexdigest(), parsed, forward)
    participants = [
        ParticipantRow(a.address, a.name, role, None)
        for role, group in (("from", parsed.from_), ("to", parsed.to), ("cc", parsed.cc))
        for a in group
    ]
    decision = LinkDecision(
        item=None,
        item_id=None,
        person_ids=(),
        organization_ids=(),
        outcome="unlinked",
        reason="no_matching_person",
        rule="L3",
        candidates=(),
    )
    thread_draft = ThreadDraft(
        company_id=world.company_id,
        owner_id=world.alice.id,
        subject=parsed.subject,
        created_at=datetime.now(UTC),
        participants=participants,
        decision=decision,
    )
    async with store_db.write() as conn:
        (stored,) = await store_message_threads(conn, row, [thread_draft])
    async with store_db.read() as conn:
        thread = (await get_thread(conn, stored.id)).as_json()
        assert await get_raw(conn, stored.id) == raw  # the bytes are kept verbatim whatever else happened
    assert [p["address"] for p in thread["participants"]] == [p.address for p in participants]
    assert thread["subject"] == parsed.subject
