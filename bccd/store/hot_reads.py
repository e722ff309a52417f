"""The reads every SMTP transaction makes, behind one interface with two implementations (issue 13).

RCPT resolves the Smart Bcc owner; DATA reads the company's sender addresses and the linker's facts
(persons by address, their items, an explicit `+deal-…` target). Through SQLAlchemy Core each of these
costs more Python time in connection checkout, compilation lookup, parameter and result processing than
SQLite takes to answer it: together they were about a third of the CPU of a delivery.

`SqlaFacts` answers them with the store's own functions (bccd.store.users, bccd.store.directory) on an
SQLAlchemy connection: it is the reference. `SqliteFacts` answers the same questions with hand-written
SQL on a plain `sqlite3` connection held for this purpose (Database.raw_read): one `BEGIN` … `ROLLBACK`
snapshot per use, statements prepared once by sqlite3's statement cache, rows turned into the store's
records by hand. `AsyncpgFacts` runs the same statements (array parameters instead of `IN` lists) on the
asyncpg connection under a pooled SQLAlchemy one. tests/store/test_hot_reads.py runs both on the same data and
requires equal answers; tests/perf/test_query_plans.py requires every statement here to be an index seek.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.linker import ItemFact, PersonFact
from bccd.store import directory as store_directory
from bccd.store import users as store_users
from bccd.store.database import Database
from bccd.store.users import Alias, Company, User


class Facts(Protocol):
    async def owner_by_smart_bcc_local(self, local: str) -> tuple[User, Company] | None: ...

    async def company_addresses(self, company_id: int) -> frozenset[str]: ...

    async def persons_by_addresses(self, company_id: int, addresses: Iterable[str]) -> list[PersonFact]: ...

    async def items_for_persons(self, company_id: int, person_ids: Iterable[int]) -> list[ItemFact]: ...

    async def item_fact(self, company_id: int, kind: str, external_id: str) -> ItemFact | None: ...


class SqlaFacts:
    """The reference: the store's functions on an SQLAlchemy connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def owner_by_smart_bcc_local(self, local: str) -> tuple[User, Company] | None:
        return await store_users.owner_by_smart_bcc_local(self._conn, local)

    async def company_addresses(self, company_id: int) -> frozenset[str]:
        return await store_users.company_addresses(self._conn, company_id)

    async def persons_by_addresses(self, company_id: int, addresses: Iterable[str]) -> list[PersonFact]:
        return await store_directory.persons_by_addresses(self._conn, company_id, addresses)

    async def items_for_persons(self, company_id: int, person_ids: Iterable[int]) -> list[ItemFact]:
        return await store_directory.items_for_persons(self._conn, company_id, person_ids)

    async def item_fact(self, company_id: int, kind: str, external_id: str) -> ItemFact | None:
        return await store_directory.item_fact(self._conn, company_id, kind, external_id)


# Tables are named, never aliased: the query-plan test recognises a full scan by its table name.
# Observers of every statement SqliteFacts runs (sql, parameters): the query-plan test replays them.
statement_observers: list[Callable[[str, Sequence[Any]], None]] = []

_OWNER = (
    "SELECT users.id, users.company_id, users.name, users.email, users.role, users.autolink,"
    " users.smart_bcc_local, companies.name, companies.sender_policy, companies.never_log,"
    " companies.sender_auth"
    " FROM users JOIN companies ON companies.id = users.company_id WHERE users.smart_bcc_local = ?"
)
_ALIASES = (
    "SELECT address, confirmed, confirmed_at, confirmed_by, confirmation_expires_at"
    " FROM user_addresses WHERE user_id = ? ORDER BY address"
)
_COMPANY_ADDRESSES = (
    "SELECT email FROM users WHERE company_id = ?"
    " UNION ALL SELECT address FROM user_addresses"
    " WHERE user_id IN (SELECT id FROM users WHERE company_id = ?) AND confirmed = 1"
)
_ITEM_COLUMNS = "items.id, items.type, items.external_id, items.status, items.created_at, items.person_id"
_ITEM_BY_REF = f"SELECT {_ITEM_COLUMNS} FROM items WHERE company_id = ? AND type = ? AND external_id = ?"  # noqa: S608


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _persons_sql(n: int) -> str:
    return (
        "SELECT persons.id, persons.external_id, persons.organization_id, person_emails.address"  # noqa: S608
        " FROM persons JOIN person_emails ON person_emails.person_id = persons.id"
        f" WHERE person_emails.company_id = ? AND person_emails.address IN ({_marks(n)})"
    )


def _items_sql(n: int) -> str:
    # Contact or participant as two indexed halves (see bccd.store.directory._ITEMS_FOR_PERSONS).
    return (
        f"SELECT {_ITEM_COLUMNS} FROM items"  # noqa: S608 - constants and ? marks only
        f" WHERE items.company_id = ? AND items.person_id IN ({_marks(n)})"
        f" UNION SELECT {_ITEM_COLUMNS} FROM items"
        " JOIN item_participants ON item_participants.item_id = items.id"
        f" WHERE items.company_id = ? AND item_participants.person_id IN ({_marks(n)})"
        " ORDER BY 1"
    )


