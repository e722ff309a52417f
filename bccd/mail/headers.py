"""Header values as text: RFC 2047 decoding, raw UTF-8 (RFC 6532) and address lists, never raising."""

from __future__ import annotations

import re
from email.header import Header, decode_header
from email.utils import getaddresses

from bccd.mail.addresses import MailAddress, normalize_address

_CRLF = re.compile(r"[\r\n]+[ \t]*")
_SPACES = re.compile(r"[ \t]{2,}")


def _decode_bytes(data: bytes, charset: str | None) -> str:
    if charset and charset.lower() not in ("unknown-8bit", "x-unknown"):
        try:
            return data.decode(charset, errors="replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_header_value(raw: str | Header | None) -> str:
    """Decode one header value into display text: encoded-words decoded, folding and CR/LF removed."""
    if raw is None:
        return ""
    if isinstance(raw, Header):
        raw = str(raw)
    text = _unsurrogate(raw)
    if "=?" in text:
        try:
            parts = decode_header(text)
        except Exception:  # a malformed encoded-word: keep the raw text rather than fail (SPEC S6)
            parts = [(text, None)]
        out: list[str] = []
        for chunk, charset in parts:
            out.append(_decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
        text = "".join(out)
    text = _CRLF.sub(" ", text)
    return text.strip()


def _unsurrogate(text: str) -> str:
    """compat32 turns 8-bit header bytes into surrogate escapes; turn them back into UTF-8 text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    data = text.encode("utf-8", errors="surrogateescape")
    return _decode_bytes(data, "utf-8")


def clean_display_name(name: str, address: str | None) -> str | None:
    """A display name worth keeping: none when empty or merely the address again."""
    name = _SPACES.sub(" ", name.replace("\t", " ")).strip().strip("'\"").strip()
    if not name:
        return None
    if address is not None and normalize_address(name) == address:
        return None
    return name


def parse_address_list(values: list[str] | str | None) -> tuple[MailAddress, ...]:
    """Parse one or more address-list header values; entries that are not addresses are dropped."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    decoded = [_unsurrogate(_CRLF.sub(" ", str(v))) for v in values]
    result: list[MailAddress] = []
    seen: set[str] = set()
    try:
        pairs = getaddresses(decoded)
    except Exception:  # getaddresses is strict on some inputs in newer Pythons; degrade to nothing
        pairs = []
    for name, addr in pairs:
        norm = normalize_address(addr)
        if norm is None or norm in seen:
            continue
        seen.add(norm)
        result.append(MailAddress(norm, clean_display_name(decode_header_value(name), norm)))
    return tuple(result)
