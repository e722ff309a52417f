"""parse_message: SPEC §3 parsed fields; S6, T4: malformed mail is stored with its defects, never raises."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import inspect
import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from email.feedparser import BytesFeedParser
from email.message import Message
from email.utils import getaddresses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bccd.mail.addresses import MailAddress
from bccd.mail.headers import (
    MAX_HEADER_CHARS,
    _split_common_forms,
    decode_header_value,
    parse_address_list,
    parse_params,
)
from bccd.mail.message import Attachment, ParsedMessage, parse_message
from bccd.mail.mimetree import MAX_DEPTH, MAX_PARTS

_DEFECT = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*(?::[a-z0-9._+-]+)?")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _storable(text: str) -> bool:
    """Text PostgreSQL and SQLite can both hold: valid UTF-8 (no lone surrogates) and no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def assert_sane(parsed: ParsedMessage, raw: bytes) -> None:
    """The invariants every parse keeps, whatever the input (shared with the corpus test)."""
    assert isinstance(parsed, ParsedMessage)
    assert parsed.size == len(raw)
    assert isinstance(parsed.message, Message)
    assert isinstance(parsed.subject, str) and _storable(parsed.subject)
    assert "\r" not in parsed.subject and "\n" not in parsed.subject
    if parsed.message_id is not None:
        assert parsed.message_id and _storable(parsed.message_id)
        assert not re.search(r"[\s<>]", parsed.message_id)
    if parsed.date_header is not None:
        assert _storable(parsed.date_header) and "\n" not in parsed.date_header
    if parsed.date is not None:
        assert parsed.date.tzinfo is not None and parsed.date.utcoffset() is not None
    for group in (parsed.from_, parsed.sender, parsed.to, parsed.cc, parsed.reply_to):
        assert isinstance(group, tuple)
        assert len({a.address for a in group}) == len(group)
        for address in group:
            assert isinstance(address, MailAddress)
            assert "@" in address.address and address.address == address.address.lower()
            assert _storable(address.address) and not re.search(r"\s", address.address)
            assert address.name is None or (address.name.strip() and _storable(address.name))
    for body in (parsed.text_body, parsed.html_body):
        assert body is None or (isinstance(body, str) and _storable(body) and "\r" not in body)
    assert isinstance(parsed.attachments, tuple)
    for attachment in parsed.attachments:
        assert isinstance(attachment, Attachment)
        assert _MEDIA_TYPE.fullmatch(attachment.content_type), attachment
        assert attachment.size >= 0 and _HEX64.fullmatch(attachment.sha256)
        assert attachment.name is None or (attachment.name and _storable(attachment.name))
        assert attachment.disposition in (None, "attachment", "inline") or attachment.disposition.isascii()
    assert isinstance(parsed.defects, tuple)
    assert list(parsed.defects) == sorted(set(parsed.defects))
    assert all(isinstance(d, str) and _DEFECT.fullmatch(d) for d in parsed.defects), parsed.defects


def _part(message: Message, *path: int) -> Message:
    """The part at path (child indexes) of a parsed tree."""
    for index in path:
        payload = message.get_payload()
        assert isinstance(payload, list)
        child = payload[index]
        assert isinstance(child, Message)
        message = child
    return message


def _zone(hours: int) -> timezone:
    return timezone(timedelta(hours=hours))


def mail(head: str, body: str | bytes = "", *, eol: str = "\r\n") -> bytes:
    """A message from readable parts: header lines separated by newlines, then a blank line and body."""
    lines = head.strip("\n").split("\n")
    data = eol.join(lines).encode("utf-8") + (eol * 2).encode()
    if isinstance(body, str):
        body = eol.join(body.split("\n")).encode("utf-8")
    return data + body


BASIC_HEAD = """\
Message-ID: <abc.123@example.com>
Date: Tue, 14 May 2024 09:12:43 +0200
From: Ola Nordmann <ola@example.no>
To: Kari <kari@example.com>
Subject: Hello"""

ALTERNATIVE = mail(
    BASIC_HEAD + '\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b1"',
    "preamble\n--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    "Hei p=C3=A5 deg\n--b1\nContent-Type: text/html; charset=utf-8\n\n<p>Hei p\u00e5 deg</p>\n--b1--\n",
)

