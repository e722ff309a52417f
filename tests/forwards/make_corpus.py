"""Generate the forward corpus: tests/forwards/corpus/**/*.eml and tests/forwards/expected.json.

Run `.venv/bin/python -m tests.forwards.make_corpus` from the repository root. Output is deterministic
(fixed seeds, fixed dates); commit the generated files with any change to this script.
"""

from __future__ import annotations

import html
import json
import random
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bccd.mail.addresses import normalize_address
from tests.forwards import corpus_data as data
from tests.forwards.mime import Multipart, Part, build_message, encode_address, encode_header

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
EXPECTED = ROOT / "expected.json"
CLIENTS = (
    "gmail",
    "outlook_desktop",
    "outlook_new",
    "outlook_web",
    "apple_mail",
    "thunderbird",
    "yahoo",
    "generic_original_message",
)
CLIENT_STYLE = {
    "gmail": "gmail",
    "outlook_desktop": "outlook",
    "outlook_new": "outlook",
    "outlook_web": "outlook",
    "apple_mail": "apple",
    "thunderbird": "thunderbird",
    "yahoo": "yahoo",
    "generic_original_message": "generic",
}
SMART_BCC = "k7q2m9x4t8w1@bcc.crm.example"
BASE_TIME = datetime(2024, 3, 4, 8, 0, 0)
ONE_SEPARATOR = "________________________________"


@dataclass(frozen=True)
class Person:
    name: str | None
    address: str | None  # None: printed as a name only (Exchange contact)

    def expected(self) -> list[str | None] | None:
        if self.address is None:
            return None
        norm = normalize_address(self.address)
        assert norm is not None, self.address
        name = self.name
        if name is not None and normalize_address(name) == norm:
            name = None
        return [norm, name]


@dataclass
class Original:
    lang: str
    sender: Person
    to: list[Person]
    cc: list[Person]
    subject: str
    when: datetime
    body: str


@dataclass
class Fixture:
    path: str
    category: str  # forward | negative | unparseable
    client: str
    lang: str
    fmt: str  # text | html | alternative | attachment
    quirks: list[str]
    raw: bytes
    expect: dict[str, Any] | None


# ---------------------------------------------------------------- people, dates, rendering of addresses


def people(lang: str) -> list[Person]:
    return [Person(name, f"{local}@{domain}") for name, local, domain in data.PEOPLE[lang]]


def long_date(lang: str, when: datetime) -> str:
    hour12 = when.hour % 12 or 12
    return data.DATE_FORMATS[lang].format(
        wd=data.WEEKDAYS[lang][when.weekday()],
        d=when.day,
        mon=data.MONTHS[lang][when.month - 1],
        m=when.month,
        y=when.year,
        t=f"{when:%H:%M}",
        t12=f"{hour12}:{when:%M} {'AM' if when.hour < 12 else 'PM'}",
    )


