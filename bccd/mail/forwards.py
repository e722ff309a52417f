"""Decide whether a mail is a forward and find the original's From, To, Cc and subject (SPEC F1–F4)."""

from __future__ import annotations

import email.message
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32
from typing import Final, Literal

from bccd.mail.addresses import MailAddress
from bccd.mail.forward_html import html_to_text
from bccd.mail.forward_inline import InlineOriginal, InlineScan, might_hold_forward, scan_text
from bccd.mail.forward_labels import LABELS, fold
from bccd.mail.headers import decode_header_value, parse_address_list

# Stable defect codes (SPEC F4, S6): stored with the thread, so never renamed.
DEFECT_UNPARSEABLE: Final = "forward_unparseable"
DEFECT_SENDER_WITHOUT_ADDRESS: Final = "forward_sender_without_address"
DEFECT_NAME_WITHOUT_ADDRESS: Final = "forward_name_without_address"
DEFECT_DETECTION_ERROR: Final = "forward_detection_error"

# MIME nesting deeper than this is an attack or a mistake, not a forward worth walking into.
MAX_MIME_DEPTH: Final = 16
# Subjects like "Fwd: Fwd: Fwd: ..." are stripped at most this many times.
MAX_PREFIXES: Final = 20

_ATTACHED_TYPES: Final = frozenset({"message/rfc822", "message/global"})
# Parts that make a message a delivery, disposition or feedback report (RFC 3464, 8098, 5965):
# such a report carries the returned mail but is not a forward of it.
_REPORT_TYPES: Final = frozenset(
    {
        "multipart/report",
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/feedback-report",
        "text/rfc822-headers",
    }
)
_BOUNCE_SENDERS: Final = frozenset({"mailer-daemon", "postmaster"})

_PREFIX = re.compile(r"^\s*(?P<word>[^\W\d_][^:：\[\]()]{0,24}?)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*")
_BRACKETED = re.compile(r"^\s*\[(?P<inner>.*)\]\s*$", re.DOTALL)
_TAG = re.compile(r"^\s*\[[^\]:：]{1,30}\]\s*")

SubjectKind = Literal["forward", "reply", "ambiguous"]


@dataclass(frozen=True, slots=True)
class ForwardedOriginal:
    """The forwarded original as the forward shows it."""

    kind: Literal["attachment", "inline"]
    client: str | None  # style recognised: gmail, outlook, apple, thunderbird, yahoo, generic
    from_: tuple[MailAddress, ...]
    to: tuple[MailAddress, ...]
    cc: tuple[MailAddress, ...]
    subject: str | None  # as written in the forward block or the attached message
    date: str | None  # as written; inline dates are localized free text
    # Entries the forward shows as a name without an address: kept for display, never participants.
    from_names: tuple[str, ...] = ()
    to_names: tuple[str, ...] = ()
    cc_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ForwardDetection:
    """A forward: its original, or None when it could not be understood (F4), plus defects."""

    original: ForwardedOriginal | None
    defects: tuple[str, ...]


def _prefix_word(subject: str) -> tuple[str, str] | None:
    match = _PREFIX.match(subject)
    if match is None:
        return None
    return fold(match.group("word")), subject[match.end() :]


def strip_forward_prefix(subject: str) -> str:
    """The subject without leading forward prefixes (Fwd:, FW:, WG:, TR:, VS:, RV:, I:, [Fwd: ...]).

    Reply prefixes stay: "Fwd: FW: Re: Offer" is "Re: Offer", because the original was a reply.
    """
    text = subject.strip()
    for _ in range(MAX_PREFIXES):
        bracketed = _BRACKETED.match(text)
        if bracketed:
            inner = _prefix_word(bracketed.group("inner"))
            if inner is not None and inner[0] in LABELS.forward_prefixes:
                text = inner[1].strip()
                continue
        found = _prefix_word(text)
        if found is None or found[0] not in LABELS.forward_prefixes:
            break
        text = found[1].strip()
    return text


