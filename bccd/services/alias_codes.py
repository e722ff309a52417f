"""The one-time codes that confirm alternative sender addresses, and the mail that carries them
(bccd.services.aliases has the use cases). Codes are random (50 bits), good for CODE_TTL, stored only as
a sha256 hash and never logged; a new code for a pending address makes the old one stop working."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.logs import get_logger
from bccd.outbound import Mailer, MailNotSent
from bccd.store import aliases as store
from bccd.store.users import Alias, User

CODE_TTL = timedelta(hours=24)
SUBJECT = "Confirm your sender address for bccd"
CODE_BYTES = 7  # 56 random bits, shown as 10 base32 characters (the last 6 bits are dropped)
log = get_logger("bccd.services.alias_codes")


def new_code() -> str:
    """`ABCDE-FGHJK`: 10 base32 characters from the OS CSPRNG, grouped to be typed."""
    raw = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")[:10]
    return f"{raw[:5]}-{raw[5:]}"


def hash_code(code: str) -> str:
    """The stored form: sha256 of the code without spaces or dashes, upper case (typing is forgiving)."""
    clean = "".join(ch for ch in code if ch.isalnum()).upper()
    return hashlib.sha256(clean.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class Pending:
    address: str
    code: str
    expires_at: datetime


async def issue(conn: AsyncConnection, user: User, address: str, now: datetime) -> tuple[Alias, Pending]:
    code = new_code()
    alias = await store.add_pending(
        conn, user.id, address, code_hash=hash_code(code), expires_at=now + CODE_TTL
    )
    return alias, Pending(alias.address, code, now + CODE_TTL)


def _text(user: User, pending: Pending, web_url: str | None) -> str:
    where = f"on your page in bccd ({web_url}/me)" if web_url else "on your page in bccd (Me)"
    return (
        f"{user.name} <{user.email}> asked bccd to count {pending.address} as one of their own sender\n"
        "addresses: mail from it to their Smart Bcc address would be stored in the CRM as theirs.\n\n"
        f"Confirmation code: {pending.code}\n\n"
        f"Enter it {where}, or send it to the API:\n"
        f"  POST /api/v1/users/{user.id}/aliases/confirm "
        f'{{"address": "{pending.address}", "code": "{pending.code}"}}\n'
        f"The code is good until {pending.expires_at.strftime('%Y-%m-%d %H:%M')} UTC and works once.\n\n"
        "If you did not expect this mail, ignore it: the address is not used until it is confirmed.\n"
    )


async def send_code(mailer: Mailer | None, user: User, pending: Pending, web_url: str | None) -> bool:
    if mailer is None:
        log.info("alias_confirmation_not_sent", user=user.id, reason="no_outbound_relay")
        return False
    try:
        await mailer.send(pending.address, SUBJECT, _text(user, pending, web_url))
    except MailNotSent as exc:
        log.warning("alias_confirmation_not_sent", user=user.id, reason=str(exc))
        return False
    log.info("alias_confirmation_sent", user=user.id)
    return True


async def send_codes(
    mailer: Mailer | None, user: User, pending: Sequence[Pending], web_url: str | None
) -> dict[str, bool]:
    return {p.address: await send_code(mailer, user, p, web_url) for p in pending}


async def replace_aliases(
    conn: AsyncConnection, user: User, requested: Sequence[str], now: datetime
) -> list[Pending]:
    """Inside the caller's transaction: the alternative addresses become `requested`; new ones are added
    unconfirmed with a code (returned, to be mailed after the commit), kept ones keep their state."""
    added, removed = await store.requested_changes(conn, user.id, requested)
    await store.remove(conn, user.id, removed)
    return [(await issue(conn, user, address, now))[1] for address in added]
