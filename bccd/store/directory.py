"""The CRM directory copy: persons, organizations and items, upserted by the CRM's external ids (§2)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.directory_models import DealIn, ItemIn, OrganizationIn, PersonIn
from bccd.errors import UnknownReference as UnknownReference  # re-exported: defined in bccd.errors
from bccd.linker import ItemFact, PersonFact
from bccd.store.dialect import insert_ignore
from bccd.store.schema import item_participants, items, organizations, person_emails, persons
from bccd.store.users import NotFound


def _now() -> datetime:
    return datetime.now(UTC)


async def _id_of(conn: AsyncConnection, table: Any, company_id: int, external_id: str, **extra: Any) -> int:
    cond = (table.c.company_id == company_id) & (table.c.external_id == external_id)
    for key, value in extra.items():
        cond = cond & (table.c[key] == value)
    row = (await conn.execute(select(table.c.id).where(cond))).first()
    if row is None:
        kind = extra.get("type") or table.name.rstrip("s")
        raise UnknownReference(f"unknown {kind} {external_id!r}")
    return int(row[0])


async def upsert_organization(
    conn: AsyncConnection, company_id: int, external_id: str, body: OrganizationIn
) -> tuple[int, bool]:
    """Insert or update; returns (id, created)."""
    new_id = await insert_ignore(
        conn,
        organizations,
        {
            "company_id": company_id,
            "external_id": external_id,
            "name": body.name,
            "created_at": body.created_at or _now(),
        },
        ["company_id", "external_id"],
    )
    if new_id is not None:
        return new_id, True
    org_id = await _id_of(conn, organizations, company_id, external_id)
    changes: dict[str, Any] = {"name": body.name}
    if body.created_at is not None:
        changes["created_at"] = body.created_at
    await conn.execute(update(organizations).where(organizations.c.id == org_id).values(**changes))
    return org_id, False


async def upsert_person(
    conn: AsyncConnection, company_id: int, external_id: str, body: PersonIn
) -> tuple[int, bool]:
    org_id = None
    if body.organization is not None:
        org_id = await _id_of(conn, organizations, company_id, body.organization)
    values: dict[str, Any] = {"name": body.name, "organization_id": org_id}
    if body.created_at is not None:
        values["created_at"] = body.created_at
    new_id = await insert_ignore(
        conn,
        persons,
        {"company_id": company_id, "external_id": external_id, "created_at": _now(), **values},
        ["company_id", "external_id"],
    )
    created = new_id is not None
    if new_id is None:
        person_id = await _id_of(conn, persons, company_id, external_id)
        await conn.execute(update(persons).where(persons.c.id == person_id).values(**values))
        await conn.execute(delete(person_emails).where(person_emails.c.person_id == person_id))
    else:
        person_id = new_id
    if body.emails:
        await conn.execute(
            insert(person_emails),
            [{"person_id": person_id, "address": a, "company_id": company_id} for a in body.emails],
        )
    return person_id, created


async def upsert_item(
    conn: AsyncConnection, company_id: int, kind: str, external_id: str, body: ItemIn
) -> tuple[int, bool]:
    person_id = None
    if body.person is not None:
        person_id = await _id_of(conn, persons, company_id, body.person)
    org_id = None
    if body.organization is not None:
        org_id = await _id_of(conn, organizations, company_id, body.organization)
    participant_ids: list[int] = []
    if isinstance(body, DealIn):
        for ext in dict.fromkeys(body.participants):
            participant_ids.append(await _id_of(conn, persons, company_id, ext))
    now = _now()
    created_at = body.created_at or now
    new_id = await insert_ignore(
        conn,
        items,
        {
            "company_id": company_id,
            "type": kind,
            "external_id": external_id,
            "title": body.title,
            "person_id": person_id,
            "organization_id": org_id,
            "status": body.status,
            "created_at": created_at,
            "status_changed_at": created_at if body.status == "open" else now,
        },
        ["company_id", "type", "external_id"],
    )
    created = new_id is not None
    if new_id is None:
        row = (
            await conn.execute(
                select(items.c.id, items.c.status).where(
                    items.c.company_id == company_id, items.c.type == kind, items.c.external_id == external_id
                )
            )
        ).one()
        item_id = int(row[0])
        values: dict[str, Any] = {
            "title": body.title,
            "person_id": person_id,
            "organization_id": org_id,
            "status": body.status,
        }
        if row[1] != body.status:
            values["status_changed_at"] = now
        if body.created_at is not None:
            values["created_at"] = body.created_at
        await conn.execute(update(items).where(items.c.id == item_id).values(**values))
        await conn.execute(delete(item_participants).where(item_participants.c.item_id == item_id))
    else:
        item_id = new_id
    if participant_ids:
        await conn.execute(
            insert(item_participants), [{"item_id": item_id, "person_id": p} for p in participant_ids]
        )
    return item_id, created


async def delete_item(conn: AsyncConnection, company_id: int, kind: str, external_id: str) -> None:
    """Items are never removed: they are marked `deleted` so threads keep their history (SPEC §2)."""
    item_id = await _id_of(conn, items, company_id, external_id, type=kind)
    await conn.execute(
        update(items)
        .where(items.c.id == item_id, items.c.status != "deleted")
        .values(status="deleted", status_changed_at=_now())
    )


async def delete_person(conn: AsyncConnection, company_id: int, external_id: str) -> None:
    """Remove a person; threads keep their participants' addresses (participant.person becomes null)."""
    person_id = await _id_of(conn, persons, company_id, external_id)
    await conn.execute(delete(persons).where(persons.c.id == person_id))