def _participants_sql(n: int) -> str:
    return f"SELECT item_id, person_id FROM item_participants WHERE item_id IN ({_marks(n)})"  # noqa: S608


def _timestamp(value: Any) -> datetime | None:
    """A timestamp as SQLite stores it (naive UTC text) or asyncpg returns it, tz-aware (UtcDateTime)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _item(row: Sequence[Any], participants: frozenset[int]) -> ItemFact:
    created = _timestamp(row[4])
    assert created is not None  # items.created_at is NOT NULL
    return ItemFact(
        id=int(row[0]),
        type=row[1],
        external_id=row[2],
        status=row[3],
        created_at=created,
        person_id=None if row[5] is None else int(row[5]),
        participant_ids=participants,
    )


def _owner(row: Sequence[Any], alias_rows: Iterable[Sequence[Any]]) -> tuple[User, Company]:
    """`_OWNER`'s row and `_ALIASES`' rows as the store's records (bccd.store.users._user)."""
    aliases = [
        Alias(
            address,
            bool(confirmed),
            _timestamp(confirmed_at),
            confirmed_by,
            None if confirmed else _timestamp(exp),
        )
        for address, confirmed, confirmed_at, confirmed_by, exp in alias_rows
    ]
    user = User(
        id=int(row[0]),
        company_id=int(row[1]),
        name=row[2],
        email=row[3],
        role=row[4],
        autolink=bool(row[5]),
        smart_bcc_local=row[6],
        aliases=tuple(a.address for a in aliases if a.confirmed),
        alternatives=tuple(aliases),
    )
    never_log = json.loads(row[9]) if isinstance(row[9], str | bytes) else row[9]
    return user, Company(int(row[1]), row[7], row[8], tuple(never_log or ()), sender_auth=row[10])


def _persons(rows: Iterable[Sequence[Any]]) -> list[PersonFact]:
    found: dict[int, tuple[str, int | None, set[str]]] = {}
    for pid, ext, org, addr in rows:
        entry = found.setdefault(int(pid), (ext, None if org is None else int(org), set()))
        entry[2].add(addr)
    return [PersonFact(p, ext, frozenset(addrs), org) for p, (ext, org, addrs) in sorted(found.items())]


def _participant_sets(item_ids: list[int], rows: Iterable[Sequence[Any]]) -> dict[int, frozenset[int]]:
    out: dict[int, set[int]] = {i: set() for i in item_ids}
    for iid, pid in rows:
        out[int(iid)].add(int(pid))
    return {k: frozenset(v) for k, v in out.items()}


class SqliteFacts:
    """The same answers as SqlaFacts, from plain sqlite3 on the event loop (statements take microseconds
    on a warm page cache; nothing here waits on the disk)."""

    def __init__(self, conn: sqlite3.Connection | None) -> None:
        self._conn = conn

    async def _ready(self) -> sqlite3.Connection:
        assert self._conn is not None
        return self._conn

    async def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        conn = self._conn if self._conn is not None else await self._ready()
        for observe in statement_observers:
            observe(sql, params)
        return conn.execute(sql, params).fetchall()

    async def owner_by_smart_bcc_local(self, local: str) -> tuple[User, Company] | None:
        found = await self._rows(_OWNER, (local.lower(),))
        return _owner(found[0], await self._rows(_ALIASES, (found[0][0],))) if found else None

    async def company_addresses(self, company_id: int) -> frozenset[str]:
        return frozenset(r[0] for r in await self._rows(_COMPANY_ADDRESSES, (company_id, company_id)))

    async def persons_by_addresses(self, company_id: int, addresses: Iterable[str]) -> list[PersonFact]:
        wanted = sorted(set(addresses))
        if not wanted:
            return []
        return _persons(await self._rows(_persons_sql(len(wanted)), (company_id, *wanted)))

    async def _participants(self, item_ids: list[int]) -> dict[int, frozenset[int]]:
        rows = await self._rows(_participants_sql(len(item_ids)), item_ids) if item_ids else []
        return _participant_sets(item_ids, rows)

    async def items_for_persons(self, company_id: int, person_ids: Iterable[int]) -> list[ItemFact]:
        ids = sorted(set(person_ids))
        if not ids:
            return []
        rows = await self._rows(_items_sql(len(ids)), (company_id, *ids, company_id, *ids))
        parts = await self._participants([int(r[0]) for r in rows])
        return [_item(r, parts[int(r[0])]) for r in rows]

    async def item_fact(self, company_id: int, kind: str, external_id: str) -> ItemFact | None:
        found = await self._rows(_ITEM_BY_REF, (company_id, kind, external_id))
        if not found:
            return None
        return _item(found[0], (await self._participants([int(found[0][0])]))[int(found[0][0])])


