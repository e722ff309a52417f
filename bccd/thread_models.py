"""Typed read models of threads: what bccd.store.thread_views returns and services hand to interfaces.

`as_json()` is the thread JSON of the README (the CLI prints it, the API answers it): the same keys and
values as ever. The message's header addresses, attachments and forward detection are stored as JSON
when the message is accepted and are passed through as stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from bccd.linker import ItemRef as ItemRef  # re-exported: how a thread names its item
from bccd.vocabulary import Visibility

JsonObject = dict[str, Any]


class AddressJson(TypedDict):
    address: str
    name: str | None


# The keys a stored decision has (LinkDecision.as_json); any other key is kept as it was stored.
_DECISION_KEYS = ("outcome", "reason", "rule", "candidates", "fallback_reason")


@dataclass(frozen=True, slots=True)
class Decision:
    """The automatic link decision as stored with the thread (L11)."""

    outcome: str
    reason: str
    rule: str
    candidates: tuple[ItemRef, ...] = ()
    fallback_reason: str | None = None  # only with reason target_not_found (L10)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            outcome=data["outcome"],
            reason=data["reason"],
            rule=data["rule"],
            candidates=tuple(ItemRef(c["type"], c["id"]) for c in data.get("candidates", ())),
            fallback_reason=data.get("fallback_reason"),
            extra={k: v for k, v in data.items() if k not in _DECISION_KEYS},
        )

    def as_json(self) -> JsonObject:
        out: JsonObject = {
            "outcome": self.outcome,
            "reason": self.reason,
            "rule": self.rule,
            "candidates": [c.as_json() for c in self.candidates],
        }
        if self.fallback_reason is not None:
            out["fallback_reason"] = self.fallback_reason
        out.update(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """A thread as listings show it."""

    id: int
    owner: int  # the owner's user id
    subject: str
    created_at: str | None
    visibility: Visibility
    item: ItemRef | None
    persons: tuple[str, ...]  # external ids of the linked persons
    organizations: tuple[str, ...]  # external ids of the linked organizations
    decision: Decision

    def as_json(self) -> JsonObject:
        return {
            "id": self.id,
            "owner": self.owner,
            "subject": self.subject,
            "created_at": self.created_at,
            "visibility": self.visibility,
            "item": None if self.item is None else self.item.as_json(),
            "persons": list(self.persons),
            "organizations": list(self.organizations),
            "decision": self.decision.as_json(),
        }


@dataclass(frozen=True, slots=True)
class MessageView:
    message_id: str | None
    date: str | None
    subject: str
    from_: list[AddressJson]
    to: list[AddressJson]
    cc: list[AddressJson]
    size: int
    attachments: list[JsonObject]
    defects: list[str]
    forward: JsonObject | None

    def as_json(self) -> JsonObject:
        return {
            "message_id": self.message_id,
            "date": self.date,
            "subject": self.subject,
            "from": self.from_,
            "to": self.to,
            "cc": self.cc,
            "size": self.size,
            "attachments": self.attachments,
            "defects": self.defects,
            "forward": self.forward,
        }


@dataclass(frozen=True, slots=True)
class ParticipantView:
    address: str
    name: str | None
    role: str  # from, to, cc, original_from, original_to, original_cc
    person: str | None  # external id of the matching person

    def as_json(self) -> JsonObject:
        return {"address": self.address, "name": self.name, "role": self.role, "person": self.person}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    actor: str  # "bccd" for the automatic decision, else "user:<id>" or "operator"
    at: str | None
    action: str
    before: Any
    after: Any
    reason: str

    def as_json(self) -> JsonObject:
        return {
            "actor": self.actor,
            "at": self.at,
            "action": self.action,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class SpfView:
    result: str  # RFC 7208 §2.6: pass, fail, softfail, neutral, none, temperror, permerror
    domain: str | None  # the MAIL FROM (or HELO) domain checked

    def as_json(self) -> JsonObject:
        return {"result": self.result, "domain": self.domain}


@dataclass(frozen=True, slots=True)
class DkimView:
    result: str  # pass, fail, permerror, temperror (one per signature)
    domain: str | None  # d=
    selector: str | None  # s=

    def as_json(self) -> JsonObject:
        return {"result": self.result, "domain": self.domain, "selector": self.selector}


@dataclass(frozen=True, slots=True)
class DmarcView:
    result: str  # pass, fail, none, temperror, permerror
    policy: str | None  # the From domain's p= (or sp=); None without a record
    aligned: tuple[str, ...]  # "spf", "dkim": the passing identifiers aligned with the From domain

    def as_json(self) -> JsonObject:
        return {"result": self.result, "policy": self.policy, "aligned": list(self.aligned)}


@dataclass(frozen=True, slots=True)
class AuthenticationView:
    """Sender authentication at acceptance (docs/rules.md A1–A4); threads of `sender_auth = off` have none."""

    spf: SpfView
    dkim: tuple[DkimView, ...]
    dmarc: DmarcView
    verdict: str  # pass, fail, none, temperror

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> AuthenticationView | None:
        if data is None:
            return None
        spf, dmarc = data["spf"], data["dmarc"]
        return cls(
            spf=SpfView(spf["result"], spf.get("domain")),
            dkim=tuple(DkimView(d["result"], d.get("domain"), d.get("selector")) for d in data["dkim"]),
            dmarc=DmarcView(dmarc["result"], dmarc.get("policy"), tuple(dmarc.get("aligned", ()))),
            verdict=data["verdict"],
        )

    def as_json(self) -> JsonObject:
        return {
            "spf": self.spf.as_json(),
            "dkim": [d.as_json() for d in self.dkim],
            "dmarc": self.dmarc.as_json(),
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class ThreadView:
    """One thread in full: the summary, its message, participants, link history and sender authentication."""

    summary: ThreadSummary
    message: MessageView
    participants: tuple[ParticipantView, ...]
    history: tuple[HistoryEntry, ...]
    authentication: AuthenticationView | None = None

    @property
    def id(self) -> int:
        return self.summary.id

    @property
    def item(self) -> ItemRef | None:
        return self.summary.item

    def as_json(self) -> JsonObject:
        out = self.summary.as_json()
        out["message"] = self.message.as_json()
        out["participants"] = [p.as_json() for p in self.participants]
        out["history"] = [h.as_json() for h in self.history]
        out["authentication"] = None if self.authentication is None else self.authentication.as_json()
        return out
