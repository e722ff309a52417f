"""Forwarded mail (SPEC F1–F4): the fixture corpus, subject prefixes, HTML, reports, and never raising."""

from __future__ import annotations

import email.message
import json
from collections import Counter
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bccd.mail import forwards
from bccd.mail.addresses import MailAddress
from bccd.mail.forward_html import html_to_text
from bccd.mail.forward_labels import FIELDS, fold
from bccd.mail.forwards import (
    DEFECT_DETECTION_ERROR,
    DEFECT_UNPARSEABLE,
    ForwardDetection,
    classify_subject,
    detect_forward,
    strip_forward_prefix,
)
from tests.forwards import corpus_data
from tests.forwards.corpus import Case, as_data, detect, load_cases
from tests.forwards.make_corpus import CLIENTS
from tests.forwards.mime import parse

CASES = load_cases()


def _message(
    subject: str, sender: str = "Katrin Vogel <katrin.vogel@vertrieb-nord.de>"
) -> email.message.Message:
    msg = email.message.Message()
    msg["From"] = sender
    msg["To"] = "k7q2m9x4t8w1@bcc.crm.example"
    msg["Subject"] = subject
    return msg


GMAIL_BLOCK = (
    "---------- Forwarded message ---------\n"
    "From: Jörg Müller <joerg.mueller@mueller-bau.de>\n"
    "Date: Tue, Mar 12, 2024 at 10:15 AM\n"
    "Subject: Angebot\n"
    "To: <katrin.vogel@vertrieb-nord.de>\n\n"
    "Hallo, schreiben Sie an info@mueller-bau.de.\n"
)


# ---------------------------------------------------------------- the corpus (F1, F2, F4)


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_corpus_fixture_gives_its_expected_original(case: Case) -> None:
    assert as_data(detect(case)) == case.expect


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.format == "alternative"],
    ids=[c.file for c in CASES if c.format == "alternative"],
)
def test_corpus_html_alternative_alone_gives_the_same_original(case: Case) -> None:
    assert as_data(detect(case, html_only=True)) == case.expect


def test_corpus_covers_every_client_in_every_language() -> None:
    covered = {
        (c.client, c.language)
        for c in CASES
        if c.category == "forward" and c.format in ("text", "alternative")
    }
    missing = [
        (client, lang) for client in CLIENTS for lang in corpus_data.LANGS if (client, lang) not in covered
    ]
    assert missing == []
    html = Counter(c.client for c in CASES if c.format in ("html", "alternative"))
    assert all(html[client] >= 10 for client in ("gmail", "outlook_desktop", "outlook_web", "apple_mail"))


def test_corpus_covers_the_quirks_real_clients_produce() -> None:
    quirks = Counter(q for c in CASES if c.category == "forward" for q in c.quirks)
    wanted = [
        "bom",
        "crlf",
        "run_together",
        "note",
        "signature_separator",
        "nested",
        "mailto",
        "display_names",
        "name_without_address",
        "apple_quoted",
        "wrapped_to",
        "message_global",
        "transfer_encoded",
        "eml_octet_stream",
    ]
    assert {q: quirks[q] for q in wanted if quirks[q] == 0} == {}


def test_corpus_negatives_are_not_forwards() -> None:
    negatives = [c for c in CASES if c.category == "negative"]
    kinds = Counter(q for c in negatives for q in c.quirks)
    assert kinds["reply"] >= 20 and kinds["dsn"] >= 2 and kinds["feedback_report"] >= 1
    assert [c.file for c in negatives if detect(c) is not None] == []


def test_corpus_unparseable_forwards_are_still_forwards_with_a_defect() -> None:
    unparseable = [c for c in CASES if c.category == "unparseable"]
    assert unparseable
    for case in unparseable:
        assert detect(case) == ForwardDetection(None, (DEFECT_UNPARSEABLE,)), case.file


# ---------------------------------------------------------------- inline rules


def test_text_that_looks_like_an_address_outside_the_header_block_is_no_participant() -> None:
    body = "Please also talk to anna.berg@berg-partner.se and From: Bob <bob@example.org>.\n\n" + GMAIL_BLOCK
    found = detect_forward(_message("Fwd: Angebot"), body, None)
    assert found is not None and found.original is not None
    addresses = {a.address for a in (*found.original.from_, *found.original.to, *found.original.cc)}
    assert addresses == {"joerg.mueller@mueller-bau.de", "katrin.vogel@vertrieb-nord.de"}


