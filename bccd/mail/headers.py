"""Header values as text: RFC 2047 decoding, raw UTF-8 (RFC 6532), MIME parameters and address lists.

Every function here is linear in its input and never raises: header values come from anyone.
"""

from __future__ import annotations

import re
from email.header import Header, decode_header
from email.utils import getaddresses
from functools import lru_cache
from urllib.parse import unquote_to_bytes

from bccd.mail.addresses import MailAddress, normalize_address
from bccd.mail.decoding import decode_base64, decode_quoted_printable, decode_text

# Longest header value we hand to a parser. RFC 5322 §2.1.1 caps a line at 998 characters but a folded
# header has no limit; this keeps the pure-Python address parser (about 2 µs a character) bounded on
# hostile input while leaving room for some 1,500 recipients in one To header (SPEC S6).
MAX_HEADER_CHARS = 65_536

_CRLF = re.compile(r"[\r\n]+[ \t]*")
_SPACES = re.compile(r"[ \t]{2,}")
# RFC 2047 §2 encoded-word. Lenient as mail clients are: spaces inside the encoded text are tolerated;
# the charset is bounded so that a stray "=?" cannot make the scan quadratic.
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?]*+)\?=")
# One token of a parameter list: a quoted string (its end quote optional, since senders forget it),
# a run of ordinary characters, or a separator. Possessive, so every character is looked at once.
_PARAM_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+"?|[^;"]++|;', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
# The address forms nearly all mail uses: "Name <a@b>", "\"Quoted, Name\" <a@b>", "a@b". These are
# split here by one linear regex; anything else (comments, groups, quoted local parts, domain
# literals) goes to email.utils.getaddresses, which is exact but about ten times slower.
_ATOM = r"[^\s<>()\[\]\",;:@\\.]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_FAST_ENTRY = re.compile(
    rf"""[ \t]*(?:
        (?:"(?P<quoted>(?:[^"\\]|\\.)*+)"|(?P<plain>[^"<>()\[\],;:@\\]*))
            [ \t]*<[ \t]*(?P<angle>{_DOT_ATOM}@{_DOT_ATOM})[ \t]*>
        |(?P<bare>{_DOT_ATOM}@{_DOT_ATOM})
        |(?=,)
    )[ \t]*(?:,|\Z)""",
    re.VERBOSE | re.DOTALL,
)
_MAX_2231_INDEX_DIGITS = 3  # RFC 2231 continuations past *999 are not real mail


def decode_header_value(raw: str | Header | None) -> str:
    """Decode one header value into display text: encoded-words decoded, folding and CR/LF removed."""
    if raw is None:
        return ""
    if isinstance(raw, Header):
        # str(Header) replaces raw 8-bit bytes with U+FFFD; its chunks still hold the bytes.
        text = "".join(decode_text(chunk, charset)[0] for chunk, charset in _header_chunks(raw))
    else:
        text = _unsurrogate(raw)
    if "=?" in text:
        text = _decode_encoded_words(text)
    text = _CRLF.sub(" ", text)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text.strip()


def header_text(raw: str) -> str:
    """A header value as text without RFC 2047 decoding (for Message-ID and the like): 8-bit bytes read
    as UTF-8, folding and CR/LF removed."""
    text = _CRLF.sub(" ", _unsurrogate(raw))
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text.strip()


def _header_chunks(header: Header) -> list[tuple[bytes, str | None]]:
    pairs: list[tuple[bytes, str | None]] = []
    for chunk, charset in decode_header(header):
        data = chunk if isinstance(chunk, bytes) else _to_bytes(chunk)
        pairs.append((data, charset))
    return pairs


def _decode_encoded_words(text: str) -> str:
    out: list[str] = []
    # Adjacent words in one charset are decoded together: encoders split multi-byte characters
    # across words (RFC 2047 §5 forbids it; Outlook and others do it anyway).
    run = bytearray()
    run_charset: str | None = None
    pos = 0
    after_word = False
    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        # Whitespace between two encoded-words is not text (RFC 2047 §6.2).
        adjacent = after_word and (not gap or gap.isspace())
        charset = match.group(1).partition("*")[0].lower()  # RFC 2231 §5 language suffix
        if run_charset is not None and (charset != run_charset or not adjacent):
            out.append(decode_text(bytes(run), run_charset)[0])
            run.clear()
            run_charset = None
        if not adjacent:
            out.append(gap)
        encoded = match.group(3).encode("utf-8", "replace")
        if match.group(2) in "bB":
            run += decode_base64(encoded)[0]
        else:
            run += decode_quoted_printable(encoded, header=True)[0]
        run_charset = charset
        pos = match.end()
        after_word = True
    if run_charset is not None:
        out.append(decode_text(bytes(run), run_charset)[0])
    out.append(text[pos:])
    return "".join(out)


def _unsurrogate(text: str) -> str:
    """compat32 turns 8-bit header bytes into surrogate escapes; turn them back into UTF-8 text."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return decode_text(_to_bytes(text), "utf-8")[0]
    return text


def _to_bytes(text: str) -> bytes:
    """The bytes behind a compat32 string: surrogate escapes back to the 8-bit bytes they stand for."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no byte stands for; not from the parser
        return text.encode("utf-8", "replace")


def clean_display_name(name: str, address: str | None) -> str | None:
    """A display name worth keeping: none when empty or merely the address again."""
    name = _SPACES.sub(" ", name.replace("\t", " ")).strip().strip("'\"").strip()
    if not name:
        return None
    if address is not None and normalize_address(name) == address:
        return None
    return name