PDF = b"%PDF-1.4 not really a pdf \x00\x01\x02" * 20

MIXED = mail(
    BASIC_HEAD + "\nContent-Type: multipart/mixed; boundary=outer",
    "--outer\nContent-Type: text/plain\n\nSee attached.\n"
    "--outer\nContent-Type: application/pdf; name=offer.pdf\nContent-Transfer-Encoding: base64\n"
    'Content-Disposition: attachment; filename="offer.pdf"\n\n'
    + base64.encodebytes(PDF).decode()
    + "--outer\nContent-Type: message/rfc822\n\n"
    "From: Per <per@example.org>\nSubject: The original\n\nOriginal text\n"
    "--outer--\n",
)


# --- the ordinary case -------------------------------------------------------------------------------


def test_multipart_alternative_gives_headers_and_both_bodies() -> None:
    parsed = parse_message(ALTERNATIVE)
    assert_sane(parsed, ALTERNATIVE)
    assert parsed.message_id == "abc.123@example.com"
    assert parsed.date_header == "Tue, 14 May 2024 09:12:43 +0200"
    assert parsed.date == datetime(2024, 5, 14, 7, 12, 43, tzinfo=UTC)
    assert parsed.from_ == (MailAddress("ola@example.no", "Ola Nordmann"),)
    assert parsed.to == (MailAddress("kari@example.com", "Kari"),)
    assert parsed.cc == () and parsed.sender == () and parsed.reply_to == ()
    assert parsed.subject == "Hello"
    assert parsed.text_body == "Hei på deg"
    assert parsed.html_body == "<p>Hei på deg</p>"  # the line end before a delimiter is the delimiter's
    assert parsed.attachments == ()
    assert parsed.defects == ()


def test_attachments_are_hashed_decoded_and_enclosed_messages_named_by_subject() -> None:
    parsed = parse_message(MIXED)
    assert_sane(parsed, MIXED)
    assert parsed.text_body == "See attached."
    pdf, enclosed = parsed.attachments
    digest = hashlib.sha256(PDF).hexdigest()
    assert pdf == Attachment("offer.pdf", "application/pdf", len(PDF), digest, "attachment")
    assert enclosed.content_type == "message/rfc822" and enclosed.name == "The original"
    assert enclosed.size > 0
    # The tree is kept for the forward detector, enclosed message included.
    assert _part(parsed.message, 2, 0)["Subject"] == "The original"


def test_equal_messages_parse_equal_and_the_tree_is_left_out_of_eq_and_repr() -> None:
    first, second = parse_message(MIXED), parse_message(MIXED)
    assert first == second and hash(first) == hash(second)
    assert first.message is not second.message
    assert "message=" not in repr(first)


def test_attachment_names_rfc2231_rfc2047_and_raw_utf8() -> None:
    raw = mail(
        BASIC_HEAD + "\nContent-Type: multipart/mixed; boundary=x",
        "--x\nContent-Type: text/plain\n\nbody\n"
        "--x\nContent-Type: application/octet-stream\n"
        "Content-Disposition: attachment; filename*0*=utf-8''%C3%A5rs; filename*1=\"rapport.xlsx\"\n\nA\n"
        '--x\nContent-Type: application/octet-stream; name="=?UTF-8?B?w6Vyc3JhcHBvcnQucGRm?="\n\nB\n'
        '--x\nContent-Type: image/png\nContent-Disposition: inline; filename="bjørn.png"\n\nC\n'
        "--x--\n",
    )
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert [a.name for a in parsed.attachments] == ["årsrapport.xlsx", "årsrapport.pdf", "bjørn.png"]
    assert [a.disposition for a in parsed.attachments] == ["attachment", None, "inline"]
    # The stdlib API on the kept tree sees the same names (the forward detector uses get_filename).
    assert _part(parsed.message, 1).get_filename() == "årsrapport.xlsx"


