"""Addresses as mail clients print them in a forwarded header block (not RFC 5322: commas in names, ...)."""

from __future__ import annotations

import re

from bccd.mail.addresses import normalize_address
from bccd.mail.forward_labels import LABELS
from bccd.mail.headers import clean_display_name

_ADDR = r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+"
# "<a@x>" or "[a@x]" (old Outlook prints "Name [mailto:a@x]") or a bare address.
_ENTRY = re.compile(
    r"<\s*(?P<angle>" + _ADDR + r")\s*>|\[\s*(?P<square>" + _ADDR + r")\s*\]|(?P<bare>" + _ADDR + r")"
)
# Outlook's HTML-to-text conversion appends the link target: "a@x<mailto:a@x>", "Name <a@x<mailto:a@x>>".
_MAILTO_ECHO = re.compile(r"(" + _ADDR + r")\s*<mailto:\1>", re.IGNORECASE)
_MAILTO = re.compile(r"[<\[]\s*mailto:\s*(" + _ADDR + r")\s*[>\]]", re.IGNORECASE)
_SEPARATORS = " \t,;"
# Quote pairs clients put around display names: "…", '…', «…», „…“ / „…”, “…”.
_QUOTES = (('"', '"'), ("'", "'"), ("«", "»"), ("„", "“"), ("„", "”"), ("“", "”"))


def _outside_quotes(text: str, char: str) -> bool:
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == char and not quoted:
            return True
    return False


def _split_outside_quotes(text: str, char: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == char and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unquote(text: str) -> str:
    text = text.strip()
    for left, right in _QUOTES:
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            return text[len(left) : -len(right)].strip()
    return text


def _name(text: str, address: str | None) -> str | None:
    text = text.strip(_SEPARATORS).replace('\\"', '"')
    if text.startswith(("<", "(", ")")) or text.endswith((">", "(", ")")):
        text = text.strip("<>() ").strip()  # "Name (addr)", "Name (<addr>)", "<Name>" left by converters
    return clean_display_name(_unquote(text), address)


def _names_only(text: str, semicolons: bool) -> list[str]:
    pieces = _split_outside_quotes(text, ";") if semicolons else [text]
    names = (_name(piece, None) for piece in pieces if piece.strip(_SEPARATORS + "<>\"'"))
    return [name for name in names if name]


def sender_part(value: str) -> str:
    """A From value without its "… on behalf of <mailbox>" tail (Outlook on the web, delegates)."""
    match = LABELS.on_behalf_of.search(value)
    return value[: match.start()] if match else value


def parse_inline_addresses(value: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(normalized address, display name) pairs, and the entries that were names without an address.

    The text between one address and the previous entry is the display name. Lists separated by ";"
    (Outlook, Yahoo) may have commas inside names ("Smith, John <j@x>"), and a ";" piece without an
    address is a name without an address (Exchange contacts). In comma lists the whole text before an
    address is its name, since those clients always print an address.
    """
    value = _MAILTO_ECHO.sub(r"\1", value)
    value = _MAILTO.sub(r"<\1>", value)
    semicolons = _outside_quotes(value, ";")
    found: list[tuple[str, str | None]] = []
    without: list[str] = []
    position = 0
    for match in _ENTRY.finditer(value):
        if match.group("bare") and value.count('"', 0, match.start()) % 2:
            continue  # an address inside a quoted display name is part of the name
        raw = match.group("angle") or match.group("square") or match.group("bare") or ""
        address = normalize_address(raw.rstrip("."))
        if address is None:
            continue
        chunk = value[position : match.start()]
        if semicolons and _outside_quotes(chunk, ";"):
            *earlier, chunk = _split_outside_quotes(chunk, ";")
            without += [name for piece in earlier for name in _names_only(piece, False)]
        position = match.end()
        if found and found[-1][0] == address and not chunk.strip(_SEPARATORS + "<>\"'"):
            continue  # "a@x <a@x>" left by a converter: one entry, not two
        found.append((address, _name(chunk, address)))
    without += _names_only(value[position:], semicolons)
    return found, without
