"""S5 without silent drops (issue 11), over real SMTP on loopback: a transaction holds only recipients the
sender policy decides alike, others get `452 4.5.3` at RCPT and are sent again in their own transaction;
so every recipient ends with a thread or a clear refusal, never a 250 that stored nothing for it."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass

from bccd.app import BccdApp
from bccd.sender_policy import SenderClass
from bccd.services.companies import update_settings
from bccd.smtp import replies
from bccd.store.users import create_user
from tests.conftest import AppFactory
from tests.helpers import BCC_DOMAIN, World, make_mail, seed_world, set_policy, threads_of


@dataclass
class Outcome:
    rcpt_replies: list[tuple[str, int, str]]  # every RCPT answer, in order
    final: dict[str, int]  # each recipient's last word: its DATA reply, or its refusal at RCPT
    transactions: int


def _deliver_like_an_mta(port: int, mail_from: str, rcpts: list[str], data: bytes) -> Outcome:
    """What a queueing MTA does with 452 at RCPT: send those recipients again in a new transaction."""
    out = Outcome([], {}, 0)
    pending = list(rcpts)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        while pending:
            out.transactions += 1
            assert out.transactions <= len(rcpts), "no progress"
            c.mail(mail_from)
            accepted, deferred = [], []
            for rcpt in pending:
                code, msg = c.rcpt(rcpt)
                out.rcpt_replies.append((rcpt, code, msg.decode()))
                if code == 250:
                    accepted.append(rcpt)
                elif code == 452:
                    deferred.append(rcpt)
                else:
                    out.final[rcpt] = code
            if accepted:
                code, _ = c.data(data)
                out.final.update(dict.fromkeys(accepted, code))
            else:
                c.rset()
            pending = deferred
    return out


async def deliver(app: BccdApp, mail_from: str, rcpts: list[str], data: bytes) -> Outcome:
    return await asyncio.to_thread(_deliver_like_an_mta, app.smtp.port, mail_from, rcpts, data)


async def _owners(app: BccdApp, company_id: int) -> list[int]:
    return sorted(t["owner"] for t in await threads_of(app.db, company_id))


async def _setup(make_app: AppFactory) -> tuple[BccdApp, World, str]:
    app = await make_app()
    world = await seed_world(app.db)  # sender policy `owner`
    return app, world, f"{world.colleague.smart_bcc_local}@{BCC_DOMAIN}"


async def test_envelope_accepts_one_owner_the_other_is_deferred_then_refused(make_app: AppFactory) -> None:
    app, world, bob = await _setup(make_app)
    out = await deliver(app, "alice@acme.test", [world.bcc, bob], make_mail(sender="alice@acme.test"))
    # Alice's envelope settles Alice's S5 at RCPT; Bob's depends on the From header: not the same class.
    codes = [(code, msg[:5]) for _, code, msg in out.rcpt_replies]
    assert codes == [(250, "2.1.5"), (452, "4.5.3"), (250, "2.1.5")]
    assert out.final == {world.bcc: 250, bob: 550} and out.transactions == 2
    assert await _owners(app, world.company_id) == [world.owner.id]


async def test_from_header_decides_one_class_per_owner(make_app: AppFactory) -> None:
    app, world, bob = await _setup(make_app)
    # A list's bounce address as envelope: only the From header (Bob's) can satisfy S5.
    out = await deliver(app, "bounce@lists.test", [world.bcc, bob], make_mail(sender="Bob <bob@acme.test>"))
    assert out.final == {world.bcc: 550, bob: 250} and out.transactions == 2
    assert await _owners(app, world.company_id) == [world.colleague.id]


async def test_recipients_decided_alike_share_one_transaction(make_app: AppFactory) -> None:
    app, world, bob = await _setup(make_app)
    await set_policy(app.db, world.company_id, "company")  # one address set for every owner of Acme
    out = await deliver(app, "bounce@lists.test", [world.bcc, bob], make_mail(sender="bob@acme.test"))
    assert out.final == {world.bcc: 250, bob: 250} and out.transactions == 1
    assert await _owners(app, world.company_id) == sorted([world.owner.id, world.colleague.id])
    refused = await deliver(app, "bounce@lists.test", [world.bcc, bob], make_mail(sender="x@evil.test"))
    assert refused.final == {world.bcc: 550, bob: 550} and refused.transactions == 1


async def test_companies_with_different_policies_are_split(make_app: AppFactory) -> None:
    app, world, _ = await _setup(make_app)
    async with app.db.write() as conn:
        gus = await create_user(conn, world.other_company_id, email="gus@globex.test", name="Gus")
    await set_policy(app.db, world.other_company_id, "any")
    globex = f"{gus.smart_bcc_local}@{BCC_DOMAIN}"
    out = await deliver(app, "x@evil.test", [world.bcc, globex], make_mail(sender="x@evil.test"))
    assert out.final == {world.bcc: 550, globex: 250} and out.transactions == 2
    assert await _owners(app, world.company_id) == []
    assert await _owners(app, world.other_company_id) == [gus.id]


async def test_outcomes_that_differ_at_data_store_nothing(make_app: AppFactory) -> None:
    """The safety net behind the RCPT classes (unreachable over SMTP, which never mixes classes): if the
    owners of one delivery are decided differently after all, nothing is stored and the SMTP layer answers
    451 4.3.0 (bccd.smtp.replies.SENDER_POLICY_MIXED) so the client retries and RCPT splits them."""
    app, world, bob = await _setup(make_app)
    resolved = [await app.ingestor.resolve_recipient(r) for r in (world.bcc, bob)]
    recipients = [r.recipient for r in resolved if r.recipient is not None]
    delivery = await app.ingestor.deliver(make_mail(), "alice@acme.test", recipients)
    assert delivery.mixed and delivery.threads == ()
    assert await _owners(app, world.company_id) == []
    assert replies.SENDER_POLICY_MIXED.startswith("451 4.3.0")


async def test_smtplib_sendmail_reports_the_deferred_recipient(make_app: AppFactory) -> None:
    app, world, bob = await _setup(make_app)

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", app.smtp.port, timeout=30) as c:
            return c.sendmail("alice@acme.test", [world.bcc, bob], make_mail())

    refused = await asyncio.to_thread(send)
    assert list(refused) == [bob] and refused[bob][0] == 452  # told, not silently dropped


async def test_sender_classes(make_app: AppFactory) -> None:
    """What RCPT can know: the envelope accepts (or `any` does) unless authentication is required, whose
    verdict — like the From header — is known only at DATA and is the same for every such recipient."""
    app, world, bob = await _setup(make_app)
    ingestor = app.ingestor
    alice_r, bob_r = [(await ingestor.resolve_recipient(r)).recipient for r in (world.bcc, bob)]
    assert alice_r is not None and bob_r is not None
    accepted = await ingestor.sender_class(alice_r, "Alice@Acme.test")
    assert accepted == SenderClass(accepted=True)
    assert await ingestor.sender_class(alice_r, "alice@home.test") == accepted  # an alias
    depends = SenderClass(False, ("owner", bob_r.owner.id))
    assert await ingestor.sender_class(bob_r, "alice@acme.test") == depends
    await update_settings(app.db, world.company_id, sender_auth="require")
    alice_r = (await ingestor.resolve_recipient(world.bcc)).recipient
    assert alice_r is not None
    assert await ingestor.sender_class(alice_r, "alice@acme.test") == SenderClass(
        False, ("owner", world.owner.id), require=True
    )
    await update_settings(app.db, world.company_id, sender_policy="any")
    alice_r = (await ingestor.resolve_recipient(world.bcc)).recipient
    assert alice_r is not None
    assert await ingestor.sender_class(alice_r, None) == SenderClass(False, None, require=True)
