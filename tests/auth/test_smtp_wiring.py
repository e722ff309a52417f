"""How sender authentication is wired into the SMTP server and ingest (docs/rules.md A1, A3): the HELO
name reaches SPF, a big signed message is verified off the loop, slow DNS never stalls other sessions,
and an ingest without an authenticator never refuses `require` mail for good."""

from __future__ import annotations

import asyncio
import time

from bccd.ingest import Ingestor, RcptStatus
from bccd.services.companies import update_settings
from bccd.store.commit_queue import CommitQueue
from bccd.store.database import Database
from tests.auth.smtp_support import SPF_PASS, auth_world, publish_acme, signed_mail
from tests.conftest import AppFactory
from tests.dnsserver import DnsServer
from tests.helpers import make_mail, only_thread, seed_world
from tests.smtp.wire import greeting_seconds


class TestA1Wiring:
    async def test_an_empty_envelope_sender_is_checked_by_its_helo_name(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        """RFC 7208 §2.3: a bounce (MAIL FROM:<>) is checked as postmaster@<HELO name>."""
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server, spf=None)
        dns_server.txt("client.test", SPF_PASS)  # tests.helpers.send says EHLO client.test
        assert (await w.send(signed_mail(), mail_from=""))[0] == 250
        auth = await w.only_authentication()
        assert auth["spf"] == {"result": "pass", "domain": "client.test"}
        assert auth["dmarc"]["aligned"] == ["dkim"]  # the HELO domain is not the From domain

    async def test_a_big_signed_message_verifies_off_the_loop_and_passes(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        await w.mode("require")
        publish_acme(dns_server, spf=None)
        body = ("All the figures, line after line of them.\n" * 8000)[:300_000]
        raw = signed_mail(body=body)
        assert len(raw) > 256 * 1024
        assert (await w.send(raw))[0] == 250
        assert (await w.only_authentication())["dkim"][0]["result"] == "pass"

    async def test_slow_dns_for_one_message_does_not_stall_other_sessions(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server, budget=3.0)
        publish_acme(dns_server)
        dns_server.zone.delay = 0.6  # every answer late (the query timeout is 1 s)
        sending = asyncio.create_task(w.send(signed_mail()))
        await asyncio.sleep(0.2)  # the message is now waiting on DNS at end of DATA
        assert not sending.done()
        greeted = await asyncio.to_thread(greeting_seconds, w.app.smtp.port)
        assert greeted < 0.5, greeted  # the loop is free: another client is greeted at once
        assert (await sending)[0] == 250
        assert (await w.only_authentication())["verdict"] == "pass"


class TestA3WithoutAnAuthenticator:
    async def test_require_is_deferred_not_refused_and_record_stores_null(self, db: Database) -> None:
        world = await seed_world(db)
        commits = CommitQueue(db)
        commits.start()
        try:
            ingestor = Ingestor(db, commits, bcc_domains=["bcc.test"])  # no authenticator
            await update_settings(db, world.company_id, sender_auth="require")
            resolved = await ingestor.resolve_recipient(world.bcc)
            assert resolved.status is RcptStatus.OK and resolved.recipient is not None
            delivery = await ingestor.deliver(make_mail(), "alice@acme.test", [resolved.recipient])
            assert delivery.threads == () and delivery.retry == "dns_temperror" and delivery.refusal is None
            await update_settings(db, world.company_id, sender_auth="record")
            resolved = await ingestor.resolve_recipient(world.bcc)
            assert resolved.recipient is not None
            started = time.monotonic()
            delivery = await ingestor.deliver(make_mail(), "alice@acme.test", [resolved.recipient])
            assert delivery.accepted and time.monotonic() - started < 5
        finally:
            await commits.stop()
        assert (await only_thread(db, world.company_id))["authentication"] is None