async def delete_organization(conn: AsyncConnection, company_id: int, external_id: str) -> None:
    org_id = await _id_of(conn, organizations, company_id, external_id)
    await conn.execute(delete(organizations).where(organizations.c.id == org_id))


# -- reads -------------------------------------------------------------------------------------------


async def get_organization(conn: AsyncConnection, company_id: int, external_id: str) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                select(organizations).where(
                    organizations.c.company_id == company_id, organizations.c.external_id == external_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"organization {external_id!r} not found")
    return {"id": row["external_id"], "name": row["name"], "created_at": row["created_at"].isoformat()}


async def get_person(conn: AsyncConnection, company_id: int, external_id: str) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                select(persons, organizations.c.external_id.label("org_ext"))
                .outerjoin(organizations, organizations.c.id == persons.c.organization_id)
                .where(persons.c.company_id == company_id, persons.c.external_id == external_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"person {external_id!r} not found")
    emails = await conn.execute(
        select(person_emails.c.address)
        .where(person_emails.c.person_id == row["id"])
        .order_by(person_emails.c.address)
    )
    return {
        "id": row["external_id"],
        "name": row["name"],
        "emails": [e[0] for e in emails],
        "organization": row["org_ext"],
        "created_at": row["created_at"].isoformat(),
    }


