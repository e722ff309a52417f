"""Companies, users, their addresses, Smart Bcc local parts and API tokens (SPEC §2, T2)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.errors import Conflict as Conflict  # re-exported: defined once in bccd.errors
from bccd.errors import NotFound as NotFound
from bccd.mail.addresses import normalize_address
from bccd.store.schema import api_tokens, companies, user_addresses, users
from bccd.typed_addresses import check_typed_address
from bccd.vocabulary import ADMIN, REGULAR, ROLES, SENDER_AUTH_MODES, SENDER_POLICIES

SMART_BCC_RANDOM_BYTES = 10  # 80 bits ≥ the 64 bits SPEC §8 asks for
API_TOKEN_RANDOM_BYTES = 32
TOKEN_PREFIX = "bccd_"  # noqa: S105 - a public marker, not a secret
# Column widths of companies.name/users.name and of the address columns. PostgreSQL enforces them and
# SQLite does not, so they are checked here: both backends answer a clear ValueError, never a DataError.
MAX_NAME_CHARS = 200
MAX_ADDRESS_CHARS = 320
MAX_NEVER_LOG_ENTRIES = 1000


@dataclass(frozen=True, slots=True)
class Company:
    id: int
    name: str
    sender_policy: str
    never_log: tuple[str, ...]
    sender_auth: str = "record"  # off|record|require (SPF/DKIM/DMARC, issue 11)
    created_at: datetime | None = None

    def as_json(self, *, never_log: bool = True) -> dict[str, Any]:
        """The company's settings; without `never_log` that list is null (it names people: admins only)."""
        return {
            "id": self.id,
            "name": self.name,
            "sender_policy": self.sender_policy,
            "sender_auth": self.sender_auth,
            "never_log": list(self.never_log) if never_log else None,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Alias:
    """An alternative sender address (SPEC S5): it counts only once confirmed — by the one-time code
    mailed to it (`confirmed_by` "code") or by an admin ("user:<id>") or the operator ("operator")."""

    address: str
    confirmed: bool
    confirmed_at: datetime | None = None
    confirmed_by: str | None = None
    expires_at: datetime | None = None  # until when the pending code is good (None: no code pending)

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "confirmed": self.confirmed,
            "confirmed_at": None if self.confirmed_at is None else self.confirmed_at.isoformat(),
            "confirmed_by": self.confirmed_by,
            "code_expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class User:
    id: int
    company_id: int
    name: str
    email: str
    role: str
    autolink: bool
    smart_bcc_local: str
    aliases: tuple[str, ...]  # the confirmed alternative addresses: the only ones S5 counts
    alternatives: tuple[Alias, ...] = ()  # every alternative address, confirmed or not

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def addresses(self) -> frozenset[str]:
        """The owner's own addresses (login + confirmed alternatives), excluded from participants (§3)."""
        return frozenset((self.email, *self.aliases))

    def smart_bcc_address(self, domain: str) -> str:
        return f"{self.smart_bcc_local}@{domain}"

    def as_json(self, bcc_domain: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "company": self.company_id,
            "name": self.name,
            "email": self.email,
            "role": self.role,
            "autolink": self.autolink,
            "aliases": list(self.aliases),
            "alternative_addresses": [a.as_json() for a in self.alternatives],
            "smart_bcc_address": self.smart_bcc_address(bcc_domain),
        }


def new_smart_bcc_local() -> str:
    """A lowercase, unguessable local part from the OS CSPRNG (SPEC T2, §8)."""
    return base64.b32encode(secrets.token_bytes(SMART_BCC_RANDOM_BYTES)).decode("ascii").lower().rstrip("=")


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _clean_email(value: str) -> str:
    norm = check_typed_address(value)
    if len(norm) > MAX_ADDRESS_CHARS:
        raise ValueError(f"email address longer than {MAX_ADDRESS_CHARS} characters")
    return norm


def _check_name(name: str, what: str) -> str:
    name = name.strip()
    if not name:
        raise ValueError(f"{what} name must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"{what} name longer than {MAX_NAME_CHARS} characters")
    return name


def never_log_entry(raw: str) -> str:
    """The stored form of a never-log entry: a full address (normalized like a typed address) or a bare
    domain (lowercase, IDNA ASCII; a leading "@" is dropped, subdomains match too). ValueError otherwise."""
    text = raw.strip()
    if "@" in text.lstrip("@"):
        return _clean_email(text)
    domain = text.lstrip("@").rstrip(".")
    try:
        return _clean_email(f"x@{domain}").rpartition("@")[2]
    except ValueError:
        raise ValueError(f"never_log: not an address or a domain: {raw!r}") from None


def clean_never_log(entries: Iterable[str]) -> tuple[str, ...]:
    """Entries validated and normalized, blanks dropped, duplicates merged, sorted."""
    never = tuple(sorted({never_log_entry(n) for n in entries if n.strip()}))
    if len(never) > MAX_NEVER_LOG_ENTRIES:
        raise ValueError(f"never_log holds at most {MAX_NEVER_LOG_ENTRIES} entries")
    return never


async def create_company(
    conn: AsyncConnection, name: str, *, sender_policy: str = "owner", never_log: Iterable[str] = ()
) -> Company:
    name = _check_name(name, "company")
    if sender_policy not in SENDER_POLICIES:
        raise ValueError("sender_policy must be owner, company or any")
    never = clean_never_log(never_log)
    same = await conn.execute(select(companies.c.id).where(func.lower(companies.c.name) == name.lower()))
    taken = same.first()
    if taken is not None:
        # Names are how the CLI picks a company (--company NAME): two alike would make it ambiguous.
        raise Conflict(f"a company named {name!r} already exists (id {taken[0]})")
    result = await conn.execute(
        insert(companies).values(
            name=name, sender_policy=sender_policy, never_log=list(never), created_at=_now()
        )
    )
    assert result.inserted_primary_key is not None
    return await get_company(conn, int(result.inserted_primary_key[0]))


async def update_company(
    conn: AsyncConnection,
    company_id: int,
    *,
    sender_policy: str | None = None,
    never_log: Iterable[str] | None = None,
    sender_auth: str | None = None,
) -> Company:
    values: dict[str, Any] = {}
    if sender_policy is not None:
        if sender_policy not in SENDER_POLICIES:
            raise ValueError("sender_policy must be owner, company or any")
        values["sender_policy"] = sender_policy
    if sender_auth is not None:
        if sender_auth not in SENDER_AUTH_MODES:
            raise ValueError("sender_auth must be off, record or require")
        values["sender_auth"] = sender_auth
    if never_log is not None:
        values["never_log"] = list(clean_never_log(never_log))
    if values:
        await conn.execute(update(companies).where(companies.c.id == company_id).values(**values))
    return await get_company(conn, company_id)


async def get_company(conn: AsyncConnection, ref: int | str) -> Company:
    if isinstance(ref, int) or str(ref).isdigit():
        cond = companies.c.id == int(ref)
    else:
        cond = companies.c.name == ref
    rows = (await conn.execute(select(companies).where(cond).order_by(companies.c.id))).mappings().all()
    if not rows:
        raise NotFound(f"company {ref!r} not found")
    if len(rows) > 1:
        # Only a database from before names were unique can hold two; the id still picks one.
        ids = ", ".join(str(r["id"]) for r in rows)
        raise Conflict(f"several companies are named {ref!r} (ids {ids}): give the id instead")
    return _company(rows[0])


def _company(row: Any) -> Company:
    return Company(
        int(row["id"]),
        row["name"],
        row["sender_policy"],
        tuple(row["never_log"] or ()),
        sender_auth=row["sender_auth"],
        created_at=row["created_at"],
    )


async def list_companies(conn: AsyncConnection) -> list[Company]:
    rows = (await conn.execute(select(companies).order_by(companies.c.id))).mappings().all()
    return [_company(r) for r in rows]


async def company_ids(conn: AsyncConnection) -> list[int]:
    return [int(r[0]) for r in await conn.execute(select(companies.c.id).order_by(companies.c.id))]


_ALIAS_COLUMNS = (
    user_addresses.c.address,
    user_addresses.c.confirmed,
    user_addresses.c.confirmed_at,
    user_addresses.c.confirmed_by,
    user_addresses.c.confirmation_expires_at,
)


def alias_of(row: Any) -> Alias:
    return Alias(
        row["address"],
        bool(row["confirmed"]),
        row["confirmed_at"],
        row["confirmed_by"],
        None if row["confirmed"] else row["confirmation_expires_at"],
    )


async def _aliases(conn: AsyncConnection, user_ids: list[int]) -> dict[int, list[Alias]]:
    out: dict[int, list[Alias]] = {uid: [] for uid in user_ids}
    if not user_ids:
        return out
    rows = await conn.execute(
        select(user_addresses.c.user_id, *_ALIAS_COLUMNS)
        .where(user_addresses.c.user_id.in_(user_ids))
        .order_by(user_addresses.c.address)
    )
    for row in rows.mappings():
        out[int(row["user_id"])].append(alias_of(row))
    return out


def _user(row: Any, alternatives: list[Alias]) -> User:
    return User(
        id=int(row["id"]),
        company_id=int(row["company_id"]),
        name=row["name"],
        email=row["email"],
        role=row["role"],
        autolink=bool(row["autolink"]),
        smart_bcc_local=row["smart_bcc_local"],
        aliases=tuple(a.address for a in alternatives if a.confirmed),
        alternatives=tuple(alternatives),
    )


async def _load_users(conn: AsyncConnection, where: Any) -> list[User]:
    rows = (await conn.execute(select(users).where(where).order_by(users.c.id))).mappings().all()
    aliases = await _aliases(conn, [int(r["id"]) for r in rows])
    return [_user(r, aliases[int(r["id"])]) for r in rows]


async def get_user(conn: AsyncConnection, ref: int | str, *, company_id: int | None = None) -> User:
    """A user by id or login email; with company_id, users of other companies are not found (T1)."""
    if isinstance(ref, int) or str(ref).isdigit():
        cond = users.c.id == int(ref)
    else:
        cond = users.c.email == (normalize_address(str(ref)) or str(ref))
    if company_id is not None:
        cond = cond & (users.c.company_id == company_id)
    found = await _load_users(conn, cond)
    if not found:
        raise NotFound(f"user {ref!r} not found")
    return found[0]


async def list_users(conn: AsyncConnection, company_id: int) -> list[User]:
    return await _load_users(conn, users.c.company_id == company_id)


async def lock_admins(conn: AsyncConnection, company_id: int) -> list[int]:
    """Ids of the company's admins, their rows locked until the transaction ends (PostgreSQL FOR UPDATE,
    taken in id order so two callers never deadlock; SQLite's writers are serialized by BEGIN IMMEDIATE).

    A concurrent demotion waits here and then sees the committed roles, so a read-then-write rule over
    the admins ("keep at least one") cannot be raced under READ COMMITTED.
    """
    stmt = (
        select(users.c.id)
        .where(users.c.company_id == company_id, users.c.role == ADMIN)
        .order_by(users.c.id)
        .with_for_update()
    )
    return [int(r[0]) for r in await conn.execute(stmt)]


async def user_by_smart_bcc_local(conn: AsyncConnection, local: str) -> User | None:
    found = await owner_by_smart_bcc_local(conn, local)
    return found[0] if found else None


# Built once: the SMTP RCPT path runs these for every recipient, and building a statement costs more
# Python time than SQLite takes to answer it.
_OWNER_BY_LOCAL = (
    select(
        users,
        companies.c.name.label("company_name"),
        companies.c.sender_policy,
        companies.c.never_log,
        companies.c.sender_auth,
    )
    .join(companies, companies.c.id == users.c.company_id)
    .where(users.c.smart_bcc_local == bindparam("local"))
)
_ALIASES_OF = (
    select(*_ALIAS_COLUMNS)
    .where(user_addresses.c.user_id == bindparam("user_id"))
    .order_by(user_addresses.c.address)
)


async def owner_by_smart_bcc_local(conn: AsyncConnection, local: str) -> tuple[User, Company] | None:
    """The owner of a Smart Bcc local part and their company, in two indexed lookups (SPEC S1)."""
    row = (await conn.execute(_OWNER_BY_LOCAL, {"local": local.lower()})).mappings().first()
    if row is None:
        return None
    aliases = [alias_of(r) for r in (await conn.execute(_ALIASES_OF, {"user_id": row["id"]})).mappings()]
    company = Company(
        int(row["company_id"]),
        row["company_name"],
        row["sender_policy"],
        tuple(row["never_log"] or ()),
        sender_auth=row["sender_auth"],
    )
    return _user(row, aliases), company


_COMPANY_ADDRESSES = union_all(
    select(users.c.email).where(users.c.company_id == bindparam("company_id")),
    select(user_addresses.c.address).where(
        user_addresses.c.user_id.in_(select(users.c.id).where(users.c.company_id == bindparam("company_id"))),
        user_addresses.c.confirmed.is_(True),
    ),
)


async def company_addresses(conn: AsyncConnection, company_id: int) -> frozenset[str]:
    """Every address of every user of the company (sender policy `company`, S5): one statement, two seeks."""
    return frozenset(r[0] for r in await conn.execute(_COMPANY_ADDRESSES, {"company_id": company_id}))


async def create_user(
    conn: AsyncConnection,
    company_id: int,
    *,
    email: str,
    name: str,
    admin: bool = False,
    aliases: Iterable[str] = (),
    autolink: bool = True,
) -> User:
    await get_company(conn, company_id)
    login = _clean_email(email)
    name = _check_name(name, "user")
    taken = await conn.execute(select(func.count()).select_from(users).where(users.c.email == login))
    if taken.scalar_one():
        raise Conflict(f"a user with login email {login} already exists")
    try:
        result = await conn.execute(
            insert(users).values(
                company_id=company_id,
                name=name,
                email=login,
                role=ADMIN if admin else REGULAR,
                autolink=autolink,
                smart_bcc_local=new_smart_bcc_local(),
                created_at=_now(),
            )
        )
    except IntegrityError as exc:
        # Two nodes or API calls creating the same login at once both pass the SELECT above (PostgreSQL,
        # READ COMMITTED); the unique index refuses the second, which gets the same answer as if late.
        raise Conflict(f"a user with login email {login} already exists") from exc
    assert result.inserted_primary_key is not None
    user_id = int(result.inserted_primary_key[0])
    await _set_aliases(conn, user_id, login, aliases)
    return await get_user(conn, user_id)


async def _set_aliases(conn: AsyncConnection, user_id: int, login: str, aliases: Iterable[str]) -> None:
    clean = sorted({_clean_email(a) for a in aliases} - {login})
    await conn.execute(delete(user_addresses).where(user_addresses.c.user_id == user_id))
    if clean:
        await conn.execute(
            insert(user_addresses), [{"user_id": user_id, "address": a, "confirmed": True} for a in clean]
        )


async def update_user(
    conn: AsyncConnection,
    user_id: int,
    *,
    autolink: bool | None = None,
    role: str | None = None,
    aliases: Iterable[str] | None = None,
    name: str | None = None,
) -> User:
    user = await get_user(conn, user_id)
    values: dict[str, Any] = {}
    if autolink is not None:
        values["autolink"] = autolink
    if role is not None:
        if role not in ROLES:
            raise ValueError("role must be admin or regular")
        values["role"] = role
    if name is not None:
        values["name"] = _check_name(name, "user")
    if values:
        await conn.execute(update(users).where(users.c.id == user_id).values(**values))
    if aliases is not None:
        await _set_aliases(conn, user_id, user.email, aliases)
    return await get_user(conn, user_id)


async def rotate_address(conn: AsyncConnection, user_id: int) -> User:
    """Give the user a new Smart Bcc local part; the old one is refused from now on (T2)."""
    await get_user(conn, user_id)
    await conn.execute(
        update(users).where(users.c.id == user_id).values(smart_bcc_local=new_smart_bcc_local())
    )
    return await get_user(conn, user_id)


async def create_token(conn: AsyncConnection, user_id: int, *, expires_at: datetime | None = None) -> str:
    """A new API token for the user. Only its hash is stored; the raw token is returned once (T2).

    `expires_at` (None: never) ends it: from then on it authenticates as nothing (bccd.store.tokens)."""
    await get_user(conn, user_id)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(API_TOKEN_RANDOM_BYTES)
    await conn.execute(
        insert(api_tokens).values(
            user_id=user_id,
            token_hash=hash_token(raw),
            prefix=raw[: len(TOKEN_PREFIX) + 4],
            created_at=_now(),
            expires_at=expires_at,
        )
    )
    return raw


async def user_by_token(conn: AsyncConnection, raw: str) -> User | None:
    row = (
        await conn.execute(select(api_tokens.c.user_id).where(api_tokens.c.token_hash == hash_token(raw)))
    ).first()
    if row is None:
        return None
    return await get_user(conn, int(row[0]))
