"""RFC 6376 verification with real keys and a real DNS server: dkimpy verifies, our resolver fetches keys."""

from __future__ import annotations

import base64

import pytest

from bccd.auth import dkim as dkim_module
from bccd.auth.dkim import DkimResult, header_block, signatures, verify_dkim
from bccd.auth.dns import AsyncDns
from tests.auth.conftest import resolver_for
from tests.auth.signing import publish, rsa_key, sign
from tests.dnsserver import DnsServer
from tests.helpers import make_mail


async def verify(resolver: AsyncDns, raw: bytes) -> list[DkimResult]:
    return await verify_dkim(resolver, resolver.new_budget(), raw)


def mail() -> bytes:
    return make_mail(sender="Alice <alice@acme.test>", body="Hello,\nthe numbers.\n")


async def test_valid_signature_passes(dns_server: DnsServer, resolver: AsyncDns) -> None:
    publish(dns_server, "acme.test", "s1", rsa_key())
    [result] = await verify(resolver, sign(mail(), "acme.test"))
    assert (result.result, result.domain, result.selector, result.reason) == (
        "pass",
        "acme.test",
        "s1",
        "verified",
    )
    assert result.as_json() == {"result": "pass", "domain": "acme.test", "selector": "s1"}


async def test_unsigned_mail_has_no_results_and_asks_no_dns(
    dns_server: DnsServer, resolver: AsyncDns
) -> None:
    assert await verify(resolver, mail()) == []
    assert dns_server.queried() == []


async def test_signature_by_another_key_fails(dns_server: DnsServer, resolver: AsyncDns) -> None:
    publish(dns_server, "acme.test", "s1", rsa_key("published"))
    [result] = await verify(resolver, sign(mail(), "acme.test", key=rsa_key("attacker")))
    assert (result.result, result.reason) == ("fail", "bad_signature")


async def test_modified_body_fails(dns_server: DnsServer, resolver: AsyncDns) -> None:
    publish(dns_server, "acme.test", "s1", rsa_key())
    signed = sign(mail(), "acme.test")
    [result] = await verify(resolver, signed.replace(b"the numbers", b"new numbers"))
    assert (result.result, result.reason) == ("fail", "body_hash_mismatch")


async def test_modified_signed_header_fails(dns_server: DnsServer, resolver: AsyncDns) -> None:
    publish(dns_server, "acme.test", "s1", rsa_key())
    signed = sign(mail(), "acme.test")
    [result] = await verify(resolver, signed.replace(b"Subject: Proposal", b"Subject: Invoice"))
    assert (result.result, result.reason) == ("fail", "bad_signature")


async def test_missing_key_is_permerror(dns_server: DnsServer, resolver: AsyncDns) -> None:
    [result] = await verify(resolver, sign(mail(), "acme.test"))
    assert (result.result, result.reason) == ("permerror", "no_key")
    assert dns_server.queried() == [("s1._domainkey.acme.test", "TXT")]


@pytest.mark.parametrize(
    "record", ["v=DKIM1; k=rsa; p=", "v=DKIM1; k=rsa; p=AAAA", "v=DKIM2; p=abc", "garbage"]
)
async def test_unusable_key_is_permerror(dns_server: DnsServer, resolver: AsyncDns, record: str) -> None:
    dns_server.txt("s1._domainkey.acme.test", record)
    [result] = await verify(resolver, sign(mail(), "acme.test"))
    assert (result.result, result.reason) == ("permerror", "bad_key")


async def test_ed25519_without_nacl_is_permerror(dns_server: DnsServer, resolver: AsyncDns) -> None:
    # pynacl is not a dependency: an ed25519 key (RFC 8463) is reported, never mistaken for a pass.
    dns_server.txt(
        "e1._domainkey.acme.test", "v=DKIM1; k=ed25519; p=" + base64.b64encode(b"\x01" * 32).decode()
    )
    signed = sign(mail(), "acme.test", "e1").replace(b"a=rsa-sha256", b"a=ed25519-sha256")
    [result] = await verify(resolver, signed)
    assert result.result == "permerror"


