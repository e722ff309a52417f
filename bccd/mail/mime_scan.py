"""Find one attachment's bytes inside a raw message without holding the message in memory (issue 9).

The thread stores attachment metadata (bccd.mail.message) but not the parts themselves; the raw message
is the only copy. Serving attachment n by parsing the whole message would hold every part in memory at
once — a 25 MB attachment whole, three times over. Instead this module reads the raw bytes through a
`read(offset, size)` callback, a window at a time, and builds only the skeleton of the MIME tree: each
part's headers and the byte range of its body. Boundary lines are found with `bytes.find` over each
window, so even a 33 MB base64 body costs a few C-speed scans. The parts that are attachments are then
chosen exactly as bccd.mail.message chooses them (the first text/plain and text/html are the bodies;
message/* parts are one attachment each), and the chosen range is decoded (base64, quoted-printable)
chunk by chunk.

The skeleton follows the stdlib feed parser (compat32) on well-formed mail: headers end at the first
line that is not a header, a boundary line is `--boundary` (`--` at the end for the last one) plus
optional blanks, every enclosing boundary ends an inner part, and the line break before a boundary
belongs to the boundary. On malformed mail the two may disagree; callers compare the decoded bytes with
the stored sha256 and size, and fall back to a full parse when they differ.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from bccd.mail.decoding import clean_text
from bccd.mail.headers import decode_header_value, parse_params
from bccd.mail.message import _MEDIA_TYPE  # the parser's own rule for a usable media type
from bccd.mail.mimetree import MAX_DEPTH, MAX_PARTS

Read = Callable[[int, int], bytes]

WINDOW: Final = 1 << 20  # bytes read at a time
# A header line longer than this is cut for parsing (the parser caps header values at 64 KiB too).
MAX_HEADER_LINE: Final = 128 * 1024
# A part's header section larger than this is not mail we can follow; the caller falls back.
MAX_HEADER_BYTES: Final = 1 << 20
# Longest line examined as a boundary candidate: "--" + 70 characters (RFC 2046 §5.1.1) + blanks.
_MAX_BOUNDARY_LINE: Final = 1024

_HEADER_LINE = re.compile(rb"(From |[\041-\071\073-\176]*:|[\t ])")  # the feed parser's headerRE
_EOL = re.compile(rb"\r\n|\r|\n")
_DASH_LINE = re.compile(rb"[\r\n]--")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_NOT_B64 = bytes(b for b in range(256) if b not in _B64_ALPHABET)
_STDLIB_BASE64 = "base64"
_QP = "quoted-printable"
_UU_NAMES: Final = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})


class ScanError(Exception):
    """The message cannot be followed by the streaming scan (the caller falls back to a full parse)."""


@dataclass(slots=True)
class _Part:
    headers: dict[str, str]  # first value of each header we need, lowercased names
    default_type: str
    body_start: int = 0
    body_end: int = 0
    children: list[_Part] = field(default_factory=list)
    multipart: bool = False  # the parser gave it child parts
    inner_subject: str | None = None  # message/*: the enclosed message's Subject

    def structural_type(self) -> str:
        """The type as the feed parser decides structure (Message.get_content_type, compat32)."""
        value = self.headers.get("content-type")
        if value is None:
            return self.default_type
        ctype = value.partition(";")[0].strip().lower()
        return ctype if ctype.count("/") == 1 else "text/plain"


@dataclass(frozen=True, slots=True)
class AttachmentPart:
    """Where one attachment's encoded bytes lie in the raw message, and how to decode them."""

    start: int
    end: int
    transfer_encoding: str  # normalized: "base64", "quoted-printable", or "" for the bytes as they are
    content_type: str
    name: str | None
    enclosed: bool  # a message/* part: its bytes are the enclosed message


