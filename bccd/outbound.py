"""Mail bccd sends itself — the codes that confirm alternative sender addresses (issue 11) — through the
SMTP relay of `[outbound]` (aiosmtplib). Nothing of a message's content is logged: it carries a code.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import aiosmtplib

from bccd.config import OutboundSettings

SEND_TIMEOUT = 30.0  # seconds for the whole conversation with the relay


class MailNotSent(Exception):
    """The relay could not be reached or refused the message; the text names no content."""


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None: ...


class SmtpRelay:
    """Sends through the configured relay; STARTTLS is required when `starttls` is on."""

    def __init__(self, settings: OutboundSettings, default_from: str) -> None:
        assert settings.host is not None
        self._settings = settings
        self._from = settings.from_ or default_from

    async def send(self, to: str, subject: str, text: str) -> None:
        s = self._settings
        msg = EmailMessage()
        msg["From"] = self._from
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self._from.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
        msg.set_content(text)
        try:
            await aiosmtplib.send(
                msg,
                hostname=s.host,
                port=s.port,
                start_tls=s.starttls,
                username=s.username,
                password=s.password.get_secret_value() if s.password is not None else None,
                timeout=SEND_TIMEOUT,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailNotSent(f"the outbound relay did not take the mail: {type(exc).__name__}") from None


def mailer_from_settings(settings: OutboundSettings, smtp_hostname: str) -> Mailer | None:
    """The relay of `[outbound]`, or None when no host is configured (bccd then sends no mail)."""
    if settings.host is None:
        return None
    return SmtpRelay(settings, f"postmaster@{smtp_hostname}")
