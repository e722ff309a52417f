"""Sender authentication end to end: a real bccd on loopback whose `[dns]` is a real loopback DNS server
publishing SPF, DKIM and DMARC for the test domains, and mail signed with real DKIM keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bccd.app import BccdApp
from bccd.services.companies import update_settings
from tests.auth.signing import publish, rsa_key, sign
from tests.conftest import AppFactory
from tests.dnsserver import DnsServer
from tests.helpers import World, make_mail, seed_world, send, thread, threads_of

# Every SMTP client of these tests connects from 127.0.0.1.
CLIENT_IP = "127.0.0.1"
SPF_PASS = f"v=spf1 ip4:{CLIENT_IP} -all"
SPF_FAIL = "v=spf1 ip4:192.0.2.1 -all"
SPF_SOFTFAIL = "v=spf1 ip4:192.0.2.1 ~all"
SPF_PERMERROR = "v=spf1 ip4:192.0.2.1 bogus:mechanism -all"
DMARC_REJECT = "v=DMARC1; p=reject"


@dataclass
class AuthWorld:
    app: BccdApp
    world: World
    dns: DnsServer

    async def mode(self, sender_auth: str, company_id: int | None = None) -> None:
        await update_settings(self.app.db, company_id or self.world.company_id, sender_auth=sender_auth)

    async def send(
        self, raw: bytes, *, mail_from: str = "alice@acme.test", rcpts: list[str] | None = None
    ) -> tuple[int, str]:
        result = await send(self.app.smtp.port, rcpts or [self.world.bcc], raw, mail_from=mail_from)
        return result.code, result.message

    async def threads(self, company_id: int | None = None) -> list[dict[str, Any]]:
        found = await threads_of(self.app.db, company_id or self.world.company_id)
        return [await thread(self.app.db, t["id"]) for t in found]

    async def only_authentication(self, company_id: int | None = None) -> Any:
        [one] = await self.threads(company_id)
        return one["authentication"]


async def auth_world(make_app: AppFactory, dns: DnsServer, *, budget: float = 3.0) -> AuthWorld:
    app = await make_app(dns={"servers": [dns.address], "timeout": min(1.0, budget), "budget": budget})
    return AuthWorld(app, await seed_world(app.db), dns)


def publish_acme(dns: DnsServer, *, spf: str | None = SPF_PASS, dmarc: str | None = DMARC_REJECT) -> None:
    """acme.test (the owner's domain): its SPF and DMARC records and its DKIM key `s1`."""
    if spf is not None:
        dns.txt("acme.test", spf)
    if dmarc is not None:
        dns.txt("_dmarc.acme.test", dmarc)
    publish(dns, "acme.test", "s1", rsa_key("default"))


def signed_mail(domain: str = "acme.test", *, key_name: str = "default", **mail: Any) -> bytes:
    return sign(make_mail(**mail), domain, "s1", rsa_key(key_name))


def tampered_mail() -> bytes:
    """Mail signed by acme.test whose body was changed after signing: its signature cannot verify."""
    return signed_mail(body="Pay 100.\n").replace(b"Pay 100.", b"Pay 900.")