class _Source:
    """Random access to the raw bytes, one cached window at a time."""

    def __init__(self, read: Read, size: int, window: int = WINDOW) -> None:
        self.read_at = read
        self.size = size
        self.window_size = window
        self._start = 0
        self._data = b""

    def window(self, pos: int, need: int = 1) -> tuple[int, bytes]:
        """(start, bytes) of a window holding at least `need` bytes from pos (fewer at the end)."""
        end = self._start + len(self._data)
        if not (self._start <= pos and (pos + need <= end or end >= self.size)):
            self._start = pos
            self._data = self.read_at(pos, max(self.window_size, need)) if pos < self.size else b""
        return self._start, self._data

    def line(self, pos: int, cap: int) -> tuple[bytes, int]:
        """The line starting at pos with its line break (at most `cap` bytes of it), and where the next
        line starts."""
        start, data = self.window(pos, cap + 2)
        at = pos - start
        match = _EOL.search(data, at, at + cap + 2)
        if match is not None:
            return data[at : match.end()], start + match.end()
        head = data[at : at + cap]
        # A longer line: find its end further on (a body line may be megabytes long).
        scan = pos + len(head)
        while scan < self.size:
            start, data = self.window(scan, 2)
            match = _EOL.search(data, scan - start)
            if match is not None:
                return head, start + match.end()
            scan = start + len(data) - 1 if len(data) > 1 else self.size
        return head, self.size

    def next_dash_line(self, pos: int) -> int | None:
        """The next line start at or after the line start pos whose line begins with "--"."""
        start, data = self.window(pos, 2)
        if data[pos - start : pos - start + 2] == b"--":
            return pos
        scan = pos
        while scan < self.size:
            start, data = self.window(scan, 3)
            match = _DASH_LINE.search(data, scan - start)
            if match is not None:
                return start + match.start() + 1
            if start + len(data) >= self.size:
                return None
            scan = start + len(data) - 2  # the pattern is 3 bytes: overlap the windows
        return None

    def eol_before(self, pos: int) -> int:
        """Length of the line break that ends just before pos (0, 1 or 2)."""
        if pos <= 0:
            return 0
        start, data = self.window(max(0, pos - 2), 2)
        tail = data[pos - 2 - start : pos - start] if pos >= 2 else data[:pos]
        if tail.endswith(b"\r\n"):
            return 2
        return 1 if tail.endswith((b"\n", b"\r")) else 0


def _boundary_matcher(boundary: str) -> re.Pattern[bytes]:
    sep = re.escape(("--" + boundary).encode("ascii", "surrogateescape"))
    return re.compile(sep + rb"(?P<end>--)?[ \t]*(?:\r\n|\n|\r)?\Z")


_WANTED = frozenset({"content-type", "content-disposition", "content-transfer-encoding", "subject"})