def test_text_parts_marked_as_attachments_are_not_bodies() -> None:
    raw = mail(
        BASIC_HEAD + "\nContent-Type: multipart/mixed; boundary=x",
        "--x\nContent-Type: text/plain\nContent-Disposition: attachment; filename=notes.txt\n\nnotes\n"
        "--x\nContent-Type: text/plain\n\nthe real body\n--x--\n",
    )
    parsed = parse_message(raw)
    assert parsed.text_body == "the real body"
    assert [(a.name, a.content_type) for a in parsed.attachments] == [("notes.txt", "text/plain")]


# --- headers -----------------------------------------------------------------------------------------


def test_rfc2047_subject_from_and_names() -> None:
    raw = mail(
        "From: =?ISO-8859-1?Q?J=F8rgen_M=F8ller?= <jorgen@example.dk>\n"
        'To: =?utf-8?b?5bGx55Sw?= <yamada@example.jp>, "=?utf-8?q?Bj=C3=B8rn?=" <b@example.no>\n'
        # A multi-byte character split across two encoded-words, joined by folding whitespace.
        "Subject: =?UTF-8?B?VGlsYnVkIHDD?=\n =?UTF-8?B?pSBsaXNlbnNlcg==?= (=?utf-8*en?q?final?=)",
        "x",
    )
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.subject == "Tilbud på lisenser (final)"
    assert parsed.from_ == (MailAddress("jorgen@example.dk", "Jørgen Møller"),)
    assert parsed.to == (MailAddress("yamada@example.jp", "山田"), MailAddress("b@example.no", "Bjørn"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # whitespace between encoded-words is dropped
        ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        ("=?utf-8?q?a?=\t=?iso-8859-1?q?=E9?=", "aé"),  # also between different charsets
        ("x =?utf-8?q?a?=", "x a"),
        ("=?x-bogus?q?caf=C3=A9?=", "café"),  # unknown charset: UTF-8 guess
        ("=?utf-8?b?!!!?=", ""),  # broken base64 salvages nothing, and does not raise
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("=?" + "a" * 100 + "?q?x?=", "=?" + "a" * 100 + "?q?x?="),
        ("=?utf-8?q?nul=00here?=", "nul\ufffdhere"),
        ("=?utf-7?q?+2D3-?=", "+2D3-"),  # a lone surrogate in UTF-7 is refused, not stored
        ("plain\r\n folded", "plain folded"),
    ],
)
def test_decode_header_value_edge_cases(value: str, expected: str) -> None:
    assert decode_header_value(value) == expected


def test_raw_utf8_headers_smtputf8() -> None:
    raw = mail("From: Jörg Bücher <jörg@bücher.example>\nTo: 山田 <yamada@例え.jp>\nSubject: Grüße 👋", "hi")
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.subject == "Grüße 👋"
    assert parsed.from_ == (MailAddress("jörg@xn--bcher-kva.example", "Jörg Bücher"),)
    assert parsed.to[0].name == "山田" and parsed.to[0].address.endswith("@xn--r8jz45g.jp")


def test_latin1_raw_header_falls_back_without_losing_text() -> None:
    parsed = parse_message(b"Subject: K\xf8benhavn\r\nFrom: a@b.example\r\n\r\nx")
    assert parsed.subject == "København"


def test_multiple_from_group_syntax_and_tricky_names() -> None:
    raw = mail(
        "From: Ann <ann@example.com>, bob@example.com\n"
        "Sender: Ann <ann@example.com>\n"
        "To: undisclosed-recipients:;\n"
        'Cc: "Doe, John" <john@example.com>, "O\'Brien \\"OB\\"" <ob@example.com>, Team: x@example.com, '
        "y@example.com;, (comment) z@example.com\n"
        "Reply-To: <REPLY@Example.COM>",
        "x",
    )
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert [a.address for a in parsed.from_] == ["ann@example.com", "bob@example.com"]
    assert parsed.sender == (MailAddress("ann@example.com", "Ann"),)
    assert parsed.to == ()
    assert parsed.cc[:2] == (
        MailAddress("john@example.com", "Doe, John"),
        MailAddress("ob@example.com", "O'Brien \"OB"),
    )
    assert [a.address for a in parsed.cc[2:]] == ["x@example.com", "y@example.com", "z@example.com"]
    assert parsed.reply_to == (MailAddress("reply@example.com"),)


