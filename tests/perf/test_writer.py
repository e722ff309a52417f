"""Issue 8 "One writer": every write goes through the process's one writer; readers cannot write."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bccd.store.database import Database
from bccd.store.schema import companies
from bccd.store.users import create_company


async def test_a_sqlite_reader_cannot_write(db: Database) -> None:
    """Issue 8: read connections run with `PRAGMA query_only=ON`; a write through one fails."""
    async with db.read() as conn:
        with pytest.raises(OperationalError, match="readonly"):
            await create_company(conn, "Sneaky")
    async with db.write() as conn:
        await create_company(conn, "Proper")
    async with db.read() as conn:
        names = (await conn.execute(select(companies.c.name))).scalars().all()
        assert (await conn.execute(select(func.count()).select_from(companies))).scalar_one() == 1
    assert names == ["Proper"]
