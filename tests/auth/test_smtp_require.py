"""`sender_auth = require` at end of DATA (docs/rules.md A2–A4): real SMTP on a loopback socket, a real
loopback DNS server publishing SPF/DKIM/DMARC, mail signed with real DKIM keys."""

from __future__ import annotations

import asyncio
import smtplib
import time

import pytest
from structlog.testing import capture_logs

from bccd.services.companies import update_settings
from tests.auth.signing import rsa_key, sign
from tests.auth.smtp_support import (
    SPF_FAIL,
    SPF_PASS,
    SPF_PERMERROR,
    SPF_SOFTFAIL,
    AuthWorld,
    auth_world,
    publish_acme,
    signed_mail,
    tampered_mail,
)
from tests.conftest import AppFactory
from tests.dnsserver import DnsServer
from tests.helpers import make_mail


async def _require(make_app: AppFactory, dns: DnsServer, *, budget: float = 3.0) -> AuthWorld:
    w = await auth_world(make_app, dns, budget=budget)
    await w.mode("require")
    return w


class TestA2RequireRefusesUnauthenticatedMail:
    async def test_an_authenticated_from_is_accepted_and_recorded(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server)
        assert await w.send(signed_mail()) == (250, "2.0.0 OK: stored")
        assert (await w.only_authentication())["verdict"] == "pass"

    async def test_spf_pass_alone_authenticates_a_domain_without_dkim(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server)
        assert (await w.send(make_mail()))[0] == 250  # unsigned, SPF pass aligned

    @pytest.mark.parametrize(
        ("spf", "reply"),
        [
            (SPF_FAIL, (550, "5.7.23")),  # RFC 7372: SPF validation failed
            (SPF_SOFTFAIL, (550, "5.7.23")),
            (SPF_PERMERROR, (550, "5.7.24")),  # SPF validation error (permerror: permanent)
            (None, (550, "5.7.26")),  # no SPF, no DKIM: nothing authenticates the From domain
        ],
    )
    async def test_unsigned_mail_without_spf_pass_is_refused(
        self, make_app: AppFactory, dns_server: DnsServer, spf: str | None, reply: tuple[int, str]
    ) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server, spf=spf)
        code, message = await w.send(make_mail())
        assert (code, message[:6]) == reply
        assert await w.threads() == []

    async def test_no_records_at_all_is_refused_5_7_26(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        code, message = await w.send(signed_mail())  # signed, but no key, no SPF, no DMARC published
        assert (code, message[:6]) == (550, "5.7.20")  # the one signature cannot verify (no key)
        code, message = await w.send(make_mail())
        assert (code, message[:6]) == (550, "5.7.26")
        assert await w.threads() == []

    async def test_a_signature_that_does_not_verify_is_5_7_20(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server, spf=None)
        tampered = tampered_mail()
        code, message = await w.send(tampered)
        assert (code, message[:6]) == (550, "5.7.20")

    async def test_spf_fail_and_a_failing_signature_is_multiple_5_7_26(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server, spf=SPF_FAIL)
        tampered = tampered_mail()
        code, message = await w.send(tampered)
        assert (code, message[:6]) == (550, "5.7.26")

    async def test_a_forged_from_with_a_valid_signature_of_another_domain_is_refused(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        """evil.test signs validly and passes SPF for its own envelope, but the From says acme.test."""
        w = await _require(make_app, dns_server)
        publish_acme(dns_server, spf=None)
        dns_server.txt("s1._domainkey.evil.test", rsa_key("evil").record)
        dns_server.txt("evil.test", SPF_PASS)
        forged = sign(make_mail(sender="Alice <alice@acme.test>"), "evil.test", "s1", rsa_key("evil"))
        code, message = await w.send(forged, mail_from="bounce@evil.test")
        assert (code, message[:6]) == (550, "5.7.22")  # RFC 7372: no valid author-matched signature
        assert await w.threads() == []

    async def test_forwarded_mail_whose_dkim_survives_is_accepted(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server, spf=SPF_FAIL)  # the relay is not in acme.test's SPF
        relayed = (
            b"Received: from relay.test by mx.relay.test; Mon, 1 Jan 2026 00:00:00 +0000\r\n" + signed_mail()
        )
        assert (await w.send(relayed))[0] == 250
        auth = await w.only_authentication()
        assert auth["spf"]["result"] == "fail" and auth["verdict"] == "pass"

    async def test_relaxed_alignment_passes_strict_alignment_refuses(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server, spf=None)
        dns_server.txt("s1._domainkey.mail.acme.test", rsa_key("default").record)
        assert (await w.send(signed_mail("mail.acme.test", subject="relaxed")))[0] == 250
        dns_server.zone.records[("_dmarc.acme.test", "TXT")].clear()
        dns_server.txt("_dmarc.acme.test", "v=DMARC1; p=reject; adkim=s")
        w.app.dns.clear_cache()
        code, message = await w.send(signed_mail("mail.acme.test", subject="strict"))
        assert (code, message[:6]) == (550, "5.7.22")
        assert [t["subject"] for t in await w.threads()] == ["relaxed"]

    async def test_the_refusal_is_logged_with_its_reason_and_without_the_body(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server, spf=SPF_FAIL)
        with capture_logs() as logs:
            code, _ = await w.send(make_mail(subject="Secret plan", body="SECRET-BODY-TEXT\n"))
        assert code == 550
        refused = [e for e in logs if e["event"] == "sender_auth_refused"]
        assert refused and refused[0]["reason"] == "spf_failed" and refused[0]["verdict"] == "fail"
        assert refused[0]["from_domain"] == "acme.test" and refused[0]["temporary"] is False
        evaluated = next(e for e in logs if e["event"] == "sender_auth_evaluated")
        assert evaluated["spf"]["result"] == "fail" and evaluated["spf"]["reason"] == "matched all"
        assert any(e["event"] == "message_refused" and e.get("auth_reason") == "spf_failed" for e in logs)
        text = repr(logs)
        assert "SECRET-BODY-TEXT" not in text and "Secret plan" not in text


class TestA3DnsFailureIsNeverPermanent:
    async def test_spf_servfail_is_451_4_7_24_and_the_retry_is_accepted(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server)
        dns_server.zone.servfail.add("acme.test")
        raw = make_mail()
        code, message = await w.send(raw)
        assert (code, message[:6]) == (451, "4.7.24")
        assert await w.threads() == []
        dns_server.zone.servfail.clear()
        assert (await w.send(raw))[0] == 250  # the client's retry, once DNS answers again
        assert len(await w.threads()) == 1

    async def test_dkim_key_servfail_is_451_4_7_0(self, make_app: AppFactory, dns_server: DnsServer) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server, spf=None)
        dns_server.zone.servfail.add("s1._domainkey.acme.test")
        code, message = await w.send(signed_mail())
        assert (code, message[:5]) == (451, "4.7.0")
        assert await w.threads() == []

    async def test_dmarc_servfail_with_a_relaxed_only_pass_is_451(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        """A subdomain signature aligns only if the unknown DMARC record allows relaxed alignment."""
        w = await _require(make_app, dns_server)
        publish_acme(dns_server, spf=None)
        dns_server.txt("s1._domainkey.mail.acme.test", rsa_key("default").record)
        dns_server.zone.servfail.add("_dmarc.acme.test")
        code, message = await w.send(signed_mail("mail.acme.test"))
        assert (code, message[:5]) == (451, "4.7.0")

    async def test_a_silent_resolver_costs_at_most_the_budget_then_451(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        budget = 1.0
        w = await _require(make_app, dns_server, budget=budget)
        dns_server.zone.silent_all = True
        started = time.monotonic()
        code, message = await w.send(signed_mail())
        elapsed = time.monotonic() - started
        assert code == 451 and message.startswith("4.7.")
        assert elapsed < budget + 1.5, elapsed  # the budget, plus the SMTP round trips
        assert w.app.metrics.registry.get_sample_value("bccd_sender_auth_dns_budget_exhausted_total") == 1.0
        # the session did not hold the server: a record-mode message right after goes through in budget
        await w.mode("record")
        started = time.monotonic()
        assert (await w.send(make_mail(subject="next")))[0] == 250
        assert time.monotonic() - started < budget + 1.5
        [kept] = await w.threads()
        assert kept["authentication"]["verdict"] == "temperror"


class TestA4SenderPolicyUsesTheVerdict:
    """With `require`, S5 counts only authenticated addresses: a From address of the authenticated From
    domain, and the envelope sender only with an SPF pass for its own domain."""

    async def _mallory(self, w: AuthWorld, dns: DnsServer, acme_spf: str) -> bytes:
        dns.txt("acme.test", acme_spf)
        dns.txt("s1._domainkey.evil.test", rsa_key("evil").record)
        return sign(make_mail(sender="Mallory <mallory@evil.test>"), "evil.test", "s1", rsa_key("evil"))

    async def test_an_unauthenticated_envelope_never_satisfies_the_owner_policy(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        raw = await self._mallory(w, dns_server, SPF_FAIL)
        # record: S5 as ever — the envelope names the owner (that mallory's From is authenticated for
        # evil.test makes no difference)
        assert (await w.send(raw, mail_from="alice@acme.test"))[0] == 250
        await w.mode("require")
        code, message = await w.send(raw, mail_from="alice@acme.test")  # evaluated before any dedupe
        assert (code, message[:5]) == (550, "5.7.1")

    async def test_an_spf_authenticated_envelope_satisfies_the_owner_policy(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        raw = await self._mallory(w, dns_server, SPF_PASS)
        assert (await w.send(raw, mail_from="alice@acme.test"))[0] == 250

    async def test_an_authenticated_from_of_the_owner_satisfies_the_owner_policy(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        publish_acme(dns_server, spf=None)
        assert (await w.send(signed_mail(), mail_from="bounces@list.test"))[0] == 250


def _two_transactions(port: int, mail_from: str, first: list[str], raw: bytes) -> list[tuple[int, str]]:
    """One session: RCPT every address of `first` and DATA; then each address refused with 452 again in a
    transaction of its own, as an MTA does (RFC 5321 §4.5.3.1.10). Every reply, in order."""
    out: list[tuple[int, str]] = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.test")
        client.mail(mail_from)
        later: list[str] = []
        for rcpt in first:
            code, msg = client.rcpt(rcpt)
            out.append((code, msg.decode()))
            if code == 452:
                later.append(rcpt)
        code, msg = client.data(raw)
        out.append((code, msg.decode()))
        for rcpt in later:
            client.mail(mail_from)
            code, msg = client.rcpt(rcpt)
            out.append((code, msg.decode()))
            code, msg = client.data(raw)
            out.append((code, msg.decode()))
    return out


class TestA2OwnersOfSeveralCompanies:
    """Recipients whose companies could decide a message differently never share a transaction (S5's
    classes, bccd/sender_policy.py): a `require` owner and a `record` owner are split at RCPT with 452, so
    each DATA reply is true for every recipient it answers for."""

    async def test_require_and_record_owners_are_answered_separately(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        await update_settings(w.app.db, w.world.other_company_id, sender_policy="any")  # Globex: record
        publish_acme(dns_server, spf=SPF_FAIL)
        eve = f"{w.world.outsider.smart_bcc_local}@bcc.test"
        replies = await asyncio.to_thread(
            _two_transactions, w.app.smtp.port, "alice@acme.test", [w.world.bcc, eve], make_mail()
        )
        assert [(c, m.split()[0]) for c, m in replies] == [
            (250, "2.1.5"),  # alice (Acme, require)
            (452, "4.5.3"),  # eve (Globex, record): another class
            (550, "5.7.23"),  # DATA for alice: SPF fail, refused
            (250, "2.1.5"),  # eve in her own transaction
            (250, "2.0.0"),  # stored, with the failing result recorded
        ]
        assert await w.threads() == []
        [kept] = await w.threads(w.world.other_company_id)
        assert kept["authentication"]["verdict"] == "fail"

    async def test_require_owners_of_two_companies_share_one_verdict(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await _require(make_app, dns_server)
        for company in (w.world.company_id, w.world.other_company_id):
            await update_settings(w.app.db, company, sender_policy="any", sender_auth="require")
        publish_acme(dns_server, spf=SPF_FAIL)
        eve = f"{w.world.outsider.smart_bcc_local}@bcc.test"
        refused = await asyncio.to_thread(
            _two_transactions, w.app.smtp.port, "alice@acme.test", [w.world.bcc, eve], make_mail()
        )
        assert [(c, m.split()[0]) for c, m in refused] == [(250, "2.1.5"), (250, "2.1.5"), (550, "5.7.23")]
        accepted = await asyncio.to_thread(
            _two_transactions, w.app.smtp.port, "alice@acme.test", [w.world.bcc, eve], signed_mail()
        )
        assert [c for c, _ in accepted] == [250, 250, 250]
        assert len(await w.threads()) == 1 and len(await w.threads(w.world.other_company_id)) == 1