@given(st.lists(st.emails(), min_size=1, max_size=5), st.text(max_size=200))
@settings(max_examples=60, deadline=None)
def test_addresses_in_a_forwarders_note_never_become_participants(addresses: list[str], prose: str) -> None:
    note = prose.replace("-", " ") + "\n" + ", ".join(addresses) + "\n\n"
    found = detect_forward(_message("Fwd: Angebot"), note + GMAIL_BLOCK, None)
    assert found is not None and found.original is not None
    assert found.original.from_ == (MailAddress("joerg.mueller@mueller-bau.de", "Jörg Müller"),)
    assert found.original.to == (MailAddress("katrin.vogel@vertrieb-nord.de", None),)


def test_an_outlook_header_block_needs_a_forward_subject() -> None:
    block = (
        "From: Jörg Müller <joerg.mueller@mueller-bau.de>\nSent: Tuesday\n"
        "To: katrin.vogel@vertrieb-nord.de\nSubject: Angebot\n"
    )
    assert detect_forward(_message("RE: Angebot"), "Danke!\n\n" + block, None) is None
    assert detect_forward(_message("Angebot"), "Danke!\n\n" + block, None) is None
    found = detect_forward(_message("FW: Angebot"), "Zur Info\n\n" + block, None)
    assert found is not None and found.original is not None and found.original.client == "outlook"


def test_vs_is_a_forward_in_norwegian_but_a_reply_over_a_finnish_block() -> None:
    norwegian = (
        "Fra: Øyvind Hansen <oyvind.hansen@hansen-bygg.no>\nSendt: mandag\n"
        "Til: ingrid@salg-vest.no\nEmne: Tilbud\n"
    )
    finnish = (
        "Lähettäjä: Jussi Mäkinen <jussi.makinen@makinen-rakennus.fi>\nLähetetty: maanantai\n"
        "Vastaanottaja: aino@x.fi\nAihe: Tarjous\n"
    )
    assert detect_forward(_message("VS: Tilbud"), norwegian, None) is not None
    assert detect_forward(_message("VS: Tarjous"), "Kiitos!\n\n" + finnish, None) is None


def test_a_reply_to_a_forward_is_a_reply() -> None:
    quoted = "\n".join("> " + line for line in GMAIL_BLOCK.splitlines())
    assert detect_forward(_message("Re: Fwd: Angebot"), "Ok!\n\nOn Tue wrote:\n" + quoted, None) is None


def test_a_forward_subject_without_a_readable_block_is_an_unparseable_forward() -> None:
    assert detect_forward(_message("WG: Angebot"), "Zur Info.\n", None) == ForwardDetection(
        None, (DEFECT_UNPARSEABLE,)
    )
    broken = "---------- Forwarded message ---------\nFrom: Someone\n\ntext\n"
    assert detect_forward(_message("Angebot"), broken, None) == ForwardDetection(None, (DEFECT_UNPARSEABLE,))


def test_plain_mail_without_any_label_is_rejected() -> None:
    assert detect_forward(_message("Hello"), "Just a note, see you at 10:00.\n", "<p>Just a note</p>") is None
    assert detect_forward(_message("Hello"), None, None) is None


# ---------------------------------------------------------------- attachments and reports


def _with_parts(subject: str, content_type: str, parts: str) -> email.message.Message:
    raw = (
        "From: Katrin Vogel <katrin.vogel@vertrieb-nord.de>\nTo: k7q2m9x4t8w1@bcc.crm.example\n"
        f'Subject: {subject}\nMIME-Version: 1.0\nContent-Type: {content_type}; boundary="B"\n\n{parts}--B--\n'
    )
    return parse(raw.encode("utf-8"))


ATTACHED = (
    "--B\nContent-Type: text/plain\n\nsee attached\n"
    "--B\nContent-Type: message/rfc822\n\n"
    "From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <Joerg.Mueller@Mueller-Bau.de>\n"
    'To: "Vogel, Katrin" <katrin.vogel@vertrieb-nord.de>\n'
    "Cc: a@b.example\nSubject: Angebot\nDate: Tue, 12 Mar 2024 10:15:00 +0100\n\nHallo\n"
)


