"""The words of inline forwards (forward_labels.json), loaded once and compiled into lookups and regexes."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Literal

Field = Literal["from", "to", "cc", "date", "subject", "other"]
SeparatorKind = Literal["forward", "begin", "original"]

FIELDS: Final[tuple[Field, ...]] = ("from", "to", "cc", "date", "subject", "other")
SEPARATOR_KINDS: Final[tuple[SeparatorKind, ...]] = ("forward", "begin", "original")

_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """The comparable form of a label, phrase or prefix.

    casefold() turns Turkish "İ" into "i" plus a combining dot; dropping the dot lets "İLETİ" and "ileti"
    compare equal, which is how people read them.
    """
    folded = unicodedata.normalize("NFC", text).casefold().replace("\u0307", "")
    return _SPACES.sub(" ", folded).strip()


# A sender as an attribution line prints it: an optional display name (plain, "quoted", «guillemets» or
# „low-high“ quotes) and an address in <>, (), (<>) or [mailto:], or a bare address; or a name alone.
_NAME = r'(?:"[^"\n]{0,120}"|«[^»\n]{0,120}»|„[^”“\n]{0,120}[”“]|[^\s,"<>()«„:;][^,"<>()«„:;\n]{0,120}?)'
_ADDR = r"[^\s<>()\[\]\",;:@]+@[^\s<>()\[\]\",;:@]+"
_SENDER = (
    rf"(?:{_NAME}\s*)?(?:<\s*{_ADDR}\s*>|\(\s*<?\s*{_ADDR}\s*>?\s*\)|\[\s*(?:mailto:)?{_ADDR}\s*\]|{_ADDR})"
    rf"(?:\s*<mailto:{_ADDR}>)?|{_NAME}"
)


@dataclass(frozen=True, slots=True)
class Attribution:
    """One reply-style attribution line of one language, compiled: the sender is the group "sender"."""

    language: str
    pattern: re.Pattern[str]


def _attribution(language: str, template: str) -> Attribution:
    parts = re.split(r"(\{date\}|\{from\})", template.strip().rstrip(":：").rstrip())
    regex = ""
    for part in parts:
        if part == "{date}":
            regex += r"(?P<date>.{1,80}?)"
        elif part == "{from}":
            regex += rf"(?P<sender>{_SENDER})"
        else:
            regex += re.escape(part).replace(r"\ ", r"\s+")
    return Attribution(language, re.compile(regex + r"\s*[:：]", re.IGNORECASE))


@dataclass(frozen=True, slots=True)
class Labels:
    """Everything the detector needs from the data file, in the shape it looks things up."""

    field_by_label: dict[str, Field]
    languages_by_from_label: dict[str, frozenset[str]]
    separator_by_phrase: dict[str, SeparatorKind]
    forward_prefixes: dict[str, frozenset[str]]
    reply_prefixes: dict[str, frozenset[str]]
    client_by_dashes: dict[int, str]
    original_forward_dashes: dict[int, str]  # "Original Message" with this many dashes is a client's forward
    midline_label: re.Pattern[str]
    colonless_label: re.Pattern[str]  # a label glued to the previous value without its colon (Yahoo)
    attributions: tuple[Attribution, ...]
    on_behalf_of: re.Pattern[str]


def _alternation(words: set[str]) -> str:
    # Longest first, so "De la" wins over "De" and "Enviado el" over "Enviado".
    ordered = sorted(words, key=lambda w: (-len(w), w))
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in ordered)


def _build(data: dict[str, Any]) -> Labels:
    field_by_label: dict[str, Field] = {}
    from_languages: dict[str, set[str]] = {}
    separators: dict[str, SeparatorKind] = {}
    forward_prefixes: dict[str, set[str]] = {}
    reply_prefixes: dict[str, set[str]] = {}
    raw_labels: set[str] = set()
    for language, entry in data["languages"].items():
        for field in FIELDS:
            for label in entry.get(field, []):
                key = fold(label)
                # The first language to name a label decides its field; the data has no conflicts,
                # and a test keeps it that way.
                field_by_label.setdefault(key, field)
                raw_labels.update({label, label.upper()})
                if field == "from":
                    from_languages.setdefault(key, set()).add(language)
        for kind in SEPARATOR_KINDS:
            for phrase in entry.get(kind, []):
                key = fold(phrase)
                # A phrase that is both a Gmail-style and an Apple-style separator stays the stronger
                # "begin"/"forward" kind; "original" never overrides either.
                if kind != "original" or key not in separators:
                    separators[key] = kind
        for prefix in entry.get("forward_prefix", []):
            forward_prefixes.setdefault(fold(prefix), set()).add(language)
        for prefix in entry.get("reply_prefix", []):
            reply_prefixes.setdefault(fold(prefix), set()).add(language)
    client_by_dashes = {count: client for client, counts in data["dash_styles"].items() for count in counts}
    original_dashes = {
        count: client for client, counts in data["original_as_forward"].items() for count in counts
    }
    attributions = tuple(
        _attribution(language, template)
        for language, templates in data["attribution"].items()
        for template in templates
    )
    behalf = {phrase for phrases in data["on_behalf_of"].values() for phrase in phrases}
    # Mid-line labels are matched case-sensitively as written ("Betreff", "CC"): in run-together text
    # the capital letter is what separates "MEZBetreff:" from ordinary words.
    midline = re.compile(r"(?:" + _alternation(raw_labels) + r")[ \t\u00a0]*[:：]")
    # Without a colon a label is only believed glued to the end of the previous value ("...>Dw Walter",
    # "CETAssunto Integer") and followed by a space: Yahoo drops the colon in some languages.
    long_labels = {w for w in raw_labels if len(w) > 1}
    colonless = re.compile(r"(?<=[>\w])(?:" + _alternation(long_labels) + r")(?= \S)")
    return Labels(
        field_by_label=field_by_label,
        languages_by_from_label={k: frozenset(v) for k, v in from_languages.items()},
        separator_by_phrase=separators,
        forward_prefixes={k: frozenset(v) for k, v in forward_prefixes.items()},
        reply_prefixes={k: frozenset(v) for k, v in reply_prefixes.items()},
        client_by_dashes=client_by_dashes,
        original_forward_dashes=original_dashes,
        midline_label=midline,
        colonless_label=colonless,
        attributions=attributions,
        on_behalf_of=re.compile(r"\s(?:" + _alternation(behalf) + r")\s", re.IGNORECASE),
    )


def _load() -> Labels:
    text = resources.files("bccd.mail").joinpath("forward_labels.json").read_text(encoding="utf-8")
    return _build(json.loads(text))


LABELS: Final[Labels] = _load()