class _LazySqliteFacts(SqliteFacts):
    """SqliteFacts whose snapshot (Database.raw_read) begins with its first statement: a use that reads
    nothing (RCPT's sender class for an `owner` policy) costs no connection, BEGIN or ROLLBACK."""

    def __init__(self, db: Database) -> None:
        super().__init__(None)
        self._db = db
        self._snapshot: AbstractAsyncContextManager[sqlite3.Connection] | None = None

    async def _ready(self) -> sqlite3.Connection:
        if self._conn is None:
            snapshot = self._db.raw_read()
            self._conn = await snapshot.__aenter__()
            self._snapshot = snapshot
        return self._conn

    async def close(self, exc: BaseException | None) -> None:
        snapshot, self._snapshot, self._conn = self._snapshot, None, None
        if snapshot is not None:
            await snapshot.__aexit__(
                type(exc) if exc is not None else None, exc, exc.__traceback__ if exc else None
            )


class _SqliteFactsUse:
    """`facts(db)` on SQLite, as a plain class: three delivery steps enter it per message, and a
    generator-based context manager (with an exit stack) cost more than the statements it ran."""

    __slots__ = ("_facts",)

    def __init__(self, db: Database) -> None:
        self._facts = _LazySqliteFacts(db)

    async def __aenter__(self) -> Facts:
        return self._facts

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        await self._facts.close(exc)


def _dollars(sql: str) -> str:
    """SQLite's `?` marks as PostgreSQL's `$1, $2, …` (the statements above hold no literal `?`)."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))


_PG_OWNER = _dollars(_OWNER)
_PG_ALIASES = _dollars(_ALIASES)
_PG_COMPANY_ADDRESSES = _dollars(_COMPANY_ADDRESSES.replace("confirmed = 1", "confirmed")).replace("$2", "$1")
_PG_ITEM_BY_REF = _dollars(_ITEM_BY_REF)
# One array parameter instead of n marks: one prepared statement (asyncpg caches it) for any list length.
_PG_PERSONS = _dollars(_persons_sql(1)).replace("IN ($2)", "= ANY($2::varchar[])")
_PG_ITEMS = (
    _dollars(_items_sql(1))
    .replace("IN ($2)", "= ANY($2::bigint[])")
    .replace("$3", "$1")
    .replace("IN ($4)", "= ANY($2::bigint[])")
)
_PG_PARTICIPANTS = _dollars(_participants_sql(1)).replace("IN ($1)", "= ANY($1::bigint[])")


class AsyncpgFacts:
    """SqliteFacts' statements on the asyncpg connection under SQLAlchemy's pooled one: asyncpg prepares
    each once per connection and caches it. Each statement is its own snapshot (autocommit reads)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def _rows(self, sql: str, *params: Any) -> list[Any]:
        for observe in statement_observers:
            observe(sql, params)
        return list(await self._conn.fetch(sql, *params))

    async def owner_by_smart_bcc_local(self, local: str) -> tuple[User, Company] | None:
        found = await self._rows(_PG_OWNER, local.lower())
        return _owner(found[0], await self._rows(_PG_ALIASES, found[0][0])) if found else None

    async def company_addresses(self, company_id: int) -> frozenset[str]:
        return frozenset(r[0] for r in await self._rows(_PG_COMPANY_ADDRESSES, company_id))

    async def persons_by_addresses(self, company_id: int, addresses: Iterable[str]) -> list[PersonFact]:
        wanted = sorted(set(addresses))
        return _persons(await self._rows(_PG_PERSONS, company_id, wanted)) if wanted else []

    async def _participants(self, item_ids: list[int]) -> dict[int, frozenset[int]]:
        rows = await self._rows(_PG_PARTICIPANTS, item_ids) if item_ids else []
        return _participant_sets(item_ids, rows)

    async def items_for_persons(self, company_id: int, person_ids: Iterable[int]) -> list[ItemFact]:
        ids = sorted(set(person_ids))
        if not ids:
            return []
        rows = await self._rows(_PG_ITEMS, company_id, ids)
        parts = await self._participants([int(r[0]) for r in rows])
        return [_item(r, parts[int(r[0])]) for r in rows]

    async def item_fact(self, company_id: int, kind: str, external_id: str) -> ItemFact | None:
        found = await self._rows(_PG_ITEM_BY_REF, company_id, kind, external_id)
        if not found:
            return None
        return _item(found[0], (await self._participants([int(found[0][0])]))[int(found[0][0])])


def facts(db: Database) -> AbstractAsyncContextManager[Facts]:
    """The facts on plain driver statements: sqlite3 in one snapshot (begun by the first statement), or
    asyncpg."""
    return _SqliteFactsUse(db) if db.is_sqlite else _asyncpg_facts(db)


@asynccontextmanager
async def _asyncpg_facts(db: Database) -> AsyncIterator[Facts]:
    async with db.read() as conn:
        pooled = await conn.get_raw_connection()
        yield AsyncpgFacts(pooled.driver_connection)
