"""Parse raw mail bytes into a ParsedMessage (headers, main bodies, attachments, defects); never raises.

This runs on the SMTP DATA path, so it parses with compat32 (see mimetree) and decodes only what the
thread keeps: the top-level headers, the first text/plain and text/html bodies, and a hash of every
other part. Forwarded originals stay in ``message`` for the forward detector to walk.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.generator import BytesGenerator
from email.message import Message
from email.policy import compat32
from email.utils import parsedate_tz
from functools import lru_cache

from bccd.mail.addresses import MailAddress
from bccd.mail.decoding import (
    BAD_TRANSFER_ENCODING,
    clean_text,
    decode_quoted_printable,
    decode_text,
    decode_transfer,
    normalize_newlines,
)
from bccd.mail.headers import (
    MAX_HEADER_CHARS,
    decode_header_value,
    header_text,
    parse_address_list,
    parse_params,
)
from bccd.mail.mimetree import MAX_DEPTH, MAX_PARTS, TOO_MANY_PARTS, parse_tree

# Our own defect names; the email package's come out of _defect_name.
MISSING_FROM = "missing_from"
UNPARSEABLE_FROM = "unparseable_from"
MISSING_DATE = "missing_date"
UNPARSEABLE_DATE = "unparseable_date"
MISSING_MESSAGE_ID = "missing_message_id"
HEADER_TOO_LONG = "header_too_long"
NUL_BYTE = "nul_byte"  # RFC 5322 §2.3 forbids NUL anywhere in a message
INVALID_CONTENT_TYPE = "invalid_content_type"
PARSE_FAILED = "parse_failed"

_TOP_HEADERS = frozenset({"message-id", "date", "from", "sender", "to", "cc", "reply-to", "subject"})
_PART_HEADERS = frozenset({"content-type", "content-disposition", "content-transfer-encoding"})
_ADDRESS_HEADERS = ("from", "sender", "to", "cc", "reply-to")
_SUBJECT = frozenset({"subject"})
_MESSAGE_ID = re.compile(r"<([^<>]*)>")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# RFC 6838 §4.2 restricted-name characters; anything else is not a media type we should store.
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_TOKEN = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}")
# The CTE names Message.get_payload(decode=True) acts on, compared exactly as it compares them.
_STDLIB_DECODED = frozenset({"base64", "quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue"})


@dataclass(frozen=True, slots=True)
class Attachment:
    """A part that is not one of the main bodies, identified by its decoded content."""

    name: str | None
    content_type: str
    size: int  # decoded bytes
    sha256: str  # hex of decoded bytes
    disposition: str | None = None  # "attachment", "inline" or None when the part did not say


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything a thread keeps from one message's bytes (SPEC §3)."""

    message_id: str | None
    date_header: str | None
    date: datetime | None
    from_: tuple[MailAddress, ...]
    sender: tuple[MailAddress, ...]
    to: tuple[MailAddress, ...]
    cc: tuple[MailAddress, ...]
    reply_to: tuple[MailAddress, ...]
    subject: str
    text_body: str | None
    html_body: str | None
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]
    size: int
    message: Message = field(compare=False, repr=False)


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one message. Never raises, whatever the bytes (SPEC S6, T4)."""
    try:
        return _parse(bytes(raw))
    except Exception:  # last line of defence: the raw bytes are stored whatever happens here
        return _unparsed(raw)


def _unparsed(raw: bytes) -> ParsedMessage:
    return ParsedMessage(
        message_id=None,
        date_header=None,
        date=None,
        from_=(),
        sender=(),
        to=(),
        cc=(),
        reply_to=(),
        subject="",
        text_body=None,
        html_body=None,
        attachments=(),
        defects=(PARSE_FAILED,),
        size=len(raw),
        message=Message(policy=compat32),
    )


def _parse(raw: bytes) -> ParsedMessage:
    root, tree_defects = parse_tree(raw)
    defects = set(tree_defects)
    if b"\x00" in raw:
        defects.add(NUL_BYTE)
    headers = _collect_headers(root, _TOP_HEADERS)
    for values in headers.values():
        if sum(len(value) for value in values) > MAX_HEADER_CHARS:
            defects.add(HEADER_TOO_LONG)
    addresses = {name: parse_address_list(headers.get(name)) for name in _ADDRESS_HEADERS}
    if "from" not in headers:
        defects.add(MISSING_FROM)
    elif not addresses["from"]:
        defects.add(UNPARSEABLE_FROM)
    message_id = _message_id(headers.get("message-id"))
    if message_id is None:
        defects.add(MISSING_MESSAGE_ID)
    date_header = _first_decoded(headers.get("date")) or None
    date = _parse_date(date_header) if date_header else None
    if "date" not in headers:
        defects.add(MISSING_DATE)
    elif date is None:
        defects.add(UNPARSEABLE_DATE)
    bodies = _Bodies(defects)
    bodies.walk(root)
    return ParsedMessage(
        message_id=message_id,
        date_header=date_header,
        date=date,
        from_=addresses["from"],
        sender=addresses["sender"],
        to=addresses["to"],
        cc=addresses["cc"],
        reply_to=addresses["reply-to"],
        subject=_first_decoded(headers.get("subject")) or "",
        text_body=bodies.text,
        html_body=bodies.html,
        attachments=tuple(bodies.attachments),
        defects=tuple(sorted(defects)),
        size=len(raw),
        message=root,
    )


def _collect_headers(part: Message, wanted: frozenset[str]) -> dict[str, list[str]]:
    """The wanted headers' raw values in one pass (Message.get rescans every header on each call)."""
    found: dict[str, list[str]] = {}
    for name, value in part.raw_items():
        key = name.lower()
        if key in wanted:
            found.setdefault(key, []).append(value if isinstance(value, str) else str(value))
    return found


