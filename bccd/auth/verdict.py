"""The verdict on a message's `From:`: SPF, DKIM and DMARC combined into one word, the thread's
`authentication` JSON, and — for companies with `sender_auth = require` — why it is refused.

Verdicts:
- `pass`: an SPF pass or a DKIM pass is aligned with the From domain, under the domain's DMARC alignment
  modes (relaxed when it publishes none). A DMARC pass is exactly this; so is, for a domain without DMARC,
  "covered by SPF pass or a valid DKIM signature of the sender's domain".
- `temperror`: not `pass`, but a DNS failure (timeout, SERVFAIL, the message's budget spent) hid something
  that could have made it `pass`. `require` answers 451 (retry), never 550.
- `fail`: not `pass`, and some check failed or authenticated another domain: SPF fail/softfail/permerror,
  a DKIM signature that does not verify, a valid signature of another domain, DMARC fail.
- `none`: nothing to go on: no SPF record (or neutral), no DKIM signature, no DMARC record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bccd.auth.dkim import DkimResult
from bccd.auth.dmarc import RELAXED, DmarcResult, aligned
from bccd.auth.spf import SpfResult

PASS, FAIL, NONE, TEMPERROR = "pass", "fail", "none", "temperror"
VERDICTS = (PASS, FAIL, NONE, TEMPERROR)

# Why `require` refuses (the SMTP reply for each is in bccd.smtp.replies.SENDER_AUTH_REPLIES, RFC 7372).
SPF_FAILED = "spf_failed"  # SPF fail/softfail and no DKIM signature at all: 550 5.7.23
SPF_ERROR = "spf_error"  # SPF permerror and no DKIM signature: 550 5.7.24
DKIM_FAILED = "dkim_failed"  # signatures, none verifies; SPF did not fail outright: 550 5.7.20
DKIM_NOT_AUTHOR = "dkim_not_author"  # valid signatures, none of the From domain: 550 5.7.22
MULTIPLE_FAILED = "multiple_failed"  # SPF failed and DKIM failed/unmatched, or DMARC fail: 550 5.7.26
NOT_AUTHENTICATED = "not_authenticated"  # nothing authenticates the From domain at all: 550 5.7.26
SPF_TEMPERROR = "spf_temperror"  # 451 4.7.24 (RFC 7372: X.7.24 also for temperror)
DNS_TEMPERROR = "dns_temperror"  # DKIM key or DMARC policy lookup failed: 451 4.7.0
REFUSAL_REASONS = (
    SPF_FAILED, SPF_ERROR, DKIM_FAILED, DKIM_NOT_AUTHOR, MULTIPLE_FAILED, NOT_AUTHENTICATED,
    SPF_TEMPERROR, DNS_TEMPERROR,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Authentication:
    spf: SpfResult
    dkim: tuple[DkimResult, ...]
    dmarc: DmarcResult
    verdict: str  # one of VERDICTS
    from_domain: str | None
    refusal: str | None  # one of REFUSAL_REASONS when the verdict is not pass, else None

    def as_json(self) -> dict[str, Any]:
        """The thread's `authentication` (docs/integration.md)."""
        return {
            "spf": self.spf.as_json(),
            "dkim": [d.as_json() for d in self.dkim],
            "dmarc": self.dmarc.as_json(),
            "verdict": self.verdict,
        }

    @property
    def authenticated(self) -> bool:
        return self.verdict == PASS


def combine(
    from_domain: str | None, spf: SpfResult, dkim: Sequence[DkimResult], dmarc: DmarcResult
) -> Authentication:
    verdict, refusal = _verdict(from_domain, spf, dkim, dmarc)
    return Authentication(spf, tuple(dkim), dmarc, verdict, from_domain, refusal)


def _verdict(
    from_domain: str | None, spf: SpfResult, dkim: Sequence[DkimResult], dmarc: DmarcResult
) -> tuple[str, str | None]:
    if dmarc.aligned:
        return PASS, None
    passing = [d for d in dkim if d.result == "pass"]
    relaxed = from_domain is not None and (
        (spf.result == "pass" and aligned(spf.domain, from_domain, RELAXED))
        or any(aligned(d.domain, from_domain, RELAXED) for d in passing)
    )
    if dmarc.result == "temperror" and relaxed:
        return TEMPERROR, DNS_TEMPERROR  # aligned only if the unknown record allows relaxed alignment
    # Could a lookup that failed have made it pass? SPF only for a domain that could align.
    spf_could = (
        spf.result == "temperror" and from_domain is not None and aligned(spf.domain, from_domain, RELAXED)
    )
    dkim_could = any(
        d.result == "temperror" and from_domain is not None and aligned(d.domain, from_domain, RELAXED)
        for d in dkim
    )
    if spf_could:
        return TEMPERROR, SPF_TEMPERROR
    if dkim_could:
        return TEMPERROR, DNS_TEMPERROR
    spf_failed = spf.result in ("fail", "softfail", "permerror")
    dkim_failed = bool(dkim) and not passing
    not_author = bool(passing)
    if spf_failed and (dkim_failed or not_author):
        return FAIL, MULTIPLE_FAILED
    if spf_failed:
        return FAIL, SPF_ERROR if spf.result == "permerror" else SPF_FAILED
    if dkim_failed:
        return FAIL, DKIM_FAILED
    if not_author:
        return FAIL, DKIM_NOT_AUTHOR
    if dmarc.result in ("fail", "permerror") or spf.result == "pass":
        return FAIL, MULTIPLE_FAILED  # a policy that nothing satisfies, or SPF passed for another domain
    return NONE, NOT_AUTHENTICATED
