"""Find the topmost forwarded header block in a plain-text body and read its From/To/Cc/Subject/Date."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from bccd.mail.forward_addresses import parse_inline_addresses, sender_part
from bccd.mail.forward_attribution import MAX_ATTRIBUTION_LINES, attribution_at
from bccd.mail.forward_labels import LABELS, Field, SeparatorKind, fold

# A header block longer than this is not a header block; it also bounds the work per candidate.
MAX_BLOCK_LINES: Final = 40
# Blank lines allowed between a separator and its header block (Gmail: none, Apple: one, HTML: more).
MAX_SEPARATOR_GAP: Final = 3
# Only the head of a huge body is searched: a forward header sits near the top, and the SMTP hot
# path must not pay for megabytes of text (DESIGN "Performance facts").
MAX_SCAN_CHARS: Final = 200_000

_QUOTE = re.compile(r"^(?:[ \t]*>)+")
_LABEL = re.compile(r"^\*{0,2}(?P<label>[^\W\d_][\w .()'’\-]{0,30}?)\*{0,2}[ \t\u00a0]*\*{0,2}[:：]\*{0,2}")
_DASHED = re.compile(r"^(?P<lead>[-_=*]{2,})[ \t]*(?P<phrase>.+?)[ \t]*[-_=*]{2,}[ \t]*(?P<rest>.*)$")
_RULE = re.compile(r"^[_\-=]{8,}$")
_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060\u00ad]")
# Pre-check shape: a line starting with "Word(s):" (a label, or Apple's "Begin forwarded message:").
_LABEL_SHAPE = re.compile(r"[ \t>*]*([^\W\d_][\w .,()'’\-]{0,50}?)[ \t\u00a0*]*[:：]")
_TAG = re.compile(r"<[^<>]{0,2000}>|&nbsp;|&#160;")
_CONTINUATION = re.compile(r"^(?:[^:<>]*<[^<>@\s]+@[^<>\s]+>|[^\s<>@:,;]+@[^\s<>@:,;]+)\s*[,;]?")


@dataclass(slots=True)
class Line:
    depth: int
    text: str


@dataclass(frozen=True, slots=True)
class Separator:
    kind: SeparatorKind | None  # None: a bare rule of underscores/dashes (Outlook on the web)
    client: str


@dataclass(slots=True)
class HeaderBlock:
    values: dict[Field, list[str]] = field(default_factory=dict)
    from_label: str = ""

    def add(self, name: Field, value: str) -> None:
        self.values.setdefault(name, []).append(value.strip())

    def is_complete(self) -> bool:
        # From plus two of To/Cc/Date/Subject: one labelled line in prose ("From: the sales team")
        # is not a forwarded header.
        if "from" not in self.values:
            return False
        return sum(1 for f in ("to", "cc", "date", "subject") if f in self.values) >= 2


@dataclass(frozen=True, slots=True)
class InlineOriginal:
    client: str
    strong: bool  # announced by a forward separator, not merely a header-shaped block
    languages: frozenset[str]  # languages whose label or attribution words introduced the block
    from_: tuple[tuple[str, str | None], ...]
    to: tuple[tuple[str, str | None], ...]
    cc: tuple[tuple[str, str | None], ...]
    subject: str | None
    date: str | None
    from_names: tuple[str, ...] = ()  # entries that are a name without an address
    to_names: tuple[str, ...] = ()
    cc_names: tuple[str, ...] = ()
    attribution: bool = False  # an "On <date>, <sender> wrote:" line, not a header block

    @property
    def names_without_address(self) -> int:
        return len(self.from_names) + len(self.to_names) + len(self.cc_names)


@dataclass(frozen=True, slots=True)
class InlineScan:
    original: InlineOriginal | None
    saw_forward_separator: bool  # a forward was announced, whether or not its block could be read


def might_hold_forward(text: str, html: bool = False) -> bool:
    """Cheap test run on every message: is there a From label or a forward separator at a line start?

    It may say yes to mail that is no forward (the full scan decides), but never no to a forward that
    the full scan would find, apart from HTML that splits a label from its colon with a tag.
    """
    text = text[:MAX_SCAN_CHARS]
    if html:
        text = _TAG.sub("\n", text)
    # A plain loop over lines with substring tests: a MULTILINE regex would be tried at every character,
    # which costs more than the whole compat32 parse on a 6 KB body.
    for line in text.split("\n"):
        head = line[:80]
        if ":" in head or "：" in head:
            match = _LABEL_SHAPE.match(head)
            if match is not None:
                key = fold(match.group(1))
                if LABELS.field_by_label.get(key) == "from" or key in LABELS.separator_by_phrase:
                    return True
        stripped = head.lstrip(" \t>")
        if stripped.startswith(("--", "__")) and _separator(line.strip(" \t>")) is not None:
            return True
    return False


def split_lines(text: str) -> list[Line]:
    """Body text as lines with their quote depth; BOM, zero-width characters and CR removed."""
    text = _INVISIBLE.sub("", text[:MAX_SCAN_CHARS]).replace("\r\n", "\n").replace("\r", "\n")
    lines: list[Line] = []
    for raw in text.split("\n"):
        raw = raw.replace("\u00a0", " ").replace("\t", " ")
        depth = 0
        quote = _QUOTE.match(raw)
        if quote:
            depth = quote.group(0).count(">")
            raw = raw[quote.end() :]
        lines.append(Line(depth, raw.strip()))
    return lines


def _separator(text: str) -> tuple[Separator, str] | None:
    """The separator a line holds, and any text after it on the same line (Yahoo runs them together)."""
    if not text:
        return None
    lead = len(text) - len(text.lstrip("-"))
    core = text.strip("-_=* ").rstrip(":：").strip()
    kind = LABELS.separator_by_phrase.get(fold(core))
    rest = ""
    if kind is None:
        dashed = _DASHED.match(text)
        if dashed is None:
            if _RULE.match(text):
                return Separator(None, "outlook"), ""
            return None
        kind = LABELS.separator_by_phrase.get(fold(dashed.group("phrase").rstrip(":：")))
        if kind is None:
            return None
        rest = dashed.group("rest")
    if kind == "original" and lead in LABELS.original_forward_dashes:
        # OX App Suite (IONOS, 1&1) heads its inline forwards "---------- Original Message ----------".
        kind, client = "forward", LABELS.original_forward_dashes[lead]
    elif kind == "original":
        client = "generic"
    elif lead:
        client = LABELS.client_by_dashes.get(lead, "generic")
    else:
        client = "apple" if kind == "begin" else "generic"
    return Separator(kind, client), rest


def _label(text: str) -> tuple[Field, str, str] | None:
    """(field, label as written, value) when the line starts with a known header label."""
    match = _LABEL.match(text)
    if match is None:
        return None
    label = match.group("label")
    name = LABELS.field_by_label.get(fold(label))
    if name is None:
        return None
    return name, label, text[match.end() :].strip().strip("*").strip()


def _midline_labels(value: str) -> list[tuple[int, int, str]]:
    """(start, end, label) of labels inside a run-together line: with a colon, or glued without one."""
    found = {
        m.start(): (m.start(), m.end(), m.group(0).rstrip(":： \t\u00a0"))
        for m in LABELS.midline_label.finditer(value)
    }
    for m in LABELS.colonless_label.finditer(value):
        if not any(start <= m.start() < end for start, end, _ in found.values()):
            found[m.start()] = (m.start(), m.end() + 1, m.group(0))
    return [found[k] for k in sorted(found)]


def _split_run_together(value: str, seen: set[Field]) -> list[tuple[Field, str, str]]:
    """Fields that a client ran into one line after From ("Von: A <a@x>An: B <b@y>Betreff: ...").

    Yahoo drops the colon of some labels ("...<b@y>Dw C <c@z>; ...", "...CETAssunto Offer"); such a
    label is believed only when glued to the end of the previous value.
    """
    parts: list[tuple[Field, str, str]] = []
    start = 0
    pending: tuple[Field, str] | None = None
    for at, end, label in _midline_labels(value):
        if at == 0 or at < start:
            continue
        before = value[at - 1]
        if before.islower() and before.isalpha():
            continue  # "An:" inside a word is a word, not a label
        name = LABELS.field_by_label.get(fold(label))
        if name is None or name in seen or name == "from":
            continue
        if pending is None:
            parts.append(("from", "", value[:at]))
        else:
            parts.append((pending[0], pending[1], value[start:at]))
        seen.add(name)
        pending = (name, label)
        start = end
    if pending is None:
        return [("from", "", value)]
    parts.append((pending[0], pending[1], value[start:]))
    return parts


def _is_continuation(block: HeaderBlock, last: Field | None, text: str) -> bool:
    # Clients wrap long To/Cc lists onto following lines without a label; body text after the block
    # (Outlook for Mac leaves no blank line) must not be swallowed, so only address-shaped lines count.
    if last not in ("to", "cc") or not text:
        return False
    previous = block.values[last][-1]
    return previous.endswith((",", ";")) or _CONTINUATION.match(text) is not None


def _read_block(lines: list[Line], start: int) -> HeaderBlock:
    block = HeaderBlock()
    depth = lines[start].depth
    last: Field | None = None
    i = start
    end = min(len(lines), start + MAX_BLOCK_LINES)
    while i < end:
        line = lines[i]
        if line.depth != depth:
            break
        if not line.text:
            j = i + 1
            while j < end and j - i <= 2 and not lines[j].text and lines[j].depth == depth:
                j += 1
            nxt = _label(lines[j].text) if j < end and lines[j].depth == depth else None
            # HTML converters put each header in its own paragraph; a blank line followed by a header
            # that this block lacks is still the block.
            if nxt is not None and nxt[0] not in block.values and nxt[0] != "other":
                i = j
                continue
            break
        found = _label(line.text)
        if found is None:
            if last is not None and _is_continuation(block, last, line.text):
                block.values[last][-1] += " " + line.text
                i += 1
                continue
            break
        name, label, value = found
        if name in block.values and name != "other":
            break  # a second From/To/...: the next, nested block starts here
        if name == "from":
            block.from_label = label
            for part_name, _part_label, part_value in _split_run_together(value, set(block.values)):
                block.add(part_name, part_value)
                last = part_name
        else:
            block.add(name, value)
            last = name
        i += 1
    return block


def _original(block: HeaderBlock, client: str, strong: bool) -> InlineOriginal:
    parsed: dict[str, list[tuple[str, str | None]]] = {}
    names: dict[str, list[str]] = {}
    for name in ("from", "to", "cc"):
        pairs: list[tuple[str, str | None]] = []
        without: list[str] = []
        seen: set[str] = set()
        for value in block.values.get(name, []):
            found, only_names = parse_inline_addresses(sender_part(value) if name == "from" else value)
            without += only_names
            for address, display in found:
                if address not in seen:
                    seen.add(address)
                    pairs.append((address, display))
        parsed[name] = pairs
        names[name] = without
    subject = block.values.get("subject")
    date = block.values.get("date")
    return InlineOriginal(
        client=client,
        strong=strong,
        languages=LABELS.languages_by_from_label.get(fold(block.from_label), frozenset()),
        from_=tuple(parsed["from"]),
        to=tuple(parsed["to"]),
        cc=tuple(parsed["cc"]),
        subject=subject[0] if subject else None,
        date=date[0] if date else None,
        from_names=tuple(names["from"]),
        to_names=tuple(names["to"]),
        cc_names=tuple(names["cc"]),
    )


def scan_text(text: str, forward_subject: bool) -> InlineScan:
    """Find the topmost forwarded header block.

    A block announced by a forward separator (Gmail, Apple, Thunderbird, Yahoo) is a forward. A block
    that is merely header-shaped (Outlook writes the same block in replies) or follows an
    "Original Message" rule counts only when the subject says the mail is a forward.
    """
    lines = split_lines(text)
    # A Yahoo-style separator with the header block on the same line becomes two lines first.
    expanded: list[Line] = []
    for line in lines:
        sep = _separator(line.text) if line.text[:1] in "-_=*" else None
        if sep is not None and sep[1]:
            expanded.append(Line(line.depth, line.text[: len(line.text) - len(sep[1])].rstrip()))
            expanded.append(Line(line.depth, sep[1]))
        else:
            expanded.append(line)
    lines = expanded
    saw_forward = False
    last_sep: Separator | None = None
    last_sep_at = 0
    i = 0
    while i < len(lines):
        text_i = lines[i].text
        if not text_i:
            i += 1
            continue
        label = _label(text_i)
        sep = _separator(text_i) if label is None else None
        if sep is not None:
            last_sep, last_sep_at = sep[0], i
            if sep[0].kind in ("forward", "begin"):
                saw_forward = True
            i += 1
            continue
        if label is not None:
            block = _read_block(lines, i)
            if block.is_complete():
                announced = (
                    last_sep is not None
                    and i - last_sep_at <= MAX_SEPARATOR_GAP + 1
                    and not any(lines[k].text for k in range(last_sep_at + 1, i))
                )
                strong = announced and last_sep is not None and last_sep.kind in ("forward", "begin")
                if strong or forward_subject:
                    client = last_sep.client if announced and last_sep is not None else "outlook"
                    return InlineScan(_original(block, client, strong), saw_forward)
                # A header block the subject does not call a forward is a quote in a reply (or a memo):
                # what lies below it is quoted history, not the original of a forward.
                return InlineScan(None, saw_forward)
            i += 1  # an incomplete block may still hide a complete one starting on a later line
            continue
        if forward_subject:
            attributed = _attributed(lines, i)
            if attributed is not None:
                return InlineScan(attributed, saw_forward)
        i += 1
    return InlineScan(None, saw_forward)


def _attributed(lines: list[Line], i: int) -> InlineOriginal | None:
    """An Outlook 2019 style forward: an attribution line under a forward subject (the caller checks)."""
    depth = lines[i].depth
    texts: list[str] = []
    for line in lines[i : i + MAX_ATTRIBUTION_LINES]:
        if not line.text or line.depth != depth:
            break
        texts.append(line.text)
    if not any(text.endswith((":", "：")) for text in texts):
        return None
    found = attribution_at(texts)
    if found is None:
        return None
    return InlineOriginal(
        client="outlook",
        strong=False,
        languages=found.languages,
        from_=tuple(found.senders),
        to=(),
        cc=(),
        subject=None,
        date=None,
        from_names=tuple(found.names),
        attribution=True,
    )


# -- what other readers of body text reuse (bccd.mail.body finds where the new writing ends) ----------


def line_separator(text: str) -> Separator | None:
    """The forward / original-message separator on one line (as split_lines leaves it), if any."""
    found = _separator(text)
    return None if found is None else found[0]


def line_label(text: str) -> Field | None:
    """The header field a line (as split_lines leaves it) starts with, when it starts with a known label."""
    found = _label(text)
    return None if found is None else found[0]


def header_block_at(lines: list[Line], start: int) -> bool:
    """Whether a complete forwarded/quoted header block (From plus two of To/Cc/Date/Subject) starts here."""
    return _read_block(lines, start).is_complete()