ADDRESS_PIECES = ['"', "\\", ",", "<", ">", "@", " ", "a", "b.c", ":", ";", "(", "=?", "é", "\t", "[", "]"]


@given(st.lists(st.sampled_from(ADDRESS_PIECES), max_size=30))
@settings(max_examples=300, deadline=None, database=None)
def test_fast_address_split_agrees_with_getaddresses(pieces: list[str]) -> None:
    text = "".join(pieces)
    fast = _split_common_forms(text.strip())
    if fast is not None:
        assert [p for p in fast if p[1]] == [p for p in getaddresses([text]) if p[1]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 14 May 2024 09:12:43 +0200", datetime(2024, 5, 14, 9, 12, 43, tzinfo=_zone(2))),
        ("14 May 2024 09:12:43", datetime(2024, 5, 14, 9, 12, 43, tzinfo=UTC)),  # no zone: UTC
        ("Tue, 14 May 2024 09:12:43 -0000", datetime(2024, 5, 14, 9, 12, 43, tzinfo=UTC)),
        ("Tue, 14 May 24 09:12:43 EST", datetime(2024, 5, 14, 9, 12, 43, tzinfo=_zone(-5))),
        ("Sat, 31 Dec 2016 23:59:60 +0000", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),  # leap second
    ],
)
def test_dates(value: str, expected: datetime) -> None:
    parsed = parse_message(mail(f"From: a@b.example\nDate: {value}", "x"))
    assert parsed.date == expected and parsed.date is not None
    assert parsed.date.utcoffset() == expected.utcoffset()
    assert parsed.date_header == value
    assert "unparseable_date" not in parsed.defects


@pytest.mark.parametrize(
    "value", ["yesterday", "Fri, 30 Feb 2024 10:00:00 +0000", "Mon, 1 Jan 2024 10:00 +9999", ""]
)
def test_unparseable_dates_are_defects(value: str) -> None:
    parsed = parse_message(mail(f"From: a@b.example\nDate: {value}", "x"))
    assert parsed.date is None and "unparseable_date" in parsed.defects


def test_message_id_forms() -> None:
    assert parse_message(b"Message-ID:\r\n <folded@x.example>\r\n\r\n").message_id == "folded@x.example"
    assert parse_message(b"Message-ID: no-brackets@x.example\r\n\r\n").message_id == "no-brackets@x.example"
    assert parse_message(b"Message-ID: (comment) <a@x> <b@x>\r\n\r\n").message_id == "a@x"
    assert parse_message(b"Message-ID: <=?utf-8?q?x?=@x>\r\n\r\n").message_id == "=?utf-8?q?x?=@x"
    parsed = parse_message(b"Message-ID: <>\r\n\r\n")
    assert parsed.message_id is None and "missing_message_id" in parsed.defects


def test_missing_headers_are_defects_not_errors() -> None:
    raw = b"X-Only: this\r\n\r\nbody\r\n"
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.subject == "" and parsed.from_ == () and parsed.message_id is None and parsed.date is None
    assert {"missing_from", "missing_date", "missing_message_id"} <= set(parsed.defects)
    assert parsed.text_body == "body\n"
    bad_from = parse_message(b"From: not an address\r\n\r\n")
    assert "unparseable_from" in bad_from.defects and "missing_from" not in bad_from.defects