async def test_key_lookup_failure_is_temperror(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.zone.servfail.add("s1._domainkey.acme.test")
    [result] = await verify(resolver, sign(mail(), "acme.test"))
    assert (result.result, result.reason) == ("temperror", "dns_servfail")


async def test_key_lookup_timeout_is_temperror(dns_server: DnsServer) -> None:
    dns_server.zone.silent_all = True
    [result] = await verify(resolver_for(dns_server, timeout=0.3), sign(mail(), "acme.test"))
    assert (result.result, result.reason) == ("temperror", "dns_timeout")


async def test_several_signatures_each_get_a_result(dns_server: DnsServer, resolver: AsyncDns) -> None:
    publish(dns_server, "acme.test", "s1", rsa_key())
    publish(dns_server, "esp.test", "k2", rsa_key("esp"))
    twice = sign(sign(mail(), "acme.test"), "esp.test", "k2", rsa_key("esp"))
    results = await verify(resolver, twice)
    assert [(r.result, r.domain) for r in results] == [("pass", "esp.test"), ("pass", "acme.test")]


async def test_forwarded_mail_keeps_its_signature(dns_server: DnsServer, resolver: AsyncDns) -> None:
    """A forwarder adds trace fields on top and keeps the rest: the author's signature still verifies."""
    publish(dns_server, "acme.test", "s1", rsa_key())
    signed = sign(mail(), "acme.test")
    forwarded = (
        b"Received: from relay.forwarder.test by mx.bcc.test; Sat, 5 Dec 2026 10:00:00 +0000\r\n"
        b"X-Forwarded-For: alice@acme.test\r\n" + signed
    )
    [result] = await verify(resolver, forwarded)
    assert result.result == "pass"


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.test\r\n", "malformed_signature"),  # no b=, bh=, h=, s=
        (b"DKIM-Signature: novalue\r\n", "malformed_signature"),
        (
            b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.test; s=s1; h=subject; bh=AAAA; b=AAAA\r\n",
            "from_not_signed",  # RFC 6376 §5.4
        ),
        (
            b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.test; s=s1; h=from; bh=AAAA; b=AAAA; x=1000000\r\n",
            "expired_signature",
        ),
    ],
)
async def test_malformed_signatures_are_permerror_without_dns(
    dns_server: DnsServer, resolver: AsyncDns, field: bytes, reason: str
) -> None:
    [result] = await verify(resolver, field + mail())
    assert (result.result, result.reason) == ("permerror", reason)
    assert dns_server.queried() == []


def test_signatures_are_read_from_the_header_block_only() -> None:
    body_only = mail() + b"\r\nDKIM-Signature: v=1; d=acme.test; s=s1\r\n"
    assert signatures(body_only) == []


async def test_large_messages_are_verified_off_the_loop(
    dns_server: DnsServer, resolver: AsyncDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    publish(dns_server, "acme.test", "s1", rsa_key())
    raw = sign(make_mail(body="x" * 70 + "\n" * 5000), "acme.test")
    seen: list[str] = []
    real = dkim_module._verify

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(threading.current_thread().name)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dkim_module, "_verify", spy)
    monkeypatch.setattr(dkim_module, "INLINE_MAX_BYTES", 1024)
    [result] = await verify(resolver, raw)
    assert result.result == "pass"
    assert seen and seen[0].startswith("bccd-parse")


@pytest.mark.parametrize(
    ("raw", "head"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nbody\n\nmore\r\n", b"A: 1\r\nB: 2\r\n"),  # "\n\n" in the body is not the end
        (b"A: 1\nB: 2\n\nbody\r\n\r\n", b"A: 1\nB: 2\n"),  # LF-only headers end at the first "\n\n"
        (b"A: 1\n\nB\r\n\r\nbody", b"A: 1\n"),  # whichever blank line comes first
        (b"A: 1\r\nB: 2\r\n", b"A: 1\r\nB: 2\r\n"),  # no body: all of it
    ],
)
def test_the_header_block_ends_at_the_first_blank_line(raw: bytes, head: bytes) -> None:
    assert header_block(raw) == head
