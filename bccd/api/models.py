"""Request and response shapes of the API; with the routes they make the OpenAPI document, the contract.

Directory bodies (PersonIn, DealIn, …) live in bccd.directory_models because import lines share them.
Response models mirror the dicts the store returns (thread JSON, records) so the CLI and the API print
the same thing; a few nested objects allow extra keys so the store may add fields without breaking us.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from bccd.directory_models import DealOut as DealOut  # re-exported: the registry's output models
from bccd.directory_models import ExternalId, Name
from bccd.directory_models import ItemOut as ItemOut
from bccd.directory_models import OrganizationOut as OrganizationOut
from bccd.directory_models import PersonOut as PersonOut
from bccd.mail.addresses import normalize_address
from bccd.vocabulary import ItemKind, LinkResult, Role, SearchKind, Visibility

ItemType = ItemKind  # the API's name for it (query parameter item_type)
MAX_ALIASES = 50
Email = Annotated[str, StringConstraints(min_length=3, max_length=320, strip_whitespace=True)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


def _normalized(value: str) -> str:
    norm = normalize_address(value)
    if norm is None:
        raise ValueError(f"not an email address: {value!r}")
    return norm


# -- errors -------------------------------------------------------------------------------------------


class ErrorOut(_Open):
    error: str = Field(description="machine-readable code, e.g. not_found, already_linked")
    detail: str = Field(description="one sentence for people")


# -- threads ------------------------------------------------------------------------------------------


class ItemRefOut(BaseModel):
    type: str
    id: str


class DecisionOut(_Open):
    """The automatic link decision (L11). With reason `target_not_found` it also carries
    `fallback_reason`, what the rules decided instead (left out otherwise, exactly as the CLI prints it)."""

    outcome: str
    reason: str = Field(description="SPEC L11 reason code, e.g. linked, ambiguous, no_matching_person")
    rule: str = Field(description="the SPEC rule that decided, e.g. L6")
    candidates: list[ItemRefOut] = Field(default_factory=list)


class ThreadSummaryOut(BaseModel):
    id: int
    owner: int = Field(description="user id of the thread's owner")
    subject: str
    created_at: str
    visibility: Visibility
    item: ItemRefOut | None
    persons: list[str] = Field(description="external ids of the linked persons")
    organizations: list[str] = Field(description="external ids of the linked organizations")
    decision: DecisionOut


class AddressOut(_Open):
    address: str
    name: str | None = None


class MessageOut(_Open):
    message_id: str | None = None
    date: str | None = None
    subject: str
    from_: list[AddressOut] = Field(default_factory=list, alias="from")
    to: list[AddressOut] = Field(default_factory=list)
    cc: list[AddressOut] = Field(default_factory=list)
    size: int
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    defects: list[Any] = Field(default_factory=list)
    forward: dict[str, Any] | None = None


class ParticipantOut(BaseModel):
    address: str
    name: str | None
    role: str
    person: str | None = Field(description="external id of the matching person, if any")


class HistoryOut(BaseModel):
    actor: str = Field(description='"bccd" for the automatic decision, else "user:<id>"')
    at: str
    action: str
    before: Any
    after: Any
    reason: str


class SpfOut(BaseModel):
    result: str = Field(description="RFC 7208: pass, fail, softfail, neutral, none, temperror, permerror")
    domain: str | None = Field(description="the MAIL FROM domain checked (the HELO name's when it was empty)")


class DkimOut(BaseModel):
    result: str = Field(description="per signature: pass, fail, permerror, temperror")
    domain: str | None = Field(description="the signing domain (d=)")
    selector: str | None = Field(description="the key selector (s=)")


class DmarcOut(BaseModel):
    result: str = Field(description="RFC 7489: pass, fail, none (no record), temperror, permerror")
    policy: str | None = Field(description="the From domain's p= (none, quarantine, reject); null if none")
    aligned: list[str] = Field(description='"spf", "dkim": the passing checks aligned with the From domain')


class AuthenticationOut(BaseModel):
    spf: SpfOut
    dkim: list[DkimOut]
    dmarc: DmarcOut
    verdict: str = Field(description="pass (the From domain is authenticated), fail, none or temperror")


class ThreadOut(ThreadSummaryOut):
    message: MessageOut
    participants: list[ParticipantOut]
    history: list[HistoryOut]
    authentication: AuthenticationOut | None = Field(
        default=None,
        description="SPF, DKIM and DMARC of the message when accepted; null when sender_auth was off",
    )


class ThreadPage(BaseModel):
    threads: list[ThreadSummaryOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null at the end")


class ItemLinkIn(_In):
    type: ItemType
    id: ExternalId


class ThreadPatchIn(_In):
    visibility: Visibility


class LinkResultOut(BaseModel):
    result: LinkResult
    thread: ThreadOut


# -- directory ----------------------------------------------------------------------------------------


class ImportOut(BaseModel):
    created: int
    updated: int
    total: int


# -- users --------------------------------------------------------------------------------------------


class AliasOut(BaseModel):
    """An alternative sender address; it counts for the sender policy (S5) only once `confirmed`."""

    address: str
    confirmed: bool
    confirmed_at: str | None = Field(description="when it was confirmed")
    confirmed_by: str | None = Field(
        description="`code` (the mailed code), `user:<id>` (an admin) or `operator` (the CLI); null for "
        "addresses confirmed before confirmation existed"
    )
    code_expires_at: str | None = Field(description="until when the pending code works (null: none pending)")


class AliasAddedOut(AliasOut):
    confirmation_sent: bool = Field(
        description="the code was handed to the outbound relay; false: no relay configured or it failed "
        "(add the address again for a new code, or an admin confirms it)"
    )


class AliasAddIn(_In):
    address: Email

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return _normalized(value)


Code = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


class AliasConfirmIn(_In):
    address: Email
    code: Code | None = Field(
        default=None, description="the code mailed to the address; omitted: an admin confirms for the user"
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return _normalized(value)


class UserOut(BaseModel):
    id: int
    company: int
    name: str
    email: str
    role: Role
    autolink: bool
    aliases: list[str] = Field(description="confirmed alternative sender addresses (the ones S5 counts)")
    alternative_addresses: list[AliasOut] = Field(
        default_factory=list, description="every alternative address, confirmed or not"
    )
    smart_bcc_address: str


class UserCreatedOut(UserOut):
    api_token: str | None = Field(default=None, description="shown once; only its hash is stored")


class UserCreateIn(_In):
    email: Email
    name: Name
    role: Role = "regular"
    aliases: list[Email] = Field(default_factory=list, max_length=MAX_ALIASES)
    autolink: bool = True
    token: bool = Field(default=False, description="also create an API token (returned once)")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return _normalized(value)

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: list[str]) -> list[str]:
        return [_normalized(v) for v in value]


class UserPatchIn(_In):
    name: Name | None = None
    autolink: bool | None = None
    role: Role | None = None
    aliases: list[Email] | None = Field(default=None, max_length=MAX_ALIASES)

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_normalized(v) for v in value]


# -- search and ops -----------------------------------------------------------------------------------


class SearchHitOut(BaseModel):
    type: SearchKind
    id: str
    name: str = Field(description="a person's or organization's name, an item's title")
    status: str | None = Field(description="items only")


class SearchOut(BaseModel):
    results: list[SearchHitOut]


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, bool] = Field(default_factory=dict)
    last_write_error: str | None = None  # /readyz: the error code of the failed last write
