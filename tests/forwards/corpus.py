"""The forward corpus as data: load expected.json, run one fixture, compare with its expectation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bccd.mail.forwards import ForwardDetection, detect_forward
from tests.forwards.mime import bodies, parse

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
EXPECTED = ROOT / "expected.json"


@dataclass(frozen=True)
class Case:
    file: str
    category: str  # forward | negative | unparseable
    client: str
    language: str
    format: str
    quirks: tuple[str, ...]
    expect: dict[str, Any] | None

    @property
    def path(self) -> Path:
        return CORPUS / self.file


def load_cases() -> list[Case]:
    entries = json.loads(EXPECTED.read_text(encoding="utf-8"))
    return [
        Case(
            e["file"], e["category"], e["client"], e["language"], e["format"], tuple(e["quirks"]), e["expect"]
        )
        for e in entries
    ]


def detect(case: Case, html_only: bool = False) -> ForwardDetection | None:
    msg = parse(case.path.read_bytes())
    text, html = bodies(msg)
    if html_only:
        text = None
    return detect_forward(msg, text, html)


def as_data(detection: ForwardDetection | None) -> dict[str, Any] | None:
    """The detection in the shape of an expectation, so a mismatch prints as a readable diff."""
    if detection is None:
        return None
    original = detection.original
    if original is None:
        return {"original": None, "defects": list(detection.defects)}
    return {
        "original": {
            "kind": original.kind,
            "client": original.client,
            "from": [[a.address, a.name] for a in original.from_],
            "to": [[a.address, a.name] for a in original.to],
            "cc": [[a.address, a.name] for a in original.cc],
            "subject": original.subject,
        },
        "defects": list(detection.defects),
    }


def participants_correct(expected: dict[str, Any] | None, actual: dict[str, Any] | None) -> bool:
    """The accuracy criterion: original From, To, Cc and subject all exactly right (or rightly no forward)."""
    if expected is None or actual is None:
        return expected is actual
    exp, act = expected["original"], actual["original"]
    if exp is None or act is None:
        return exp is act
    return all(exp[k] == act[k] for k in ("from", "to", "cc", "subject"))
