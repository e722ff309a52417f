"""The directory the CRM syncs, keyed by its ids: upsert, read, delete records; import JSON lines.

Admins write, every user of the company reads (the operator at the CLI does both, for any company).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from bccd.errors import NotFound, UnknownReference
from bccd.importer import ImportError_ as ImportError_  # re-exported: interfaces report it
from bccd.importer import ImportResult as ImportResult
from bccd.importer import import_lines
from bccd.records import record_type
from bccd.services.runtime import Database
from bccd.services.users import User, require_admin
from bccd.store import records as store


async def upsert_record(
    db: Database, kind: str, external_id: str, body: BaseModel, *, actor: User
) -> tuple[dict[str, Any], bool]:
    """Create or update a record of the actor's company (admin); returns it and whether it was created."""
    require_admin(actor)
    async with db.write() as conn:
        _, created = await store.upsert_record(conn, actor.company_id, kind, external_id, body)
        return await store.get_record(conn, actor.company_id, kind, external_id), created


async def read_record(db: Database, kind: str, external_id: str, *, actor: User) -> dict[str, Any]:
    async with db.read() as conn:
        return await store.get_record(conn, actor.company_id, kind, external_id)


async def delete_record(db: Database, kind: str, external_id: str, *, actor: User) -> dict[str, Any] | None:
    """Remove a person or organization (None), or mark an item deleted (returns the item). Admin only."""
    require_admin(actor)
    try:
        async with db.write() as conn:
            await store.delete_record(conn, actor.company_id, kind, external_id)
            if record_type(kind).is_item:
                return await store.get_record(conn, actor.company_id, kind, external_id)
    except UnknownReference:
        # The store names a missing record an unknown reference; as the target of a delete it is not found.
        raise NotFound(f"{kind} {external_id!r} not found") from None
    return None


def _with_company(number: int, line: bytes, company_id: int) -> bytes:
    """Lines may leave out "company": the caller's company is meant. Anything else is left to the importer."""
    try:
        data = json.loads(line)
    except ValueError:
        return line  # the importer reports it with its line number
    except RecursionError:
        # json.loads gives up on deeply nested arrays with RecursionError, which is not a ValueError.
        raise ImportError_(number, "nested too deeply") from None
    if isinstance(data, dict) and "company" not in data:
        data["company"] = company_id
        return json.dumps(data).encode("utf-8")
    return line


async def import_records(db: Database, lines: Iterable[bytes], *, actor: User | None) -> ImportResult:
    """Import JSON lines, all or nothing. An admin imports into their own company only (a line without
    "company" means theirs); the operator imports into any company the lines name."""
    if actor is None:
        return await import_lines(db, lines)
    require_admin(actor)
    company_id = actor.company_id
    scoped = [_with_company(n, line, company_id) for n, line in enumerate(lines, start=1)]
    return await import_lines(db, scoped, only_company=company_id)