def test_attached_message_is_the_original() -> None:
    found = detect_forward(_with_parts("FW: Angebot", "multipart/mixed", ATTACHED), "see attached\n", None)
    assert found is not None and found.original is not None
    assert found.original.kind == "attachment"
    assert found.original.from_ == (MailAddress("joerg.mueller@mueller-bau.de", "Jörg Müller"),)
    assert found.original.to == (MailAddress("katrin.vogel@vertrieb-nord.de", "Vogel, Katrin"),)
    assert found.original.cc == (MailAddress("a@b.example", None),)
    assert (found.original.subject, found.original.date) == ("Angebot", "Tue, 12 Mar 2024 10:15:00 +0100")


def test_a_report_carrying_a_message_is_not_a_forward() -> None:
    report = ATTACHED.replace("Content-Type: text/plain", "Content-Type: message/delivery-status", 1)
    msg = _with_parts("Fwd: Undelivered", "multipart/report; report-type=delivery-status", report)
    assert detect_forward(msg, None, None) is None
    feedback = _with_parts(
        "FW: complaint", "multipart/mixed", ATTACHED.replace("text/plain", "message/feedback-report", 1)
    )
    assert detect_forward(feedback, None, None) is None


def test_detector_bug_becomes_a_defect_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(forwards, "_detect", broken)
    assert detect_forward(_message("Fwd: x"), "x", None) == ForwardDetection(None, (DEFECT_DETECTION_ERROR,))


# ---------------------------------------------------------------- subjects (F2)


@pytest.mark.parametrize(
    ("subject", "stripped"),
    [
        ("Fwd: Offer", "Offer"),
        ("FW: Fwd: fw: Offer", "Offer"),
        ("Fwd: FW: Re: Offer", "Re: Offer"),
        ("Re: Fwd: Offer", "Re: Fwd: Offer"),
        ("WG: AW: Angebot", "AW: Angebot"),
        ("TR : Devis", "Devis"),
        ("VS: Tilbud", "Tilbud"),
        ("RV: Presupuesto", "Presupuesto"),
        ("I: Offerta", "Offerta"),
        ("Doorst: Offerte", "Offerte"),
        ("ENC: Orçamento", "Orçamento"),
        ("VB: Offert", "Offert"),
        ("VL: Tarjous", "Tarjous"),
        ("PD: Oferta", "Oferta"),
        ("TOV: Árajánlat", "Árajánlat"),
        ("İLT: Teklif", "Teklif"),
        ("ilt: Teklif", "Teklif"),
        ("Redir.: Ofertă", "Ofertă"),
        ("転送：見積", "見積"),
        ("[Fwd: Offer]", "Offer"),
        ("Fwd[2]: Offer", "Offer"),
        ("FWD:FWD: Offer", "Offer"),
        ("  Fwd:   Offer  ", "Offer"),
        ("Fwd:", ""),
        ("Offer: details", "Offer: details"),
        ("Information: price list", "Information: price list"),
        ("", ""),
    ],
)
def test_strip_forward_prefix(subject: str, stripped: str) -> None:
    assert strip_forward_prefix(subject) == stripped


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("Fwd: x", "forward"),
        ("[EXTERNAL] FW: x", "forward"),
        ("AW: x", "reply"),
        ("Re: Fwd: x", "reply"),
        ("VS: x", "ambiguous"),
        ("x", None),
        ("Meeting: x", None),
    ],
)
def test_classify_subject(subject: str, kind: str | None) -> None:
    assert classify_subject(subject)[0] == kind


# ---------------------------------------------------------------- HTML to text


def test_html_to_text_keeps_lines_addresses_and_outlooks_separator() -> None:
    html = (
        "<html><head><style>p {color:red}</style></head><body><p>Hi<br>there</p>"
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt'><p><b>From:</b> Anna &lt;anna@x.se&gt;<br>"
        '<b>To:</b> <a href="mailto:bob@y.no">Bob</a></p></div><p>&nbsp;</p>'
        "<script>From: evil</script></body></html>"
    )
    assert html_to_text(html).split("\n") == [
        "Hi",
        "there",
        "________________________________",
        "From: Anna <anna@x.se>",
        "To: Bob <bob@y.no>",
        "",
    ]


# ---------------------------------------------------------------- the label data


