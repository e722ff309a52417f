"""Sender authentication at end of DATA, `off` and `record` (docs/rules.md A1, A5): real SMTP on a loopback
socket, a real loopback DNS server publishing SPF/DKIM/DMARC, mail signed with real DKIM keys."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import structlog

from bccd.api.app import create_api
from bccd.api.service import api_context
from bccd.app import BccdApp
from bccd.cli import main
from bccd.services.companies import update_settings
from bccd.store.users import create_token
from tests.auth.signing import rsa_key, sign
from tests.auth.smtp_support import (
    SPF_FAIL,
    SPF_PASS,
    SPF_PERMERROR,
    SPF_SOFTFAIL,
    auth_world,
    publish_acme,
    signed_mail,
    tampered_mail,
)
from tests.conftest import AppFactory, app_settings, copy_sqlite_template
from tests.dnsserver import DnsServer
from tests.helpers import make_mail, seed_world, send, threads_of

PASS_JSON = {
    "spf": {"result": "pass", "domain": "acme.test"},
    "dkim": [{"result": "pass", "domain": "acme.test", "selector": "s1"}],
    "dmarc": {"result": "pass", "policy": "reject", "aligned": ["spf", "dkim"]},
    "verdict": "pass",
}


class TestA1RecordMode:
    """A1/A5: `record` (the default of new companies) evaluates once and keeps the result on the thread."""

    async def test_record_is_the_default_and_stores_an_aligned_pass(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server)
        assert await w.send(signed_mail()) == (250, "2.0.0 OK: stored")
        assert await w.only_authentication() == PASS_JSON

    @pytest.mark.parametrize(
        ("record", "result"),
        [(SPF_FAIL, "fail"), (SPF_SOFTFAIL, "softfail"), (SPF_PERMERROR, "permerror"), (None, "none")],
    )
    async def test_record_keeps_a_failing_sender_and_accepts_it(
        self, make_app: AppFactory, dns_server: DnsServer, record: str | None, result: str
    ) -> None:
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server, spf=record)
        code, _ = await w.send(make_mail())  # unsigned
        assert code == 250
        auth = await w.only_authentication()
        assert auth["spf"] == {"result": result, "domain": "acme.test"}
        assert auth["dkim"] == []
        assert auth["dmarc"] == {"result": "fail", "policy": "reject", "aligned": []}
        assert auth["verdict"] == "fail"

    async def test_record_without_any_records_is_verdict_none(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        assert (await w.send(make_mail()))[0] == 250
        auth = await w.only_authentication()
        assert auth["spf"]["result"] == "none" and auth["dmarc"]["result"] == "none"
        assert auth["verdict"] == "none"

    async def test_record_keeps_a_dns_temperror_and_accepts(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        dns_server.zone.servfail.add("acme.test")
        assert (await w.send(make_mail()))[0] == 250  # record never refuses
        auth = await w.only_authentication()
        assert auth["spf"]["result"] == "temperror" and auth["verdict"] == "temperror"

    async def test_evaluated_once_per_message_not_per_recipient(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server)
        bob_bcc = f"{w.world.colleague.smart_bcc_local}@bcc.test"
        await update_settings(w.app.db, w.world.company_id, sender_policy="company")
        code, _ = await w.send(signed_mail(), rcpts=[w.world.bcc, bob_bcc])
        assert code == 250
        found = await w.threads()
        assert len(found) == 2 and all(t["authentication"] == PASS_JSON for t in found)
        samples = w.app.metrics.registry.get_sample_value(
            "bccd_sender_auth_verdicts_total", {"verdict": "pass"}
        )
        assert samples == 1.0
        assert len(dns_server.queried("_dmarc.acme.test")) == 1

    async def test_off_evaluates_nothing_and_stores_null(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server)
        await w.mode("off")
        assert (await w.send(signed_mail()))[0] == 250
        assert await w.only_authentication() is None
        assert dns_server.queried() == []  # not one lookup
        assert (
            w.app.metrics.registry.get_sample_value("bccd_sender_auth_verdicts_total", {"verdict": "pass"})
            is None
        )


class TestA1Dkim:
    """A1: DKIM signatures verify against keys from DNS, alignment relaxed or strict (RFC 7489 §3.1)."""

    async def test_forwarded_mail_keeps_its_dkim_pass_though_spf_fails(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        """A relay that keeps the envelope sender fails SPF; the author's signature survives the extra
        trace header the relay prepends, so the From domain is still authenticated."""
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server, spf=SPF_FAIL)
        relayed = (
            b"Received: from relay.test by mx.relay.test; Mon, 1 Jan 2026 00:00:00 +0000\r\n" + signed_mail()
        )
        assert (await w.send(relayed))[0] == 250
        auth = await w.only_authentication()
        assert auth["spf"]["result"] == "fail"
        assert auth["dkim"] == [{"result": "pass", "domain": "acme.test", "selector": "s1"}]
        assert auth["dmarc"] == {"result": "pass", "policy": "reject", "aligned": ["dkim"]}
        assert auth["verdict"] == "pass"

    async def test_a_changed_body_fails_the_signature(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server, spf=None)
        tampered = tampered_mail()
        assert (await w.send(tampered))[0] == 250
        auth = await w.only_authentication()
        assert auth["dkim"] == [{"result": "fail", "domain": "acme.test", "selector": "s1"}]
        assert auth["verdict"] == "fail"

    async def test_missing_key_is_permerror(self, make_app: AppFactory, dns_server: DnsServer) -> None:
        w = await auth_world(make_app, dns_server)
        dns_server.txt("_dmarc.acme.test", "v=DMARC1; p=none")
        assert (await w.send(signed_mail()))[0] == 250
        auth = await w.only_authentication()
        assert auth["dkim"] == [{"result": "permerror", "domain": "acme.test", "selector": "s1"}]
        assert auth["dmarc"] == {"result": "fail", "policy": "none", "aligned": []}

    async def test_relaxed_alignment_accepts_a_subdomain_signature(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server, spf=None)
        dns_server.txt("s1._domainkey.mail.acme.test", rsa_key("default").record)
        assert (await w.send(signed_mail("mail.acme.test")))[0] == 250
        auth = await w.only_authentication()
        assert auth["dkim"][0]["result"] == "pass" and auth["dmarc"]["aligned"] == ["dkim"]
        assert auth["verdict"] == "pass"

    async def test_strict_alignment_refuses_a_subdomain_signature(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server, spf=None, dmarc="v=DMARC1; p=reject; adkim=s")
        dns_server.txt("s1._domainkey.mail.acme.test", rsa_key("default").record)
        assert (await w.send(signed_mail("mail.acme.test")))[0] == 250
        auth = await w.only_authentication()
        assert auth["dkim"][0]["result"] == "pass"
        assert auth["dmarc"] == {"result": "fail", "policy": "reject", "aligned": []}
        assert auth["verdict"] == "fail"

    async def test_a_valid_signature_of_another_domain_does_not_authenticate_the_from(
        self, make_app: AppFactory, dns_server: DnsServer
    ) -> None:
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server, spf=None)
        dns_server.txt("s1._domainkey.evil.test", rsa_key("evil").record)
        dns_server.txt("evil.test", SPF_PASS)
        forged = sign(make_mail(sender="Alice <alice@acme.test>"), "evil.test", "s1", rsa_key("evil"))
        assert (await w.send(forged, mail_from="bounce@evil.test"))[0] == 250  # record: kept, not refused
        auth = await w.only_authentication()
        assert auth["spf"] == {"result": "pass", "domain": "evil.test"}
        assert auth["dkim"] == [{"result": "pass", "domain": "evil.test", "selector": "s1"}]
        assert auth["dmarc"]["result"] == "fail" and auth["verdict"] == "fail"


class TestA5ThreadJson:
    """A5: the thread JSON of the API and of `threads show --json` carries `authentication`."""

    async def test_api_thread_has_authentication(self, make_app: AppFactory, dns_server: DnsServer) -> None:
        w = await auth_world(make_app, dns_server)
        publish_acme(dns_server)
        assert (await w.send(signed_mail()))[0] == 250
        [summary] = await threads_of(w.app.db, w.world.company_id)
        async with w.app.db.write() as conn:
            token = await create_token(conn, w.world.owner.id)
        transport = httpx.ASGITransport(app=create_api(api_context(w.app)))
        async with httpx.AsyncClient(transport=transport, base_url="http://bccd.test") as client:
            headers = {"Authorization": f"Bearer {token}"}
            got = await client.get(f"/api/v1/threads/{summary['id']}", headers=headers)
            assert got.status_code == 200, got.text
            assert got.json()["authentication"] == PASS_JSON
            await w.mode("off")
            assert (await w.send(make_mail(subject="second")))[0] == 250
            listing = (await client.get("/api/v1/threads", headers=headers)).json()["threads"]
            second = next(t for t in listing if t["subject"] == "second")
            got = await client.get(f"/api/v1/threads/{second['id']}", headers=headers)
            assert got.json()["authentication"] is None

    def test_cli_threads_show_json_has_authentication(
        self, tmp_path: Path, sqlite_template: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        url = copy_sqlite_template(sqlite_template, tmp_path / "db.sqlite3")
        dns = DnsServer()
        try:
            publish_acme(dns)

            async def deliver() -> int:
                app = BccdApp(app_settings(url, dns={"servers": [dns.address]}))
                await app.start()
                try:
                    world = await seed_world(app.db)
                    result = await send(app.smtp.port, [world.bcc], signed_mail())
                    assert result.code == 250
                    [summary] = await threads_of(app.db, world.company_id)
                    return int(summary["id"])
                finally:
                    await app.stop()

            thread_id = asyncio.run(deliver())
        finally:
            dns.close()
        capsys.readouterr()  # the app's own log lines (structlog's default prints them)
        config = tmp_path / "bccd.toml"
        config.write_text(f'[smtp]\nbcc_domains = ["bcc.test"]\n[database]\nurl = "{url}"\n')
        try:
            code = main(["threads", "show", str(thread_id), "--json", "--config", str(config)])
        finally:
            structlog.reset_defaults()
        out = capsys.readouterr().out
        assert code == 0
        assert json.loads(out)["authentication"] == PASS_JSON
        try:
            code = main(["threads", "show", str(thread_id), "--config", str(config)])
        finally:
            structlog.reset_defaults()
        text = capsys.readouterr().out
        assert code == 0
        assert (
            "sender authentication: pass (spf pass acme.test; dkim pass acme.test/s1; "
            "dmarc pass, p=reject, aligned spf+dkim)"
        ) in text
