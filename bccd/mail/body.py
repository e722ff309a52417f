"""A message's readable content for the CRM: its text, its HTML, and the new writing alone (issue 9).

Pure functions over the bodies the parser already decoded (charsets included, see bccd.mail.message):
no store, no I/O. `stripped_text` keeps what the sender wrote in this message — without the quoted
history of a reply, the signature block after an RFC 3676 "-- " delimiter, and for a forward without the
forwarded block (only the note above it). Separators and header blocks are recognised with the forward
detector's vocabulary (bccd.mail.forward_inline), so every language it knows is known here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from bccd.mail.forward_html import MAX_HTML_CHARS, html_to_text
from bccd.mail.forward_inline import Line, header_block_at, line_label, line_separator

# Longest text / HTML the body endpoint returns, in characters (a JSON document a CRM can hold in
# memory; the raw download has everything). Longer bodies are cut and flagged `truncated`.
MAX_BODY_CHARS: Final = 1_000_000
# Blank lines allowed between a bare rule (Outlook's ______) and the header block it announces.
_RULE_GAP: Final = 3
# An attribution ("On Mon, 1 Jan 2024, Anna <a@x> wrote:") is at most this many lines (Gmail wraps it).
_ATTRIBUTION_LINES: Final = 3

_QUOTE = re.compile(r"^(?:[ \t]*>)+")
_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060\u00ad]")
_SIGNATURE = frozenset({"-- ", "--"})  # RFC 3676 §4.3 "-- "; many clients lose the trailing space
_RULE = re.compile(r"^[_\-=]{8,}$")  # Outlook's bare separator line (as forward_inline reads it)


@dataclass(frozen=True, slots=True)
class MessageBody:
    text: str
    html: str | None
    stripped_text: str
    truncated: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "html": self.html,
            "stripped_text": self.stripped_text,
            "truncated": self.truncated,
        }


def _cap(value: str | None, full_length: int | None, limit: int) -> tuple[str | None, bool]:
    if value is None:
        return None, False
    cut = len(value) > limit or (full_length is not None and full_length > limit)
    return value[:limit], cut


def message_body(
    text_body: str | None,
    html_body: str | None,
    *,
    text_length: int | None = None,
    html_length: int | None = None,
    limit: int = MAX_BODY_CHARS,
) -> MessageBody:
    """The body JSON from the stored bodies. `*_length` are the full lengths when the caller read only a
    prefix of a long body (the store does), so that `truncated` tells the truth."""
    html, html_cut = _cap(html_body, html_length, limit)
    capped, truncated = _cap(text_body, text_length, limit)
    truncated = truncated or html_cut
    text = capped or ""
    if capped is None and html:
        derived, cut = _cap(html_to_text(html), None, limit)
        text = derived or ""
        truncated = truncated or cut or len(html) > MAX_HTML_CHARS  # the converter reads that much
    return MessageBody(text=text, html=html, stripped_text=strip_text(text), truncated=truncated)


def _line(raw: str) -> Line:
    """One line as forward_inline.split_lines normalizes it: quote depth apart, invisible marks gone."""
    text = _INVISIBLE.sub("", raw).replace("\u00a0", " ").replace("\t", " ")
    depth = 0
    quote = _QUOTE.match(text)
    if quote:
        depth = quote.group(0).count(">")
        text = text[quote.end() :]
    return Line(depth, text.strip())


def _next_text(lines: list[Line], start: int, gap: int) -> int | None:
    """Index of the first non-blank line at or after `start`, within `gap` blank lines."""
    i = start
    while i < len(lines) and i - start <= gap:
        if lines[i].text or lines[i].depth:
            return i
        i += 1
    return None


def _ends_writing(lines: list[Line], raw: list[str], i: int) -> bool:
    """Whether line i starts what is not the sender's own writing: a signature, a forwarded or quoted
    message's separator, or its header block."""
    line = lines[i]
    if raw[i].rstrip("\r") in _SIGNATURE:
        return True
    if not line.text:
        return False
    separator = line_separator(line.text)
    if separator is not None and separator.kind is not None:
        return True  # "---------- Forwarded message ---------", "Begin forwarded message:", …
    if separator is not None or _RULE.match(line.text):
        # A bare rule is Outlook's separator only when a header block follows it; else it is decoration.
        nxt = _next_text(lines, i + 1, _RULE_GAP)
        return nxt is not None and line_label(lines[nxt].text) == "from" and header_block_at(lines, nxt)
    return line_label(line.text) == "from" and header_block_at(lines, i)


def _attribution_start(lines: list[Line], quote_at: int) -> int:
    """Where the attribution line(s) right above a quote block begin ("… wrote:"), or quote_at if none."""
    end = quote_at
    while end > 0 and not lines[end - 1].text and lines[end - 1].depth == 0 and quote_at - end < 2:
        end -= 1
    if end == 0 or not lines[end - 1].text.endswith((":", "：")) or lines[end - 1].depth:
        return quote_at
    start = end - 1
    while (
        start > 0
        and end - start < _ATTRIBUTION_LINES
        and lines[start - 1].text
        and lines[start - 1].depth == 0
        and len(lines[start - 1].text) < 200
        and len(lines[end - 1].text) < 40  # only a short "wrote:" tail was wrapped onto its own line
    ):
        start -= 1
    return start


def strip_text(text: str) -> str:
    """The new writing of a plain-text body: quoted lines, their attribution, the signature and any
    forwarded or quoted message below the writing removed; blank-line runs collapsed; never raises."""
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [_line(r) for r in raw]
    end = next((i for i in range(len(lines)) if lines[i].depth == 0 and _ends_writing(lines, raw, i)), None)
    if end is None:
        end = len(lines)
    dropped = [line.depth > 0 for line in lines[:end]]
    i = 0
    while i < end:
        if lines[i].depth > 0 and (i == 0 or lines[i - 1].depth == 0):
            for k in range(_attribution_start(lines, i), i):
                dropped[k] = True
        i += 1
    kept: list[str] = []
    for i in range(end):
        if dropped[i]:
            continue
        line = raw[i].rstrip()
        if not line and (not kept or not kept[-1]):
            continue  # leading blank lines and runs of blanks left where quotes were
        kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept)
