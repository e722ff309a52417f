"""The independent forward set: real client output from public repositories, with hand-written expectations.

Each case in cases.json names a raw sample under samples/ (kept byte for byte as its source holds it) and
what a reader sees in it: the original's From, To, Cc and subject, or null when the mail is no forward.
A "body" sample is the text a client put into the forward's body; it is wrapped in a minimal text/plain
message (from a forwarder, to a Smart Bcc address, with the case's subject) so the detector sees a mail.
An "eml" sample is a whole message and is parsed as it is.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path
from typing import Any

from bccd.mail.forwards import ForwardDetection, detect_forward
from tests.forwards.mime import bodies

ROOT = Path(__file__).resolve().parent
SAMPLES = ROOT / "samples"
CASES = ROOT / "cases.json"

FORWARDER = "Katrin Vogel <katrin.vogel@vertrieb-nord.example>"
SMART_BCC = "k7q2m9x4t8w1@bcc.crm.example"

NEGATIVE_FAMILIES = frozenset({"negative_reply", "negative_bounce", "negative_report", "negative_auto_reply"})


@dataclass(frozen=True)
class RealCase:
    id: str
    sample: str
    kind: str  # body | eml
    subject: str | None
    subject_source: str  # none | reconstructed | sample:<path>
    family: str
    client: str
    language: str
    expect: dict[str, Any] | None
    note: str | None = None

    @property
    def path(self) -> Path:
        return SAMPLES / self.sample

    @property
    def negative(self) -> bool:
        return self.expect is None


def load_real_cases() -> list[RealCase]:
    entries = json.loads(CASES.read_text(encoding="utf-8"))
    return [RealCase(**entry) for entry in entries]


def _wrap(body: bytes, subject: str | None) -> bytes:
    head = [f"From: {FORWARDER}", f"To: {SMART_BCC}"]
    if subject is not None:
        head.append("Subject: " + subject)
    head += ["MIME-Version: 1.0", 'Content-Type: text/plain; charset="utf-8"']
    head.append("Content-Transfer-Encoding: 8bit")
    return ("\n".join(head) + "\n\n").encode("utf-8") + body


def message_of(case: RealCase) -> email.message.Message:
    raw = case.path.read_bytes()
    if case.kind == "body":
        raw = _wrap(raw, case.subject)
    return BytesParser(policy=compat32).parsebytes(raw)


def detect_real(case: RealCase) -> ForwardDetection | None:
    msg = message_of(case)
    text, html = bodies(msg)
    return detect_forward(msg, text, html)


def observed(detection: ForwardDetection | None) -> dict[str, Any] | None:
    """What the detector read, in the shape of an expectation (None: no forward, or not understood)."""
    if detection is None or detection.original is None:
        return None
    o = detection.original
    return {
        "from": [[a.address, a.name] for a in o.from_] + [[None, n] for n in o.from_names],
        "to": [[a.address, a.name] for a in o.to] + [[None, n] for n in o.to_names],
        "cc": [[a.address, a.name] for a in o.cc] + [[None, n] for n in o.cc_names],
        "subject": o.subject,
    }


def correct(case: RealCase, detection: ForwardDetection | None) -> bool:
    """A forward is right when From, To, Cc (addresses and names) and subject all match; a negative when
    no forward is reported at all (a forward 'not understood' is still a forward)."""
    if case.negative:
        return detection is None
    return observed(detection) == case.expect


def by(cases: Iterable[RealCase], key: str) -> dict[str, list[RealCase]]:
    groups: dict[str, list[RealCase]] = {}
    for case in cases:
        groups.setdefault(str(getattr(case, key)), []).append(case)
    return groups


# The share of the independent set the detector must get right (test suite and bench exit code); set at
# what the detector achieves, so a regression on real client output fails the build.
REAL_THRESHOLD = 1.0