def classify_subject(subject: str) -> tuple[SubjectKind | None, frozenset[str]]:
    """What the first prefix says, and in which languages it would mean a reply instead."""
    text = _TAG.sub("", subject, count=1)  # "[EXTERNAL] FW: ..." tags added by gateways
    bracketed = _BRACKETED.match(text)
    if bracketed:
        text = bracketed.group("inner")
    found = _prefix_word(text)
    if found is None:
        return None, frozenset()
    word = found[0]
    forward = word in LABELS.forward_prefixes
    reply_languages = LABELS.reply_prefixes.get(word, frozenset())
    if forward and reply_languages:
        return "ambiguous", reply_languages  # "VS:" forwards in Norwegian and Danish, replies in Finnish
    if forward:
        return "forward", frozenset()
    if reply_languages:
        return "reply", reply_languages
    return None, frozenset()


def _walk(part: email.message.Message, depth: int) -> Iterator[email.message.Message]:
    """Parts below `part`, not descending into attached messages (their parts belong to the original)."""
    if depth > MAX_MIME_DEPTH:
        return
    payload = part.get_payload()
    if not isinstance(payload, list):
        return
    for sub in payload:
        if not isinstance(sub, email.message.Message):
            continue
        yield sub
        if sub.is_multipart() and sub.get_content_type() not in _ATTACHED_TYPES:
            yield from _walk(sub, depth + 1)


def _is_attached_mail(part: email.message.Message, ctype: str) -> bool:
    if ctype in _ATTACHED_TYPES:
        return True
    if ctype not in ("application/octet-stream", "text/plain"):
        return False
    # Only a name ending in .eml makes such a part a mail; parsing the parameters of every text part
    # on the hot path would cost more than looking for the suffix first.
    raw = f"{part.get('Content-Disposition', '')} {part.get('Content-Type', '')}".lower()
    if ".eml" not in raw and "=?" not in raw:  # an encoded-word name may hide the suffix
        return False
    filename = decode_header_value(part.get_filename() or "")  # senders put encoded-words in names
    return ctype in ("application/octet-stream", "text/plain") and filename.lower().endswith(".eml")


def _inner_message(part: email.message.Message) -> email.message.Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
        inner = payload[0]
        if len(inner.keys()) > 0:
            return inner
        # A transfer-encoded message/rfc822 (not allowed, but sent) parses as a header-less message
        # whose body is still encoded: decode it and parse again.
        body = inner.get_payload()
        if isinstance(body, str) and part.get("Content-Transfer-Encoding", "").lower() in (
            "base64",
            "quoted-printable",
        ):
            holder = email.message.Message()
            holder["Content-Transfer-Encoding"] = part["Content-Transfer-Encoding"]
            holder.set_payload(body)
            data = holder.get_payload(decode=True)
            if isinstance(data, bytes):
                return BytesParser(policy=compat32).parsebytes(data, headersonly=True)
        return None
    data = part.get_payload(decode=True)
    if isinstance(data, bytes) and data:
        return BytesParser(policy=compat32).parsebytes(data, headersonly=True)
    return None


def _raw_values(msg: email.message.Message, name: str) -> list[str]:
    # raw_items() keeps 8-bit (RFC 6532) header bytes as surrogate escapes that headers.py can decode;
    # get_all() would wrap them in an unknown-8bit Header whose str() loses them.
    wanted = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == wanted]


def _addresses(msg: email.message.Message, name: str) -> tuple[MailAddress, ...]:
    return parse_address_list(_raw_values(msg, name))


def _first(msg: email.message.Message, name: str) -> str | None:
    values = _raw_values(msg, name)
    return (decode_header_value(values[0]) or None) if values else None


def _from_attachment(part: email.message.Message) -> ForwardDetection:
    inner = _inner_message(part)
    if inner is None:
        return ForwardDetection(None, (DEFECT_UNPARSEABLE,))
    from_ = _addresses(inner, "From")
    to = _addresses(inner, "To")
    cc = _addresses(inner, "Cc")
    if not (from_ or to or cc):
        return ForwardDetection(None, (DEFECT_UNPARSEABLE,))
    subject = _first(inner, "Subject")
    date = _first(inner, "Date")
    original = ForwardedOriginal("attachment", None, from_, to, cc, subject, date)
    return ForwardDetection(original, () if from_ else (DEFECT_SENDER_WITHOUT_ADDRESS,))


