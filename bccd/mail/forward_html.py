"""HTML body to plain text lines, just faithfully enough for the inline forward detector."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Final

# Converting a huge HTML body costs real time on the SMTP hot path; a forward header sits near the top.
MAX_HTML_CHARS: Final = 400_000

_BLOCK_TAGS: Final = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    }
)
_SKIP_TAGS: Final = frozenset({"head", "script", "style", "title", "template", "xml"})
# Outlook draws its forward/reply separator as a top border on the div that holds the header block.
_BORDER_TOP = re.compile(r"border-top\s*:\s*solid", re.IGNORECASE)
_OUTLOOK_RULE: Final = "________________________________"
_WHITESPACE = re.compile(r"[ \t\r\n\f\u00a0]+")


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0
        self.mailto: list[str | None] = []
        self.link_text: list[list[str]] = []
        self.nbsp = False

    def _newline(self, force: bool = False) -> None:
        line = "".join(self.current).strip()
        # An empty paragraph holding only &nbsp; is how Outlook writes a blank line.
        if line or force or self.nbsp:
            self.lines.append(line)
        self.current = []
        self.nbsp = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
            return
        if tag == "br":
            self._newline(force=True)
        elif tag == "hr":
            self._newline()
            self.lines.append(_OUTLOOK_RULE)
        elif tag in _BLOCK_TAGS:
            self._newline()
            style = dict(attrs).get("style") or ""
            if tag == "div" and _BORDER_TOP.search(style):
                self.lines.append(_OUTLOOK_RULE)
            if tag == "pre":
                self.pre_depth += 1
        elif tag in ("td", "th"):
            self.current.append(" ")
        elif tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            self.mailto.append(href[7:].split("?")[0] if href.lower().startswith("mailto:") else None)
            self.link_text.append([])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            return
        self.handle_starttag(tag, attrs)
        if tag in _BLOCK_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if tag in _BLOCK_TAGS:
            self._newline()
            if tag == "pre":
                self.pre_depth = max(0, self.pre_depth - 1)
        elif tag == "a" and self.mailto:
            target = self.mailto.pop()
            text = "".join(self.link_text.pop())
            # A contact shown by name only ("<a href=mailto:a@x>Anna</a>") still has its address in
            # the link; without it the forwarded header would lose the participant.
            if target and "@" not in text:
                self.current.append(f" <{target}>")
            if self.link_text:
                self.link_text[-1].append(text)

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            first, *rest = data.split("\n")
            self.current.append(first)
            for piece in rest:
                self._newline(force=True)
                self.current.append(piece)
        else:
            if "\u00a0" in data:
                self.nbsp = True
            data = _WHITESPACE.sub(" ", data)
            self.current.append(data)
        if self.link_text:
            self.link_text[-1].append(data)


def html_to_text(html: str) -> str:
    """Visible text, one line per block or <br>; never raises."""
    builder = _TextBuilder()
    try:
        builder.feed(html[:MAX_HTML_CHARS])
        builder.close()
    except Exception:  # html.parser is lenient, but a converter bug must not cost a message (SPEC S6)
        builder.lines.append("")  # keep what was converted before the failure
    builder._newline()
    return "\n".join(builder.lines)