def test_label_data_is_consistent() -> None:
    text = resources.files("bccd.mail").joinpath("forward_labels.json").read_text(encoding="utf-8")
    languages = json.loads(text)["languages"]
    wanted = {
        "en",
        "de",
        "fr",
        "es",
        "it",
        "pt",
        "nl",
        "no",
        "sv",
        "da",
        "fi",
        "pl",
        "cs",
        "sk",
        "hu",
        "ro",
        "hr",
        "et",
        "tr",
        "ru",
        "uk",
        "ja",
    }
    assert wanted <= set(languages)
    field_of: dict[str, str] = {}
    for entry in languages.values():
        for field in FIELDS:
            for label in entry.get(field, []):
                # One label, one meaning in every language: the detector merges all languages.
                assert field_of.setdefault(fold(label), field) == field, label


# ---------------------------------------------------------------- never raises


@given(st.text(max_size=3000), st.text(max_size=60), st.booleans())
@settings(max_examples=300, deadline=None)
def test_detect_forward_never_raises_on_arbitrary_text(body: str, subject: str, as_html: bool) -> None:
    msg = _message("Fwd: x")
    msg.replace_header("Subject", subject.replace("\n", " ").replace("\r", " "))
    result = detect_forward(msg, None if as_html else body, body if as_html else None)
    assert result is None or (
        isinstance(result, ForwardDetection) and DEFECT_DETECTION_ERROR not in result.defects
    )


LABELISH = st.sampled_from(
    [
        "From: ",
        "Von: ",
        "De : ",
        "To: ",
        "An: ",
        "Cc: ",
        "Subject: ",
        "Betreff: ",
        "Date: ",
        "Sent: ",
        "> ",
        "\n",
        "---------- Forwarded message ---------\n",
        "Begin forwarded message:\n",
        "-----Original Message-----\n",
        "<a@b.example>",
        "Name, Last <x@y.example>; ",
        "<mailto:a@b.example>",
        "[mailto:",
        '"',
        "\ufeff",
        "\r\n",
        "______\n",
    ]
)


@given(st.lists(st.one_of(LABELISH, st.text(max_size=20)), max_size=60))
@settings(max_examples=300, deadline=None)
def test_detect_forward_never_raises_on_header_like_text(pieces: list[str]) -> None:
    body = "".join(pieces)
    for subject in ("Fwd: x", "x"):
        result = detect_forward(_message(subject), body, None)
        assert result is None or DEFECT_DETECTION_ERROR not in result.defects
        html_result = detect_forward(_message(subject), None, body.replace("\n", "<br>"))
        assert html_result is None or DEFECT_DETECTION_ERROR not in html_result.defects


# ---------------------------------------------------------------- issue 14: the forward grammar

OUTLOOK_2019_DE = (
    'Am 28/10/2021, 12:46 schrieb "Jörg Müller" <joerg.mueller@mueller-bau.de>:\n\n    Hallo Katrin,\n'
)


def test_issue14_attribution_line_is_a_forward_only_under_a_forward_subject() -> None:
    found = detect_forward(_message("WG: Angebot"), OUTLOOK_2019_DE, None)
    assert found is not None and found.original is not None
    assert found.original.from_ == (MailAddress("joerg.mueller@mueller-bau.de", "Jörg Müller"),)
    assert (found.original.to, found.original.cc, found.original.subject) == ((), (), "Angebot")
    assert detect_forward(_message("AW: Angebot"), OUTLOOK_2019_DE, None) is None
    assert detect_forward(_message("Angebot"), OUTLOOK_2019_DE, None) is None


def test_issue14_attribution_wrapped_over_lines_and_behind_a_note() -> None:
    body = (
        "Zur Info\n\nOn Mon, Mar 4, 2024 at 10:15 AM James O'Brien <\n"
        "james@harbourfreight.ie>\nwrote:\n\n> Hi\n"
    )
    found = detect_forward(_message("Fwd: Quote"), body, None)
    assert found is not None and found.original is not None
    assert [a.address for a in found.original.from_] == ["james@harbourfreight.ie"]


def test_issue14_finnish_attribution_under_vs_is_a_reply() -> None:
    body = (
        "Kiitos!\n\nJussi Mäkinen <jussi.makinen@makinen-rakennus.fi> kirjoitti 28/10/2021 12.46:\n\n> Hei\n"
    )
    assert detect_forward(_message("VS: Tarjous"), body, None) is None


def test_issue14_on_behalf_of_names_the_mailbox_not_a_second_sender() -> None:
    for phrase in ("on behalf of", "im Auftrag von"):
        block = (
            f"From: Anna Berg<mailto:anna@berg.se> <anna@berg.se<mailto:anna@berg.se>> {phrase} "
            "sales@berg.se<mailto:sales@berg.se>\nSent: Monday\nTo: bob@y.no\nSubject: Offer\n"
        )
        found = detect_forward(_message("FW: Offer"), block, None)
        assert found is not None and found.original is not None
        assert found.original.from_ == (MailAddress("anna@berg.se", "Anna Berg"),), phrase