def rfc_date(when: datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S +0100")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def render(person: Person, style: str) -> str:
    name, address = person.name, person.address
    if address is None:
        return name or ""
    if style == "gmail":
        return f"{name} <{address}>" if name else f"<{address}>"
    if style == "outlook":
        return f"{name} <{address}>" if name else address
    if style == "owa":
        return f"{name} <{address}>" if name else f"{address} <{address}>"
    if style in ("apple", "tb"):
        if not name:
            return address
        shown = _quoted(name) if ("," in name or '"' in name) else name
        return f"{shown} <{address}>"
    if style == "yahoo":
        return f"{name} <{address}>" if name else f"{_quoted(address)} <{address}>"
    if style == "mailto_old":
        return f"{name} [mailto:{address}]" if name else address
    if style == "mailto":
        return f"{name} <{address}<mailto:{address}>>" if name else f"{address}<mailto:{address}>"
    raise ValueError(style)


def render_list(persons: list[Person], style: str) -> str:
    sep = "; " if style in ("outlook", "owa", "yahoo", "mailto", "mailto_old") else ", "
    return sep.join(render(p, style) for p in persons)


def html_person(person: Person) -> str:
    if person.address is None:
        return html.escape(person.name or "")
    link = f'<a href="mailto:{person.address}">{person.address}</a>'
    return f"{html.escape(person.name)} &lt;{link}&gt;" if person.name else link


# ---------------------------------------------------------------- the forward block of each client


def block_lines(client: str, o: Original, quirks: set[str]) -> list[str]:
    lang = o.lang
    date = long_date(lang, o.when)
    body = [o.body, "", data.SENTENCES[lang][1].split(".")[0] + "."]
    if client == "gmail":
        lines = [
            "---------- Forwarded message ---------",
            f"{data.GMAIL_FROM[lang]}: {render(o.sender, 'gmail')}",
            f"Date: {date}",
            f"Subject: {o.subject}",
            f"To: {render_list(o.to, 'gmail')}",
        ]
        if lang == "fr":
            lines[1] = f"De : {render(o.sender, 'gmail')}"
        if o.cc:
            lines.append(f"Cc: {render_list(o.cc, 'gmail')}")
        return [*lines, "", "", *body]
    if client in ("outlook_desktop", "generic_original_message", "outlook_web"):
        f, s, t, c, subj, _prefix = data.OUTLOOK_DESKTOP[lang]
        style = "outlook"
        if client == "outlook_web":
            f, s, t, c, subj, style = "From", "Sent", "To", "Cc", "Subject", "owa"
        if client == "generic_original_message":
            style = "mailto_old"
        if "mailto" in quirks:
            style = "mailto"
        colon = " :" if lang == "fr" and client != "outlook_web" else ":"
        sender = render(o.sender, style)
        to_list = render_list(o.to, "outlook" if style == "mailto_old" else style)
        cc_list = render_list(o.cc, "outlook" if style == "mailto_old" else style)
        head = [f"{f}{colon} {sender}", f"{s}{colon} {date}", f"{t}{colon} {to_list}"]
        if o.cc:
            head.append(f"{c}{colon} {cc_list}")
        if "run_together" in quirks:
            head = [" ".join(head)]
        if "wrapped_to" in quirks and len(o.to) > 1:
            first, *rest = to_list.split("; ")
            head[2] = f"{t}{colon} {first};"
            head[3:3] = ["    " + "; ".join(rest)] if rest else []
        head.append(f"{subj}{colon} {o.subject}")
        if client == "outlook_web":
            return [ONE_SEPARATOR, *head, "", *body]
        if client == "generic_original_message":
            return [f"-----{data.ORIGINAL_MESSAGE[lang]}-----", *head, "", *body]
        return [*head, "", *body]
    if client == "outlook_new":
        f, d, t, c, subj, _prefix = data.OUTLOOK_NEW[lang]
        head = [f"{f}: {render(o.sender, 'owa')}", f"{d}: {date}", f"{t}: {render_list(o.to, 'owa')}"]
        if o.cc:
            head.append(f"{c}: {render_list(o.cc, 'owa')}")
        return [*head, f"{subj}: {o.subject}", *body]  # no blank line before the body: that is how it looks
    if client == "apple_mail":
        begin, f, subj, d, t, c = data.APPLE[lang]
        head = [
            f"{f}: {render(o.sender, 'apple')}",
            f"{subj}: {o.subject}",
            f"{d}: {date} CET",
            f"{t}: {render_list(o.to, 'apple')}",
        ]
        if o.cc:
            head.append(f"{c}: {render_list(o.cc, 'apple')}")
        if "apple_quoted" in quirks:
            return [begin, "", *["> " + h for h in head], ">", *["> " + b if b else ">" for b in body]]
        return [begin, "", *head, "", *body]
    if client == "thunderbird":
        sep, subj, d, f, t, c = data.THUNDERBIRD[lang]
        head = [
            f"{subj}: \t{o.subject}",
            f"{d}: \t{rfc_date(o.when)}",
            f"{f}: \t{render(o.sender, 'tb')}",
            f"{t}: \t{render_list(o.to, 'tb')}",
        ]
        if o.cc:
            head.append(f"{c}: \t{render_list(o.cc, 'tb')}")
        return [sep, *head, "", "", "", *body]
    if client == "yahoo":
        phrase, f, t, c, s, subj = data.YAHOO[lang]
        fields = [f"{f}: {render(o.sender, 'yahoo')}", f"{t}: {render_list(o.to, 'yahoo')}"]
        if o.cc:
            fields.append(f"{c}: {render_list(o.cc, 'yahoo')}")
        fields += [f"{s}: {date} CET", f"{subj}: {o.subject}"]
        if "yahoo_lines" in quirks:
            return [f"----- {phrase} -----", *fields, "", *body]
        return [f"   ----- {phrase} ----- " + "".join(fields), " " + body[0], *body[1:]]
    raise ValueError(client)


def block_html(client: str, o: Original) -> str:
    lang = o.lang
    date = html.escape(long_date(lang, o.when))
    body = f"<div>{html.escape(o.body)}</div>"
    esc = html.escape

    def join(persons: list[Person], sep: str) -> str:
        return sep.join(html_person(p) for p in persons)

    if client == "gmail":
        sender = o.sender
        who = (
            f'<strong class="gmail_sendername" dir="auto">{esc(sender.name)}</strong> '
            f'<span dir="auto">&lt;<a href="mailto:{sender.address}">{sender.address}</a>&gt;</span>'
            if sender.name
            else f'<span dir="auto">&lt;<a href="mailto:{sender.address}">{sender.address}</a>&gt;</span>'
        )
        cc = f"Cc: {join(o.cc, ', ')}<br>" if o.cc else ""
        return (
            '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
            "---------- Forwarded message ---------<br>"
            f"{esc(data.GMAIL_FROM[lang])}: {who}<br>Date: {date}<br>Subject: {esc(o.subject)}<br>"
            f"To: {join(o.to, ', ')}<br>{cc}</div><br><br>{body}</div>"
        )
    if client in ("outlook_desktop", "outlook_web", "outlook_new"):
        f, s, t, c, subj, _prefix = data.OUTLOOK_DESKTOP[lang]
        colon = "&nbsp;:" if lang == "fr" else ":"
        cc = f"<b>{esc(c)}{colon}</b> {join(o.cc, '; ')}<br>" if o.cc else ""
        fields = (
            f"<b>{esc(f)}{colon}</b> {html_person(o.sender)}<br><b>{esc(s)}{colon}</b> {date}<br>"
            f"<b>{esc(t)}{colon}</b> {join(o.to, '; ')}<br>{cc}<b>{esc(subj)}{colon}</b> {esc(o.subject)}"
        )
        if client == "outlook_desktop":
            return (
                "<div><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
                f"<p class=MsoNormal><span lang=EN-US>{fields}<o:p></o:p></span></p></div></div>"
                f"<p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>{esc(o.body)}<o:p></o:p></p>"
            )
        return (
            '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
            '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" '
            f'color="#000000">{fields}</font><div>&nbsp;</div></div>{body}'
        )
    if client == "apple_mail":
        begin, f, subj, d, t, c = data.APPLE[lang]
        span = '<span style="font-family: -webkit-system-font, Helvetica Neue, Helvetica, sans-serif;">'

        def row(label: str, value: str) -> str:
            return (
                f'<div style="margin-top: 0px; margin-right: 0px; margin-bottom: 0px; margin-left: 0px;">'
                f"{span}<b>{esc(label)}: </b></span>{span}{value}<br></span></div>"
            )

        rows = (
            row(f, html_person(o.sender))
            + row(subj, f"<b>{esc(o.subject)}</b>")
            + row(d, f"{date} CET")
            + row(t, join(o.to, ", "))
            + (row(c, join(o.cc, ", ")) if o.cc else "")
        )
        return (
            f'<div><br><blockquote type="cite"><div>{esc(begin)}</div><br class="Apple-interchange-newline">'
            f'{rows}<br class="">{body}</blockquote></div>'
        )
    raise ValueError(client)


# ---------------------------------------------------------------- whole messages


def outer_subject(client: str, lang: str, subject: str) -> str:
    if client in ("outlook_desktop", "generic_original_message"):
        return f"{data.OUTLOOK_DESKTOP[lang][5]}: {subject}"
    if client == "outlook_new":
        return f"{data.OUTLOOK_NEW[lang][5]}: {subject}"
    if client == "outlook_web":
        return f"{data.OUTLOOK_WEB_PREFIX[lang]}: {subject}"
    return f"Fwd: {subject}"


def note_lines(lang: str, forwarder: Person, domain: str, quirks: set[str]) -> list[str]:
    lines: list[str] = []
    if "note" in quirks:
        lines += [data.SENTENCES[lang][0].format(d=domain), ""]
    if "signature" in quirks or "signature_separator" in quirks:
        lines += ["-- ", forwarder.name or ""]
        if "signature_separator" in quirks:
            lines += [
                "__________________________",
                f"{forwarder.name} | Sales | +47 22 00 00 00",
                "------------------------------",
                "Sent from my phone",
            ]
        lines += [""]
    return lines


def headers(
    forwarder: Person, subject: str, when: datetime, ident: str, raw_utf8: bool = False
) -> list[tuple[str, str]]:
    assert forwarder.address is not None
    return [
        ("From", encode_address(forwarder.name, forwarder.address, raw_utf8)),
        ("To", SMART_BCC),
        ("Subject", encode_header(subject, raw_utf8)),
        ("Date", rfc_date(when)),
        ("Message-ID", f"<{ident}@corpus.bccd.example>"),
    ]


def text_part(text: str, lang: str, rng: random.Random) -> Part:
    legacy = {
        "ja": ("iso-2022-jp", "7bit", 0.5),
        "ru": ("koi8-r", "8bit", 0.4),
        "pl": ("iso-8859-2", "quoted-printable", 0.3),
    }
    charset, encoding, share = legacy.get(lang, ("iso-8859-1", "quoted-printable", 0.25))
    if rng.random() < share:
        try:
            text.encode(charset)
            return Part("text/plain", text, charset, encoding)
        except UnicodeEncodeError:
            pass  # the text needs characters the legacy charset lacks: send UTF-8 as clients do
    encoding = rng.choice(["quoted-printable", "quoted-printable", "base64", "8bit"])
    return Part("text/plain", text, "utf-8", encoding)


def html_document(inner: str, client: str) -> str:
    if client == "outlook_desktop":
        return (
            '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv=Content-Type '
            'content="text/html; charset=utf-8">'
            "<style><!-- p.MsoNormal {margin:0cm;font-size:11.0pt;} --></style>"
            '<!--[if gte mso 9]><xml><o:shapedefaults v:ext="edit" spidmax="1026" /></xml><![endif]--></head>'
            f'<body lang=DE link="#0563C1"><div class=WordSection1>{inner}</div></body></html>'
        )
    head = '<head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
    return f"<html>{head}<body>{inner}</body></html>"


def expectation(
    o: Original, kind: str, client_style: str | None, defects: list[str] | None = None
) -> dict[str, Any]:
    def entries(persons: list[Person]) -> list[list[str | None]]:
        return [e for p in persons if (e := p.expected()) is not None]

    missing = [p for p in [o.sender, *o.to, *o.cc] if p.address is None]
    found_defects = list(defects or [])
    if not found_defects:
        if o.sender.address is None:
            found_defects.append("forward_sender_without_address")
        if missing:
            found_defects.append("forward_name_without_address")
    return {
        "original": {
            "kind": kind,
            "client": client_style,
            "from": entries([o.sender]),
            "to": entries(o.to),
            "cc": entries(o.cc),
            "subject": o.subject,
        },
        "defects": found_defects,
    }


def make_original(lang: str, rng: random.Random, index: int) -> tuple[Person, Original]:
    pool = people(lang)
    forwarder, others = pool[0], pool[1:]
    rng.shuffle(others)
    sender = others[0]
    to = [forwarder, *others[1 : 1 + rng.randint(0, 2)]]
    rng.shuffle(to)
    cc = others[3 : 3 + rng.randint(0, 2)]
    if rng.random() < 0.3:
        to = [Person(None, p.address) if p is not forwarder else p for p in to]
    subject = data.SUBJECTS[lang][index % len(data.SUBJECTS[lang])]
    when = BASE_TIME + timedelta(days=index % 40, hours=(index * 7) % 9, minutes=(index * 13) % 60)
    return forwarder, Original(lang, sender, to, cc, subject, when, data.SENTENCES[lang][1])


def forward_fixture(
    client: str,
    lang: str,
    index: int,
    fmt: str,
    quirks: set[str],
    path: str,
    original: tuple[Person, Original] | None = None,
    subject_override: str | None = None,
) -> Fixture:
    rng = random.Random(f"{client}/{lang}/{index}/{fmt}/{sorted(quirks)}")
    forwarder, o = original or make_original(lang, rng, index)
    assert forwarder.address is not None
    domain = (o.sender.address or "info@example.com").split("@")[1]
    pre = note_lines(lang, forwarder, domain, quirks)
    lines = pre + block_lines(client, o, quirks)
    if "nested" in quirks:
        _inner_forwarder, nested = make_original(lang, random.Random(f"nested/{path}"), index + 1)
        lines += ["", *block_lines(client, nested, set())]
    text = "\n".join(lines) + "\n"
    if "bom" in quirks:
        text = "\ufeff" + text
    subject = subject_override if subject_override is not None else outer_subject(client, lang, o.subject)
    sent = o.when + timedelta(days=1, hours=2)
    hdrs = headers(forwarder, subject, sent, path.replace("/", "-"), raw_utf8="raw_utf8" in quirks)
    body: Part | Multipart
    style = CLIENT_STYLE[client]
    if fmt == "text":
        body = text_part(text, lang, rng)
    else:
        note_html = "".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in pre)
        inner = note_html + block_html(
            client if client != "generic_original_message" else "outlook_desktop", o
        )
        document = html_document(inner, client)
        html_part = Part("text/html", document, "utf-8", "quoted-printable")
        body = (
            html_part if fmt == "html" else Multipart("alternative", [text_part(text, lang, rng), html_part])
        )
    raw = build_message(hdrs, body, crlf="crlf" in quirks)
    return Fixture(path, "forward", client, lang, fmt, sorted(quirks), raw, expectation(o, "inline", style))