# --- bodies and encodings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "body", "text", "defects"),
    [
        ("utf-8", "blåbær".encode(), "blåbær", set()),
        ("iso-8859-1", "blåbær".encode("latin-1"), "blåbær", set()),
        ("iso-8859-1", b"\x93quoted\x94", "\u201cquoted\u201d", set()),  # what Windows meant by Latin-1
        ("gb2312", "中文".encode("gb18030"), "中文", set()),
        ("x-bogus", "blåbær".encode(), "blåbær", {"unknown_charset:x-bogus"}),
        ("x-bogus", "blåbær".encode("latin-1"), "blåbær", {"unknown_charset:x-bogus", "undecodable_body"}),
        ("base64", b"aGk=", "aGk=", {"unknown_charset:base64"}),  # a codec, but not a text encoding
        ("unicode-escape", b"\\udc80", "\\udc80", {"unknown_charset:unicode-escape"}),
        ('"utf-8;x"\u00ff', b"ok", "ok", {"unknown_charset:utf-8_x___"}),
        ("us-ascii", "blåbær".encode(), "blåbær", {"undecodable_body"}),
        ("utf-8", "blåbær".encode("latin-1"), "blåbær", {"undecodable_body"}),
        (None, "blåbær".encode(), "blåbær", set()),  # 8-bit without a charset: UTF-8 is the best guess
        (None, "blåbær".encode("latin-1"), "blåbær", {"undecodable_body"}),
        ("unknown-8bit", "blåbær".encode(), "blåbær", set()),
    ],
)
def test_body_charsets(charset: str | None, body: bytes, text: str, defects: set[str]) -> None:
    content_type = "text/plain" + (f"; charset={charset}" if charset else "")
    raw = mail(f"From: a@b.example\nContent-Type: {content_type}\nContent-Transfer-Encoding: 8bit", body)
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.text_body == text
    assert defects == set(parsed.defects) - {"missing_date", "missing_message_id"}


@pytest.mark.parametrize(
    ("cte", "payload", "decoded"),
    [
        ("base64", "aGVs bG8=\n", "hello"),
        ("base64", "aGVsbG8", "hello"),  # missing padding
        ("base64", "aGVs*bG8=", "hello"),  # a stray character
        ("base64", "aGVsbG8=aGVsbG8=", "hello"),  # two encodings glued together
        ("base64", "a", "a"),  # nothing to salvage: the stdlib keeps the text
        ("quoted-printable", "caf=C3=A9 =ZZ =\n", "café =ZZ "),
        ("x-custom", "as is", "as is"),
    ],
)
def test_bad_transfer_encodings_salvage_and_record(cte: str, payload: str, decoded: str) -> None:
    head = f"From: a@b.example\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: {cte}"
    raw = mail(head, payload)
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.text_body == decoded
    assert "bad_content_transfer_encoding" in parsed.defects


@pytest.mark.parametrize("cte", ["base64 ", "BASE64", " Base64\t"])
def test_transfer_encoding_names_are_read_leniently(cte: str) -> None:
    raw = mail(f"From: a@b.example\nContent-Transfer-Encoding:{cte}", "aGVsbG8=")
    parsed = parse_message(raw)
    assert parsed.text_body == "hello" and "bad_content_transfer_encoding" not in parsed.defects


