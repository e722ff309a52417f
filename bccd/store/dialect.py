"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_ignore(
    conn: AsyncConnection, table: Table, values: dict[str, Any], conflict: list[str]
) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new row's id, or None if it already existed.

    The database decides under concurrency (two nodes, two API calls), not a prior SELECT.
    """
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    else:
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    if "id" in table.c:
        row = (await conn.execute(stmt.returning(table.c.id))).first()
        return None if row is None else int(row[0])
    result = await conn.execute(stmt)
    return 1 if result.rowcount else None
