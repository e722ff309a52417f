"""bccd.mail.boundary_match: the feed parser's boundary lines are matched as its own pattern matches them,
and a whole parse with the stand-in equals the parse without it."""

from __future__ import annotations

import email.feedparser
import re
from collections.abc import Iterator
from email.policy import compat32
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bccd.mail import boundary_match
from bccd.mail.mimetree import parse_tree


def _stdlib_pattern(boundary: str) -> str:
    # The pattern exactly as email.feedparser builds it for a multipart part (Python 3.11–3.13).
    separator = "--" + boundary
    return "(?P<sep>" + re.escape(separator) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"


@pytest.fixture
def stdlib_re() -> Iterator[None]:
    boundary_match.uninstall()
    yield
    boundary_match.install()


boundaries = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=70)
tails = st.sampled_from(["", "--", "  ", "--\t ", "x", "-", "\r\n", "--\r\n", " \n", "--\r", "\r", "\n\n"])


@settings(max_examples=800)
@given(boundaries, st.lists(st.tuples(st.booleans(), tails, st.text(max_size=4)), max_size=6))
def test_the_matcher_agrees_with_the_stdlib_pattern(
    boundary: str, cases: list[tuple[bool, str, str]]
) -> None:
    pattern = _stdlib_pattern(boundary)
    assert boundary_match.boundary_separator(pattern) == "--" + boundary
    fast = boundary_match.BoundaryMatcher("--" + boundary, pattern)
    real = re.compile(pattern)
    for starts, tail, noise in cases:
        line = ("--" + boundary if starts else noise) + tail + (noise if not starts else "")
        got, want = fast.match(line), real.match(line)
        assert (got is None) == (want is None), line
        if got is not None and want is not None:
            assert (got.group("end"), got.group("ws"), got.group("linesep")) == (
                want.group("end"),
                want.group("ws"),
                want.group("linesep"),
            )


def test_other_patterns_are_compiled_for_real() -> None:
    assert boundary_match.boundary_separator("(?P<sep>--x)") is None
    assert boundary_match.boundary_separator(_stdlib_pattern("a b"), re.IGNORECASE) is None
    assert (
        boundary_match.boundary_separator(_stdlib_pattern("a").replace("a", "[a]", 1)) is None
    )  # not re.escape's
    assert isinstance(vars(email.feedparser)["re"].compile("ab+"), re.Pattern)
    assert vars(email.feedparser)["re"].escape("a.b") == "a\\.b"


def _messages() -> list[bytes]:
    """Every .eml in the test tree: the generated forward corpus and the real clients' samples, in LF and
    in CRLF."""
    files = sorted(Path(__file__).parent.rglob("*.eml"))
    raw = [f.read_bytes() for f in files]
    return raw + [re.sub(rb"\r?\n", b"\r\n", r) for r in raw]


def _trees(messages: list[bytes]) -> list[bytes]:
    out = []
    for raw in messages:
        root, defects = parse_tree(raw)
        out.append(root.as_bytes(policy=compat32) + repr(defects).encode() + repr(root.defects).encode())
    return out


def test_whole_parses_are_the_same_with_and_without_the_stand_in(stdlib_re: None) -> None:
    messages = _messages()
    assert sum(b"multipart/" in m.lower() for m in messages) > 100
    without = _trees(messages)
    boundary_match.install()
    try:
        with_it = _trees(messages)
    finally:
        boundary_match.uninstall()
    assert with_it == without