def test_uuencoded_attachment_is_decoded() -> None:
    raw = mail(
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=x",
        "--x\n\nbody\n--x\nContent-Type: application/octet-stream; name=a.bin\n"
        "Content-Transfer-Encoding: x-uuencode\n\nbegin 644 a.bin\n#86)C\n`\nend\n--x--\n",
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.size == 3 and attachment.sha256 == hashlib.sha256(b"abc").hexdigest()


def test_crlf_and_lf_messages_parse_the_same() -> None:
    def fields(parsed: ParsedMessage) -> dict[str, object]:
        values = {f.name: getattr(parsed, f.name) for f in dataclasses.fields(parsed)}
        del values["size"], values["message"]
        return values

    for source in (ALTERNATIVE, MIXED):
        lf = source.replace(b"\r\n", b"\n")
        assert fields(parse_message(lf)) == fields(parse_message(source))
        # Old Mac line ends are lines too.
        assert parse_message(source.replace(b"\r\n", b"\r")).subject == "Hello"


def test_nul_bytes_never_reach_the_stored_text() -> None:
    raw = b"From: a@b.example\r\nSubject: nul\x00here\r\nContent-Type: text/plain\r\n\r\nbody\x00text\r\n"
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.subject == "nul\ufffdhere"
    assert parsed.text_body == "body\ufffdtext\n"
    assert "nul_byte" in parsed.defects


def test_html_only_and_multipart_related() -> None:
    raw = mail(
        "From: a@b.example\nContent-Type: multipart/related; boundary=r",
        "--r\nContent-Type: text/html; charset=utf-8\n\n<img src=cid:logo>\n"
        "--r\nContent-Type: image/png\nContent-ID: <logo>\nContent-Transfer-Encoding: base64\n\n"
        "iVBORw0KGgo=\n--r--\n",
    )
    parsed = parse_message(raw)
    assert parsed.text_body is None and parsed.html_body == "<img src=cid:logo>"
    assert [(a.content_type, a.size) for a in parsed.attachments] == [("image/png", 8)]


def test_invalid_content_types_are_read_as_text_plain() -> None:
    raw = mail(
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=x",
        "--x\nContent-Type: text/plain charset=utf-8\n\nbody\n"
        "--x\nContent-Type: image/p\u00f1g; name=a.png\n\nA\n--x\nContent-Type: nonsense\n\nB\n--x--\n",
    )
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.text_body == "body"  # RFC 2045 §5.2: an invalid type is text/plain
    named = [(a.name, a.content_type) for a in parsed.attachments]
    assert named == [("a.png", "text/plain"), (None, "text/plain")]
    assert "invalid_content_type" in parsed.defects


# --- broken structure --------------------------------------------------------------------------------


def test_multipart_without_boundary_keeps_its_text() -> None:
    raw = mail("From: a@b.example\nContent-Type: multipart/mixed", "just some text\n")
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.text_body == "just some text\n"
    assert "no_boundary_in_multipart_defect" in parsed.defects


def test_truncated_multipart_keeps_the_parts_it_has() -> None:
    raw = ALTERNATIVE[: ALTERNATIVE.index(b"\r\n--b1--")]  # no close delimiter
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.text_body == "Hei på deg" and parsed.html_body == "<p>Hei på deg</p>"
    assert "close_boundary_not_found_defect" in parsed.defects
    cut = parse_message(ALTERNATIVE[: ALTERNATIVE.index(b"Hei p=C3") + 5])  # cut inside a part
    assert cut.text_body == "Hei p"


def test_start_boundary_missing() -> None:
    raw = mail("From: a@b.example\nContent-Type: multipart/mixed; boundary=nowhere", "text only\n")
    parsed = parse_message(raw)
    assert parsed.text_body == "text only\n" and "start_boundary_not_found_defect" in parsed.defects


def _nested(depth: int) -> bytes:
    """depth multiparts, one inside the other, around a text part."""
    head = "".join(f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n" for i in range(depth))
    tail = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    return ("From: a@b.example\n" + head + "Content-Type: text/plain\n\ndeep\n" + tail).encode()


def test_nesting_within_the_limit_is_parsed() -> None:
    parsed = parse_message(_nested(MAX_DEPTH - 1))
    assert parsed.text_body == "deep" and "too_deeply_nested" not in parsed.defects


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 2000])
def test_deep_nesting_stops_at_the_limit(depth: int) -> None:
    raw = _nested(depth)
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert "too_deeply_nested" in parsed.defects
    assert parsed.from_ == (MailAddress("a@b.example"),)


def test_nested_enclosed_messages_stop_at_the_limit() -> None:
    raw = ("Content-Type: message/rfc822\n\n" * 3000 + "Subject: innermost\n\nx").encode()
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert "too_deeply_nested" in parsed.defects


def test_too_many_parts_stops_at_the_limit() -> None:
    parts = "".join(
        f"--x\nContent-Type: application/octet-stream; name=p{i}\n\n{i}\n" for i in range(MAX_PARTS + 500)
    )
    head = "From: a@b.example\nSubject: many\nContent-Type: multipart/mixed; boundary=x"
    raw = mail(head, parts + "--x--\n")
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert "too_many_parts" in parsed.defects
    assert parsed.subject == "many" and 0 < len(parsed.attachments) < MAX_PARTS
    assert parsed.attachments[0].name == "p0"


@pytest.mark.parametrize("semicolons", [50_000, 300_000])
def test_quadratic_parameter_input_is_parsed_linearly(semicolons: int) -> None:
    # Message.get_param needs seconds for the first and about a minute for the second; the parser asks
    # it for the boundary of every multipart.
    ctype = 'multipart/mixed; x="' + ";" * semicolons + '"; boundary=zz'
    raw = mail(f"From: a@b.example\nContent-Type: {ctype}", "--zz\n\nhello\n--zz--\n")
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    if len(ctype) < MAX_HEADER_CHARS:
        assert parsed.text_body == "hello"
    else:  # parameters past the header limit are not read
        assert "no_boundary_in_multipart_defect" in parsed.defects


