"""Issue 9: a 25 MB attachment is served without ever being held in memory whole, on both backends.

The raw message is read from the store a window at a time and the part is base64-decoded chunk by
chunk; tracemalloc measures the peak of everything Python allocates meanwhile (driver buffers included).
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import pytest

from bccd.ingest import message_row
from bccd.mail.parse_job import parse_and_detect
from bccd.services.content import open_attachment
from bccd.store.database import Database
from tests.store.factories import World, draft, seed, store

ATTACHMENT_BYTES = 25 * 1024 * 1024
# "Far below 25 MB": a window of the raw message, its decoded chunk and a few copies of them.
PEAK_LIMIT = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def big_mail() -> tuple[bytes, bytes]:
    payload = os.urandom(ATTACHMENT_BYTES)
    msg = EmailMessage()
    msg["From"] = "alice@acme.test"
    msg["To"] = "peter@initech.example"
    msg["Subject"] = "The big file"
    msg.set_content("Here it is.\n")
    msg.add_attachment(b"small", maintype="application", subtype="octet-stream", filename="small.bin")
    msg.add_attachment(payload, maintype="application", subtype="zip", filename="big.zip")
    return msg.as_bytes(policy=SMTP_POLICY), payload


@pytest.fixture
async def stored_big(
    any_db_url: str, big_mail: tuple[bytes, bytes]
) -> AsyncIterator[tuple[Database, World, int]]:
    raw, _ = big_mail
    db = Database(any_db_url)
    try:
        world = await seed(db)
        parsed, forward = parse_and_detect(raw)
        row = message_row(raw, hashlib.sha256(raw).hexdigest(), parsed, forward)
        (thread,) = await store(db, row, [await draft(db, world.alice)])
        yield db, world, thread.id
    finally:
        await db.close()


async def test_25_mb_attachment_streams_with_small_peak_memory(
    stored_big: tuple[Database, World, int], big_mail: tuple[bytes, bytes]
) -> None:
    db, world, thread_id = stored_big
    _, payload = big_mail
    digest = hashlib.sha256()
    size = 0
    tracemalloc.start()
    try:
        found = await open_attachment(db, thread_id, 1, actor=world.alice)
        async for piece in found.chunks:
            digest.update(piece)
            size += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found.name == "big.zip" and found.content_type == "application/zip"
    assert found.size == size == ATTACHMENT_BYTES
    assert digest.digest() == hashlib.sha256(payload).digest()
    print(f"peak {peak / 2**20:.2f} MiB streaming {ATTACHMENT_BYTES / 2**20:.0f} MiB")
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB while streaming a 25 MiB attachment"
