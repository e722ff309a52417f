"""Test helpers: a seeded directory, mail builders, and an SMTP client that does not block the event loop."""

from __future__ import annotations

import asyncio
import re
import smtplib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default
from email.utils import format_datetime, make_msgid
from typing import Any

from bccd.directory_models import DealIn, LeadIn, OrganizationIn, PersonIn, ProjectIn
from bccd.services.companies import update_settings
from bccd.store.database import Database
from bccd.store.directory import upsert_item, upsert_organization, upsert_person
from bccd.store.thread_views import ThreadFilter, get_thread, list_threads
from bccd.store.users import User, create_company, create_user

BCC_DOMAIN = "bcc.test"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass
class World:
    """One company with an owner, a colleague and an admin, plus a second company for T1 checks."""

    company_id: int
    owner: User
    colleague: User
    admin: User
    other_company_id: int
    outsider: User
    ids: dict[str, int] = field(default_factory=dict)

    @property
    def bcc(self) -> str:
        return f"{self.owner.smart_bcc_local}@{BCC_DOMAIN}"


async def seed_world(db: Database, *, sender_policy: str = "owner") -> World:
    async with db.write() as conn:
        acme = await create_company(conn, "Acme", sender_policy=sender_policy, never_log=["noreply.test"])
        owner = await create_user(
            conn, acme.id, email="alice@acme.test", name="Alice", aliases=["alice@home.test"]
        )
        colleague = await create_user(conn, acme.id, email="bob@acme.test", name="Bob")
        admin = await create_user(conn, acme.id, email="root@acme.test", name="Root", admin=True)
        other = await create_company(conn, "Globex")
        outsider = await create_user(conn, other.id, email="eve@globex.test", name="Eve", admin=True)
    return World(acme.id, owner, colleague, admin, other.id, outsider)


async def set_policy(db: Database, company_id: int, policy: str) -> None:
    """Through the company-settings use case (bccd.services.companies), as an interface would."""
    await update_settings(db, company_id, sender_policy=policy)


async def add_org(db: Database, company_id: int, ext: str, name: str) -> None:
    async with db.write() as conn:
        await upsert_organization(conn, company_id, ext, OrganizationIn(name=name))


async def add_person(
    db: Database, company_id: int, ext: str, name: str, emails: list[str], org: str | None = None
) -> None:
    async with db.write() as conn:
        await upsert_person(conn, company_id, ext, PersonIn(name=name, emails=emails, organization=org))


async def add_item(
    db: Database,
    company_id: int,
    kind: str,
    ext: str,
    *,
    person: str | None = None,
    status: str = "open",
    created_at: datetime | None = LONG_AGO,
    participants: list[str] | None = None,
    title: str | None = None,
) -> None:
    body: Any
    common: dict[str, Any] = {
        "title": title or f"{kind} {ext}",
        "person": person,
        "status": status,
        "created_at": created_at,
    }
    if kind == "deal":
        body = DealIn(**common, participants=participants or [])
    elif kind == "lead":
        body = LeadIn(**common)
    else:
        body = ProjectIn(**common)
    async with db.write() as conn:
        await upsert_item(conn, company_id, kind, ext, body)


def make_mail(
    *,
    sender: str = "Alice <alice@acme.test>",
    to: str = "Carol <carol@client.test>",
    cc: str | None = None,
    subject: str = "Proposal",
    body: str = "Hello,\nhere is the proposal.\n",
    message_id: str | None = None,
    date: datetime | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(UTC) - timedelta(seconds=1))
    msg["Message-ID"] = message_id or make_msgid(domain="acme.test")
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP_POLICY)


def forward_as_attachment(original: bytes, *, sender: str = "Alice <alice@acme.test>", to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Fwd: forwarded"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="acme.test")
    msg.set_content("See the forwarded mail.\n")
    msg.add_attachment(message_from_bytes(original, policy=default))
    return msg.as_bytes(policy=SMTP_POLICY)


@dataclass
class SendResult:
    code: int
    message: str
    refused: dict[str, tuple[int, bytes]]


def crlf(data: bytes) -> bytes:
    """SMTP lines end in CRLF; smtplib sends bytes as given, so files with bare LF are converted first."""
    return re.sub(rb"\r?\n", b"\r\n", data)


def _send_blocking(port: int, mail_from: str, rcpts: list[str], data: bytes) -> SendResult:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.test")
        client.mail(mail_from)
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in rcpts:
            code, msg = client.rcpt(rcpt)
            if code >= 400:
                refused[rcpt] = (code, msg)
        if len(refused) == len(rcpts):
            return SendResult(0, "all recipients refused", refused)
        code, msg = client.data(data)
        return SendResult(code, msg.decode("utf-8", "replace"), refused)


async def send(port: int, rcpts: list[str], data: bytes, *, mail_from: str = "alice@acme.test") -> SendResult:
    """Deliver over real SMTP from a worker thread (the server runs on this test's event loop)."""
    return await asyncio.to_thread(_send_blocking, port, mail_from, rcpts, data)


async def threads_of(db: Database, company_id: int, **filters: Any) -> list[dict[str, Any]]:
    async with db.read() as conn:
        found = await list_threads(conn, ThreadFilter(company_id=company_id, **filters), limit=200)
    return [t.as_json() for t in found]


async def thread(db: Database, thread_id: int) -> dict[str, Any]:
    async with db.read() as conn:
        return (await get_thread(conn, thread_id)).as_json()


async def only_thread(db: Database, company_id: int) -> dict[str, Any]:
    found = await threads_of(db, company_id)
    assert len(found) == 1, found
    return await thread(db, found[0]["id"])
