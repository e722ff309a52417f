"""One import line → one plain row (`Row`), with a fast path for the plainest lines (issue 13 target 3).

The models of bccd.directory_models are what decides whether a line is good (the same models check the
API's bodies). Checking a line with them costs ~8 µs, a fifth of the time a 50,000-records/s import may
spend per record, so `fast_row` recognises the plainest lines itself — exactly the known keys of the line's
kind; strings that are printable and have no surrounding space (nothing for the models to strip or refuse)
within their length limits; a known status; plain `created_at` timestamps (ISO 8601 with a `T`, whole
seconds or 1–6 fractional digits, `Z` or a ±HH:MM offset, or none) in range; addresses checked by
bccd.typed_addresses — and gives the row the models would give. Anything else (another type, a space to
strip, a control character, an odd timestamp, an unknown key, any value it is not sure of) gets `None`,
and the line goes through the models, which accept it or name what is wrong with it exactly as before.
tests/test_import_rows.py compares both paths on generated lines.
"""

from __future__ import annotations

import json
import json.scanner
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

from bccd.directory_models import MAX_TIMESTAMP, MIN_TIMESTAMP, DealIn, ItemIn, OrganizationIn, PersonIn
from bccd.records import ImportLine
from bccd.typed_addresses import check_typed_address
from bccd.vocabulary import ITEM_STATUSES


class Row(NamedTuple):
    """A checked import line: what the importer stages (the same for every kind; unused fields empty)."""

    kind: str
    company: int | str  # as the line names it (an id or a name); resolved by the importer
    ext: str
    name: str  # an organization's or person's name, an item's title
    created_at: datetime | None
    organization: str | None  # a person's or item's organization (external id)
    person: str | None  # an item's person
    status: str  # items only ("" otherwise)
    emails: list[str]  # a person's addresses, normalized, each once
    participants: list[str]  # a deal's participants, each once


def model_row(envelope: ImportLine, body: Any) -> Row:
    """The row of a line the models checked (bccd.records.split_import_line)."""
    kind, company, ext = envelope.kind, envelope.company, envelope.external_id
    if isinstance(body, OrganizationIn):
        return Row(kind, company, ext, body.name, body.created_at, None, None, "", [], [])
    if isinstance(body, PersonIn):
        return Row(
            kind, company, ext, body.name, body.created_at, body.organization, None, "", body.emails, []
        )
    assert isinstance(body, ItemIn)
    parts = list(dict.fromkeys(body.participants)) if isinstance(body, DealIn) else []
    return Row(
        kind,
        company,
        ext,
        body.title,
        body.created_at,
        body.organization,
        body.person,
        body.status,
        [],
        parts,
    )


# -- the fast path -----------------------------------------------------------------------------------

_ENVELOPE = frozenset({"kind", "company", "external_id"})
_ITEM_KEYS = _ENVELOPE | {"title", "person", "organization", "status", "created_at"}
_KEYS: dict[str, frozenset[str]] = {
    "organization": _ENVELOPE | {"name", "created_at"},
    "person": _ENVELOPE | {"name", "emails", "organization", "created_at"},
    "deal": _ITEM_KEYS | {"participants"},
    "lead": _ITEM_KEYS,
    "project": _ITEM_KEYS,
}
_STATUSES: dict[str, tuple[str, ...]] = {str(k): v for k, v in ITEM_STATUSES.items()}
ID_CHARS, NAME_CHARS = 200, 500  # ExternalId, Name (bccd.directory_models)
MAX_EMAILS, MAX_PARTICIPANTS = 100, 500
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?", re.ASCII
)


def _plain(value: Any, limit: int) -> bool:
    """A string the models keep as it is: printable (no control, format or separator character other than
    the space) and without a space at either end, so there is nothing to strip; 1..limit characters."""
    return (
        type(value) is str
        and 0 < len(value) <= limit
        and value.isprintable()
        and value[0] != " "
        and value[-1] != " "
    )


def _ref(value: Any) -> bool:
    return value is None or _plain(value, ID_CHARS)


def _timestamp(value: str) -> datetime | None:
    """A plain ISO 8601 timestamp as the models read it (naive: UTC); None when unsure or out of range."""
    if type(value) is not str or not _TIMESTAMP.fullmatch(value):
        return None
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when if MIN_TIMESTAMP <= when <= MAX_TIMESTAMP else None
    except (ValueError, OverflowError):
        return None


def fast_row(data: dict[str, Any]) -> Row | None:
    """The row of a decoded line when it is one of the plainest (see the module docstring), else None."""
    kind: Any = data.get("kind")
    if type(kind) is not str:
        return None
    keys = _KEYS.get(kind)
    company: Any = data.get("company")
    ext: Any = data.get("external_id")
    if (
        keys is None
        or not keys.issuperset(data)
        or type(company) not in (int, str)
        or not _plain(ext, ID_CHARS)
    ):
        return None
    created: Any = data.get("created_at")
    if created is not None:
        created = _timestamp(created)
        if created is None:
            return None
    name: Any = data.get("name")
    org: Any = data.get("organization")
    if kind == "organization":
        return (
            Row(kind, company, ext, name, created, None, None, "", [], [])
            if _plain(name, NAME_CHARS)
            else None
        )
    if kind == "person":
        raw: Any = data.get("emails", ())
        if (
            not _plain(name, NAME_CHARS)
            or not _ref(org)
            or type(raw) not in (list, tuple)
            or len(raw) > MAX_EMAILS
        ):
            return None
        emails: list[str] = []
        for address in raw:
            if type(address) is not str:
                return None
            try:
                norm = check_typed_address(address)
            except ValueError:
                return None
            if norm not in emails:
                emails.append(norm)
        return Row(kind, company, ext, name, created, org, None, "", emails, [])
    title: Any = data.get("title")
    person: Any = data.get("person")
    status: Any = data.get("status", "open")
    if (
        not _plain(title, NAME_CHARS)
        or not _ref(person)
        or not _ref(org)
        or type(status) is not str
        or status not in _STATUSES[kind]
    ):
        return None
    parts: Any = data.get("participants", ())
    if type(parts) not in (list, tuple) or len(parts) > MAX_PARTICIPANTS:
        return None
    for part in parts:
        if not _plain(part, ID_CHARS):
            return None
    return Row(kind, company, ext, title, created, org, person, status, [], list(dict.fromkeys(parts)))


# json.loads without its Python layers (`loads` → `decode` → `raw_decode`, ~1 µs a line): the C scanner they
# call, on a line that starts with its object. What follows the object must be JSON whitespace only, as for
# json.loads ("Extra data" otherwise).
_scan_once: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # (typeshed)
_JSON_SPACE = " \t\n\r"


def fast_decode(raw: str | bytes, max_bytes: int) -> dict[str, Any] | None:
    """A line's JSON object when the line is well-formed UTF-8 JSON within `max_bytes`; None for anything
    else (the caller's full path then reports it: too long, bad UTF-8 replaced, bad JSON, not an object)."""
    if len(raw) > max_bytes:
        return None
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw  # strict: as "replace" when it succeeds
        if not text.startswith("{"):  # leading space, a BOM, not an object: the full path decides
            return None
        data, end = _scan_once(text, 0)
    except (ValueError, StopIteration, RecursionError):
        return None
    if end != len(text) and text[end:] not in ("\n", "\r\n") and text[end:].strip(_JSON_SPACE):
        return None
    return data if type(data) is dict else None
