"""Addresses a person types (a user's login, an alternative sender address, a CRM contact's email) are
checked strictly with `email-validator`; addresses read from mail headers keep the lenient parser in
`bccd.mail.addresses`, because mail in the wild must never be refused for its headers (issue 12 item 19).
"""

from __future__ import annotations

import email_validator
from email_validator import EmailNotValidError, validate_email

from bccd.mail.addresses import normalize_address

# Intranet (.local), development (.test, .localhost) addresses are real addresses in CRMs and test setups;
# the library's other special-use names (.invalid, .onion, .arpa, …) stay refused.
email_validator.SPECIAL_USE_DOMAIN_NAMES = [
    name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES if name not in ("local", "localhost", "test")
]


def check_typed_address(raw: str) -> str:
    """The comparable form of a typed address; ValueError naming what is wrong otherwise."""
    text = raw.strip()
    try:
        validate_email(text, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not an email address: {raw!r} ({exc})") from None
    norm = normalize_address(text)
    if norm is None:
        raise ValueError(f"not an email address: {raw!r}")
    return norm
