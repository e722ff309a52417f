"""Addresses a person types (a user's login, an alternative sender address, a CRM contact's email) are
checked strictly with `email-validator`; addresses read from mail headers keep the lenient parser in
`bccd.mail.addresses`, because mail in the wild must never be refused for its headers (issue 12 item 19).
"""

from __future__ import annotations

import re

import email_validator
from email_validator import EmailNotValidError, validate_email

from bccd.mail.addresses import normalize_address

# Intranet (.local), development (.test, .localhost) addresses are real addresses in CRMs and test setups;
# the library's other special-use names (.invalid, .onion, .arpa, …) stay refused.
email_validator.SPECIAL_USE_DOMAIN_NAMES = [
    name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES if name not in ("local", "localhost", "test")
]


# The plainest addresses — an ASCII dot-atom local part, a domain of letter/digit/hyphen labels (no "--",
# so no IDNA A-labels) ending in a letters-only top-level label, well within every length limit — are valid
# for email-validator whenever the domain is no special-use name; checking them with this pattern instead
# costs ~1 µs instead of ~60 µs (a 1M-person import checks a million addresses). Anything else goes to
# email-validator. tests/test_addresses.py compares both paths.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(rf"(?:{_ATEXT}(?:\.{_ATEXT})*)@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")
_PLAIN_MAX = 200  # characters; a local part of at most 64


_special: dict[tuple[str, ...], tuple[frozenset[str], tuple[str, ...]]] = {}


def _special_use(domain: str) -> bool:
    names = tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES)  # read now: bccd changes the list above
    known = _special.get(names)
    if known is None:
        known = _special[names] = (frozenset(names), tuple("." + name for name in names))
    return domain in known[0] or domain.endswith(known[1])


def plain_address(text: str) -> str | None:
    """The comparable form of `text` when it is one of the plainest addresses (see above), else None."""
    if len(text) > _PLAIN_MAX or not _PLAIN.fullmatch(text):
        return None
    local, _, domain = text.rpartition("@")
    domain = domain.lower()
    if len(local) > 64 or "--" in domain or _special_use(domain):
        return None
    # What normalize_address gives for such an address: nothing to strip, unquote or IDNA-encode.
    return text.lower()


def check_typed_address(raw: str) -> str:
    """The comparable form of a typed address; ValueError naming what is wrong otherwise."""
    text = raw.strip()
    plain = plain_address(text)
    if plain is not None:
        return plain
    try:
        validate_email(text, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not an email address: {raw!r} ({exc})") from None
    norm = normalize_address(text)
    if norm is None:
        raise ValueError(f"not an email address: {raw!r}")
    return norm