def test_issue14_yahoo_label_without_colon_counts_only_glued_to_the_previous_value() -> None:
    sep = "----- Przekazana wiadomość ----- "
    glued = sep + "Od: A <a@x.pl>Do: B <b@y.pl>Dw C <c@z.pl>Temat: Oferta\n"
    found = detect_forward(_message("Oferta"), glued, None)
    assert found is not None and found.original is not None
    assert ([a.address for a in found.original.to], [a.address for a in found.original.cc]) == (
        ["b@y.pl"],
        ["c@z.pl"],
    )
    spaced = sep + "Od: A <a@x.pl>Do: B <b@y.pl> Dw C <c@z.pl>Temat: Oferta\n"
    found = detect_forward(_message("Oferta"), spaced, None)
    assert found is not None and found.original is not None and found.original.cc == ()


def test_issue14_ox_original_message_is_a_forward_outlooks_needs_a_subject() -> None:
    block = "From: A <a@x.de>\nTo: b@y.de\nDate: 02/10/2023\nSubject: Angebot\n\nHallo\n"
    ox = detect_forward(_message("Angebot"), "---------- Original Message ----------\n" + block, None)
    assert ox is not None and ox.original is not None and ox.original.client == "ionos"
    assert detect_forward(_message("Angebot"), "-----Original Message-----\n" + block, None) is None


def test_issue14_name_without_address_is_kept_in_the_forward_json_but_is_no_participant() -> None:
    from bccd.ingest import _forward_json

    block = "From: Marta Ruiz\nSent: lunes\nTo: Bob <bob@y.es>; Eva Luna\nSubject: Oferta\n"
    found = detect_forward(_message("RV: Oferta"), block, None)
    assert found is not None and found.original is not None
    assert found.original.from_ == () and found.original.from_names == ("Marta Ruiz",)
    assert found.original.to == (MailAddress("bob@y.es", "Bob"),) and found.original.to_names == ("Eva Luna",)
    assert set(found.defects) == {"forward_sender_without_address", "forward_name_without_address"}
    data = _forward_json(found)
    assert data is not None
    assert data["from"] == [{"address": None, "name": "Marta Ruiz"}]
    assert data["to"] == [{"address": "bob@y.es", "name": "Bob"}, {"address": None, "name": "Eva Luna"}]


@pytest.mark.parametrize(
    ("value", "pairs"),
    [
        ("« Anne Roux » <anne@x.fr>", [("anne@x.fr", "Anne Roux")]),
        ("„Jan Nowak” <jan@x.pl>", [("jan@x.pl", "Jan Nowak")]),
        ("John Doe (john@x.hu)", [("john@x.hu", "John Doe")]),
        ("John Doe (<john@x.sk>)", [("john@x.sk", "John Doe")]),
    ],
)
def test_issue14_sender_quoting_styles(value: str, pairs: list[tuple[str, str]]) -> None:
    from bccd.mail.forward_addresses import parse_inline_addresses

    assert parse_inline_addresses(value) == (pairs, [])


def test_issue14_attached_eml_named_by_a_base64_encoded_word_is_still_found() -> None:
    # The hot path looks for ".eml" in the raw headers before parsing parameters; an encoded-word
    # name hides the suffix, so it must still be parsed.
    parts = (
        "--B\nContent-Type: text/plain\n\nsee attached\n"
        '--B\nContent-Type: application/octet-stream; name="=?utf-8?b?QW5nZWJvdC5lbWw=?="\n'
        "Content-Disposition: attachment\n\n"
        "From: Anna <anna@berg.se>\nTo: bob@y.no\nSubject: Angebot\n\nHallo\n"
    )
    found = detect_forward(_with_parts("FW: Angebot", "multipart/mixed", parts), "see attached\n", None)
    assert found is not None and found.original is not None and found.original.kind == "attachment"
    assert found.original.from_ == (MailAddress("anna@berg.se", "Anna"),)


def test_issue14_bounce_sender_found_in_any_case_and_form() -> None:
    msg = _message("Fwd: Undelivered Mail", sender='"Mail Delivery System" <MAILER-DAEMON@mx.example>')
    assert detect_forward(msg, GMAIL_BLOCK, None) is None