# ---------------------------------------------------------------- the corpus


def base_fixtures() -> list[Fixture]:
    """Every client × language once in plain text, quirks spread deterministically across them."""
    out: list[Fixture] = []
    index = 0
    for client in CLIENTS:
        for lang in data.LANGS:
            rng = random.Random(f"quirks/{client}/{lang}")
            quirks: set[str] = set()
            if rng.random() < 0.7:
                quirks.add("note")
            if rng.random() < 0.3:
                quirks.add("signature")
            if index % 4 == 1:
                quirks.add("crlf")
            if index % 9 == 4:
                quirks.add("bom")
            if client == "apple_mail" and index % 2 == 0:
                quirks.add("apple_quoted")
            if client == "yahoo" and index % 3 == 0:
                quirks.add("yahoo_lines")
            fmt = (
                "alternative"
                if client in ("gmail", "outlook_desktop", "outlook_web", "apple_mail") and index % 3 == 0
                else "text"
            )
            out.append(forward_fixture(client, lang, index, fmt, quirks, f"forwards/{client}/{lang}.eml"))
            index += 1
    return out


def html_fixtures() -> list[Fixture]:
    """HTML-only forwards for the clients whose HTML differs from their text (every language)."""
    out: list[Fixture] = []
    for offset, client in enumerate(("gmail", "outlook_desktop", "outlook_web", "outlook_new", "apple_mail")):
        for i, lang in enumerate(data.LANGS):
            if client == "outlook_new" and i % 3:
                continue
            quirks = {"note"} if i % 2 else set()
            out.append(
                forward_fixture(
                    client, lang, 500 + offset * 40 + i, "html", quirks, f"forwards/{client}/{lang}-html.eml"
                )
            )
    return out