class _Scanner:
    def __init__(self, source: _Source) -> None:
        self.src = source
        self.parts = 0

    def _matches(self, line: bytes, stack: list[re.Pattern[bytes]]) -> re.Match[bytes] | None:
        for pattern in reversed(stack):
            found = pattern.match(line)
            if found is not None:
                return found
        return None

    def headers(self, pos: int, stack: list[re.Pattern[bytes]]) -> tuple[dict[str, str], int]:
        """The wanted headers of the entity at pos and where its body starts."""
        found: dict[str, str] = {}
        current: list[bytes] = []
        start = pos

        def finish() -> None:
            if current:
                name, _, value = b"".join(current).partition(b":")
                key = name.decode("ascii", "surrogateescape").lower()
                if key in _WANTED and key not in found:
                    text = value.lstrip(b" \t").rstrip(b"\r\n").decode("ascii", "surrogateescape")
                    found[key] = text
                current.clear()

        while pos < self.src.size:
            if pos - start > MAX_HEADER_BYTES:
                raise ScanError("header section too large")
            line, after = self.src.line(pos, MAX_HEADER_LINE)
            if stack and self._matches(line, stack) is not None:
                break  # an enclosing boundary: this entity has no body
            if not _HEADER_LINE.match(line):
                if _EOL.match(line):
                    pos = after  # the blank line separating headers and body
                break  # anything else starts the body (a missing separator)
            if line[:1] in b" \t":
                if current:  # a continuation before any header is dropped, as the parser does
                    current.append(line)
            elif not line.startswith(b"From "):  # mbox "From " lines are never headers
                finish()
                current.append(line)
            pos = after
        finish()
        return found, pos

    def body_end(self, pos: int, stack: list[re.Pattern[bytes]]) -> int:
        """Where the body starting at pos ends: at the next enclosing boundary line, or the end."""
        while stack:
            candidate = self.src.next_dash_line(pos)
            if candidate is None:
                break
            line, after = self.src.line(candidate, _MAX_BOUNDARY_LINE)
            if self._matches(line, stack) is not None:
                return candidate
            pos = after
        return self.src.size

    def entity(
        self, pos: int, default_type: str, stack: list[re.Pattern[bytes]], depth: int
    ) -> tuple[_Part, int]:
        """Parse one entity at pos; returns it and the position where its parent continues."""
        self.parts += 1
        if self.parts > MAX_PARTS or depth > MAX_DEPTH:
            raise ScanError("past the parser's part limits")
        headers, body = self.headers(pos, stack)
        part = _Part(headers, default_type, body_start=body)
        ctype = part.structural_type()
        if ctype.startswith("multipart/"):
            boundary = parse_params(headers.get("content-type", ""))[1].get("boundary")
            if boundary is not None:
                return part, self.multipart(part, boundary.rstrip(), stack, depth)
        if ctype.startswith("message/"):
            inner, _ = self.headers(body, stack)
            part.inner_subject = inner.get("subject")
        part.body_end = self.body_end(body, stack)
        return part, part.body_end

    def multipart(self, part: _Part, boundary: str, stack: list[re.Pattern[bytes]], depth: int) -> int:
        own = _boundary_matcher(boundary)
        inner_stack = [*stack, own]
        digest = part.structural_type() == "multipart/digest"
        pos = part.body_start
        # Preamble: up to the first line that is this boundary (enclosing ones end the part).
        while True:
            candidate = self.src.next_dash_line(pos)
            if candidate is None:
                part.body_end = self.src.size  # no start boundary: the parser keeps the body as text
                return self.src.size
            line, after = self.src.line(candidate, _MAX_BOUNDARY_LINE)
            if self._matches(line, stack) is not None:
                part.body_end = candidate
                return candidate
            found = own.match(line)
            if found is not None and found.group("end"):
                # "--b--" before any part: the preamble is the text body, the rest is epilogue.
                part.body_end = candidate
                return self.body_end(after, stack)
            if found is not None:
                pos = after
                break
            pos = after
        part.multipart = True
        while True:
            # Further boundary lines right after a boundary are skipped, as the parser does.
            while pos < self.src.size:
                line, after = self.src.line(pos, _MAX_BOUNDARY_LINE)
                if own.match(line) is None:
                    break
                pos = after
            child, stop = self.entity(
                pos, "message/rfc822" if digest else "text/plain", inner_stack, depth + 1
            )
            if not child.multipart:
                child.body_end = max(child.body_start, child.body_end - self.src.eol_before(child.body_end))
            part.children.append(child)
            if stop >= self.src.size:
                return self.src.size  # no close boundary (CloseBoundaryNotFound)
            line, after = self.src.line(stop, _MAX_BOUNDARY_LINE)
            found = own.match(line)
            if found is None:
                return stop  # an enclosing boundary ended this multipart early
            if found.group("end"):
                # Epilogue up to the enclosing boundary.
                return self.body_end(after, stack)
            pos = after


def _attachment(part: _Part, enclosed: bool) -> AttachmentPart:
    headers = part.headers
    type_value = headers.get("content-type")
    content_type, type_params = parse_params(type_value) if type_value is not None else ("", {})
    if type_value is None:
        content_type = part.default_type
    elif not _MEDIA_TYPE.fullmatch(content_type):
        content_type = "text/plain"
    disposition_value = headers.get("content-disposition")
    _, disposition_params = parse_params(disposition_value) if disposition_value else ("", {})
    filename = disposition_params.get("filename") or type_params.get("name")
    name = clean_text(decode_header_value(filename)) if filename else None
    if enclosed and name is None and part.inner_subject is not None:
        name = decode_header_value(part.inner_subject) or None
    cte = headers.get("content-transfer-encoding", "").strip().lower()
    if cte in _UU_NAMES:
        raise ScanError("uuencoded part")
    encoding = cte if cte in (_STDLIB_BASE64, _QP) else ""
    return AttachmentPart(part.body_start, part.body_end, encoding, content_type, name or None, enclosed)


