"""Item search for manual linking (SPEC M6): case-insensitive substring match, prefix matches first.

One UNION ALL query over deals, leads, projects, persons and organizations of one company (T1), ordered
and limited by the database, so the same statement ranks identically on SQLite and PostgreSQL.

Case folding: PostgreSQL's lower() follows the database's LC_CTYPE (Unicode-aware under a UTF-8 locale);
SQLite's lower() folds ASCII only, so on SQLite a Python function is registered on the connection and
"Ørsted" matches "ør".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, get_args

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, null, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store.schema import items, organizations, person_emails, persons
from bccd.vocabulary import ITEM_KINDS, SearchKind

SEARCH_KINDS: tuple[str, ...] = get_args(SearchKind)  # deal, lead, project, person, organization
MAX_QUERY_CHARS = 200
MAX_RESULTS = 100
LIKE_ESCAPE = "\\"
_SQLITE_FOLD = "bccd_fold"

# Ranks, best first: the whole name, a name or email prefix, a word of the name, anywhere in it.
RANK_EXACT, RANK_PREFIX, RANK_WORD, RANK_SUBSTRING = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class SearchHit:
    type: str
    id: str  # the CRM's external id
    name: str  # name of a person/organization, title of an item
    status: str | None  # items only
    rank: int

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "name": self.name, "status": self.status}


def escape_like(text: str) -> str:
    """Make `%`, `_` and the escape character itself match literally inside a LIKE pattern."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def _fold_py(value: str | None) -> str | None:
    return None if value is None else value.casefold()


async def _folder(conn: AsyncConnection) -> Any:
    """The SQL function that folds case on this connection's backend."""
    if conn.dialect.name != "sqlite":
        return func.lower
    raw = await conn.get_raw_connection()
    # Registered once per pooled DB-API connection; the pool keeps `info` with the connection.
    if not raw.info.get(_SQLITE_FOLD):
        driver: Any = raw.driver_connection
        await driver.create_function(_SQLITE_FOLD, 1, _fold_py, deterministic=True)
        raw.info[_SQLITE_FOLD] = True
    return getattr(func, _SQLITE_FOLD)


class _Patterns:
    """The bound LIKE patterns for one query string, folded by the same SQL function as the columns."""

    def __init__(self, fold: Any, query: str) -> None:
        self.fold = fold
        escaped = escape_like(query)
        self.exact = fold(literal(query))
        self.prefix = fold(literal(escaped + "%"))
        self.word = fold(literal("% " + escaped + "%"))
        self.anywhere = fold(literal("%" + escaped + "%"))

    def like(self, column: Any, pattern: Any) -> ColumnElement[bool]:
        return self.fold(column).like(pattern, escape=LIKE_ESCAPE)  # type: ignore[no-any-return]

    def rank(self, column: Any, *extra_prefix: ColumnElement[bool]) -> Any:
        prefix = or_(self.like(column, self.prefix), *extra_prefix)
        return case(
            (self.fold(column) == self.exact, RANK_EXACT),
            (prefix, RANK_PREFIX),
            (self.like(column, self.word), RANK_WORD),
            else_=RANK_SUBSTRING,
        )


def _items_select(p: _Patterns, company_id: int, kinds: list[str]) -> Any:
    return select(
        items.c.type.label("type"),
        items.c.external_id.label("id"),
        items.c.title.label("name"),
        items.c.status.label("status"),
        p.rank(items.c.title).label("rank"),
    ).where(items.c.company_id == company_id, items.c.type.in_(kinds), p.like(items.c.title, p.anywhere))


def _persons_select(p: _Patterns, company_id: int) -> Any:
    # Addresses are stored normalized (lowercase), so they need no folding.
    def email_like(pattern: Any) -> ColumnElement[bool]:
        return exists().where(
            person_emails.c.person_id == persons.c.id,
            person_emails.c.address.like(pattern, escape=LIKE_ESCAPE),
        )

    return select(
        literal("person").label("type"),
        persons.c.external_id.label("id"),
        persons.c.name.label("name"),
        null().label("status"),
        p.rank(persons.c.name, email_like(p.prefix)).label("rank"),
    ).where(
        persons.c.company_id == company_id,
        or_(p.like(persons.c.name, p.anywhere), email_like(p.anywhere)),
    )


def _organizations_select(p: _Patterns, company_id: int) -> Any:
    return select(
        literal("organization").label("type"),
        organizations.c.external_id.label("id"),
        organizations.c.name.label("name"),
        null().label("status"),
        p.rank(organizations.c.name).label("rank"),
    ).where(and_(organizations.c.company_id == company_id, p.like(organizations.c.name, p.anywhere)))


async def search_directory(
    conn: AsyncConnection,
    company_id: int,
    query: str,
    *,
    kinds: Iterable[str] = SEARCH_KINDS,
    limit: int = 20,
) -> list[SearchHit]:
    """Records of the company whose name/title (or, for persons, an email) contains `query`, best first."""
    query = query.strip()[:MAX_QUERY_CHARS]
    wanted = [k for k in SEARCH_KINDS if k in set(kinds)]
    unknown = set(kinds) - set(SEARCH_KINDS)
    if unknown:
        raise ValueError(f"unknown record types: {', '.join(sorted(unknown))}")
    if not query or not wanted:
        return []
    p = _Patterns(await _folder(conn), query)
    parts = []
    item_kinds: list[str] = [k for k in wanted if k in ITEM_KINDS]
    if item_kinds:
        parts.append(_items_select(p, company_id, item_kinds))
    if "person" in wanted:
        parts.append(_persons_select(p, company_id))
    if "organization" in wanted:
        parts.append(_organizations_select(p, company_id))
    found = union_all(*parts).subquery("found")
    stmt = (
        select(found)
        .order_by(found.c.rank, p.fold(found.c.name), found.c.type, found.c.id)
        .limit(max(1, min(limit, MAX_RESULTS)))
    )
    rows = (await conn.execute(stmt)).mappings().all()
    return [SearchHit(r["type"], r["id"], r["name"], r["status"], int(r["rank"])) for r in rows]
