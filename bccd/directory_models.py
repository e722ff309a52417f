"""Shapes of directory records: validated as the CRM sends them (`…In`: API bodies, import lines) and as
bccd returns them (`…Out`). Which kind uses which is the record registry, bccd.records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from bccd.typed_addresses import check_typed_address
from bccd.vocabulary import ITEM_STATUSES, ItemKind

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Dated(_Strict):
    """Records the CRM dates: `created_at` (optional; absent means when bccd first stored the record)."""

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


class OrganizationIn(_Dated):
    name: Name


class PersonIn(_Dated):
    name: Name
    emails: list[str] = Field(default_factory=list, max_length=100)
    organization: ExternalId | None = None

    @field_validator("emails")
    @classmethod
    def _normalize(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for raw in value:
            norm = check_typed_address(raw)
            if norm not in out:
                out.append(norm)
        return out


class ItemIn(_Dated):
    title: Name
    person: ExternalId | None = None
    organization: ExternalId | None = None
    status: str = "open"


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


def _check_status(kind: ItemKind, value: str) -> str:
    if value not in ITEM_STATUSES[kind]:
        raise ValueError(f"{kind} status must be one of {', '.join(ITEM_STATUSES[kind])}")
    return value


# -- as bccd returns them ------------------------------------------------------------------------------


class OrganizationOut(BaseModel):
    id: str
    name: str
    created_at: str


class PersonOut(BaseModel):
    id: str
    name: str
    emails: list[str]
    organization: str | None
    created_at: str


class ItemOut(BaseModel):
    type: ItemKind
    id: str
    title: str
    person: str | None
    organization: str | None
    status: str
    created_at: str
    status_changed_at: str


class DealOut(ItemOut):
    participants: list[str]