def _select(root: _Part) -> list[AttachmentPart]:
    """The attachments in message.attachments order: bccd.mail.message._Bodies' walk over the skeleton."""
    found: list[AttachmentPart] = []
    have_text = have_html = False
    stack = [root]
    while stack:
        part = stack.pop()
        headers = part.headers
        type_value = headers.get("content-type")
        content_type, _ = parse_params(type_value) if type_value is not None else ("", {})
        if type_value is None:
            content_type = part.default_type
        elif not _MEDIA_TYPE.fullmatch(content_type):
            content_type = "text/plain"
        maintype = content_type.partition("/")[0]
        structural = part.structural_type()
        if structural.startswith("message/"):
            found.append(_attachment(part, enclosed=True))
            continue  # its parts belong to the enclosed message
        if part.multipart:
            stack.extend(reversed(part.children))
            continue
        disposition_value = headers.get("content-disposition")
        disposition, dparams = parse_params(disposition_value) if disposition_value else ("", {})
        tparams = parse_params(type_value)[1] if type_value is not None else {}
        filename = dparams.get("filename") or tparams.get("name")
        is_text = maintype == "multipart" or content_type in ("text/plain", "text/html")
        if is_text and disposition != "attachment" and not filename:
            html = content_type == "text/html"
            if not (have_html if html else have_text):
                if html:
                    have_html = True
                else:
                    have_text = True
                continue
        found.append(_attachment(part, enclosed=False))
    return found


def locate_attachments(read: Read, size: int, *, window: int = WINDOW) -> list[AttachmentPart]:
    """Every attachment of the raw message of `size` bytes, in message.attachments order."""
    scanner = _Scanner(_Source(read, size, window))
    try:
        root, _ = scanner.entity(0, "text/plain", [], 0)
    except RecursionError as exc:  # pragma: no cover - MAX_DEPTH keeps the recursion shallow
        raise ScanError("too deep") from exc
    return _select(root)


class _Decoder:
    def feed(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _Base64(_Decoder):
    """Incremental base64 as the stdlib decodes mail: characters outside the alphabet are skipped."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        text = self.pending + data.translate(None, _NOT_B64)
        usable = len(text) - len(text) % 4
        self.pending = text[usable:]
        return binascii.a2b_base64(text[:usable]) if usable else b""

    def flush(self) -> bytes:
        rest, self.pending = self.pending, b""
        if not rest:
            return b""
        try:
            return binascii.a2b_base64(rest + b"=" * (-len(rest) % 4))
        except binascii.Error:
            return b""


class _QuotedPrintable(_Decoder):
    """Incremental quoted-printable, one whole line at a time (soft breaks end a line too)."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        text = self.pending + data
        cut = text.rfind(b"\n") + 1
        self.pending = text[cut:]
        return binascii.a2b_qp(text[:cut]) if cut else b""

    def flush(self) -> bytes:
        rest, self.pending = self.pending, b""
        return binascii.a2b_qp(rest) if rest else b""


def decoder_for(part: AttachmentPart) -> _Decoder:
    if part.transfer_encoding == _STDLIB_BASE64:
        return _Base64()
    if part.transfer_encoding == _QP:
        return _QuotedPrintable()
    return _Decoder()


def decoded_chunks(read: Read, part: AttachmentPart, chunk: int = WINDOW) -> Iterator[bytes]:
    """The attachment's decoded bytes, read and decoded `chunk` encoded bytes at a time."""
    decoder = decoder_for(part)
    pos = part.start
    while pos < part.end:
        data = read(pos, min(chunk, part.end - pos))
        if not data:
            break
        pos += len(data)
        out = decoder.feed(data)
        if out:
            yield out
    tail = decoder.flush()
    if tail:
        yield tail


def attachment_by_full_parse(raw: bytes, index: int) -> bytes | None:
    """Attachment `index`'s decoded bytes from a full parse: the fallback for mail the scan misreads.

    Holds the whole message and its parts in memory, so callers use it on small messages only.
    """
    from bccd.mail.message import _Bodies  # the parser's own walk: its numbering is the reference
    from bccd.mail.mimetree import parse_tree

    captured: list[bytes] = []

    class _Capture(_Bodies):
        def _attach(self, name: str | None, content_type: str, disposition: str, data: bytes) -> None:
            super()._attach(name, content_type, disposition, data)
            captured.append(data)

    root, _ = parse_tree(raw)
    _Capture(set()).walk(root)
    return captured[index] if 0 <= index < len(captured) else None
