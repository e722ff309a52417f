"""Building blocks for the store contract suite: a seeded directory, messages, drafts and decisions.

Drafts are made by hand and decided by the real linker over facts the store returns, so the suite needs
nothing from the mail parser or ingest and still exercises the queries ingest relies on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.directory_models import DealIn, LeadIn, OrganizationIn, PersonIn, ProjectIn
from bccd.linker import LinkDecision, LinkInput, decide_links
from bccd.store.database import Database
from bccd.store.directory import (
    items_for_persons,
    persons_by_addresses,
    upsert_item,
    upsert_organization,
    upsert_person,
)
from bccd.store.thread_batch import store_messages
from bccd.store.threads import MessageRow, ParticipantRow, StoredThread, ThreadDraft
from bccd.store.users import User, create_company, create_user

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
PETER = "peter@initech.example"  # p-1, contact of the one open deal d-1 (L6)
PAULA = "paula@example.org"  # p-2, contact of open lead l-1 and of project pr-1 (L7), and of won deal d-2
STRANGER = "nobody@elsewhere.example"  # no person anywhere (L3)


@dataclass
class World:
    """Acme (alice, bob: regular; carol: admin) with a small directory, and Globex (eve) for T1 checks."""

    company_id: int
    alice: User
    bob: User
    carol: User
    other_company_id: int
    eve: User
    ids: dict[str, int] = field(default_factory=dict)  # "person:p-1", "deal:d-1", … → internal id


async def seed(db: Database) -> World:
    async with db.write() as conn:
        acme = await create_company(conn, "Acme")
        alice = await create_user(conn, acme.id, email="alice@acme.test", name="Alice")
        bob = await create_user(conn, acme.id, email="bob@acme.test", name="Bob")
        carol = await create_user(conn, acme.id, email="carol@acme.test", name="Carol", admin=True)
        globex = await create_company(conn, "Globex")
        eve = await create_user(conn, globex.id, email="eve@globex.test", name="Eve", admin=True)
        world = World(acme.id, alice, bob, carol, globex.id, eve)
        ids = world.ids
        ids["organization:o-1"], _ = await upsert_organization(
            conn, acme.id, "o-1", OrganizationIn(name="Initech")
        )
        ids["person:p-1"], _ = await upsert_person(
            conn, acme.id, "p-1", PersonIn(name="Peter", emails=[PETER], organization="o-1")
        )
        ids["person:p-2"], _ = await upsert_person(
            conn, acme.id, "p-2", PersonIn(name="Paula", emails=[PAULA])
        )
        ids["deal:d-1"], _ = await upsert_item(
            conn, acme.id, "deal", "d-1", DealIn(title="Big deal", person="p-1", created_at=LONG_AGO)
        )
        ids["deal:d-2"], _ = await upsert_item(
            conn,
            acme.id,
            "deal",
            "d-2",
            DealIn(title="Old deal", person="p-2", status="won", created_at=LONG_AGO),
        )
        ids["lead:l-1"], _ = await upsert_item(
            conn, acme.id, "lead", "l-1", LeadIn(title="A lead", person="p-2", created_at=LONG_AGO)
        )
        ids["project:pr-1"], _ = await upsert_item(
            conn, acme.id, "project", "pr-1", ProjectIn(title="A project", person="p-2", created_at=LONG_AGO)
        )
        # Globex knows Peter's address too, with an open deal: nothing of it may reach Acme's threads (T1).
        ids["globex:person:g-1"], _ = await upsert_person(
            conn, globex.id, "g-1", PersonIn(name="Peter at Globex", emails=[PETER])
        )
        ids["globex:deal:gd-1"], _ = await upsert_item(
            conn, globex.id, "deal", "gd-1", DealIn(title="Globex deal", person="g-1", created_at=LONG_AGO)
        )
    return world


def message(
    tag: str, *, subject: str | None = None, body: bytes = b"Hello.\r\n", **values: Any
) -> MessageRow:
    """A message row whose raw bytes (and so its sha256, the S3 key) are unique per `tag`."""
    raw = (
        f"From: alice@acme.test\r\nTo: {PETER}\r\nSubject: {subject or tag}\r\n"
        f"Message-ID: <{tag}@acme.test>\r\n\r\n"
    ).encode() + body
    columns: dict[str, Any] = {
        "message_id": f"<{tag}@acme.test>",
        "date": None,
        "from_addrs": [{"address": "alice@acme.test", "name": "Alice"}],
        "to_addrs": [{"address": PETER, "name": None}],
        "cc_addrs": [],
        "subject": subject or tag,
        "text_body": body.decode("utf-8", "replace"),
        "html_body": None,
        "attachments": [],
        "defects": [],
        "forward": None,
        "received_at": datetime.now(UTC),
    }
    columns.update(values)
    return MessageRow(sha256=hashlib.sha256(raw).hexdigest(), raw=raw, values=columns)


async def decide(
    conn: AsyncConnection, owner: User, addresses: Sequence[str], *, at: datetime | None = None
) -> LinkDecision:
    """What ingest would decide for `owner` and these participant addresses, from the store's facts."""
    persons = await persons_by_addresses(conn, owner.company_id, addresses)
    item_facts = await items_for_persons(conn, owner.company_id, [p.id for p in persons])
    return decide_links(
        LinkInput(
            participant_addresses=tuple(addresses),
            persons=tuple(persons),
            items=tuple(item_facts),
            autolink=owner.autolink,
            thread_created_at=at or datetime.now(UTC),
        )
    )


async def draft(
    db: Database, owner: User, addresses: Sequence[str] = (PETER,), *, subject: str = "Hello"
) -> ThreadDraft:
    now = datetime.now(UTC)
    async with db.read() as conn:
        decision = await decide(conn, owner, addresses, at=now)
        persons = await persons_by_addresses(conn, owner.company_id, addresses)
    person_of = {email: p.id for p in persons for email in p.emails}
    return ThreadDraft(
        company_id=owner.company_id,
        owner_id=owner.id,
        subject=subject,
        created_at=now,
        participants=[ParticipantRow(a, None, "to", person_of.get(a)) for a in addresses],
        decision=decision,
        smtp_session="test-session",
    )


async def store(db: Database, msg: MessageRow, drafts: Sequence[ThreadDraft]) -> list[StoredThread]:
    async with db.write() as conn:
        return await store_message_threads(conn, msg, drafts)


async def new_thread(db: Database, owner: User, tag: str, addresses: Sequence[str] = (PETER,)) -> int:
    (stored,) = await store(db, message(tag), [await draft(db, owner, addresses, subject=tag)])
    return stored.id


async def count(db: Database, table: Table, *where: Any) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def store_message_threads(
    conn: AsyncConnection, message: MessageRow, drafts: Sequence[ThreadDraft]
) -> list[StoredThread]:
    """One message's threads through the group commit's write path (a test helper: production batches)."""
    return (await store_messages(conn, [(message, drafts)]))[0]
