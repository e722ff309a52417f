"""The event types a webhook can subscribe to, and which automatic decisions need a person (issue 9)."""

from __future__ import annotations

from typing import Literal, get_args

from bccd.vocabulary import ReasonCode

EventType = Literal[
    "thread.created",  # every accepted message's thread, with its automatic decision
    "thread.linked",  # the thread is now linked to an item (automatic at creation, or by hand)
    "thread.unlinked",  # its item link was removed by hand
    "thread.link_changed",  # any manual link change (item, person, organization), with the actor
    "thread.needs_attention",  # the automatic decision left it unlinked for a reason a person can fix
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
TEST_EVENT = "webhook.test"  # sent by POST /api/v1/webhooks/{id}/test only

NEEDS_ATTENTION: frozenset[str] = frozenset(
    {ReasonCode.AMBIGUOUS, ReasonCode.TARGET_NOT_FOUND, ReasonCode.ITEMS_NEWER_THAN_THREAD}
)

# Manual history actions (bccd.store.threads) → the events they raise besides thread.link_changed.
MANUAL_ACTIONS: dict[str, tuple[EventType, ...]] = {
    "link_item": ("thread.linked",),
    "replace_item": ("thread.linked",),
    "unlink_item": ("thread.unlinked",),
    "link_person": (),
    "unlink_person": (),
    "link_organization": (),
    "unlink_organization": (),
}


def creation_events(outcome: str, reason: str) -> list[EventType]:
    """The events a new thread raises, given its automatic decision."""
    out: list[EventType] = ["thread.created"]
    if outcome == "linked":
        out.append("thread.linked")
    elif reason in NEEDS_ATTENTION:
        out.append("thread.needs_attention")
    return out
