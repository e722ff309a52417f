"""Ingest: accepted DATA bytes become one linked thread per owner, durably committed (SPEC §3–§4, S2–S5).

The SMTP adapter calls `resolve_recipient` at RCPT and `deliver` at end of DATA; it knows nothing else.
Parsing happens once per message; each owner gets its own participants, persons and link decision.
Sender authentication (SPF, DKIM, DMARC; docs/rules.md A1–A4) is evaluated once per message too, when
some owner's company has `sender_auth` other than `off`, and each owner's company decides what to do
with the one verdict.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bccd.auth.evaluate import SenderAuthenticator
from bccd.auth.verdict import DNS_TEMPERROR, TEMPERROR, Authentication
from bccd.linker import ExplicitTarget, LinkInput, decide_links
from bccd.logs import get_logger
from bccd.mail.addresses import MailAddress, normalize_address
from bccd.mail.forwards import ForwardDetection
from bccd.mail.message import ParsedMessage
from bccd.mail.parse_job import parse_and_detect, parse_and_detect_detached
from bccd.metrics import Metrics
from bccd.never_log import AddressTest, NeverLog, every_company_never_logs, scrub_message_values
from bccd.parse_cost import parse_inline, parse_process
from bccd.participants import Exclusions, collect_participants, forwarded_by_owner, thread_subject
from bccd.sender_policy import SenderClass, sender_class
from bccd.store.commit_queue import CommitQueue
from bccd.store.database import Database
from bccd.store.hot_reads import Facts
from bccd.store.hot_reads import facts as hot_facts
from bccd.store.threads import MessageRow, ParticipantRow, StoredThread, ThreadDraft
from bccd.store.users import Company, User
from bccd.vocabulary import ITEM_KINDS

log = get_logger("bccd.ingest")

ITEM_TAG_TYPES = ITEM_KINDS
# Messages up to this size are parsed on the event loop (~0.3 ms for 6.5 KB); larger ones in the parse
# process, since the stdlib parser needs about a second per 10 MB of short lines (bccd.parse_cost).
INLINE_PARSE_MAX_BYTES = 256 * 1024
HASH_INLINE_MAX_BYTES = 1024 * 1024  # hashing more (~2 ms per MB) happens off the loop


class RcptStatus(StrEnum):
    OK = "ok"
    FOREIGN_DOMAIN = "foreign_domain"
    UNKNOWN_ADDRESS = "unknown_address"


@dataclass(frozen=True, slots=True)
class Recipient:
    owner: User
    company: Company  # read with the owner at RCPT: the DATA path needs no second lookup
    target: ExplicitTarget | None


@dataclass(frozen=True, slots=True)
class RcptResolution:
    status: RcptStatus
    recipient: Recipient | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    threads: tuple[StoredThread, ...]  # empty: the sender policy (S5) or authentication refused every owner
    # S5 refused some owners and not others (bccd.sender_policy keeps this from happening but for a
    # settings change between RCPT and DATA): nothing is stored, the client is asked to retry.
    mixed: bool = False
    # Sender authentication's reason (bccd.auth.verdict.REFUSAL_REASONS) when it refused every owner for
    # good: the reply names it (550 5.7.2x, A2) rather than S5's 5.7.1.
    refusal: str | None = None
    # A `require` owner could not be decided (a DNS temperror, A3): nothing is stored and the reply is 451,
    # so the client retries and the next attempt decides again.
    retry: str | None = None

    @property
    def accepted(self) -> bool:
        return bool(self.threads)


def parse_target(tag: str) -> ExplicitTarget | None:
    """`deal-42` → ExplicitTarget("deal", "42") (L10). Any other tag is no target."""
    kind, sep, ext = tag.partition("-")
    kind = kind.lower()
    if not sep or not ext or kind not in ITEM_TAG_TYPES:
        return None
    return ExplicitTarget(kind, ext)


def split_recipient(address: str) -> tuple[str, str | None, str] | None:
    """`Local+Tag@Domain` → (local lowercased, tag as written, IDNA domain); None if not an address."""
    norm = normalize_address(address)
    if norm is None:
        return None
    raw_local = address.strip().strip("<>").rpartition("@")[0]
    base, plus, tag = raw_local.partition("+")
    domain = norm.rpartition("@")[2]
    return base.lower(), (tag if plus else None), domain


def _addr_json(addrs: Sequence[MailAddress]) -> list[dict[str, str | None]]:
    return [{"address": a.address, "name": a.name} for a in addrs]


def _names_json(names: Sequence[str]) -> list[dict[str, str | None]]:
    return [{"address": None, "name": name} for name in names]


def _forward_json(forward: ForwardDetection | None) -> dict[str, Any] | None:
    if forward is None:
        return None
    if forward.original is None:
        return {"understood": False}
    o = forward.original
    return {
        "understood": True,
        "kind": o.kind,
        "client": o.client,
        # Names the forward shows without an address stay visible ({"address": null}); never participants.
        "from": _addr_json(o.from_) + _names_json(o.from_names),
        "to": _addr_json(o.to) + _names_json(o.to_names),
        "cc": _addr_json(o.cc) + _names_json(o.cc_names),
        "subject": o.subject,
        "date": o.date,
    }


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def message_row(
    raw: bytes,
    sha256: str,
    parsed: ParsedMessage,
    forward: ForwardDetection | None,
    transport_defects: Sequence[str] = (),
    *,
    never_logged: AddressTest | None = None,
) -> MessageRow:
    """`transport_defects`: what the SMTP layer saw (e.g. `line_too_long`), stored with the parse's.
    `never_logged`: header addresses left out of the stored From/To/Cc and forward JSON (never-log)."""
    defects = sorted(set(parsed.defects) | set(forward.defects if forward else ()) | set(transport_defects))
    values: dict[str, Any] = {
        "message_id": parsed.message_id,
        "date": parsed.date_header,
        "from_addrs": _addr_json(parsed.from_),
        "to_addrs": _addr_json(parsed.to),
        "cc_addrs": _addr_json(parsed.cc),
        "subject": parsed.subject,
        "text_body": parsed.text_body,
        "html_body": parsed.html_body,
        "attachments": [
            {"name": a.name, "content_type": a.content_type, "size": a.size, "sha256": a.sha256}
            for a in parsed.attachments
        ],
        "defects": defects,
        "forward": _forward_json(forward),
        "received_at": datetime.now(UTC),
    }
    if never_logged is not None:
        values = scrub_message_values(values, never_logged)
    return MessageRow(sha256=sha256, raw=raw, values=values)


def _never_logged(recipients: Sequence[Recipient], drafts: Sequence[ThreadDraft]) -> AddressTest | None:
    """The addresses every company that gets a thread of this message never-logs (bccd.never_log); None
    when nothing can be (a company without entries never-logs nothing, so no address is in every list)."""
    owners = {d.owner_id for d in drafts}
    companies = {r.company.id: r.company for r in recipients if r.owner.id in owners}
    lists = [NeverLog(c.never_log) for c in companies.values()]
    if not lists or not all(lists):
        return None
    return every_company_never_logs(lists)


class Ingestor:
    def __init__(
        self,
        db: Database,
        commits: CommitQueue,
        *,
        bcc_domains: Sequence[str],
        metrics: Metrics | None = None,
        authenticator: SenderAuthenticator | None = None,
    ) -> None:
        """Without an `authenticator` nothing is evaluated: `record` stores no results and `require`
        answers 451 (its mail cannot be checked)."""
        self._db = db
        self._commits = commits
        self._bcc_domains = frozenset(bcc_domains)
        self._metrics = metrics or Metrics()
        self._authenticator = authenticator

    async def resolve_recipient(self, address: str) -> RcptResolution:
        """S1: only Smart Bcc addresses of our domains; unknown or rotated-away local parts are refused."""
        parts = split_recipient(address)
        if parts is None:
            return RcptResolution(RcptStatus.UNKNOWN_ADDRESS)
        local, tag, domain = parts
        if domain not in self._bcc_domains:
            return RcptResolution(RcptStatus.FOREIGN_DOMAIN)
        async with hot_facts(self._db) as facts:
            found = await facts.owner_by_smart_bcc_local(local)
        if found is None:
            return RcptResolution(RcptStatus.UNKNOWN_ADDRESS)
        owner, company = found
        return RcptResolution(RcptStatus.OK, Recipient(owner, company, parse_target(tag) if tag else None))

    async def sender_class(self, recipient: Recipient, mail_from: str | None) -> SenderClass:
        """Which recipients one transaction may hold (S5 without silent drops, bccd.sender_policy)."""
        async with hot_facts(self._db) as facts:
            return await sender_class(facts, recipient.company, recipient.owner, mail_from)

    async def deliver(
        self,
        raw: bytes,
        mail_from: str | None,
        recipients: Sequence[Recipient],
        *,
        session_id: str | None = None,
        defects: Sequence[str] = (),
        client_ip: str | None = None,
        helo: str | None = None,
    ) -> Delivery:
        """Parse once, authenticate the sender once, decide per owner, commit everything in one
        transaction; return after the commit. `client_ip` and `helo` are the connection's, for SPF."""
        started = time.perf_counter()
        accepted_at = datetime.now(UTC)
        sha256 = (await asyncio.to_thread(_sha256, raw)) if len(raw) > HASH_INLINE_MAX_BYTES else _sha256(raw)
        if not parse_inline(raw, INLINE_PARSE_MAX_BYTES):
            # Seconds of pure-Python parsing (or a crafted message's structure, bccd.parse_cost) would stall
            # every other session on this loop, and in a thread it would hold the GIL: another process.
            parsed, forward = await parse_process.run(parse_and_detect_detached, raw)
        else:
            parsed, forward = parse_and_detect(raw)
        by_owner: dict[int, Recipient] = {}
        for rcpt in recipients:
            by_owner.setdefault(rcpt.owner.id, rcpt)  # one thread per owner; the first tag wins
        auth = await self._authenticate(raw, parsed, by_owner.values(), mail_from, client_ip, helo)
        drafts: list[ThreadDraft] = []
        refusal: str | None = None
        retry: str | None = None
        async with hot_facts(self._db) as facts:
            for rcpt in by_owner.values():
                company = rcpt.company
                if company.sender_auth == "require":
                    refused = _auth_refusal(auth)
                    if refused is not None:
                        temporary = auth is None or auth.verdict == TEMPERROR
                        log.info(
                            "sender_auth_refused",
                            owner=rcpt.owner.id,
                            company=company.id,
                            reason=refused,
                            verdict=None if auth is None else auth.verdict,
                            from_domain=None if auth is None else auth.from_domain,
                            temporary=temporary,
                        )
                        if temporary:
                            retry = retry or refused
                        else:
                            refusal = refusal or refused
                        continue
                if not await self._sender_allowed(facts, company, rcpt.owner, mail_from, parsed, auth):
                    log.info(
                        "sender_refused",
                        owner=rcpt.owner.id,
                        policy=company.sender_policy,
                        sender_auth=company.sender_auth,
                    )
                    continue
                drafts.append(
                    await self._draft(
                        facts,
                        company,
                        rcpt,
                        parsed,
                        forward,
                        mail_from,
                        accepted_at,
                        session_id,
                        None if company.sender_auth == "off" or auth is None else auth.as_json(),
                    )
                )
        if not drafts:
            return Delivery((), refusal=refusal, retry=retry)
        if len(drafts) < len(by_owner):
            # No silent drops: a 250 would stand for threads the refused owners never got.
            log.warning("sender_policy_mixed", accepted=len(drafts), refused=len(by_owner) - len(drafts))
            return Delivery((), mixed=True, retry=retry)
        row = message_row(
            raw, sha256, parsed, forward, defects, never_logged=_never_logged(list(by_owner.values()), drafts)
        )

        stored = await self._commits.submit_message(row, drafts)
        self._metrics.ingest_seconds.observe(time.perf_counter() - started)
        for draft, result in zip(drafts, stored, strict=True):
            if result.created:
                self._metrics.threads_created.inc()
                self._metrics.link_outcomes.labels(draft.decision.reason).inc()
            log.info(
                "thread_created" if result.created else "thread_deduplicated",
                thread=result.id,
                owner=result.owner_id,
                message=sha256[:16],
                outcome=draft.decision.outcome,
                reason=draft.decision.reason,
                rule=draft.decision.rule,
                item=draft.decision.item.as_json() if draft.decision.item else None,
            )
        return Delivery(tuple(stored))

    async def _authenticate(
        self,
        raw: bytes,
        parsed: ParsedMessage,
        recipients: Iterable[Recipient],
        mail_from: str | None,
        client_ip: str | None,
        helo: str | None,
    ) -> Authentication | None:
        """SPF, DKIM and DMARC, once for the message; None when every owner's company has it off."""
        if self._authenticator is None or all(r.company.sender_auth == "off" for r in recipients):
            return None
        return await self._authenticator.evaluate(
            raw,
            client_ip=client_ip or "",
            mail_from=mail_from,
            helo=helo,
            from_addresses=[a.address for a in parsed.from_],
        )

    async def _sender_allowed(
        self,
        facts: Facts,
        company: Company,
        owner: User,
        mail_from: str | None,
        parsed: ParsedMessage,
        auth: Authentication | None,
    ) -> bool:
        """S5: the envelope sender or a From address must be the owner's (or the company's, or anyone).
        A4: with `sender_auth = require` only authenticated addresses count — a From address of the
        authenticated From domain, the envelope sender only with an SPF pass for its own domain."""
        if company.sender_policy == "any":
            return True
        allowed = (
            owner.addresses if company.sender_policy == "owner" else await facts.company_addresses(company.id)
        )
        senders = {a.address for a in parsed.from_}
        envelope = normalize_address(mail_from or "")
        if company.sender_auth == "require":
            if auth is None or not auth.authenticated:
                return False
            senders = {a for a in senders if _domain(a) == auth.from_domain}
            spf = auth.spf
            if envelope is not None and not (
                spf.result == "pass" and spf.identity == "mailfrom" and _domain(envelope) == spf.domain
            ):
                envelope = None
        if envelope is not None:
            senders.add(envelope)
        return bool(senders & allowed)

    async def _draft(
        self,
        facts: Facts,
        company: Company,
        rcpt: Recipient,
        parsed: ParsedMessage,
        forward: ForwardDetection | None,
        mail_from: str | None,
        accepted_at: datetime,
        session_id: str | None,
        authentication: dict[str, Any] | None,
    ) -> ThreadDraft:
        owner = rcpt.owner
        exclusions = Exclusions(owner.addresses, self._bcc_domains, frozenset(company.never_log))
        by_owner = forwarded_by_owner(parsed, mail_from, owner.addresses)
        participants = collect_participants(
            parsed, forward, owner_is_forwarder=by_owner, exclusions=exclusions
        )
        addresses = tuple(dict.fromkeys(p.address for p in participants))
        persons = await facts.persons_by_addresses(company.id, addresses)
        item_facts = await facts.items_for_persons(company.id, [p.id for p in persons])
        target_item = None
        if rcpt.target is not None:
            target_item = await facts.item_fact(company.id, rcpt.target.type, rcpt.target.external_id)
        decision = decide_links(
            LinkInput(
                participant_addresses=addresses,
                persons=tuple(persons),
                items=tuple(item_facts),
                autolink=owner.autolink,
                thread_created_at=accepted_at,
                explicit_target=rcpt.target,
                target_item=target_item,
            )
        )
        person_by_address: dict[str, int] = {}
        for person in persons:
            for email in person.emails:
                person_by_address.setdefault(email, person.id)
        return ThreadDraft(
            company_id=company.id,
            owner_id=owner.id,
            subject=thread_subject(parsed, forward, owner_is_forwarder=by_owner),
            created_at=accepted_at,
            participants=[
                ParticipantRow(p.address, p.name, p.role, person_by_address.get(p.address))
                for p in participants
            ],
            decision=decision,
            smtp_session=session_id,
            authentication=authentication,
        )


def _auth_refusal(auth: Authentication | None) -> str | None:
    """A1: why `require` refuses the message (None: the From domain is authenticated)."""
    if auth is None:
        return DNS_TEMPERROR  # no authenticator: the mail cannot be checked, so it is not refused for good
    return None if auth.authenticated else auth.refusal


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()
