"""Reply-style attribution lines ("On <date>, <name> <address> wrote:") as a forward's only header.

Outlook 2019 (and Outlook for Mac) forwards a mail under a line like "Am 28/10/2021, 12:46 schrieb
"John Doe" <john.doe@acme.com>:" instead of a header block. The same line heads a reply, so it counts as
a forward only under a forward subject (the caller decides). The templates per language are data in
forward_labels.json ("attribution").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bccd.mail.forward_addresses import parse_inline_addresses
from bccd.mail.forward_labels import LABELS

# Clients wrap a long attribution line ("... John Doe <john@x>\nwrote:"); more lines are prose.
MAX_ATTRIBUTION_LINES: Final = 3
MAX_ATTRIBUTION_CHARS: Final = 400
_COLONS: Final = (":", "：")


@dataclass(frozen=True, slots=True)
class Attributed:
    languages: frozenset[str]
    senders: list[tuple[str, str | None]]
    names: list[str]  # a sender written as a name without an address


def _parse(text: str) -> Attributed | None:
    languages: set[str] = set()
    sender: str | None = None
    for attribution in LABELS.attributions:
        match = attribution.pattern.fullmatch(text)
        if match is not None:
            languages.add(attribution.language)
            sender = sender or match.group("sender")
    if sender is None:
        return None
    senders, names = parse_inline_addresses(sender)
    if not senders and not names:
        return None
    return Attributed(frozenset(languages), senders[:1], names[:1] if not senders else [])


def attribution_at(texts: list[str]) -> Attributed | None:
    """The attribution that `texts` (consecutive non-empty lines of one quote depth) start with, if any."""
    joined = ""
    for text in texts[:MAX_ATTRIBUTION_LINES]:
        joined = f"{joined} {text}" if joined else text
        if len(joined) > MAX_ATTRIBUTION_CHARS:
            return None
        if joined.endswith(_COLONS):
            return _parse(joined)
    return None
