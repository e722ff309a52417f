"""The record-kind registry: every directory record kind — its table, input and output model, plural,
CLI name, import order — in one table. API routes, import dispatch, search kinds and CLI choices are
generated from it instead of spelling out person/organization/deal/lead/project in each place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from bccd.directory_models import (
    DealIn,
    DealOut,
    ExternalId,
    ItemOut,
    LeadIn,
    OrganizationIn,
    OrganizationOut,
    PersonIn,
    PersonOut,
    ProjectIn,
)
from bccd.vocabulary import ITEM_KINDS, RecordKind


@dataclass(frozen=True, slots=True)
class RecordType:
    kind: RecordKind
    plural: str  # in API paths: /api/v1/<plural>/{external_id}
    table: str  # the table holding it (bccd.store.schema); items share one, told apart by `type`
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    cli_name: str  # how the CLI spells it (`--type`, `--item TYPE:ID`)
    import_order: int  # import applies lines in this order, so references resolve (organization first)

    @property
    def is_item(self) -> bool:
        """Deals, leads and projects: what a thread links to (M2), marked deleted rather than removed."""
        return self.kind in ITEM_KINDS

    @property
    def removable(self) -> bool:
        """DELETE removes persons and organizations; items are only marked `deleted` (SPEC §2)."""
        return not self.is_item


REGISTRY: dict[RecordKind, RecordType] = {
    r.kind: r
    for r in (
        RecordType("person", "persons", "persons", PersonIn, PersonOut, "person", 1),
        RecordType("organization", "organizations", "organizations",
                   OrganizationIn, OrganizationOut, "organization", 0),
        RecordType("deal", "deals", "items", DealIn, DealOut, "deal", 2),
        RecordType("lead", "leads", "items", LeadIn, ItemOut, "lead", 2),
        RecordType("project", "projects", "items", ProjectIn, ItemOut, "project", 2),
    )
}  # fmt: skip
RECORD_TYPES: tuple[RecordType, ...] = tuple(REGISTRY.values())
ITEM_TYPES: tuple[RecordType, ...] = tuple(r for r in RECORD_TYPES if r.is_item)
# Persons and organizations: linked to threads by hand (M3), not as "the" item.
CONTACT_TYPES: tuple[RecordType, ...] = tuple(r for r in RECORD_TYPES if not r.is_item)
# What the CLI offers where an item is named (`bccd link --type`, `threads list --item TYPE:ID`).
ITEM_CLI_NAMES: tuple[str, ...] = tuple(r.cli_name for r in ITEM_TYPES)


def record_type(kind: str) -> RecordType:
    """The registry entry of a kind; ValueError for a word that is no record kind."""
    for r in RECORD_TYPES:
        if kind in (r.kind, r.cli_name):
            return r
    raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(REGISTRY)}")


# -- import lines ------------------------------------------------------------------------------------


class ImportLine(BaseModel):
    """The envelope of one import line: what it is, whose it is, which record."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: RecordKind
    company: int | str
    external_id: ExternalId


def split_import_line(data: Any) -> tuple[ImportLine, BaseModel]:
    """Validate one decoded JSON line into its envelope and its record body (raises ValidationError)."""
    if not isinstance(data, dict):
        raise ValueError("each line must be a JSON object")
    envelope = ImportLine.model_validate(
        {k: data[k] for k in ("kind", "company", "external_id") if k in data}
    )
    body = {k: v for k, v in data.items() if k not in ("kind", "company", "external_id")}
    return envelope, REGISTRY[envelope.kind].input_model.model_validate(body)
