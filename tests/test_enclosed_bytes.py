"""bccd.mail.message's fast regeneration of enclosed messages against the email generator it replaces.

The sha256 and size stored for a forwarded-as-attachment message are those of the bytes `_SourceHeaders`
(an email.generator.BytesGenerator) writes for it. `_flat_text` writes the common parts without the
generator; wherever it answers, its bytes must be the generator's, on every part of every corpus message
and on crafted ones (line endings of every kind, preambles, epilogues, nested multiparts, 8-bit text).
"""

from __future__ import annotations

from email.message import Message
from pathlib import Path

import pytest

from bccd.mail.message import _flat_text, _generated, parse_message
from bccd.mail.mimetree import parse_tree

CORPORA = Path(__file__).parent
EMLS = sorted(CORPORA.glob("**/*.eml"))


def _parts(root: Message) -> list[Message]:
    out, stack = [], [root]
    while stack:
        part = stack.pop()
        out.append(part)
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(p for p in payload if isinstance(p, Message))
    return out


def _compare(raw: bytes) -> tuple[int, int]:
    """(parts the fast path wrote, parts it left to the generator); fails on any difference."""
    root, _ = parse_tree(raw)
    fast = slow = 0
    for part in _parts(root):
        text = _flat_text(part)
        if text is None:
            slow += 1
            continue
        fast += 1
        assert text.encode("ascii", "surrogateescape") == _generated(part)
    return fast, slow


CRAFTED = [
    b"Subject: plain\r\n\r\nline one\r\nline two\r\n",
    b"Subject: mixed endings\r\n\r\na\rb\nc\r\nd",
    b"Subject: odd endings\r\n\r\na\r\r\nb\n\rc\r\n\r\n\rd\r",
    b"Subject: empty body\r\n\r\n",
    b"Subject: no body\r\n",
    b"Subject: folded\r\n header\r\nX-Other:\tvalue  \r\n\r\nbody\n",
    b"Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n",
    b"Subject: latin1 header \xe9\r\n\r\nbody\r\n",
    b"Content-Type: multipart/alternative; boundary=XX\r\n\r\npreamble\r\nmore\r\n--XX\r\n"
    b"Content-Type: text/plain\r\n\r\nplain\r\n--XX\r\nContent-Type: text/html\r\n\r\n<p>h</p>\r\n"
    b"--XX--\r\nepilogue\r\nend",
    b'Content-Type: multipart/mixed; boundary="a b"\r\n\r\n--a b\r\nContent-Type: multipart/alternative;'
    b" boundary=in\r\n\r\n--in\r\n\r\nx\r\n--in--\r\n--a b\r\nContent-Type: application/pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--a b--\r\n",
    b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B--\r\n",
    b"Content-Type: multipart/mixed; boundary=B\r\n\r\nno parts at all\r\n",
    b"Content-Type: multipart/mixed\r\n\r\n--B\r\n\r\nx\r\n--B--\r\n",  # no boundary parameter
    b"Content-Type: multipart/signed; boundary=S\r\n\r\n--S\r\n\r\nsigned\r\n--S--\r\n",
    b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n",
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Type: text/html\r\n\r\ntwo types\r\n",
    b"Content-Type: invalid\r\n\r\nbody\r\n",
    b"From nobody Mon Dec  7 00:00:00 2026\r\nSubject: unix from\r\n\r\nFrom here\r\n",
]


@pytest.mark.parametrize("raw", CRAFTED)
def test_crafted_parts_regenerate_as_the_generator_writes_them(raw: bytes) -> None:
    _compare(raw)


def test_every_part_of_the_corpora_regenerates_as_the_generator_writes_it() -> None:
    assert len(EMLS) > 300
    fast = slow = 0
    for path in EMLS:
        f, s = _compare(path.read_bytes())
        fast, slow = fast + f, slow + s
    assert fast > 300 and fast > slow  # the fast path answers for most parts, so this compared something
    assert slow > 0


def test_crafted_parts_take_both_paths() -> None:
    counts = [_compare(raw) for raw in CRAFTED]
    assert counts[0] == (1, 0) and counts[8] == (3, 0)  # plain text; a multipart with preamble/epilogue
    assert counts[6][1] == 1 and counts[13][1] >= 1  # 8-bit text, multipart/signed: the generator


def test_an_attached_message_is_hashed_over_the_regenerated_bytes() -> None:
    inner = b"Subject: inner\r\nFrom: a@b.test\r\n\r\nline\r\nline 2\r\n"
    raw = (
        b"From: x@y.test\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\n\r\nsee attached\r\n"
        b"--Q\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"--Q--\r\n"
    )
    (attachment,) = parse_message(raw).attachments
    expected = inner.replace(b"\r\n", b"\n")[:-1]  # the CRLF before a boundary belongs to the boundary
    assert attachment.size == len(expected)
    import hashlib

    assert attachment.sha256 == hashlib.sha256(expected).hexdigest()