def quirk_fixtures() -> list[Fixture]:
    out: list[Fixture] = []
    plan: list[tuple[str, str, set[str]]] = [
        ("outlook_desktop", "en", {"run_together"}),
        ("outlook_desktop", "de", {"run_together", "note"}),
        ("outlook_desktop", "fr", {"run_together"}),
        ("outlook_desktop", "pl", {"run_together", "crlf"}),
        ("generic_original_message", "es", {"run_together"}),
        ("gmail", "en", {"nested", "note"}),
        ("gmail", "de", {"nested"}),
        ("outlook_desktop", "sv", {"nested"}),
        ("apple_mail", "fr", {"nested"}),
        ("thunderbird", "nl", {"nested", "signature"}),
        ("outlook_desktop", "en", {"mailto"}),
        ("outlook_desktop", "de", {"mailto", "note"}),
        ("outlook_desktop", "nl", {"mailto"}),
        ("outlook_desktop", "es", {"mailto", "crlf"}),
        ("gmail", "en", {"signature_separator", "note"}),
        ("gmail", "no", {"signature_separator"}),
        ("outlook_desktop", "da", {"signature_separator", "note"}),
        ("apple_mail", "de", {"signature_separator"}),
        ("thunderbird", "fi", {"signature_separator"}),
        ("yahoo", "it", {"signature_separator"}),
        ("gmail", "fr", {"bom", "crlf"}),
        ("outlook_web", "pt-BR", {"bom"}),
        ("apple_mail", "ja", {"bom", "apple_quoted"}),
        ("apple_mail", "en", {"apple_quoted", "note"}),
        ("apple_mail", "sv", {"apple_quoted"}),
        ("apple_mail", "ru", {"apple_quoted", "crlf"}),
        ("outlook_desktop", "no", {"wrapped_to"}),
        ("outlook_desktop", "cs", {"wrapped_to", "note"}),
        ("gmail", "ja", {"raw_utf8", "note"}),
        ("thunderbird", "uk", {"raw_utf8"}),
    ]
    for n, (client, lang, quirks) in enumerate(plan):
        rng = random.Random(f"quirk/{n}")
        forwarder, o = make_original(lang, rng, 700 + n)
        if "wrapped_to" in quirks:
            o.to = people(lang)[:4]
            o.cc = []
        tag = "-".join(sorted(q for q in quirks if q != "note"))
        out.append(
            forward_fixture(
                client, lang, 700 + n, "text", quirks, f"quirks/{client}-{lang}-{tag}.eml", (forwarder, o)
            )
        )

    # Names that clients print in awkward ways, and names without addresses (Exchange contacts).
    for n, (client, lang) in enumerate(
        [
            ("outlook_desktop", "en"),
            ("outlook_desktop", "de"),
            ("outlook_web", "no"),
            ("apple_mail", "en"),
            ("gmail", "es"),
            ("thunderbird", "fr"),
            ("yahoo", "en"),
        ]
    ):
        forwarder, o = make_original(lang, random.Random(f"names/{n}"), 760 + n)
        pool = people(lang)
        odd = [
            Person("O'Connor, Siobhán", "siobhan.oconnor@galway-partners.ie"),
            Person('Anna "Annie" Berg', "anna.berg@berg-partner.se"),
            Person("jane.doe@example.org", "jane.doe@example.org"),
            Person(None, "Upper.Case@EXAMPLE.COM"),
            Person("Jörg Weiß", "jörg@bücher.example"),
        ]
        o.sender = odd[n % len(odd)]
        o.to = [forwarder, *odd[(n + 1) % len(odd) : (n + 1) % len(odd) + 2]]
        o.cc = [pool[3]]
        quirks = {"display_names"}
        if client in ("outlook_desktop", "outlook_web"):
            o.to.append(Person("Lars Eriksen", None))  # an Exchange contact: name only
            quirks.add("name_without_address")
        out.append(
            forward_fixture(
                client, lang, 760 + n, "text", quirks, f"quirks/{client}-{lang}-names.eml", (forwarder, o)
            )
        )

    # The sender printed as a name only: the forward is read, with a defect.
    forwarder, o = make_original("de", random.Random("noaddr"), 790)
    o.sender = Person("Vertrieb Süd", None)
    out.append(
        forward_fixture(
            "outlook_desktop",
            "de",
            790,
            "text",
            {"name_without_address"},
            "quirks/outlook_desktop-de-sender-name-only.eml",
            (forwarder, o),
        )
    )

    # Subjects a user or a gateway changed.
    forwarder, o = make_original("en", random.Random("tag"), 791)
    out.append(
        forward_fixture(
            "outlook_desktop",
            "en",
            791,
            "text",
            {"subject_tag"},
            "quirks/outlook_desktop-en-external-tag.eml",
            (forwarder, o),
            subject_override=f"[EXTERNAL] FW: {o.subject}",
        )
    )
    forwarder, o = make_original("de", random.Random("edited"), 792)
    out.append(
        forward_fixture(
            "gmail",
            "de",
            792,
            "text",
            {"subject_edited"},
            "quirks/gmail-de-subject-edited.eml",
            (forwarder, o),
            subject_override="Bitte übernehmen",
        )
    )
    forwarder, o = make_original("en", random.Random("double"), 793)
    out.append(
        forward_fixture(
            "outlook_web",
            "en",
            793,
            "text",
            {"subject_repeated_prefix"},
            "quirks/outlook_web-en-fw-fw.eml",
            (forwarder, o),
            subject_override=f"FW: Fwd: {o.subject}",
        )
    )
    forwarder, o = make_original("fr", random.Random("bracket"), 794)
    out.append(
        forward_fixture(
            "thunderbird",
            "fr",
            794,
            "text",
            {"subject_bracketed"},
            "quirks/thunderbird-fr-bracketed.eml",
            (forwarder, o),
            subject_override=f"[Fwd: {o.subject}]",
        )
    )
    return out