# Header values up to this long are memoised: the same From/To lines recur in every delivery.
_MEMO_MAX_CHARS = 1000


def parse_address_list(values: list[str] | str | None) -> tuple[MailAddress, ...]:
    """Parse one or more address-list header values; entries that are not addresses are dropped."""
    if values is None:
        return ()
    key = (values,) if isinstance(values, str) else tuple(str(v) for v in values)
    if sum(len(v) for v in key) <= _MEMO_MAX_CHARS:
        return _parse_memo(key)
    return _parse_address_list(key)


@lru_cache(maxsize=4096)
def _parse_memo(values: tuple[str, ...]) -> tuple[MailAddress, ...]:
    return _parse_address_list(values)


def _parse_address_list(values: tuple[str, ...]) -> tuple[MailAddress, ...]:
    decoded = [_unsurrogate(_CRLF.sub(" ", str(v))) for v in values]
    if sum(len(v) for v in decoded) > MAX_HEADER_CHARS:
        decoded = [_truncate_list(", ".join(decoded))]
    result: list[MailAddress] = []
    seen: set[str] = set()
    pairs = _split_common_forms(", ".join(decoded).strip())
    if pairs is None:
        try:
            pairs = getaddresses(decoded)
        except Exception:  # nested comments exhaust its recursion, newer Pythons are strict: give up
            pairs = []
    for name, addr in pairs:
        norm = normalize_address(addr)
        if norm is None or norm in seen or not _printable(norm):
            continue
        seen.add(norm)
        result.append(MailAddress(norm, clean_display_name(decode_header_value(name), norm)))
    return tuple(result)


def _printable(address: str) -> bool:
    # IDNA nameprep can turn a character into a space (U+00B4 becomes " \u0301"), so a domain that went
    # in without whitespace may come out with some.
    return address.isprintable() and " " not in address


def _split_common_forms(text: str) -> list[tuple[str, str]] | None:
    """(name, address) pairs as getaddresses would give them, or None when the list is not simple."""
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while pos < end:
        match = _FAST_ENTRY.match(text, pos)
        if match is None or match.end() == pos:
            return None
        pos = match.end()
        if match["bare"] is not None:
            pairs.append(("", match["bare"]))
        elif match["angle"] is not None:
            quoted = match["quoted"]
            if quoted is not None:
                name = _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted
            else:
                name = " ".join(match["plain"].split())
            pairs.append((name, match["angle"]))
    return pairs


def _truncate_list(text: str) -> str:
    """Cut an over-long address list at the last comma within the limit, keeping whole entries."""
    head = text[:MAX_HEADER_CHARS]
    comma = head.rfind(",")
    return head[:comma] if comma > 0 else head


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type or Content-Disposition value into its lowercased main value and parameters.

    Parameter names are lowercased. RFC 2231 values (``name*``, ``name*0*``…) are joined and decoded
    to text and win over a plain value of the same name; plain values are unquoted and otherwise left
    as they came (8-bit bytes stay surrogate-escaped, encoded-words stay encoded), since a boundary must
    match the body byte for byte. Linear in the input, unlike ``Message.get_param``, which is quadratic
    on a long quoted value full of semicolons.
    """
    text = value[:MAX_HEADER_CHARS]
    if "\n" in text or "\r" in text:
        text = _CRLF.sub(" ", text)
    main, separator, rest = text.partition(";")
    if not separator:
        return main.strip().lower(), {}
    if '"' in rest:
        segments: list[str] = []
        current: list[str] = []
        for match in _PARAM_TOKEN.finditer(rest):
            piece = match.group()
            if piece == ";":
                segments.append("".join(current))
                current = []
            else:
                current.append(piece)
        segments.append("".join(current))
    else:
        segments = rest.split(";")
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    pieces: dict[str, dict[int, tuple[str, bool]]] = {}
    for segment in segments:
        name, eq, raw_value = segment.partition("=")
        name = name.strip().lower()
        if not name or not eq:
            continue
        param_value = _unquote(raw_value.strip())
        base, star, suffix = name.partition("*")
        if not star:
            plain.setdefault(name, param_value)
        elif not suffix:
            extended.setdefault(base, _join_2231({0: (param_value, True)}))
        else:
            index, encoded = (suffix[:-1], True) if suffix.endswith("*") else (suffix, False)
            if index.isascii() and index.isdigit() and len(index) <= _MAX_2231_INDEX_DIGITS:
                pieces.setdefault(base, {}).setdefault(int(index), (param_value, encoded))
    for base, parts in pieces.items():
        extended.setdefault(base, _join_2231(parts))
    plain.update(extended)
    return main.strip().lower(), plain


def _unquote(value: str) -> str:
    if not value.startswith('"'):
        return value
    inner = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
    return _QUOTED_PAIR.sub(r"\1", inner) if "\\" in inner else inner


def _join_2231(parts: dict[int, tuple[str, bool]]) -> str:
    """Join RFC 2231 §3-4 pieces; the first encoded piece may carry charset'language'."""
    charset: str | None = None
    data = bytearray()
    for position, index in enumerate(sorted(parts)):
        text, encoded = parts[index]
        if encoded and position == 0 and text.count("'") >= 2:
            charset, _language, text = text.split("'", 2)
        raw = _to_bytes(text)
        data += unquote_to_bytes(raw) if encoded else raw
    return decode_text(bytes(data), charset or None)[0]
