"""Mail content bytes to clean text: transfer encodings and charsets, lenient and never raising."""

from __future__ import annotations

import binascii
import codecs
import re
from functools import lru_cache

# Our defect names (SPEC S6: malformed mail is stored with its defects recorded).
BAD_TRANSFER_ENCODING = "bad_content_transfer_encoding"
UNDECODABLE_BODY = "undecodable_body"
UNKNOWN_CHARSET_PREFIX = "unknown_charset:"

# Labels that mean "no charset information" rather than a charset we fail to know.
_NO_CHARSET = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "default"})

# Labels mail clients send that Python lacks or names differently; the supersets follow what browsers
# do (WHATWG Encoding), because mislabelled mail is written by the same software.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "utf8": "utf-8",
}

# Codecs that exist in Python but are not charsets a mail body could be in; decoding hostile bytes with
# them yields escapes, lone surrogates or exceptions instead of text.
_REFUSED_CODECS = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"})

_MAX_CHARSET_LABEL = 64  # longest label worth a codec lookup; real ones are under 20 characters

_B64_WHITESPACE = b" \t\r\n\x0b\x0c"
_NOT_B64 = bytes(b for b in range(256) if not (chr(b).isalnum() and b < 128) and b not in b"+/")
_BAD_QP_ESCAPE = re.compile(rb"=(?![0-9A-Fa-f]{2}|[ \t]*(?:\r?\n|\r|\Z))")
_UU_NAMES = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})
_IDENTITY_NAMES = frozenset({"", "7bit", "8bit", "binary", "7-bit", "8-bit"})
_SAFE_LABEL = re.compile(r"[^a-z0-9._+-]")


def decode_base64(data: bytes) -> tuple[bytes, bool]:
    """Decode base64, salvaging what a broken encoder wrote; the flag says whether it was well formed."""
    compact = data.translate(None, _B64_WHITESPACE)
    try:
        return binascii.a2b_base64(compact, strict_mode=True), True
    except binascii.Error:
        pass
    # Keep only alphabet characters and re-pad, so that stray bytes, inner padding and truncation cost
    # the broken bytes rather than the whole part.
    cleaned = compact.translate(None, _NOT_B64 + b"=")
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return binascii.a2b_base64(cleaned), False
    except binascii.Error:  # cannot happen after cleaning; kept so a library change cannot break S6
        return b"", False


def decode_quoted_printable(data: bytes, *, header: bool = False) -> tuple[bytes, bool]:
    """Decode quoted-printable; the flag is False when it held '=' not followed by hex or a line end."""
    well_formed = b"=" not in data or _BAD_QP_ESCAPE.search(data) is None
    return binascii.a2b_qp(data, header=header), well_formed


def decode_uuencode(data: bytes) -> tuple[bytes, bool]:
    """Decode the body lines between 'begin' and 'end'; unreadable lines are skipped and flagged."""
    out: list[bytes] = []
    ok = True
    started = False
    for line in data.splitlines():
        if not started:
            started = line.startswith(b"begin ")
            continue
        if line.strip() == b"end":
            break
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            ok = False
    return b"".join(out), ok and started


def decode_transfer(payload: bytes, cte: str) -> tuple[bytes, list[str]]:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6); unknown encodings pass the bytes through."""
    name = cte.strip().lower()
    if name in _IDENTITY_NAMES:
        return payload, []
    if name == "base64":
        data, ok = decode_base64(payload)
    elif name == "quoted-printable":
        data, ok = decode_quoted_printable(payload)
    elif name in _UU_NAMES:
        data, ok = decode_uuencode(payload)
    else:
        data, ok = payload, False
    return data, [] if ok else [BAD_TRANSFER_ENCODING]


def lookup_charset(label: str) -> str | None:
    """The Python codec for a MIME charset label, or None when there is no usable one."""
    if len(label) > _MAX_CHARSET_LABEL:
        return None
    return _lookup_charset(label)


@lru_cache(maxsize=256)  # bounded: labels come from senders and may be anything
def _lookup_charset(label: str) -> str | None:
    name = label.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    try:
        # bytes.decode refuses bytes-to-bytes codecs such as base64_codec (empty input skips the check).
        b"\x00".decode(info.name)
    except LookupError:
        return None
    except (UnicodeError, ValueError):
        pass  # a text codec that dislikes this byte
    if info.name.replace("_", "-") in _REFUSED_CODECS:
        return None
    return info.name


def charset_defect(label: str) -> str:
    """A stable, printable defect name for a charset label we could not use."""
    safe = _SAFE_LABEL.sub("_", label.strip().strip("\"'").lower())[:40]
    return UNKNOWN_CHARSET_PREFIX + (safe or "_")


def decode_text(data: bytes, charset: str | None) -> tuple[str, list[str]]:
    """Decode with the declared charset, falling back to UTF-8 then Latin-1; never raises."""
    defects: list[str] = []
    codec: str | None = None
    if charset is not None and charset.strip().strip("\"'").lower() not in _NO_CHARSET:
        codec = lookup_charset(charset)
        if codec is None:
            defects.append(charset_defect(charset))
    if codec is not None and codec != "utf-8":
        try:
            return clean_text(data.decode(codec)), defects
        except Exception:  # UnicodeError mostly; some codecs raise others on hostile bytes
            defects.append(UNDECODABLE_BODY)
    try:
        return clean_text(data.decode("utf-8")), defects
    except UnicodeDecodeError:
        if UNDECODABLE_BODY not in defects:
            defects.append(UNDECODABLE_BODY)
    return clean_text(data.decode("latin-1")), defects


def clean_text(text: str) -> str:
    """Text safe to store and index: no NUL characters, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def normalize_newlines(text: str) -> str:
    """Body text with LF line ends, whatever the sender used (CRLF, LF or bare CR)."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")
