"""A populated directory for plan and scale tests, written with a few multi-row statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store.database import Database
from bccd.store.schema import companies, item_participants, items, person_emails, user_addresses, users
from bccd.store.schema import organizations as _ORGS
from bccd.store.schema import persons as _PERSONS

WHEN = datetime(2021, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Populated:
    person_email: str  # contact of deal `deal_ext`
    participant_email: str  # a participant (not contact) of the same deal
    deal_ext: str


async def populate(
    db: Database, company_id: int, *, persons: int, organizations: int, deals: int
) -> Populated:
    """`persons` persons (one address each) in `organizations` organizations, `deals` deals whose contact
    is person i and whose participants are persons i+1 and i+2."""
    orgs_table, persons_table = _ORGS, _PERSONS
    async with db.write() as conn:
        await _other_company_users(conn, users_count=max(50, persons // 10))
        await conn.execute(
            insert(orgs_table),
            [
                {"company_id": company_id, "external_id": f"o{i}", "name": f"Org {i}", "created_at": WHEN}
                for i in range(organizations)
            ],
        )
        org_ids = [r[0] for r in await conn.execute(select(orgs_table.c.id).order_by(orgs_table.c.id))]
        await conn.execute(
            insert(persons_table),
            [
                {
                    "company_id": company_id,
                    "external_id": f"p{i}",
                    "name": f"Person {i}",
                    "organization_id": org_ids[i % len(org_ids)],
                    "created_at": WHEN,
                }
                for i in range(persons)
            ],
        )
        pids = dict(
            (ext, pid)
            for pid, ext in await conn.execute(
                select(persons_table.c.id, persons_table.c.external_id).where(
                    persons_table.c.company_id == company_id
                )
            )
        )
        await conn.execute(
            insert(person_emails),
            [
                {
                    "person_id": pids[f"p{i}"],
                    "address": f"p{i}@d{i % organizations}.example",
                    "company_id": company_id,
                }
                for i in range(persons)
            ],
        )
        await conn.execute(
            insert(items),
            [
                {
                    "company_id": company_id,
                    "type": "deal",
                    "external_id": f"d{i}",
                    "title": f"Deal {i}",
                    "person_id": pids[f"p{i % persons}"],
                    "organization_id": org_ids[i % len(org_ids)],
                    "status": "open" if i % 3 else "won",
                    "created_at": WHEN,
                    "status_changed_at": WHEN,
                }
                for i in range(deals)
            ],
        )
        iids = dict(
            (ext, iid)
            for iid, ext in await conn.execute(
                select(items.c.id, items.c.external_id).where(items.c.company_id == company_id)
            )
        )
        await conn.execute(
            insert(item_participants),
            [
                {"item_id": iids[f"d{i}"], "person_id": pids[f"p{(i + k) % persons}"]}
                for i in range(deals)
                for k in (1, 2)
            ],
        )
    n = min(persons, deals) // 2
    return Populated(
        f"p{n}@d{n % organizations}.example", f"p{n + 1}@d{(n + 1) % organizations}.example", f"d{n}"
    )


async def _other_company_users(conn: AsyncConnection, *, users_count: int) -> None:
    """Another company's users with an alias each: the users tables are not trivially small either."""
    other = (
        await conn.execute(
            insert(companies).values(name="Bulk", sender_policy="owner", never_log=[], created_at=WHEN)
        )
    ).inserted_primary_key
    assert other is not None
    await conn.execute(
        insert(users),
        [
            {
                "company_id": other[0],
                "name": f"U{i}",
                "email": f"u{i}@bulk.example",
                "role": "regular",
                "autolink": True,
                "smart_bcc_local": f"bulk{i:06d}",
                "created_at": WHEN,
            }
            for i in range(users_count)
        ],
    )
    ids = [r[0] for r in await conn.execute(select(users.c.id).where(users.c.company_id == other[0]))]
    await conn.execute(
        insert(user_addresses), [{"user_id": uid, "address": f"alt{uid}@bulk.example"} for uid in ids]
    )
