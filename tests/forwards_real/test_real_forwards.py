"""Issue 14: the independent set of real client output (tests/forwards_real) — score, families, negatives.

SPEC F1 (a forward's original is read from the block the client wrote) and F3 (replies, bounces, reports
and auto-replies are never forwards), measured on mail this project did not write.
"""

from __future__ import annotations

import pytest

from tests.forwards_real.real import (
    REAL_THRESHOLD,
    RealCase,
    correct,
    detect_real,
    load_real_cases,
    observed,
)

CASES = load_real_cases()
FORWARDS = [c for c in CASES if not c.negative]
NEGATIVES = [c for c in CASES if c.negative]


def _family(name: str) -> list[RealCase]:
    cases = [c for c in CASES if c.family == name]
    assert cases, f"no case of family {name}"
    return cases


def _wrong(cases: list[RealCase]) -> list[str]:
    return [f"{c.id}: {observed(detect_real(c))}" for c in cases if not correct(c, detect_real(c))]


def test_issue14_real_set_meets_its_threshold() -> None:
    right = sum(correct(c, detect_real(c)) for c in CASES)
    assert right / len(CASES) >= REAL_THRESHOLD, f"{right}/{len(CASES)}"


@pytest.mark.parametrize("case", NEGATIVES, ids=[c.id for c in NEGATIVES])
def test_issue14_f3_real_negative_is_no_forward(case: RealCase) -> None:
    assert detect_real(case) is None


def test_issue14_separator_family() -> None:
    assert _wrong(_family("separator")) == []


def test_issue14_header_block_family() -> None:
    assert _wrong(_family("header_block")) == []


def test_issue14_yahoo_run_together_family() -> None:
    assert _wrong(_family("yahoo_run_together")) == []


def test_issue14_mailto_decorations_family() -> None:
    assert _wrong(_family("mailto_decorations")) == []


def test_issue14_outlook_attribution_family_in_every_language() -> None:
    cases = _family("outlook_attribution")
    assert {c.language for c in cases} >= {
        "cs",
        "da",
        "de",
        "en",
        "es",
        "fi",
        "fr",
        "hu",
        "it",
        "nl",
        "no",
        "pl",
        "pt",
        "ru",
        "sk",
        "sv",
        "tr",
    }
    assert _wrong(cases) == []


def test_issue14_japanese_fullwidth_family() -> None:
    assert _wrong(_family("japanese_fullwidth")) == []


def test_issue14_yahoo_label_without_colon_family() -> None:
    assert _wrong(_family("yahoo_label_without_colon")) == []


def test_issue14_on_behalf_of_family() -> None:
    assert _wrong(_family("on_behalf_of")) == []


def test_issue14_every_forward_case_names_a_family_and_an_existing_sample() -> None:
    for case in CASES:
        assert case.path.is_file(), case.sample
        assert case.family and case.client and case.language
        if case.expect is not None:
            assert set(case.expect) == {"from", "to", "cc", "subject"}
