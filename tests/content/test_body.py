"""bccd.mail.body: the body JSON of issue 9 ("Message content") — text, HTML, stripped_text, truncated."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from bccd.mail.body import message_body, strip_text
from bccd.mail.message import parse_message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "Hi Anna,\n\nsounds good.\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@x.test> wrote:\n"
            "> earlier\n> text\n",
            "Hi Anna,\n\nsounds good.",
            id="reply-quote-and-attribution",
        ),
        pytest.param(
            "Hi\n\nOn Mon, 1 Jan 2024 at 10:00, Bob Smith <bob@x.test>\nwrote:\n\n> earlier\n",
            "Hi",
            id="attribution-wrapped-over-two-lines",
        ),
        pytest.param(
            "Hallo,\n\nAm 01.01.2024 um 10:00 schrieb Bob <bob@x.test>:\n> alt\n>> älter\n",
            "Hallo,",
            id="german-attribution",
        ),
        pytest.param("Thanks!\n\n-- \nAlice\nACME Corp\n", "Thanks!", id="signature-delimiter"),
        pytest.param(
            "FYI see below\n\n---------- Forwarded message ---------\nFrom: Carl <carl@x.test>\n"
            "Date: Mon, 1 Jan 2024\nSubject: Offer\nTo: alice@acme.test\n\nBody of original\n",
            "FYI see below",
            id="gmail-forward-keeps-the-note",
        ),
        pytest.param(
            "Bitte ansehen.\n\n-------- Weitergeleitete Nachricht --------\nBetreff: Angebot\n"
            "Datum: Mon, 1 Jan 2024\nVon: Carl <carl@x.test>\nAn: alice@acme.test\n\nText\n",
            "Bitte ansehen.",
            id="thunderbird-forward-german",
        ),
        pytest.param(
            "Note\n\nBegin forwarded message:\n\nFrom: Carl <carl@x.test>\nSubject: s\nDate: d\n"
            "To: a@b.test\n",
            "Note",
            id="apple-forward",
        ),
        pytest.param(
            "See this.\n\n________________________________\nFrom: Carl <carl@x.test>\nSent: Monday\n"
            "To: Alice\nSubject: Offer\n\nold\n",
            "See this.",
            id="outlook-rule-and-header-block",
        ),
        pytest.param(
            "Agreed.\n\nFrom: Carl <carl@x.test>\nSent: Monday\nTo: Alice <alice@acme.test>\n"
            "Subject: RE: Offer\n\nold\n",
            "Agreed.",
            id="outlook-header-block-without-rule",
        ),
        pytest.param(
            "Hi\n\n-----Original Message-----\nFrom: Carl\nSent: Monday\nTo: Alice\nSubject: x\n\nold\n",
            "Hi",
            id="original-message-separator",
        ),
        pytest.param("> quoted first\n> more\n\nbottom reply\n", "bottom reply", id="bottom-posting"),
        pytest.param(
            "Totals\n==========\n1. apples\n2. pears\n",
            "Totals\n==========\n1. apples\n2. pears",
            id="decorative-rule-is-writing",
        ),
        pytest.param("From: the sales team, with love\n", "From: the sales team, with love", id="prose-from"),
        pytest.param(
            "\r\n\r\nLine one\r\n\r\n\r\n\r\nLine two\r\n", "Line one\n\nLine two", id="crlf-blanks"
        ),
        pytest.param("", "", id="empty"),
    ],
)
def test_stripped_text_is_only_the_new_writing(body: str, expected: str) -> None:
    assert strip_text(body) == expected


def _mail(text: str | None = None, html: str | None = None, charset: str = "utf-8") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@acme.test>"
    msg["To"] = "carol@client.test"
    msg["Subject"] = "s"
    if text is not None:
        msg.set_content(text, charset=charset)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    elif html is not None:
        msg.set_content(html, subtype="html", charset=charset)
    return msg.as_bytes()


@pytest.mark.parametrize("charset", ["iso-8859-1", "koi8-r", "iso-2022-jp", "utf-8"])
def test_charsets_are_decoded(charset: str) -> None:
    word = {"koi8-r": "Привет", "iso-2022-jp": "こんにちは"}.get(charset, "Grüße aus Tromsø")
    parsed = parse_message(_mail(f"{word}\n\n-- \nsig\n", charset=charset))
    body = message_body(parsed.text_body, parsed.html_body)
    assert body.text.startswith(word) and body.stripped_text == word
    assert body.html is None and body.truncated is False


def test_html_as_sent_and_text_part_preferred() -> None:
    html = "<p>Hello <b>there</b></p>"
    parsed = parse_message(_mail("Hello there, in text\n", html))
    body = message_body(parsed.text_body, parsed.html_body)
    assert body.text == "Hello there, in text\n"
    assert body.html is not None and html in body.html


def test_text_derived_from_html_when_no_text_part() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body><p>Hello <b>there</b> &amp; welcome</p>"
        "<div>second line</div><p>-- </p><p>Alice</p></body></html>"
    )
    parsed = parse_message(_mail(html=html))
    assert parsed.text_body is None
    body = message_body(parsed.text_body, parsed.html_body)
    assert body.text.splitlines()[:2] == ["Hello there & welcome", "second line"]
    assert "color" not in body.text
    assert body.stripped_text == "Hello there & welcome\nsecond line"


def test_size_cap_sets_truncated() -> None:
    body = message_body("a" * 50, "<p>" + "b" * 10 + "</p>", limit=20)
    assert body.text == "a" * 20 and body.truncated
    assert message_body("a" * 20, None, limit=20).truncated is False
    # The store hands over a prefix and the full length: the flag follows the full length.
    prefix = message_body("a" * 20, None, text_length=21, limit=20)
    assert prefix.truncated and prefix.text == "a" * 20
    assert message_body(None, "<p>" + "c" * 30 + "</p>", limit=10).truncated


def test_no_body_at_all() -> None:
    body = message_body(None, None)
    assert body.as_json() == {"text": "", "html": None, "stripped_text": "", "truncated": False}