def test_huge_header_lines_are_bounded() -> None:
    to = ", ".join(f"User {i} <user{i}@example.com>" for i in range(40_000))
    raw = mail(f"From: a@b.example\nTo: {to}\nSubject: {'=?utf-8?q?ab?= ' * 100_000}", "body")
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert "header_too_long" in parsed.defects
    assert 1000 < len(parsed.to) < 40_000
    assert parsed.subject.startswith("abab") and len(parsed.subject) <= MAX_HEADER_CHARS
    assert parsed.text_body == "body"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n",
        b"\n\n\n",
        b"Subject: only a header",
        b"Subject: only a header\r\n",
        b"Subject: header and separator\r\n\r\n",
        b": no name\r\n\r\n",
        b" leading continuation\r\nSubject: x\r\n\r\n",
        b"From nobody Mon Jan  1 00:00:00 2024\r\nSubject: mbox\r\n\r\nx",
        b"\xff\xfe\x00\x00",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n\r\n--\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp4\r\n",
        b"Content-Type: message/delivery-status\r\n\r\nA: b\r\n\r\nC: d\r\n",
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: x\r\n\r\nbody\r\n--d--\r\n",
        b"Content-Type: text/plain; charset*=''\r\nContent-Disposition: attachment; filename*=%ZZ\r\n\r\nx",
        b"Content-Type: text/plain; name*99999999999=x; name*1*=%\r\n\r\nx",
        b"Subject: " + b"x" * 5_000_000 + b"\r\n\r\n",
        b"x" * 2_000_000,
        b"\r\n" * 100_000,
    ],
)
def test_degenerate_inputs_never_raise(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed == parse_message(raw)


def test_empty_message() -> None:
    parsed = parse_message(b"")
    assert parsed.size == 0 and parsed.subject == "" and parsed.text_body == ""
    assert {"missing_from", "missing_date", "missing_message_id"} <= set(parsed.defects)


def test_only_a_header_without_line_end() -> None:
    parsed = parse_message(b"Subject: only a header")
    assert parsed.subject == "only a header" and parsed.text_body == ""


def test_a_parser_failure_keeps_what_was_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    import bccd.mail.mimetree as mimetree

    class Failing(BytesFeedParser):
        def close(self) -> Message:
            raise RuntimeError("a stdlib bug")

    monkeypatch.setattr(mimetree, "BytesFeedParser", Failing)
    parsed = parse_message(ALTERNATIVE)
    assert_sane(parsed, ALTERNATIVE)
    assert "mime_parser_error" in parsed.defects
    assert parsed.subject == "Hello" and parsed.text_body == "Hei på deg"


def test_the_last_line_of_defence(monkeypatch: pytest.MonkeyPatch) -> None:
    import bccd.mail.message as message_module

    def explode(raw: bytes) -> None:
        raise MemoryError

    monkeypatch.setattr(message_module, "parse_tree", explode)
    parsed = parse_message(ALTERNATIVE)
    assert_sane(parsed, ALTERNATIVE)
    assert parsed.defects == ("parse_failed",) and parsed.subject == ""


def test_parsing_on_a_deep_call_stack_does_not_raise() -> None:
    # Near the recursion limit the stdlib parser itself fails; the caller still gets a result.
    raw = _nested(MAX_DEPTH - 2)

    def descend(levels: int) -> ParsedMessage:
        return parse_message(raw) if levels == 0 else descend(levels - 1)

    here = len(inspect.stack(0))
    for margin in (50, 100, 200):
        parsed = descend(sys.getrecursionlimit() - here - margin)
        assert_sane(parsed, raw)
        assert parsed.text_body == "deep" or "mime_parser_error" in parsed.defects


# --- parameters --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "main", "params"),
    [
        ('Text/Plain; Charset="UTF-8"', "text/plain", {"charset": "UTF-8"}),
        ('attachment; filename="a;b.txt"; size=3', "attachment", {"filename": "a;b.txt", "size": "3"}),
        ('x; a="esc\\"aped"; b=2', "x", {"a": 'esc"aped', "b": "2"}),
        ('x; a="unterminated; b=2', "x", {"a": "unterminated; b=2"}),
        ("x; title*=us-ascii'en'This%20is%20%2A%2A%2Afun%2A%2A%2A", "x", {"title": "This is ***fun***"}),
        ("x; n*1*=%C3%A9; n*0*=utf-8''caf", "x", {"n": "café"}),
        ("x; n=plain; n*=utf-8''%C3%A9", "x", {"n": "é"}),
        ("x; a=1; a=2", "x", {"a": "1"}),
        ("x;;; =1; novalue; c", "x", {}),
        ("multipart/mixed;\r\n boundary=folded", "multipart/mixed", {"boundary": "folded"}),
    ],
)
def test_parse_params(value: str, main: str, params: dict[str, str]) -> None:
    assert parse_params(value) == (main, params)


