"""Real DKIM keys and signatures for tests: RSA keys from `cryptography`, signed by dkimpy."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.dnsserver import DnsServer


@dataclass(frozen=True)
class DkimKey:
    private_pem: bytes
    public_der: bytes

    @property
    def record(self) -> str:
        """The key's TXT record (RFC 6376 §3.6.1)."""
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(self.public_der).decode("ascii")


@functools.cache
def rsa_key(name: str = "default", bits: int = 2048) -> DkimKey:
    """One key per name and size per test process (generating one takes ~0.1–0.5 s)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(pem, der)


def publish(server: DnsServer, domain: str, selector: str, key: DkimKey) -> None:
    server.txt(f"{selector}._domainkey.{domain}", key.record)


def sign(
    raw: bytes,
    domain: str,
    selector: str = "s1",
    key: DkimKey | None = None,
    *,
    headers: tuple[str, ...] = ("from", "to", "subject", "date", "message-id"),
    canonicalize: tuple[bytes, bytes] = (b"relaxed", b"relaxed"),
) -> bytes:
    """`raw` with a DKIM-Signature by `domain` prepended."""
    key = key or rsa_key()
    field = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        key.private_pem,
        include_headers=[h.encode() for h in headers],
        canonicalize=canonicalize,
    )
    return bytes(field) + raw