def attached(
    inner_headers: list[tuple[str, str]],
    inner_body: str,
    ctype: str = "message/rfc822",
    encoding: str = "7bit",
    filename: str | None = None,
) -> Part:
    inner = "".join(f"{k}: {v}\n" for k, v in inner_headers) + "MIME-Version: 1.0\n"
    inner += (
        'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: 8bit\n\n' + inner_body + "\n"
    )
    return Part(ctype, inner.encode("utf-8"), None, encoding, filename)


def attachment_fixtures() -> list[Fixture]:
    out: list[Fixture] = []
    cases = [
        ("en", "message/rfc822", "7bit", None, False),
        ("de", "message/rfc822", "8bit", None, False),
        ("fr", "message/rfc822", "7bit", None, False),
        ("no", "message/rfc822", "7bit", None, False),
        ("ja", "message/rfc822", "7bit", None, False),
        ("ru", "message/global", "8bit", None, True),
        ("sv", "message/rfc822", "base64", None, False),
        ("pl", "application/octet-stream", "base64", "oferta.eml", False),
        ("it", "message/rfc822", "7bit", None, False),
        ("tr", "message/global", "8bit", None, True),
    ]
    for n, (lang, ctype, encoding, filename, raw_utf8) in enumerate(cases):
        rng = random.Random(f"att/{n}")
        forwarder, o = make_original(lang, rng, 800 + n)
        assert forwarder.address is not None
        inner_headers = [
            ("From", encode_address(o.sender.name, o.sender.address or "", raw_utf8)),
            ("To", ", ".join(encode_address(p.name, p.address or "", raw_utf8) for p in o.to)),
            ("Subject", encode_header(o.subject, raw_utf8)),
            ("Date", rfc_date(o.when)),
            ("Message-ID", f"<orig-{n}@{(o.sender.address or 'x@x').split('@')[1]}>"),
        ]
        if o.cc:
            inner_headers.insert(
                2, ("Cc", ", ".join(encode_address(p.name, p.address or "", raw_utf8) for p in o.cc))
            )
        note = data.SENTENCES[lang][0].format(d="example.com") + "\n\n-- \n" + (forwarder.name or "") + "\n"
        body = Multipart(
            "mixed", [Part("text/plain", note), attached(inner_headers, o.body, ctype, encoding, filename)]
        )
        subject = ("FW: " if n % 2 else "Fwd: ") + o.subject
        raw = build_message(
            headers(forwarder, subject, o.when + timedelta(days=1), f"att-{n}"), body, crlf=n % 3 == 0
        )
        quirks = [
            q
            for q, on in (
                ("message_global", ctype == "message/global"),
                ("transfer_encoded", encoding == "base64"),
                ("eml_octet_stream", filename is not None),
                ("raw_utf8", raw_utf8),
            )
            if on
        ]
        out.append(
            Fixture(
                f"attachments/{lang}-{n}.eml",
                "forward",
                "attachment",
                lang,
                "attachment",
                quirks,
                raw,
                expectation(o, "attachment", None),
            )
        )
    # An inline Gmail forward whose original carried a mail as attachment: the inline block is the original.
    forwarder, o = make_original("en", random.Random("inline+att"), 820)
    text = "\n".join(block_lines("gmail", o, set())) + "\n"
    other = attached(
        [("From", "Newsletter <news@shop.example>"), ("To", "someone@else.example"), ("Subject", "Offers")],
        "hi",
    )
    body = Multipart("mixed", [Part("text/plain", text), other])
    raw = build_message(headers(forwarder, f"Fwd: {o.subject}", o.when, "inline-att"), body)
    out.append(
        Fixture(
            "attachments/gmail-inline-with-attached-mail.eml",
            "forward",
            "gmail",
            "en",
            "text",
            ["attached_mail_in_original"],
            raw,
            expectation(o, "inline", "gmail"),
        )
    )
    return out