def test_address_list_keeps_order_and_drops_duplicates_and_non_addresses() -> None:
    result = parse_address_list(["A <a@x.example>, junk, a@X.example", "b@y.example"])
    assert result == (MailAddress("a@x.example", "A"), MailAddress("b@y.example"))
    # IDNA maps U+00B4 to a space plus a combining accent: not an address we can store or compare.
    assert parse_address_list("a@\u00b4.example") == ()


# --- never raises: property tests --------------------------------------------------------------------

SEEDS = [
    ALTERNATIVE,
    MIXED,
    mail("From: =?utf-8?q?J=C3=B6rg?= <j@x.example>\nSubject: =?utf-8?b?SMOpbGxv?=\nDate: 1 Jan 2024", "hi"),
    _nested(4),
    b"From: a@b.example\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nK\xf8benhavn\r\n",
]
TOKENS = [
    b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"--", b"--b1", b"--outer--", b"\x00", b"\xff", b"=", b"=?", b"?=",
    b'"', b";", b":", b"<", b">", b",", b"(", b"\\", b" boundary=", b"charset=", b"*0*=", b"=?utf-8?b?",
    b"Content-Type: multipart/mixed; boundary=b1\r\n", b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"From: ", b"Subject: ", b"Date: ", b"\t",
]  # fmt: skip


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["insert", "delete", "flip", "duplicate", "truncate"]))
        if operation == "insert":
            data[pos:pos] = draw(st.sampled_from(TOKENS) | st.binary(max_size=8))
        elif operation == "delete":
            del data[pos : pos + draw(st.integers(1, 40))]
        elif operation == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif operation == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 200))]
        elif operation == "truncate":
            del data[pos:]
    return bytes(data)


@given(st.binary(max_size=3000))
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert_sane(parse_message(raw), raw)


@given(mutated_messages())
@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_messages_never_raise(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed == parse_message(raw)  # deterministic, and parsing leaves no state behind


@given(st.text(max_size=200), st.text(max_size=200), st.text(max_size=100))
@settings(max_examples=200, deadline=None, database=None)
def test_arbitrary_header_text_never_raises(subject: str, sender: str, charset: str) -> None:
    raw = (
        f"Subject: {subject}\r\nFrom: {sender}\r\nContent-Type: text/plain; charset={charset}\r\n\r\nx"
    ).encode("utf-8", "surrogatepass")
    assert_sane(parse_message(raw), raw)


def test_an_enclosed_message_is_hashed_with_its_header_lines_as_received() -> None:
    """The enclosed message's bytes are regenerated from the tree with each header line kept as received
    (no refolding), so for LF mail they are the source bytes themselves."""
    enclosed = (
        b"From: Carol <carol@example.org>\n"
        b"Subject: a subject folded\n   where the sender folded it, not where a generator would\n"
        b"X-Long: " + b"word " * 30 + b"\n"
        b"\n"
        b"Hello.\n"
    )
    raw = (
        b"From: alice@acme.test\nTo: bcc@bcc.test\nSubject: Fwd\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain\n\nsee below\n'
        b"--b1\nContent-Type: message/rfc822\n\n" + enclosed + b"--b1--\n"
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.content_type == "message/rfc822"
    # the line break before --b1 belongs to the boundary
    assert attachment.sha256 == hashlib.sha256(enclosed[:-1]).hexdigest()
    assert attachment.size == len(enclosed) - 1