def _from_inline(found: InlineOriginal, forward_subject: str) -> ForwardDetection:
    def addresses(pairs: tuple[tuple[str, str | None], ...]) -> tuple[MailAddress, ...]:
        return tuple(MailAddress(address, name) for address, name in pairs)

    subject = found.subject or None
    if found.attribution and subject is None:
        # An attribution line carries no subject: the forward's own subject, without its prefix, is it.
        subject = strip_forward_prefix(_TAG.sub("", forward_subject, count=1)) or None
    original = ForwardedOriginal(
        "inline",
        found.client,
        addresses(found.from_),
        addresses(found.to),
        addresses(found.cc),
        subject,
        found.date or None,
        found.from_names,
        found.to_names,
        found.cc_names,
    )
    defects: list[str] = []
    if not found.from_:
        defects.append(DEFECT_SENDER_WITHOUT_ADDRESS)
    if found.names_without_address:
        defects.append(DEFECT_NAME_WITHOUT_ADDRESS)
    return ForwardDetection(original, tuple(defects))


def _scan_bodies(text_body: str | None, html_body: str | None, forward_subject: bool) -> InlineScan:
    scan = InlineScan(None, False)
    if text_body and text_body.strip():
        if forward_subject or might_hold_forward(text_body):
            scan = scan_text(text_body, forward_subject)
        # The text alternative usually says what the HTML says; convert the HTML only when the
        # text announced a forward it could not show.
        if scan.original is not None or not html_body or not (forward_subject or scan.saw_forward_separator):
            return scan
    if html_body and (forward_subject or might_hold_forward(html_body, html=True)):
        from_html = scan_text(html_to_text(html_body), forward_subject)
        return InlineScan(from_html.original, from_html.saw_forward_separator or scan.saw_forward_separator)
    return scan


def _is_bounce_sender(msg: email.message.Message) -> bool:
    raw = " ".join(_raw_values(msg, "From")).lower()
    if not any(sender in raw for sender in _BOUNCE_SENDERS):
        return False  # the common case, without parsing the address list
    return any(a.address.partition("@")[0] in _BOUNCE_SENDERS for a in _addresses(msg, "From"))


def _detect(
    msg: email.message.Message, text_body: str | None, html_body: str | None
) -> ForwardDetection | None:
    attached: list[email.message.Message] = []
    if msg.is_multipart():
        if msg.get_content_type() in _REPORT_TYPES:
            return None
        for part in _walk(msg, 0):
            ctype = part.get_content_type()
            if ctype in _REPORT_TYPES:
                return None
            if _is_attached_mail(part, ctype):
                attached.append(part)
    if _is_bounce_sender(msg):
        return None
    subject = _first(msg, "Subject") or ""
    kind, reply_languages = classify_subject(subject)
    scan = InlineScan(None, False)
    if kind != "reply":
        scan = _scan_bodies(text_body, html_body, kind in ("forward", "ambiguous"))
        found = scan.original
        if found is not None:
            languages = found.languages
            # "VS:" over a Finnish header block that no separator announced is a Finnish reply.
            if not (kind == "ambiguous" and not found.strong and languages and languages <= reply_languages):
                return _from_inline(found, subject)
    if attached:
        return _from_attachment(attached[0])
    if kind == "forward" or scan.saw_forward_separator:
        return ForwardDetection(None, (DEFECT_UNPARSEABLE,))
    return None


def detect_forward(
    msg: email.message.Message, text_body: str | None, html_body: str | None
) -> ForwardDetection | None:
    """The forward this message carries (SPEC F1), or None when it is not a forward. Never raises.

    An inline forward block wins over an attached message: a client forwarding inline also attaches
    the original's own attachments, which may be mails. A report (bounce, feedback) is never a forward.
    """
    try:
        return _detect(msg, text_body, html_body)
    except Exception:  # a detector bug must not cost a message: store it as a forward not understood (F4)
        return ForwardDetection(None, (DEFECT_DETECTION_ERROR,))


__all__ = [
    "DEFECT_DETECTION_ERROR",
    "DEFECT_NAME_WITHOUT_ADDRESS",
    "DEFECT_SENDER_WITHOUT_ADDRESS",
    "DEFECT_UNPARSEABLE",
    "ForwardDetection",
    "ForwardedOriginal",
    "classify_subject",
    "detect_forward",
    "strip_forward_prefix",
]