def negative(
    path: str,
    lang: str,
    subject: str,
    body: Part | Multipart,
    quirks: list[str],
    sender: Person | None = None,
) -> Fixture:
    forwarder = sender or people(lang)[0]
    raw = build_message(headers(forwarder, subject, BASE_TIME, path.replace("/", "-")), body)
    return Fixture(path, "negative", "none", lang, "text", quirks, raw, None)


def negative_fixtures() -> list[Fixture]:
    out: list[Fixture] = []
    # Replies that quote the previous mail with an attribution line ("On ... wrote:").
    for lang, attribution in data.REPLY_ATTRIBUTION.items():
        pool = people(lang)
        them = pool[1]
        when = long_date(lang, BASE_TIME)
        quoted = "\n".join("> " + line for line in [data.SENTENCES[lang][1], "", them.name or ""])
        text = (
            f"{data.SENTENCES[lang][0].format(d='example.com')}\n\n"
            f"{attribution.format(date=when, name=them.name, addr=them.address)}\n\n{quoted}\n"
        )
        subject = f"{data.REPLY_PREFIX[lang]}: {data.SUBJECTS[lang][0]}"
        out.append(
            negative(
                f"negatives/reply-attribution-{lang}.eml", lang, subject, Part("text/plain", text), ["reply"]
            )
        )
    # Outlook replies quote the same header block a forward has; only the subject tells them apart.
    for lang in ("en", "de", "fr", "es", "nl", "sv", "no", "da", "pl", "cs", "hu", "tr", "fi", "ja", "pt"):
        pool = people(lang)
        f, s, t, _c, subj, _prefix = data.OUTLOOK_DESKTOP[lang]
        head = [
            f"{f}: {render(pool[1], 'outlook')}",
            f"{s}: {long_date(lang, BASE_TIME)}",
            f"{t}: {render_list([pool[0], pool[2]], 'outlook')}",
            f"{subj}: {data.SUBJECTS[lang][0]}",
        ]
        separator = [ONE_SEPARATOR] if lang in ("en", "sv", "pt") else []
        if lang in ("de", "pl"):
            separator = [f"-----{data.ORIGINAL_MESSAGE[lang]}-----"]
        text = "\n".join(
            [
                data.SENTENCES[lang][1],
                "",
                *separator,
                *head,
                "",
                data.SENTENCES[lang][0].format(d="x.example"),
            ]
        )
        subject = f"{data.REPLY_PREFIX[lang]}: {data.SUBJECTS[lang][0]}"
        out.append(
            negative(
                f"negatives/reply-outlook-{lang}.eml",
                lang,
                subject,
                Part("text/plain", text + "\n"),
                ["reply"],
            )
        )
    # The same block with the reply prefix removed by the user: a header-shaped block alone is no forward.
    pool = people("en")
    text = (
        f"Thanks, noted.\n\nFrom: {render(pool[1], 'outlook')}\nSent: {long_date('en', BASE_TIME)}\n"
        f"To: {render(pool[0], 'outlook')}\nSubject: Delivery\n\nSee you Tuesday.\n"
    )
    out.append(
        negative(
            "negatives/reply-outlook-no-prefix.eml", "en", "Delivery", Part("text/plain", text), ["reply"]
        )
    )
    # A reply to a forward quotes the forward: still a reply.
    forwarder, o = make_original("en", random.Random("reply-to-fwd"), 900)
    quoted = "\n".join("> " + line if line else ">" for line in block_lines("gmail", o, set()))
    attribution = f"On Tue, Mar 5, 2024 at 9:12 AM {forwarder.name} <{forwarder.address}> wrote:"
    text = f"Got it, will call them.\n\n{attribution}\n\n{quoted}\n"
    out.append(
        negative(
            "negatives/reply-to-forward-en.eml",
            "en",
            f"Re: Fwd: {o.subject}",
            Part("text/plain", text),
            ["reply", "quoted_forward"],
            people("en")[1],
        )
    )
    # The HTML of a Gmail reply, to check the HTML path does not find a forward either.
    html_reply = (
        '<div dir="ltr">Sounds good.</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "On Mon, Mar 4, 2024 at 10:15 AM James O&#39;Brien &lt;"
        '<a href="mailto:james.obrien@harbourfreight.ie">'
        'james.obrien@harbourfreight.ie</a>&gt; wrote:<br></div><blockquote class="gmail_quote">Can we meet?'
        "</blockquote></div>"
    )
    out.append(
        negative(
            "negatives/reply-gmail-html-en.eml",
            "en",
            "Re: Meeting",
            Part("text/html", html_document(html_reply, "gmail")),
            ["reply", "html"],
        )
    )

    # Delivery status notifications and feedback reports carry the mail they are about.
    returned = attached(
        [
            ("From", "Emma Clarke <emma.clarke@northwind-sales.co.uk>"),
            ("To", "nobody@harbourfreight.ie"),
            ("Subject", "Quote for Q3 delivery"),
        ],
        "Hello",
    )
    dsn = Multipart(
        "report",
        [
            Part(
                "text/plain",
                "This is the mail system at host mx.northwind-sales.co.uk.\n\n"
                "I'm sorry to have to inform you "
                "that your message could not be delivered.\n",
            ),
            Part(
                "message/delivery-status",
                "Reporting-MTA: dns; mx.northwind-sales.co.uk\n\nFinal-Recipient: rfc822; "
                "nobody@harbourfreight.ie\nAction: failed\nStatus: 5.1.1\n",
                None,
                "7bit",
            ),
            returned,
        ],
        params="; report-type=delivery-status",
    )
    out.append(
        negative(
            "negatives/dsn-delivery-status.eml",
            "en",
            "Undelivered Mail Returned to Sender",
            dsn,
            ["dsn"],
            Person("Mail Delivery System", "MAILER-DAEMON@mx.northwind-sales.co.uk"),
        )
    )
    dsn_headers = Multipart(
        "report",
        [
            Part("text/plain", "Die Nachricht konnte nicht zugestellt werden.\n"),
            Part(
                "message/delivery-status",
                "Reporting-MTA: dns; mail.mueller-bau.de\n\nFinal-Recipient: rfc822; x@y.de\n"
                "Action: failed\nStatus: 5.2.2\n",
                None,
                "7bit",
            ),
            Part(
                "text/rfc822-headers",
                "From: Jörg Müller <joerg.mueller@mueller-bau.de>\nTo: x@y.de\nSubject: Angebot\n",
                "utf-8",
                "8bit",
            ),
        ],
        params="; report-type=delivery-status",
    )
    out.append(
        negative(
            "negatives/dsn-rfc822-headers-de.eml",
            "de",
            "Unzustellbar: Angebot",
            dsn_headers,
            ["dsn"],
            Person("Postmaster", "postmaster@mueller-bau.de"),
        )
    )
    arf = Multipart(
        "report",
        [
            Part(
                "text/plain",
                "This is an email abuse report for an email message received from IP 192.0.2.1.\n",
            ),
            Part(
                "message/feedback-report",
                "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\n",
                None,
                "7bit",
            ),
            returned,
        ],
        params="; report-type=feedback-report",
    )
    out.append(
        negative(
            "negatives/feedback-report.eml",
            "en",
            "FW: Abuse report",
            arf,
            ["feedback_report"],
            Person("Abuse Desk", "abuse@isp.example"),
        )
    )
    mdn = Multipart(
        "report",
        [
            Part("text/plain", "Your message was displayed.\n"),
            Part(
                "message/disposition-notification",
                "Reporting-UA: mail.example\nFinal-Recipient: rfc822;x@y.example\n"
                "Disposition: manual-action/MDN-sent-manually; displayed\n",
                None,
                "7bit",
            ),
        ],
        params="; report-type=disposition-notification",
    )
    out.append(negative("negatives/read-receipt.eml", "en", "Read: Quote for Q3 delivery", mdn, ["mdn"]))
    bounce = Multipart(
        "mixed",
        [
            Part(
                "text/plain",
                "Delivery to the following recipient failed permanently:\n\n    nobody@harbourfreight.ie\n",
            ),
            returned,
        ],
    )
    out.append(
        negative(
            "negatives/bounce-mailer-daemon-mixed.eml",
            "en",
            "Delivery Status Notification (Failure)",
            bounce,
            ["bounce"],
            Person("Mail Delivery Subsystem", "mailer-daemon@googlemail.com"),
        )
    )

    # Bodies with header-looking lines, addresses in prose and signatures.
    prose = [
        (
            "signature-only",
            "en",
            "Meeting notes",
            "Notes attached.\n\n-- \nEmma Clarke\nFrom: Northwind Sales Ltd\n"
            "E-mail: emma.clarke@northwind-sales.co.uk\n_______________________________\n"
            "This e-mail is confidential.\n",
        ),
        (
            "prose-addresses",
            "en",
            "Contacts for the project",
            "Hi all,\n\nthe contacts are: anna.berg@berg-partner.se, "
            "Jörg Müller <joerg.mueller@mueller-bau.de>, and mchen@summit-analytics.io.\n"
            "To: be confirmed by Friday.\n",
        ),
        (
            "from-in-prose",
            "de",
            "Neue Adresse",
            "Hallo,\n\nVon: 1. April an gilt unsere neue Adresse.\nBetreff: Umzug, "
            "siehe Anhang.\n\nGruß\nKatrin\n",
        ),
        (
            "memo",
            "en",
            "Price update",
            "From: Sales department\nTo: All customers\nDate: March 2024\nSubject: Price list\n\n"
            "Prices change from April.\n",
        ),
        (
            "shipping-form",
            "en",
            "Freight quote",
            "Route details:\nFrom: Hamburg <hamburg@port.example>\nTo: Oslo\n"
            "Date: 12 March 2024\n\nPrice on request.\n",
        ),
        (
            "forward-word-in-prose",
            "en",
            "Newsletter",
            "If you received this as a forwarded message: please subscribe.\n"
            "Begin forwarded message: is what Apple Mail writes.\n",
        ),
        (
            "dashes-signature",
            "fr",
            "Réunion",
            "Bonjour,\n\nà demain.\n\n---------------------------\nCamille Laurent\n"
            "De : l'équipe commerciale\n",
        ),
        (
            "plain-new-mail",
            "ja",
            "ご挨拶",
            "お世話になっております。\n差出人の佐藤です。\nよろしくお願いいたします。\n",
        ),
    ]
    for name, lang, subject, text in prose:
        out.append(negative(f"negatives/{name}-{lang}.eml", lang, subject, Part("text/plain", text), [name]))
    return out


