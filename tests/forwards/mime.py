"""Small MIME writer and reader for the forward corpus: raw .eml bytes out, text/HTML bodies back in."""

from __future__ import annotations

import base64
import email.message
import quopri
from dataclasses import dataclass, field
from email.header import Header
from email.parser import BytesParser
from email.policy import compat32

_ATTACHED = ("message/rfc822", "message/global")


@dataclass
class Part:
    """One MIME leaf: a body in a charset and transfer encoding, or an attached message."""

    ctype: str
    body: str | bytes
    charset: str | None = "utf-8"
    encoding: str = "quoted-printable"  # quoted-printable | base64 | 8bit | 7bit
    filename: str | None = None
    params: str = ""

    def render(self) -> bytes:
        head = f"Content-Type: {self.ctype}"
        if self.charset:
            head += f'; charset="{self.charset}"'
        if self.filename:
            head += f'; name="{self.filename}"'
        head += self.params
        lines = [head, f"Content-Transfer-Encoding: {self.encoding}"]
        if self.filename:
            lines.append(f'Content-Disposition: attachment; filename="{self.filename}"')
        data = self.body if isinstance(self.body, bytes) else self.body.encode(self.charset or "utf-8")
        if self.encoding == "quoted-printable":
            data = quopri.encodestring(data)
        elif self.encoding == "base64":
            data = base64.encodebytes(data)
        return ("\n".join(lines) + "\n\n").encode("ascii") + data


@dataclass
class Multipart:
    subtype: str
    parts: list[Part | Multipart] = field(default_factory=list)
    params: str = ""

    def render(self, boundary_seed: str = "b") -> bytes:
        boundary = f"=_{boundary_seed}_{self.subtype}_{len(self.parts)}"
        out = [
            f'Content-Type: multipart/{self.subtype}; boundary="{boundary}"{self.params}\n\n'.encode("ascii")
        ]
        for index, part in enumerate(self.parts):
            out.append(f"--{boundary}\n".encode("ascii"))
            body = part.render(f"{boundary_seed}{index}") if isinstance(part, Multipart) else part.render()
            out.append(body.rstrip(b"\n") + b"\n")
        out.append(f"--{boundary}--\n".encode("ascii"))
        return b"".join(out)


def encode_header(value: str, raw_utf8: bool = False) -> str:
    """RFC 2047 for non-ASCII text, unless the message is meant to carry raw UTF-8 headers (RFC 6532)."""
    if value.isascii() or raw_utf8:
        return value
    return Header(value, "utf-8", maxlinelen=998).encode()


def encode_address(name: str | None, address: str, raw_utf8: bool = False) -> str:
    if not name:
        return address
    if any(c in name for c in ",.\"()<>@;:'"):
        quoted = '"' + name.replace('"', '\\"') + '"'
        # A quoted string only for ASCII or raw UTF-8; otherwise one encoded-word, which may hold commas.
        shown = encode_header(quoted, raw_utf8) if raw_utf8 or name.isascii() else encode_header(name)
        return f"{shown} <{address}>"
    return f"{encode_header(name, raw_utf8)} <{address}>"


def build_message(headers: list[tuple[str, str]], body: Part | Multipart, crlf: bool = False) -> bytes:
    head = "".join(f"{k}: {v}\n" for k, v in headers) + "MIME-Version: 1.0\n"
    data = head.encode("utf-8") + body.render()
    if crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return data


def _decoded(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def bodies(msg: email.message.Message) -> tuple[str | None, str | None]:
    """The first inline text/plain and text/html bodies, not looking inside attached messages."""
    text: str | None = None
    html: str | None = None
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if part is not msg and ctype in _ATTACHED:
            continue
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack[0:0] = [p for p in payload if isinstance(p, email.message.Message)]
            continue
        if part.get_filename():
            continue
        if ctype == "text/plain" and text is None:
            text = _decoded(part)
        elif ctype == "text/html" and html is None:
            html = _decoded(part)
    return text, html


def parse(raw: bytes) -> email.message.Message:
    return BytesParser(policy=compat32).parsebytes(raw)
