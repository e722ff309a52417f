"""Companies (tenants) and their settings: sender policy (S5) and never-log addresses (§3)."""

from __future__ import annotations

from collections.abc import Iterable

from bccd.services.runtime import Database
from bccd.store import users as store
from bccd.store.users import MAX_NEVER_LOG_ENTRIES as MAX_NEVER_LOG_ENTRIES
from bccd.store.users import Company as Company  # re-exported for interfaces
from bccd.store.users import clean_never_log as clean_never_log  # validates and normalizes entries


async def create_company(
    db: Database, name: str, *, sender_policy: str = "owner", never_log: Iterable[str] = ()
) -> Company:
    async with db.write() as conn:
        return await store.create_company(conn, name, sender_policy=sender_policy, never_log=never_log)


async def get_company(db: Database, ref: int | str) -> Company:
    """A company by id or name (NotFound otherwise)."""
    async with db.read() as conn:
        return await store.get_company(conn, ref)


async def list_companies(db: Database) -> list[Company]:
    """Every company (the operator's view; the API has no cross-tenant listing, T1)."""
    async with db.read() as conn:
        return await store.list_companies(conn)


async def update_settings(
    db: Database,
    company_id: int,
    *,
    sender_policy: str | None = None,
    never_log: Iterable[str] | None = None,
    sender_auth: str | None = None,
) -> Company:
    """Change the sender policy, sender authentication mode and/or the never-log list (replaced whole);
    None leaves a setting unchanged. The API lets only the company's admins call this."""
    async with db.write() as conn:
        await store.get_company(conn, company_id)
        return await store.update_company(
            conn, company_id, sender_policy=sender_policy, never_log=never_log, sender_auth=sender_auth
        )


async def sole_company_id(db: Database) -> int:
    """The one company of a single-tenant install; AmbiguousCompany when there are none or several."""
    async with db.read() as conn:
        ids = await store.company_ids(conn)
    if len(ids) != 1:
        raise AmbiguousCompany(len(ids))
    return ids[0]


class AmbiguousCompany(ValueError):
    """No filter names a company and the install has none or several: never mix companies (T1)."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} companies: give --owner or --company")
        self.count = count
