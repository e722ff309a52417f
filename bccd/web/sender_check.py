"""The thread page's "Sender" line: the stored sender authentication (docs/rules.md A5) in plain words."""

from __future__ import annotations

from typing import Any

_CHECKS = {"spf": "SPF", "dkim": "DKIM signature"}


def sender_check(auth: dict[str, Any] | None) -> str | None:
    """None when the company had sender authentication off (nothing was checked: no line)."""
    if auth is None:
        return None
    verdict = auth["verdict"]
    if verdict == "pass":
        aligned = [_CHECKS[a] for a in auth["dmarc"]["aligned"] if a in _CHECKS]
        how = " and ".join(aligned) if aligned else "SPF or DKIM"
        return f"Verified: the sender's domain authenticated this mail ({how})."
    if verdict == "temperror":
        return "Not verified: DNS did not answer when the mail arrived, so it could not be checked."
    if verdict == "none":
        return "Not verified: the sender's domain publishes no SPF, DKIM or DMARC to check it against."
    found = [f"SPF {auth['spf']['result']}"]
    found += [f"DKIM {d['result']}" + (f" ({d['domain']})" if d["domain"] else "") for d in auth["dkim"]]
    return "Not verified: the sender's domain did not authenticate this mail (" + ", ".join(found) + ")."
