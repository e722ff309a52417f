"""SPEC S6 / T4: parse_message on every file of CPython's own test_email data directory.

That directory holds the mail the stdlib's authors found hard (broken boundaries, digests, delivery
reports, RFC 2231 parameters) plus a few images and sounds, which must not break the parser either.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bccd.mail.addresses import MailAddress
from bccd.mail.message import parse_message
from tests.test_mail_message import assert_sane


def cpython_email_corpus() -> Path | None:
    """The data directory of the installed test.test_email package, or None when it is not shipped."""
    try:
        spec = importlib.util.find_spec("test.test_email")
    except ImportError:  # no test package at all (some distributions strip it)
        return None
    if spec is None or spec.origin is None:
        return None
    data = Path(spec.origin).parent / "data"
    return data if data.is_dir() else None


CORPUS = cpython_email_corpus()
FILES = sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS is not None else []
SKIP_REASON = (
    "this Python ships without test.test_email and its data directory "
    "(e.g. a distribution python3 without its test-suite package)"
)

pytestmark = pytest.mark.skipif(CORPUS is None, reason=SKIP_REASON)


def test_the_corpus_is_all_there() -> None:
    assert len([p for p in FILES if p.name.startswith("msg_")]) >= 45


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_corpus_file_parses_sanely(path: Path) -> None:
    raw = path.read_bytes()
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert "parse_failed" not in parsed.defects and "mime_parser_error" not in parsed.defects
    assert parsed == parse_message(raw)


def test_plain_message() -> None:
    assert CORPUS is not None
    parsed = parse_message((CORPUS / "msg_01.txt").read_bytes())
    assert parsed.subject == "This is a test message"
    assert parsed.from_ == (MailAddress("bbb@ddd.com", "John X. Doe"),)  # the comment names the sender
    assert parsed.text_body is not None and parsed.defects == ()


def test_digest_parts_are_enclosed_messages() -> None:
    assert CORPUS is not None
    parsed = parse_message((CORPUS / "msg_02.txt").read_bytes())
    assert parsed.subject == "Ppp digest, Vol 1 #2 - 5 msgs"
    enclosed = [a for a in parsed.attachments if a.content_type == "message/rfc822"]
    assert enclosed and enclosed[0].name == "[Ppp] testing #1"


def test_whole_message_forward_is_an_enclosed_message() -> None:
    assert CORPUS is not None
    parsed = parse_message((CORPUS / "msg_06.txt").read_bytes())
    assert parsed.text_body is None
    assert [(a.content_type, a.name) for a in parsed.attachments] == [("message/rfc822", "testing")]


def test_base64_image_attachment_is_decoded_before_hashing() -> None:
    assert CORPUS is not None
    parsed = parse_message((CORPUS / "msg_07.txt").read_bytes())
    (gif,) = parsed.attachments
    assert gif.name == "dingusfish.gif" and gif.content_type == "image/gif"
    assert gif.size > 3000 and gif.size < len((CORPUS / "msg_07.txt").read_bytes())


@pytest.mark.parametrize(
    ("name", "defect"),
    [
        ("msg_15.txt", "start_boundary_not_found_defect"),
        ("msg_19.txt", "missing_header_body_separator_defect"),
        ("msg_31.txt", "start_boundary_not_found_defect"),
        ("msg_38.txt", "close_boundary_not_found_defect"),
        ("msg_39.txt", "invalid_base64_padding_defect"),
        ("msg_41.txt", "no_boundary_in_multipart_defect"),
    ],
)
def test_broken_structure_is_recorded_as_stdlib_defects(name: str, defect: str) -> None:
    assert CORPUS is not None
    parsed = parse_message((CORPUS / name).read_bytes())
    assert defect in parsed.defects
    assert parsed.text_body is not None  # and the readable text is still there


def test_rfc2231_charset_parameter() -> None:
    assert CORPUS is not None
    parsed = parse_message((CORPUS / "msg_32.txt").read_bytes())  # charset*=ansi-x3.4-1968''us-ascii
    assert parsed.text_body is not None and parsed.text_body.startswith("Some message.")
    assert not any(d.startswith("unknown_charset") for d in parsed.defects)
