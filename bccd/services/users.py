"""Users: who may act on whom, the last-admin rule, Smart Bcc addresses and API tokens (SPEC §2, T1, T2).

Admins manage every user of their own company. A regular user may read themself, change their own name
and autolink setting, rotate their own address and issue their own tokens; role and the list of
alternative sender addresses are admin-only because they widen what the user may do (admin rights,
sender policy S5). Alternative addresses count only once confirmed: new ones are stored unconfirmed and
mailed a one-time code (bccd.services.aliases, which also lets users add their own).
Another company's user is not found (T1). `actor=None` is the operator at the CLI: every right, every
company — but the company still keeps at least one admin, whoever asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.errors import Conflict, PermissionDenied
from bccd.logs import error_fields, get_logger
from bccd.outbound import Mailer
from bccd.services.alias_codes import replace_aliases, send_codes
from bccd.services.runtime import Database
from bccd.store import tokens as token_store
from bccd.store import users as store
from bccd.store.users import TOKEN_PREFIX as TOKEN_PREFIX  # re-exported for interfaces
from bccd.store.users import Company as Company
from bccd.store.users import User as User

# Tokens we issue are ~48 characters; anything far longer is not ours and is not worth hashing.
MAX_TOKEN_CHARS = 256
# api_tokens.last_used_at is written at most once per token per this long (not on every request): it says
# "used within the last minute of this time", and costs one write a minute per busy token.
LAST_USED_GRANULARITY = timedelta(minutes=1)
log = get_logger("bccd.services.users")


def require_admin(actor: User | None) -> None:
    if actor is not None and not actor.is_admin:
        raise PermissionDenied("only an admin of the company may do this")


async def authenticate(db: Database, raw_token: str) -> User | None:
    """The user an API token names, or None for anything that is not a live token of ours (unknown,
    revoked or expired). Nothing is cached: a revocation on any node counts from its commit on."""
    raw = raw_token.strip()
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > MAX_TOKEN_CHARS:
        return None
    now = datetime.now(UTC)
    async with db.read() as conn:
        token = await token_store.token_by_raw(conn, raw)
        if token is None or token.expired(now):
            return None
        user = await store.get_user(conn, token.user_id)
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_GRANULARITY:
        await _record_use(db, token.id, now)
    return user


async def _record_use(db: Database, token_id: int, now: datetime) -> None:
    """last_used_at, through this process's one writer; a failure here never fails the request."""
    try:
        async with db.write() as conn:
            await token_store.touch_token(conn, token_id, now, LAST_USED_GRANULARITY)
    except Exception as exc:
        log.warning("api_token_use_not_recorded", token=token_id, **error_fields(exc))


async def _target(conn: AsyncConnection, actor: User | None, ref: int | str) -> User:
    """The user to act on: another company's user is not found (T1); a colleague needs an admin (403)."""
    if actor is None:
        return await store.get_user(conn, ref)
    user = await store.get_user(conn, ref, company_id=actor.company_id)
    if actor.id != user.id and not actor.is_admin:
        raise PermissionDenied("only the user themself or an admin may do this")
    return user


async def find_user(db: Database, ref: int | str, *, actor: User | None = None) -> User:
    """A user by id or login email, as `actor` may see them (NotFound / PermissionDenied otherwise)."""
    async with db.read() as conn:
        return await _target(conn, actor, ref)


async def list_users(db: Database, *, actor: User | None, company_id: int | None = None) -> list[User]:
    """Users of the actor's company (admins only); the operator (actor=None) names a company or gets all."""
    require_admin(actor)
    async with db.read() as conn:
        if actor is not None:
            return await store.list_users(conn, actor.company_id)
        ids = [company_id] if company_id is not None else await store.company_ids(conn)
        return [u for cid in ids for u in await store.list_users(conn, cid)]


async def create_user(
    db: Database,
    *,
    actor: User | None,
    company: int | str | None = None,
    email: str,
    name: str,
    admin: bool = False,
    aliases: Iterable[str] = (),
    autolink: bool = True,
    token: bool = False,
    mailer: Mailer | None = None,
    web_url: str | None = None,
) -> tuple[User, str | None]:
    """A new user (and, with `token`, their first API token, returned once). Its `aliases` start
    unconfirmed; each is mailed a confirmation code through `mailer` after the commit.

    An admin creates users in their own company only; the operator names the company (id or name).
    """
    require_admin(actor)
    now = datetime.now(UTC)
    async with db.write() as conn:
        if actor is not None:
            company_id = actor.company_id
        elif company is None:
            raise ValueError("the company of the new user is required")
        else:
            company_id = (await store.get_company(conn, company)).id
        user = await store.create_user(
            conn, company_id, email=email, name=name, admin=admin, autolink=autolink
        )
        pending = await replace_aliases(conn, user, list(aliases), now)
        raw = await store.create_token(conn, user.id) if token else None
        user = await store.get_user(conn, user.id)
    await send_codes(mailer, user, pending, web_url)
    return user, raw


async def _keeps_an_admin(conn: AsyncConnection, user: User, role: str | None) -> None:
    """The company must keep at least one admin (a demotion of the last one is a Conflict).

    The admins' rows stay locked until the demotion commits, so concurrent demotions on PostgreSQL are
    decided one after the other on committed roles (tests/store/test_last_admin_race.py).
    """
    if role != "regular":
        return
    admins = await store.lock_admins(conn, user.company_id)
    if user.id in admins and len(admins) <= 1:
        raise Conflict("the company must keep at least one admin")


async def update_user(
    db: Database,
    ref: int | str,
    *,
    actor: User | None,
    autolink: bool | None = None,
    role: str | None = None,
    aliases: Iterable[str] | None = None,
    name: str | None = None,
    mailer: Mailer | None = None,
    web_url: str | None = None,
) -> User:
    """Change name, autolink, role or alternative addresses; role and addresses need an admin.
    `aliases` replaces the list: kept addresses keep their state, new ones start unconfirmed and are
    mailed a code through `mailer` after the commit."""
    now = datetime.now(UTC)
    async with db.write() as conn:
        user = await _target(conn, actor, ref)
        if actor is not None and not actor.is_admin and (role is not None or aliases is not None):
            raise PermissionDenied("only an admin may change roles and alternative addresses")
        await _keeps_an_admin(conn, user, role)
        user = await store.update_user(conn, user.id, autolink=autolink, role=role, name=name)
        pending = [] if aliases is None else await replace_aliases(conn, user, list(aliases), now)
        if pending or aliases is not None:
            user = await store.get_user(conn, user.id)
    await send_codes(mailer, user, pending, web_url)
    return user


async def rotate_address(db: Database, ref: int | str, *, actor: User | None) -> User:
    """New Smart Bcc address; the old one is refused from now on (T2)."""
    async with db.write() as conn:
        user = await _target(conn, actor, ref)
        return await store.rotate_address(conn, user.id)


async def issue_token(db: Database, ref: int | str, *, actor: User | None) -> tuple[User, str]:
    """A new API token for the user, returned once; only its hash is stored (T2)."""
    async with db.write() as conn:
        user = await _target(conn, actor, ref)
        return user, await store.create_token(conn, user.id)
