"""One dispatch from a record kind to its store functions (bccd.store.directory), for callers that handle
every kind alike: the directory service and the importer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.directory_models import ItemIn, OrganizationIn, PersonIn
from bccd.records import record_type
from bccd.store import directory


async def upsert_record(
    conn: AsyncConnection, company_id: int, kind: str, external_id: str, body: BaseModel
) -> tuple[int, bool]:
    """Create or update; returns the internal id and whether the record was created."""
    if record_type(kind).is_item:
        assert isinstance(body, ItemIn)
        return await directory.upsert_item(conn, company_id, kind, external_id, body)
    if isinstance(body, PersonIn):
        return await directory.upsert_person(conn, company_id, external_id, body)
    assert isinstance(body, OrganizationIn), kind
    return await directory.upsert_organization(conn, company_id, external_id, body)


async def get_record(conn: AsyncConnection, company_id: int, kind: str, external_id: str) -> dict[str, Any]:
    """The record as the API and CLI show it; NotFound otherwise (T1)."""
    if record_type(kind).is_item:
        return await directory.get_item(conn, company_id, kind, external_id)
    if kind == "person":
        return await directory.get_person(conn, company_id, external_id)
    return await directory.get_organization(conn, company_id, external_id)


async def delete_record(conn: AsyncConnection, company_id: int, kind: str, external_id: str) -> None:
    """Remove a person or organization, mark an item deleted; UnknownReference when there is none."""
    if record_type(kind).is_item:
        await directory.delete_item(conn, company_id, kind, external_id)
    elif kind == "person":
        await directory.delete_person(conn, company_id, external_id)
    else:
        await directory.delete_organization(conn, company_id, external_id)
