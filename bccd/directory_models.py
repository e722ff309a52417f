"""Validated shapes of directory records as the CRM sends them (API bodies and import lines)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from bccd.mail.addresses import normalize_address

# No control characters: PostgreSQL refuses NUL in text, and none belongs in a name or an id (T4).
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
ExternalId = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=_PRINTABLE)
]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True, pattern=_PRINTABLE)
]
# Timestamps must survive conversion to UTC on both backends (year 1 with a +05:00 offset does not).
MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP = datetime(9999, 1, 1, tzinfo=UTC)

ITEM_STATUSES: dict[str, tuple[str, ...]] = {
    "deal": ("open", "won", "lost", "deleted"),
    "lead": ("open", "archived", "converted", "deleted"),
    "project": ("open", "completed", "canceled", "deleted"),
}
ITEM_KINDS = tuple(ITEM_STATUSES)
DIRECTORY_KINDS = ("person", "organization", *ITEM_KINDS)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganizationIn(_Strict):
    name: Name


class PersonIn(_Strict):
    name: Name
    emails: list[str] = Field(default_factory=list, max_length=100)
    organization: ExternalId | None = None

    @field_validator("emails")
    @classmethod
    def _normalize(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for raw in value:
            norm = normalize_address(raw)
            if norm is None:
                raise ValueError(f"not an email address: {raw!r}")
            if norm not in out:
                out.append(norm)
        return out


class ItemIn(_Strict):
    title: Name
    person: ExternalId | None = None
    organization: ExternalId | None = None
    status: str = "open"
    created_at: datetime | None = None

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            in_range = MIN_TIMESTAMP <= value <= MAX_TIMESTAMP
        except OverflowError:
            in_range = False
        if not in_range:
            raise ValueError("created_at must be between 1970 and 9999")
        return value


class DealIn(ItemIn):
    participants: list[ExternalId] = Field(default_factory=list, max_length=500)

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        return _check_status("deal", value)


class LeadIn(ItemIn):
    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        return _check_status("lead", value)


class ProjectIn(ItemIn):
    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        return _check_status("project", value)


def _check_status(kind: str, value: str) -> str:
    if value not in ITEM_STATUSES[kind]:
        raise ValueError(f"{kind} status must be one of {', '.join(ITEM_STATUSES[kind])}")
    return value


MODEL_BY_KIND: dict[str, type[_Strict]] = {
    "person": PersonIn,
    "organization": OrganizationIn,
    "deal": DealIn,
    "lead": LeadIn,
    "project": ProjectIn,
}

DirectoryKind = Literal["person", "organization", "deal", "lead", "project"]


class ImportLine(_Strict):
    """The envelope of one import line: what it is, whose it is, which record."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: DirectoryKind
    company: int | str
    external_id: ExternalId


def split_import_line(data: Any) -> tuple[ImportLine, _Strict]:
    """Validate one decoded JSON line into its envelope and its record body (raises ValidationError)."""
    if not isinstance(data, dict):
        raise ValueError("each line must be a JSON object")
    envelope = ImportLine.model_validate(
        {k: data[k] for k in ("kind", "company", "external_id") if k in data}
    )
    body = {k: v for k, v in data.items() if k not in ("kind", "company", "external_id")}
    return envelope, MODEL_BY_KIND[envelope.kind].model_validate(body)
