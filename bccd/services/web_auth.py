"""Browser sign-in without passwords (issue 10): one-time login links, server-side sessions, CSRF tokens.

A login link is valid for 15 minutes and once; following it opens a session. Only sha256 hashes of the
link and session secrets are stored (like API tokens, T2), so a database dump signs nobody in. Signing
out deletes the session row: the cookie is worthless from that moment, on every node.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bccd.services.runtime import Database
from bccd.services.users import User, find_user
from bccd.store import users as user_store
from bccd.store import web_sessions as store

LOGIN_LINK_TTL = timedelta(minutes=15)  # issue 10: "valid 15 minutes, single use"
SESSION_TTL = timedelta(days=14)  # a sales team signs in about once a fortnight; sign-out ends it sooner
LINK_PREFIX = "bccdl_"
SESSION_PREFIX = "bccds_"
RANDOM_BYTES = 32
MAX_SECRET_CHARS = 128  # ours are ~49 characters; longer input is not worth hashing
LOGIN_PATH = "/login/"

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _ours(raw: str, prefix: str) -> bool:
    return raw.startswith(prefix) and len(raw) <= MAX_SECRET_CHARS


@dataclass(frozen=True, slots=True)
class LoginLink:
    user: User
    url: str
    expires_at: datetime

    def as_json(self) -> dict[str, object]:
        return {"user": self.user.id, "url": self.url, "expires_at": self.expires_at.isoformat()}


def login_url(public_url: str, raw: str) -> str:
    return public_url.rstrip("/") + LOGIN_PATH + raw


async def issue_login_link(
    db: Database, ref: int | str, *, actor: User | None, public_url: str, clock: Clock = _utcnow
) -> LoginLink:
    """A one-time sign-in URL for the user: the user themself, an admin of their company, or the operator."""
    user = await find_user(db, ref, actor=actor)
    raw = LINK_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)
    now = clock()
    expires = now + LOGIN_LINK_TTL
    async with db.write() as conn:
        await store.add_login_link(conn, user.id, _hash(raw), now=now, expires_at=expires)
    return LoginLink(user, login_url(public_url, raw), expires)


async def open_session(db: Database, raw_link: str, *, clock: Clock = _utcnow) -> tuple[User, str] | None:
    """Spend a login link: the user and a new raw session secret, or None (unknown, used or expired)."""
    if not _ours(raw_link, LINK_PREFIX):
        return None
    now = clock()
    raw_session = SESSION_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)
    async with db.write() as conn:
        user_id = await store.use_login_link(conn, _hash(raw_link), now=now)
        if user_id is None:
            return None
        await store.add_session(conn, user_id, _hash(raw_session), now=now, expires_at=now + SESSION_TTL)
        user = await user_store.get_user(conn, user_id)
    return user, raw_session


async def session_user(db: Database, raw_session: str, *, clock: Clock = _utcnow) -> User | None:
    """The signed-in user of a session cookie, or None when it is not a live session."""
    if not _ours(raw_session, SESSION_PREFIX):
        return None
    async with db.read() as conn:
        user_id = await store.session_user_id(conn, _hash(raw_session), now=clock())
        if user_id is None:
            return None
        return await user_store.get_user(conn, user_id)


async def close_session(db: Database, raw_session: str) -> bool:
    """Sign out: the session is gone for good."""
    if not _ours(raw_session, SESSION_PREFIX):
        return False
    async with db.write() as conn:
        return await store.remove_session(conn, _hash(raw_session))


async def close_other_sessions(db: Database, user: User, *, keep: str | None) -> int:
    """Sign the user out everywhere else (a lost laptop); returns how many sessions ended."""
    async with db.write() as conn:
        return await store.remove_other_sessions(conn, user.id, None if keep is None else _hash(keep))


async def session_count(db: Database, user: User, *, clock: Clock = _utcnow) -> int:
    async with db.read() as conn:
        return await store.count_sessions(conn, user.id, now=clock())


def csrf_token(raw_session: str) -> str:
    """The form token of a session: derived from its secret, so it needs no storage and dies with it."""
    return hmac.new(raw_session.encode("utf-8"), b"bccd-csrf", hashlib.sha256).hexdigest()


def csrf_ok(raw_session: str, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(csrf_token(raw_session), submitted)
