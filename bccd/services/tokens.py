"""API tokens after issue: list them, revoke one, work out an expiry (SPEC T1, T2; issue 9).

A user lists and revokes their own tokens; an admin those of anyone in their company; another company's
user or token is not found (T1). `actor=None` is the operator at the CLI. Issuing lives in
bccd.services.users.issue_token and authenticating in bccd.services.users.authenticate (no cache: a
revoked token is refused by every process and node from the revocation's commit on).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bccd.errors import PermissionDenied
from bccd.services.runtime import Database
from bccd.services.users import LAST_USED_GRANULARITY as LAST_USED_GRANULARITY
from bccd.services.users import User, _target
from bccd.store import tokens as store
from bccd.store import users as user_store
from bccd.store.tokens import Token as Token  # re-exported for interfaces

MAX_EXPIRY_DAYS = 3650


def expiry(*, expires_in_days: int | None = None, expires_at: datetime | None = None) -> datetime | None:
    """When a token being issued ends: in N days, at a given time, or never (both None). ValueError for
    both at once, a naive time, a time not in the future, or more than MAX_EXPIRY_DAYS ahead."""
    now = datetime.now(UTC)
    if expires_in_days is not None and expires_at is not None:
        raise ValueError("give expires_in_days or expires_at, not both")
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise ValueError(f"expires_in_days must be between 1 and {MAX_EXPIRY_DAYS}")
        return now + timedelta(days=expires_in_days)
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise ValueError("expires_at needs a time zone (e.g. 2027-01-31T00:00:00Z)")
    if expires_at <= now:
        raise ValueError("expires_at must be in the future")
    if expires_at > now + timedelta(days=MAX_EXPIRY_DAYS):
        raise ValueError(f"expires_at must be within {MAX_EXPIRY_DAYS} days")
    return expires_at.astimezone(UTC)


async def issue_token(
    db: Database, ref: int | str, *, actor: User | None, expires_at: datetime | None = None
) -> tuple[str, Token]:
    """A new token for the user (themself or an admin): the raw token, returned once, and its listing."""
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise ValueError("expires_at must be in the future")
    async with db.write() as conn:
        user = await _target(conn, actor, ref)
        raw = await user_store.create_token(conn, user.id, expires_at=expires_at)
        issued = await store.token_by_raw(conn, raw)
    assert issued is not None
    return raw, issued


async def list_tokens(db: Database, ref: int | str, *, actor: User | None) -> tuple[User, list[Token]]:
    """The user's tokens (never the token or its hash): the user themself or an admin of the company."""
    async with db.read() as conn:
        user = await _target(conn, actor, ref)
        return user, await store.list_tokens(conn, user.id)


async def revoke_token(db: Database, token_id: int, *, actor: User | None) -> Token:
    """Delete the token: refused at once everywhere. Another company's token is not found (T1); a
    colleague's needs an admin (403)."""
    async with db.write() as conn:
        token = await store.get_token(conn, token_id, company_id=None if actor is None else actor.company_id)
        if actor is not None and token.user_id != actor.id and not actor.is_admin:
            raise PermissionDenied("only the token's user or an admin may revoke it")
        await store.delete_token(conn, token.id)
        return token
