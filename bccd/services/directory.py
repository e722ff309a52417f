"""The directory the CRM syncs, keyed by its ids: upsert, read, delete records; import JSON lines.

Admins write, every user of the company reads (the operator at the CLI does both, for any company).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bccd.errors import NotFound, UnknownReference
from bccd.importer import ImportError_ as ImportError_  # re-exported: interfaces report it
from bccd.importer import ImportFailed as ImportFailed
from bccd.importer import ImportProgress as ImportProgress
from bccd.importer import ImportResult as ImportResult
from bccd.importer import Lines, Progress, import_lines
from bccd.importer import split_stream as split_stream
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


async def import_records(
    db: Database,
    lines: Lines,
    *,
    actor: User | None,
    progress: Progress | None = None,
    bytes_total: int | None = None,
) -> ImportResult:
    """Import JSON lines (streamed), all or nothing. An admin imports into their own company only (a line
    without "company" means theirs); the operator imports into any company the lines name."""
    if actor is None:
        return await import_lines(db, lines, progress=progress, bytes_total=bytes_total)
    require_admin(actor)
    company_id = actor.company_id
    return await import_lines(
        db,
        lines,
        only_company=company_id,
        default_company=company_id,
        progress=progress,
        bytes_total=bytes_total,
    )
