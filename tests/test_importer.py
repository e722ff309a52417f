"""Directory import (T4): every bad line is reported with its number, and nothing is half-imported."""

from __future__ import annotations

import json

import pytest

from bccd.importer import ImportError_, import_lines, parse_lines
from bccd.store.database import Database
from bccd.store.directory import get_organization
from bccd.store.users import NotFound, create_company


def _line(**kw: object) -> str:
    return json.dumps(kw)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("[" * 100_000, "nested too deeply"),
        (_line(kind="person", company=1, external_id="p\x00", name="P"), "external_id"),
        (_line(kind="person", company=1, external_id="p", name="P\x07"), "name"),
        (
            _line(kind="deal", company=1, external_id="d", title="D", created_at="0001-01-01T00:00:00+05:00"),
            "created_at",
        ),
        (_line(kind="planet", company=1, external_id="x"), "kind"),
        (_line(kind="person", company=1, external_id="p", name="P", emails=["not-an-address"]), "emails"),
        (_line(kind="person", company=1, external_id="p", name="P", shoe_size=43), "shoe_size"),
        ('"just a string"', "JSON object"),
    ],
)
def test_bad_lines_are_named(line: str, needle: str) -> None:
    with pytest.raises(ImportError_) as exc:
        parse_lines([_line(kind="organization", company=1, external_id="o", name="O"), line])
    assert exc.value.line == 2 and needle in str(exc.value)


async def test_unknown_reference_fails_whole_file(db: Database) -> None:
    async with db.write() as conn:
        company = await create_company(conn, "Acme")
    lines = [
        _line(kind="organization", company=company.id, external_id="o1", name="Org"),
        _line(kind="person", company=company.id, external_id="p1", name="P", organization="zz"),
    ]
    with pytest.raises(ImportError_) as exc:
        await import_lines(db, lines)
    assert exc.value.line == 2 and exc.value.detail == "unknown organization 'zz'"
    async with db.read() as conn:
        with pytest.raises(NotFound):
            await get_organization(conn, company.id, "o1")  # line 1 was rolled back with the rest


async def test_dependency_order_and_idempotent_upsert(db: Database) -> None:
    async with db.write() as conn:
        company = await create_company(conn, "Acme")
    lines = [
        _line(kind="deal", company="Acme", external_id="d1", title="Deal", person="p1", participants=["p1"]),
        _line(
            kind="person",
            company=company.id,
            external_id="p1",
            name="Carol",
            organization="o1",
            emails=["Carol@Client.test"],
        ),
        _line(kind="organization", company=company.id, external_id="o1", name="Client"),
    ]
    first = await import_lines(db, lines)
    second = await import_lines(db, lines)
    assert first.as_json() == {"created": 3, "updated": 0, "total": 3}
    assert second.as_json() == {"created": 0, "updated": 3, "total": 3}