def _first_decoded(values: list[str] | None) -> str | None:
    if not values:
        return None
    return decode_header_value(values[0][:MAX_HEADER_CHARS])


def _message_id(values: list[str] | None) -> str | None:
    """The first Message-ID without its angle brackets; not RFC 2047-decoded, as ids are opaque."""
    if not values:
        return None
    text = header_text(values[0][:MAX_HEADER_CHARS])
    match = _MESSAGE_ID.search(text)
    found = match.group(1) if match else text.replace("<", "").replace(">", "")
    return "".join(found.split()) or None


def _parse_date(text: str) -> datetime | None:
    """RFC 5322 §3.3 date (obsolete forms included) as an aware datetime; no zone is read as UTC."""
    try:
        fields = parsedate_tz(text)
        if fields is None:
            return None
        year, month, day, hour, minute, second = fields[:6]
        offset = fields[9]
        zone = UTC if offset is None else timezone(timedelta(seconds=offset))
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=zone)  # leap second
    except (ValueError, OverflowError, TypeError, IndexError):
        return None


@lru_cache(maxsize=128)
def _defect_name(class_name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", class_name).lower()


class _Bodies:
    """One walk over the tree: picks the main bodies, hashes the rest, gathers every part's defects."""

    def __init__(self, defects: set[str]) -> None:
        self.defects = defects
        self.text: str | None = None
        self.html: str | None = None
        self.attachments: list[Attachment] = []

    def walk(self, root: Message) -> None:
        # Explicit stack: the tree may be up to MAX_DEPTH deep and we must not recurse on input.
        stack: list[tuple[Message, bool]] = [(root, False)]
        seen = 0
        while stack:
            part, enclosed = stack.pop()
            seen += 1
            if seen > MAX_PARTS:
                self.defects.add(TOO_MANY_PARTS)
                break
            children = _children(part)
            if not enclosed:
                enclosed = self._visit(part, children)
            stack.extend((child, enclosed) for child in reversed(children))
            self.defects.update(_defect_name(type(defect).__name__) for defect in part.defects)

    def _visit(self, part: Message, children: list[Message]) -> bool:
        """Take a body or record an attachment; True when the part encloses a message of its own."""
        headers = _collect_headers(part, _PART_HEADERS)
        type_value = headers["content-type"][0] if "content-type" in headers else None
        content_type, type_params = parse_params(type_value) if type_value is not None else ("", {})
        if type_value is None:
            content_type = part.get_default_type()
        elif not _MEDIA_TYPE.fullmatch(content_type):
            # RFC 2045 §5.2: read an invalid Content-Type as the default, text/plain.
            self.defects.add(INVALID_CONTENT_TYPE)
            content_type = "text/plain"
        maintype = content_type.partition("/")[0]
        if children and maintype != "message":
            return False  # a container; its children are visited in turn
        disposition_value = headers["content-disposition"][0] if "content-disposition" in headers else None
        disposition, disposition_params = parse_params(disposition_value) if disposition_value else ("", {})
        filename = disposition_params.get("filename") or type_params.get("name")
        name = clean_text(decode_header_value(filename)) if filename else None
        if children:
            if name is None:
                subject = _collect_headers(children[0], _SUBJECT).get("subject")
                name = _first_decoded(subject)
            self._attach(name, content_type, disposition, _enclosed_bytes(children))
            return True
        cte = headers.get("content-transfer-encoding", [""])[0]
        data = self._leaf_bytes(part, cte)
        is_text = maintype == "multipart" or content_type in ("text/plain", "text/html")
        if is_text and disposition != "attachment" and not filename:
            # A multipart that lost its boundary holds readable text: better shown than hashed.
            html = content_type == "text/html"
            if (self.html if html else self.text) is None:
                text, problems = decode_text(data, type_params.get("charset"))
                self.defects.update(problems)
                if html:
                    self.html = normalize_newlines(text)
                else:
                    self.text = normalize_newlines(text)
                return False
        self._attach(name, content_type, disposition, data)
        return False

    def _leaf_bytes(self, part: Message, cte: str) -> bytes:
        stdlib_cte = cte.lower()
        before = len(part.defects)
        try:
            data = part.get_payload(decode=True)
        except Exception:  # it fails on a part the parser never finished (a limit was hit)
            return b""
        if not isinstance(data, bytes):
            return b""
        if stdlib_cte not in _STDLIB_DECODED:
            # The stdlib handed back the raw bytes; it misses names with stray spaces or odd case.
            data, problems = decode_transfer(data, stdlib_cte)
            self.defects.update(problems)
        elif len(part.defects) > before:  # the stdlib's base64 decoder met bad input
            self.defects.add(BAD_TRANSFER_ENCODING)
        elif stdlib_cte == "quoted-printable" and b"=" in data:
            # a2b_qp copies a malformed escape through, so without "=" in its output there was none.
            raw = part.get_payload()
            if isinstance(raw, str) and not decode_quoted_printable(raw.encode("utf-8", "replace"))[1]:
                self.defects.add(BAD_TRANSFER_ENCODING)
        return data

    def _attach(self, name: str | None, content_type: str, disposition: str, data: bytes) -> None:
        self.attachments.append(
            Attachment(
                name=name or None,
                content_type=content_type,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                disposition=disposition if _TOKEN.fullmatch(disposition) else None,
            )
        )


def _children(part: Message) -> list[Message]:
    if not part.is_multipart():
        return []
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else []


class _SourceHeaders(BytesGenerator):
    """Regenerates a parsed message with each header line as received. compat32's generator refolds every
    header through email.header.Header, which cost as much as parsing the whole message (issue 13)."""

    def _write_headers(self, msg: Message) -> None:
        linesep = self.policy.linesep if self.policy is not None else "\n"
        for name, value in msg.raw_items():
            if isinstance(value, str):
                self.write(f"{name}: {value}{linesep}")
            else:
                self.write(self.policy.fold(name, value))
        self.write(linesep)


def _enclosed_bytes(children: list[Message]) -> bytes:
    """The bytes of an enclosed message, regenerated: compat32 keeps the tree, not the source slice."""
    chunks: list[bytes] = []
    for child in children:
        try:
            fast = _flat_text(child)
            chunks.append(fast.encode("ascii", "surrogateescape") if fast is not None else _generated(child))
        except Exception:  # a tree cut short by a limit may not regenerate; hash what does
            chunks.append(b"")
    return b"\n".join(chunks)


def _generated(part: Message) -> bytes:
    out = io.BytesIO()
    _SourceHeaders(out, mangle_from_=False, policy=compat32).flatten(part)
    return out.getvalue()


def _lf(text: str) -> str:
    """Every line ending (CRLF, CR, LF) as LF, as email.generator writes lines (its `\r\n|\r|\n` split)
    at a fraction of the regular expression's cost."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


# Content types _SourceHeaders writes with handlers other than its text one (message/*, multipart/signed).
_GENERATOR_SPECIAL = frozenset({"message"})


def _flat_text(part: Message, depth: int = 0) -> str | None:
    """What `_generated` writes for `part` (before its ASCII/surrogateescape encoding), for the common
    parts only: headers held as plain strings, text leaves of ASCII text (no 8-bit bytes, which the
    generator may re-encode) and multiparts of such with a boundary. None for anything else, which then
    goes through the generator (issue 13: the generator cost ~5 % of a delivery's CPU; the output is the
    same byte for byte, tests/test_enclosed_bytes.py checks it against the generator on the corpora)."""
    if depth > MAX_DEPTH:
        return None
    out: list[str] = []
    for name, value in part.raw_items():
        if not isinstance(value, str):
            return None
        out.append(f"{name}: {value}\n")
    out.append("\n")
    maintype = part.get_content_maintype()
    payload = part._payload  # type: ignore[attr-defined]  # what the generator itself reads
    if maintype in _GENERATOR_SPECIAL or part.get_content_type() == "multipart/signed":
        return None
    if maintype == "multipart":
        if not isinstance(payload, list):
            return None
        texts: list[str] = []
        for sub in payload:
            if not isinstance(sub, Message):
                return None
            text = _flat_text(sub, depth + 1)
            if text is None:
                return None
            texts.append(text)
        boundary = part.get_boundary()
        if not boundary:
            return None  # the generator would make one up
        if part.preamble is not None:
            if not isinstance(part.preamble, str):
                return None
            out.append(_lf(part.preamble) + "\n")
        out.append(f"--{boundary}\n")
        out.append(f"\n--{boundary}\n".join(texts))
        out.append(f"\n--{boundary}--\n")
        if part.epilogue is not None:
            if not isinstance(part.epilogue, str):
                return None
            out.append(_lf(part.epilogue))
        return "".join(out)
    if payload is None:
        return "".join(out)
    if not isinstance(payload, str) or not payload.isascii():
        return None
    out.append(_lf(payload))
    return "".join(out)
