"""Every SMTP reply bccd sends, in one table (RFC 5321 reply codes, RFC 3463 enhanced status codes)."""

from __future__ import annotations

# RCPT (SPEC S1, S4)
RCPT_OK = "250 2.1.5 Recipient OK"
RELAY_DENIED = "550 5.7.1 Relaying denied: not a Smart Bcc domain"  # S1, T3
UNKNOWN_ADDRESS = "550 5.1.1 No such Smart Bcc address"  # S1
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"  # S4, RFC 5321 §4.5.3.1.10
RCPT_TEMPFAIL = "451 4.3.0 Temporary failure looking up recipient, try again later"

# MAIL (SPEC S4)
SIZE_EXCEEDED = "552 5.3.4 Message size exceeds fixed maximum message size"  # RFC 1870

# DATA (SPEC S2, S5)
STORED = "250 2.0.0 OK: stored"
TEMPFAIL = "451 4.3.0 Temporary failure, message not stored; try again later"  # S2
SENDER_REFUSED = "550 5.7.1 Sender not allowed to use this Smart Bcc address"  # S5
LINE_TOO_LONG = "500 5.5.2 Line too long"  # RFC 5321 §4.5.3.1.6

# Connection (SPEC S4)
TOO_MANY_CONNECTIONS = "421 4.3.2 Too many connections, try again later"
TIMEOUT = "421 4.4.2 Timeout exceeded, closing connection"  # RFC 5321 §4.5.3.2, S4
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
AUTH_NOT_OFFERED = "502 5.5.1 AUTH not supported: Smart Bcc needs no authentication"  # T3

# aiosmtpd's own fixed texts, rewritten so clients always get enhanced status codes.
AIOSMTPD_REWRITES: dict[str, str] = {
    "552 Error: message size exceeds fixed maximum message size": SIZE_EXCEEDED,
    "552 Error: Too much mail data": SIZE_EXCEEDED,
    "500 Line too long (see RFC5321 4.5.3.1.6)": LINE_TOO_LONG,
}


def code_of(reply: str) -> str:
    return reply[:3]
