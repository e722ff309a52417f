"""Mail addresses as bccd compares them: one normalized form, case-insensitive, IDNA domain (SPEC §3)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class MailAddress:
    """One address as it appeared in a header: normalized address plus the display name, if any."""

    address: str
    name: str | None = None


@lru_cache(maxsize=8192)  # pure, and the same addresses recur in every delivery (an owner's, a client's)
def normalize_address(raw: str) -> str | None:
    """Return the comparable form of an address, or None when it is not an address at all.

    Local part and domain are lowercased; the domain is converted to its IDNA (ASCII) form so that
    `Jörg@Bücher.example` and `jörg@xn--bcher-kva.example` compare equal. Surrounding angle brackets,
    `mailto:` and whitespace are removed. Never raises.
    """
    text = raw.strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not text or any(ch.isspace() for ch in text) or text.count("@") < 1:
        return None
    local, _, domain = text.rpartition("@")
    local = local.strip().strip('"') if local.startswith('"') and local.endswith('"') else local.strip()
    domain = domain.strip().rstrip(".")
    if not local or not domain or "@" in domain or ("." not in domain and domain.lower() != "localhost"):
        return None
    if any(ord(c) < 32 or c in "<>()[],;:\\" for c in domain):
        return None
    if domain.isascii():
        ascii_domain = domain.lower()  # the IDNA codec would change nothing and costs ~5 µs an address
    else:
        try:
            ascii_domain = domain.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
    # IDNA maps some characters (e.g. U+00B4) to a space plus a combining mark: not a domain any more.
    if any(ch.isspace() or ord(ch) < 32 for ch in ascii_domain):
        return None
    return f"{local.lower()}@{ascii_domain}"


def domain_of(address: str) -> str:
    """The domain part of a normalized address."""
    return address.rpartition("@")[2]
