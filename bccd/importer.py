"""Directory import from JSON lines (CLI `bccd import`, API `POST /import`): all lines or none.

Lines are validated first, then applied in one transaction in dependency order (organizations, persons,
items) so a file may name an organization after the person who works there. The first bad line is
reported with its number and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.records import REGISTRY, split_import_line
from bccd.store.database import Database
from bccd.store.directory import UnknownReference
from bccd.store.records import upsert_record
from bccd.store.users import NotFound, get_company

APPLY_ORDER: dict[str, int] = {kind: r.import_order for kind, r in REGISTRY.items()}
MAX_LINE_BYTES = 1_000_000


class ImportError_(ValueError):
    """An import line is bad; `line` is its 1-based number."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(f"line {line}: {detail}")
        self.line = line
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int

    def as_json(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "total": self.created + self.updated}


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    kind: str
    company: int | str
    external_id: str
    body: BaseModel


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "line"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_lines(lines: Iterable[str | bytes]) -> list[_Line]:
    out: list[_Line] = []
    for number, raw in enumerate(lines, start=1):
        if len(raw) > MAX_LINE_BYTES:
            raise ImportError_(number, "line too long")
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportError_(number, f"invalid JSON: {exc.msg}") from None
        except RecursionError:  # absurdly deep nesting: bad input, not a crash (T4)
            raise ImportError_(number, "invalid JSON: nested too deeply") from None
        try:
            envelope, body = split_import_line(data)
        except ValidationError as exc:
            raise ImportError_(number, _validation_text(exc)) from None
        except ValueError as exc:
            raise ImportError_(number, str(exc)) from None
        out.append(_Line(number, envelope.kind, envelope.company, envelope.external_id, body))
    return out


async def apply_lines(
    conn: AsyncConnection, lines: list[_Line], *, only_company: int | None = None
) -> ImportResult:
    """Apply parsed lines inside the caller's transaction; raise ImportError_ on the first failing line."""
    created = updated = 0
    company_ids: dict[int | str, int] = {}
    for line in sorted(lines, key=lambda ln: (APPLY_ORDER[ln.kind], ln.number)):
        try:
            if line.company not in company_ids:
                company_ids[line.company] = (await get_company(conn, line.company)).id
            company_id = company_ids[line.company]
            if only_company is not None and company_id != only_company:
                raise NotFound(f"company {line.company!r} not found")
            _, new = await upsert_record(conn, company_id, line.kind, line.external_id, line.body)
        except (UnknownReference, NotFound) as exc:
            raise ImportError_(line.number, exc.args[0] if exc.args else str(exc)) from None
        created += new
        updated += not new
    return ImportResult(created, updated)


async def import_lines(
    db: Database, lines: Iterable[str | bytes], *, only_company: int | None = None
) -> ImportResult:
    parsed = parse_lines(lines)
    async with db.write() as conn:
        return await apply_lines(conn, parsed, only_company=only_company)