def unparseable_fixtures() -> list[Fixture]:
    out: list[Fixture] = []
    f4 = {"original": None, "defects": ["forward_unparseable"]}
    cases: list[tuple[str, str, str, Part | Multipart]] = [
        (
            "gmail-broken-header",
            "en",
            "Fwd: Quote",
            Part(
                "text/plain",
                "FYI\n\n---------- Forwarded message ---------\n"
                "From: Michael\n\nthe header was cut off here\n",
            ),
        ),
        (
            "outlook-msg-attachment",
            "de",
            "WG: Angebot",
            Multipart(
                "mixed",
                [
                    Part("text/plain", "Zur Info.\n\n-- \nKatrin Vogel\n"),
                    Part(
                        "application/vnd.ms-outlook", b"\xd0\xcf\x11\xe0binary", None, "base64", "Angebot.msg"
                    ),
                ],
            ),
        ),
        (
            "empty-attached-message",
            "en",
            "Fwd: Quote",
            Multipart(
                "mixed",
                [
                    Part("text/plain", "see attached\n"),
                    Part("message/rfc822", "\nno headers at all\n", None, "7bit"),
                ],
            ),
        ),
        (
            "apple-truncated",
            "fr",
            "Devis",
            Part("text/plain", "Début du message réexpédié :\n\nDe : Hélène\n\nTexte.\n"),
        ),
    ]
    for name, lang, subject, body in cases:
        forwarder = people(lang)[0]
        raw = build_message(headers(forwarder, subject, BASE_TIME, name), body)
        out.append(
            Fixture(f"unparseable/{name}-{lang}.eml", "unparseable", "none", lang, "text", [name], raw, f4)
        )
    return out


def main() -> None:
    fixtures = base_fixtures() + html_fixtures() + quirk_fixtures() + attachment_fixtures()
    fixtures += negative_fixtures() + unparseable_fixtures()
    paths = [f.path for f in fixtures]
    assert len(paths) == len(set(paths)), "duplicate fixture paths"
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    entries = []
    for fixture in fixtures:
        target = CORPUS / fixture.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(fixture.raw)
        entries.append(
            {
                "file": fixture.path,
                "category": fixture.category,
                "client": fixture.client,
                "language": fixture.lang,
                "format": fixture.fmt,
                "quirks": fixture.quirks,
                "expect": fixture.expect,
            }
        )
    EXPECTED.write_text(json.dumps(entries, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    counts = {c: sum(1 for f in fixtures if f.category == c) for c in ("forward", "negative", "unparseable")}
    print(f"wrote {len(fixtures)} fixtures: {counts}")


if __name__ == "__main__":
    main()
