"""Every SMTP reply bccd sends, in one table (RFC 5321 reply codes, RFC 3463 enhanced status codes)."""

from __future__ import annotations

import re

# RCPT (SPEC S1, S4)
RCPT_OK = "250 2.1.5 Recipient OK"
RELAY_DENIED = "550 5.7.1 Relaying denied: not a Smart Bcc domain"  # S1, T3
UNKNOWN_ADDRESS = "550 5.1.1 No such Smart Bcc address"  # S1
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"  # S4, RFC 5321 §4.5.3.1.10
RCPT_TEMPFAIL = "451 4.3.0 Temporary failure looking up recipient, try again later"
MALFORMED_ADDRESS = "553 5.1.3 Malformed address"  # e.g. not valid UTF-8 (RFC 6531 §3.2)
# S5 without silent drops (bccd.sender_policy): this recipient's sender policy could decide this message
# differently from the transaction's first recipient; RFC 5321 §4.5.3.1.10: send it in a new transaction.
SEPARATE_TRANSACTION = "452 4.5.3 Send this recipient in a separate transaction (sender policy differs)"
TOO_MANY_FAILED_RCPTS = "421 4.7.0 Too many refused recipients, closing connection"

# MAIL (SPEC S4)
SIZE_EXCEEDED = "552 5.3.4 Message size exceeds fixed maximum message size"  # RFC 1870

# DATA (SPEC S2, S5)
STORED = "250 2.0.0 OK: stored"
TEMPFAIL = "451 4.3.0 Temporary failure, message not stored; try again later"  # S2
SENDER_REFUSED = "550 5.7.1 Sender not allowed to use this Smart Bcc address"  # S5
# S5 decided the owners differently after all (settings changed during the transaction): nothing stored.
SENDER_POLICY_MIXED = "451 4.3.0 Recipients decided differently by the sender policy; try again later"
LINE_TOO_LONG = "500 5.5.2 Line too long: a DATA line exceeds the server's hard cap"  # RFC 5321 §4.5.3.1.6

# DATA with sender_auth = require (docs/rules.md A1–A3): RFC 7372's codes, by bccd.auth.verdict's reason.
# A DNS failure is never a permanent refusal: SPF temperror is 451 4.7.24 (RFC 7372 §3.2 gives X.7.24 the
# basic codes 451/550: "temperror or permerror"); RFC 7372 has no temporary DKIM or DMARC code, so a failed
# key or policy lookup is 451 4.7.0 (RFC 3463: other security status; 4.7.5 means a cryptographic failure,
# which a DNS timeout is not). X.7.21 (passing signatures, none acceptable by local policy) is not used:
# bccd has no acceptability rule beyond the From domain's, which is X.7.22.
SENDER_AUTH_REPLIES: dict[str, str] = {
    "spf_failed": "550 5.7.23 SPF validation failed: the sender is not authenticated",
    "spf_error": "550 5.7.24 SPF validation error: the sender is not authenticated",
    "dkim_failed": "550 5.7.20 No passing DKIM signature found: the sender is not authenticated",
    "dkim_not_author": "550 5.7.22 No valid author-matched DKIM signature found: sender not authenticated",
    "multiple_failed": "550 5.7.26 Multiple authentication checks failed: the sender is not authenticated",
    "not_authenticated": "550 5.7.26 The From domain is not authenticated (no SPF pass or DKIM signature)",
    "spf_temperror": "451 4.7.24 Temporary SPF validation error; try again later",
    "dns_temperror": "451 4.7.0 Temporary failure checking sender authentication; try again later",
}

# Connection (SPEC S4)
TOO_MANY_CONNECTIONS = "421 4.3.2 Too many connections, try again later"
TIMEOUT = "421 4.4.2 Timeout exceeded, closing connection"  # RFC 5321 §4.5.3.2, S4
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
TOO_MANY_FROM_IP = "421 4.7.0 Too many connections from your address, try again later"
TOO_MANY_COMMANDS = "421 4.7.0 Too many commands in one session, closing connection"
COMMANDS_TOO_FAST = "421 4.7.0 Commands sent too fast, closing connection"
SESSION_TOO_LONG = "421 4.4.2 Session time limit exceeded, closing connection"
AUTH_NOT_OFFERED = "502 5.5.1 AUTH not supported: Smart Bcc needs no authentication"  # T3

# aiosmtpd's own fixed texts, rewritten so clients always get enhanced status codes.
AIOSMTPD_REWRITES: dict[str, str] = {
    "552 Error: message size exceeds fixed maximum message size": SIZE_EXCEEDED,
    "552 Error: Too much mail data": SIZE_EXCEEDED,
    "500 Line too long (see RFC5321 4.5.3.1.6)": LINE_TOO_LONG,
}


# RFC 2034/3463: with ENHANCEDSTATUSCODES advertised, every reply but the greeting and the HELO/EHLO answer
# carries an enhanced code. aiosmtpd's own replies have none; these fill them in by basic reply code.
ENHANCED_BY_CODE: dict[str, str] = {
    "454": "4.7.0",  # TLS not available
    "500": "5.5.2",  # syntax error, command unrecognized
    "501": "5.5.4",  # syntax error in parameters
    "502": "5.5.1",  # command not implemented
    "503": "5.5.1",  # bad sequence of commands
    "504": "5.5.4",  # parameter not implemented
    "530": "5.7.0",  # authentication/STARTTLS required
    "552": "5.3.4",  # message too big
    "555": "5.5.4",  # MAIL/RCPT parameters not recognized
}
_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}(?: |$)")


def with_enhanced_code(reply: str) -> str:
    """`503 Error: need RCPT command` → `503 5.5.1 Error: need RCPT command`; coded replies pass unchanged."""
    if len(reply) < 4 or not reply[:3].isdigit() or reply[3] not in " -" or reply[0] not in "245":
        return reply
    rest = reply[4:]
    if _ENHANCED.match(rest):
        return reply
    code = reply[:3]
    enhanced = ENHANCED_BY_CODE.get(code, f"{code[0]}.0.0")
    return f"{code}{reply[3]}{enhanced} {rest}"


def code_of(reply: str) -> str:
    return reply[:3]
