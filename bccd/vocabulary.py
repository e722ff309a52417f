"""bccd's words, defined once: record kinds, item statuses, roles, sender policies, visibility, link
outcomes, reason codes and rule ids. Every other module imports them from here.

Each closed set is a `Literal` (for types: pydantic validation, mypy) with its values as a tuple derived
from it (for checks, CLI choices and SQL), so the two can never disagree.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

# -- the directory -----------------------------------------------------------------------------------

ItemKind = Literal["deal", "lead", "project"]
ITEM_KINDS: tuple[ItemKind, ...] = get_args(ItemKind)

ContactKind = Literal["person", "organization"]  # linked to threads by hand (M3)
RecordKind = Literal[ContactKind, ItemKind]  # person, organization, deal, lead, project
RECORD_KINDS: tuple[RecordKind, ...] = get_args(RecordKind)
SearchKind = Literal[ItemKind, ContactKind]  # the same kinds in search order: items first (M6)

OPEN = "open"
DELETED = "deleted"  # items are never removed, only marked deleted (SPEC §2)
DealStatus = Literal["open", "won", "lost", "deleted"]
LeadStatus = Literal["open", "archived", "converted", "deleted"]
ProjectStatus = Literal["open", "completed", "canceled", "deleted"]
ITEM_STATUSES: dict[ItemKind, tuple[str, ...]] = {
    "deal": get_args(DealStatus),
    "lead": get_args(LeadStatus),
    "project": get_args(ProjectStatus),
}

# -- companies and users -----------------------------------------------------------------------------

Role = Literal["admin", "regular"]
ROLES: tuple[Role, ...] = get_args(Role)
ADMIN: Role = "admin"
REGULAR: Role = "regular"

SenderPolicy = Literal["owner", "company", "any"]  # who may Bcc a user's Smart Bcc address (S5)
SENDER_POLICIES: tuple[SenderPolicy, ...] = get_args(SenderPolicy)
SenderAuth = Literal["off", "record", "require"]  # SPF/DKIM/DMARC: ignored, kept with the thread, enforced
SENDER_AUTH_MODES: tuple[SenderAuth, ...] = get_args(SenderAuth)

# -- threads -----------------------------------------------------------------------------------------

Visibility = Literal["private", "shared"]  # §3 privacy
VISIBILITIES: tuple[Visibility, ...] = get_args(Visibility)
PRIVATE: Visibility = "private"
SHARED: Visibility = "shared"

Outcome = Literal["linked", "unlinked"]  # of the automatic decision (L11)
LinkResult = Literal["linked", "replaced", "unlinked", "unchanged"]  # of a manual link change (M2–M4)


class ReasonCode(StrEnum):
    """Why a thread is (not) linked to an item (L11); stored with the thread and shown to users."""

    LINKED = "linked"
    EXPLICIT_TARGET = "explicit_target"
    AUTOLINK_DISABLED = "autolink_disabled"
    NO_MATCHING_PERSON = "no_matching_person"
    NO_OPEN_ITEMS = "no_open_items"
    ONLY_CLOSED_ITEMS = "only_closed_items"
    ITEMS_NEWER_THAN_THREAD = "items_newer_than_thread"
    AMBIGUOUS = "ambiguous"
    TARGET_NOT_FOUND = "target_not_found"


# The SPEC's rule ids: L linking, M manual links, F forwards, S SMTP, T tenancy/security.
RuleId = Literal[
    "L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9", "L10", "L11",
    "M1", "M2", "M3", "M4", "M5", "M6", "M7",
    "F1", "F2", "F3", "F4",
    "S1", "S2", "S3", "S4", "S5", "S6",
    "T1", "T2", "T3", "T4",
]  # fmt: skip
RULE_IDS: tuple[RuleId, ...] = get_args(RuleId)
# The rules that decide a thread's automatic link (the `rule` of its decision).
DecisionRule = Literal["L2", "L3", "L4", "L5", "L6", "L7", "L8", "L10"]