async def get_item(conn: AsyncConnection, company_id: int, kind: str, external_id: str) -> dict[str, Any]:
    p = persons.alias("p")
    o = organizations.alias("o")
    row = (
        (
            await conn.execute(
                select(items, p.c.external_id.label("person_ext"), o.c.external_id.label("org_ext"))
                .outerjoin(p, p.c.id == items.c.person_id)
                .outerjoin(o, o.c.id == items.c.organization_id)
                .where(
                    items.c.company_id == company_id, items.c.type == kind, items.c.external_id == external_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"{kind} {external_id!r} not found")
    out: dict[str, Any] = {
        "type": kind,
        "id": row["external_id"],
        "title": row["title"],
        "person": row["person_ext"],
        "organization": row["org_ext"],
        "status": row["status"],
        "created_at": row["created_at"].isoformat(),
        "status_changed_at": row["status_changed_at"].isoformat(),
    }
    if kind == "deal":
        parts = await conn.execute(
            select(persons.c.external_id)
            .join(item_participants, item_participants.c.person_id == persons.c.id)
            .where(item_participants.c.item_id == row["id"])
            .order_by(persons.c.external_id)
        )
        out["participants"] = [r[0] for r in parts]
    return out


async def item_internal_id(conn: AsyncConnection, company_id: int, kind: str, external_id: str) -> int:
    try:
        return await _id_of(conn, items, company_id, external_id, type=kind)
    except UnknownReference as exc:
        raise NotFound(str(exc)) from exc


async def record_internal_id(conn: AsyncConnection, company_id: int, kind: str, external_id: str) -> int:
    """Internal id of a person, organization or item of the company; NotFound otherwise (T1)."""
    table = {"person": persons, "organization": organizations}.get(kind)
    try:
        if table is not None:
            return await _id_of(conn, table, company_id, external_id)
        return await _id_of(conn, items, company_id, external_id, type=kind)
    except UnknownReference as exc:
        raise NotFound(f"{kind} {external_id!r} not found") from exc


# -- facts for the linker ----------------------------------------------------------------------------


# The linker's facts are read for every accepted message: the statements are built once, values bound at
# execution (expanding IN lists), so SQLAlchemy's compiled cache is hit without rebuilding cache keys.
_PERSONS_BY_ADDRESS = (
    select(persons.c.id, persons.c.external_id, persons.c.organization_id, person_emails.c.address)
    .join(person_emails, person_emails.c.person_id == persons.c.id)
    .where(
        person_emails.c.company_id == bindparam("company_id"),
        person_emails.c.address.in_(bindparam("addresses", expanding=True)),
    )
)
_PARTICIPANTS_OF = select(item_participants.c.item_id, item_participants.c.person_id).where(
    item_participants.c.item_id.in_(bindparam("item_ids", expanding=True))
)
# Contact or participant, as two indexed halves of a UNION: one `person_id IN … OR id IN (SELECT …)` can
# use no index across the OR, so SQLite walked every item of the company for every message (issue 13).
_ITEMS_BY_CONTACT = select(items).where(
    items.c.company_id == bindparam("company_id"), items.c.person_id.in_(bindparam("ids", expanding=True))
)
_ITEMS_BY_PARTICIPANT = (
    select(items)
    .join(item_participants, item_participants.c.item_id == items.c.id)
    .where(
        items.c.company_id == bindparam("company_id"),
        item_participants.c.person_id.in_(bindparam("ids", expanding=True)),
    )
)
_CANDIDATES = union(_ITEMS_BY_CONTACT, _ITEMS_BY_PARTICIPANT).subquery("candidates")
_ITEMS_FOR_PERSONS = select(_CANDIDATES).order_by(_CANDIDATES.c.id)


async def persons_by_addresses(
    conn: AsyncConnection, company_id: int, addresses: Iterable[str]
) -> list[PersonFact]:
    wanted = sorted(set(addresses))
    if not wanted:
        return []
    rows = await conn.execute(_PERSONS_BY_ADDRESS, {"company_id": company_id, "addresses": wanted})
    found: dict[int, tuple[str, int | None, set[str]]] = {}
    for pid, ext, org, addr in rows:
        entry = found.setdefault(int(pid), (ext, None if org is None else int(org), set()))
        entry[2].add(addr)
    return [PersonFact(pid, ext, frozenset(addrs), org) for pid, (ext, org, addrs) in sorted(found.items())]


def _item_fact(row: Any, participants: frozenset[int]) -> ItemFact:
    return ItemFact(
        id=int(row["id"]),
        type=row["type"],
        external_id=row["external_id"],
        status=row["status"],
        created_at=row["created_at"],
        person_id=None if row["person_id"] is None else int(row["person_id"]),
        participant_ids=participants,
    )


async def _participants_of(conn: AsyncConnection, item_ids: list[int]) -> dict[int, frozenset[int]]:
    out: dict[int, set[int]] = {i: set() for i in item_ids}
    if item_ids:
        rows = await conn.execute(_PARTICIPANTS_OF, {"item_ids": item_ids})
        for iid, pid in rows:
            out[int(iid)].add(int(pid))
    return {k: frozenset(v) for k, v in out.items()}


async def items_for_persons(
    conn: AsyncConnection, company_id: int, person_ids: Iterable[int]
) -> list[ItemFact]:
    """Every item (any status, any age) whose contact or deal participant is one of the persons (L3)."""
    ids = sorted(set(person_ids))
    if not ids:
        return []
    rows = (await conn.execute(_ITEMS_FOR_PERSONS, {"company_id": company_id, "ids": ids})).mappings().all()
    parts = await _participants_of(conn, [int(r["id"]) for r in rows])
    return [_item_fact(r, parts[int(r["id"])]) for r in rows]


async def item_fact(conn: AsyncConnection, company_id: int, kind: str, external_id: str) -> ItemFact | None:
    row = (
        (
            await conn.execute(
                select(items).where(
                    items.c.company_id == company_id, items.c.type == kind, items.c.external_id == external_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    parts = await _participants_of(conn, [int(row["id"])])
    return _item_fact(row, parts[int(row["id"])])
