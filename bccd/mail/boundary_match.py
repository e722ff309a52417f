"""Multipart boundary lines matched without compiling a regular expression per message.

For every multipart part, the stdlib feed parser compiles
`(?P<sep>--BOUNDARY)(?P<end>--)?(?P<ws>[ \\t]*)(?P<linesep>\\r\\n|\\r|\\n)?$`. Boundaries are unique per
message, so `re`'s cache never hits, and compiling cost about as much as the rest of the parse: 11 % of
a delivery's CPU in the ingest profile (issue 13).

`install()` gives email.feedparser a stand-in for its `re` module whose `compile` recognises exactly that
pattern and returns `BoundaryMatcher`: `line.startswith(separator)`, then one regular expression compiled
once for the part after the separator. Every other pattern (and any other shape a future Python builds)
goes to the real `re.compile`, so the parser's behaviour cannot change, only its cost. The feed parser
uses the compiled boundary for `.match(line)` and reads the groups `end` and `linesep`;
tests/test_boundary_match.py checks matches and groups against the real pattern, and whole parses with
and without the stand-in.
"""

from __future__ import annotations

import email.feedparser
import re
from typing import Any

_PREFIX = "(?P<sep>"
_SUFFIX = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_TAIL = re.compile(_SUFFIX[1:])  # the pattern after the separator, compiled once
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


class BoundaryMatcher:
    """`.match(line)` of the feed parser's boundary pattern for one separator (`--` + boundary)."""

    __slots__ = ("pattern", "separator")

    def __init__(self, separator: str, pattern: str) -> None:
        self.separator = separator
        self.pattern = pattern

    def match(self, line: str) -> re.Match[str] | None:
        if not line.startswith(self.separator):
            return None
        return _TAIL.match(line, len(self.separator))


def boundary_separator(pattern: object, flags: int = 0) -> str | None:
    """The separator when `pattern` is the feed parser's boundary pattern, else None."""
    if (
        flags
        or not isinstance(pattern, str)
        or not pattern.startswith(_PREFIX)
        or not pattern.endswith(_SUFFIX)
    ):
        return None
    escaped = pattern[len(_PREFIX) : -len(_SUFFIX)]
    separator = _UNESCAPE.sub(r"\1", escaped)
    return separator if re.escape(separator) == escaped else None


class _FeedParserRe:
    """The `re` module as email.feedparser sees it: the same, except for boundary patterns."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    def compile(self, pattern: Any, flags: int = 0) -> Any:
        separator = boundary_separator(pattern, flags)
        if separator is None:
            return re.compile(pattern, flags)
        return BoundaryMatcher(separator, pattern)


def install() -> None:
    """Idempotent: email.feedparser compiles no boundary pattern from now on."""
    namespace = vars(email.feedparser)  # its globals: `re` is looked up there on every multipart
    if not isinstance(namespace["re"], _FeedParserRe):
        namespace["re"] = _FeedParserRe()


def uninstall() -> None:
    """Give email.feedparser the real `re` back (tests compare parses with and without)."""
    vars(email.feedparser)["re"] = re
