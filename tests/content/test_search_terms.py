"""The words the search index stores (bccd.store.search_index.terms) are the same as before the fast path.

terms() cuts ASCII text (most folded text) with translate() and split(), and reads the base letters with
str.replace(), instead of one regex and a translate() table for every text; what gets indexed must not
change. The reference below is the implementation those replaced, kept here as the oracle.
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from bccd.store.search_index import MAX_TERM_CHARS, ThreadDocument, _fts_row, _tsvector, fold, terms

_REF_BASE_LETTERS = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "ł": "l", "ı": "i", "þ": "th"}
)
_REF_HAS_BASE_LETTER = re.compile("[øæœđðłıþ]")
_REF_WORD = re.compile(r"[^\W_]+")


def _ref_fold(text: str) -> str:
    text = text.casefold()
    if text.isascii():
        return text
    if _REF_HAS_BASE_LETTER.search(text):
        text = text.translate(_REF_BASE_LETTERS)
    decomposed = unicodedata.normalize("NFKD", text)
    # The combining marks of the Basic Multilingual Plane (those above it were always kept).
    return "".join(ch for ch in decomposed if not (ord(ch) < 0x10000 and unicodedata.combining(ch)))


def _ref_terms(text: str | None) -> list[str]:
    if not text:
        return []
    return [w for w in _REF_WORD.findall(_ref_fold(text)) if len(w) <= MAX_TERM_CHARS]


# Text as mail holds it: ASCII words and punctuation, accented and base letters, combining marks,
# compatibility forms (ligatures, fractions, circled and full-width digits), other scripts, underscores.
_PIECES = st.sampled_from(
    [
        "Hello",
        "ANNA",
        "anna@client.test",
        "x_y",
        "2024",
        " ",
        "\n",
        "\t",
        ",",
        "-",
        "'",
        "Tromsø",
        "ÆØÅ",
        "Łódź",
        "Straße",
        "İstanbul",
        "ı",
        "þorn",
        "e\u0301",
        "\u0301",
        "ﬁne",
        "½",
        "①",
        "１２３",
        "℡",
        "Ελληνικά",
        "Москва",
        "東京",
        "’",
        "\u00a0",
        "a" * 64,
        "b" * 65,
        "\U0001d165",
    ]
)
_TEXT = st.one_of(
    st.lists(_PIECES, max_size=30).map("".join),
    st.text(max_size=80),
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=120),
)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_terms_are_what_the_reference_cuts(text: str) -> None:
    assert terms(text) == _ref_terms(text)
    assert fold(text) == _ref_fold(text)


@settings(max_examples=100, deadline=None)
@given(_TEXT, _TEXT, _TEXT)
def test_index_rows_are_unchanged(subject: str, name: str, body: str) -> None:
    doc = ThreadDocument(7, 3, 5, subject, [("a@b.test", name or None)], [name + ".pdf"], body)
    row = _fts_row(doc)
    assert row["subject"] == " ".join(_ref_terms(subject))
    assert row["people"] == " ".join([*_ref_terms(name), *_ref_terms("a@b.test")])
    assert row["attachments"] == " ".join(_ref_terms(name + ".pdf"))
    assert row["body"] == " ".join(_ref_terms(body))
    assert _tsvector(doc).startswith("'c:3':1D")


def test_examples() -> None:
    assert terms("Grüße aus Tromsø, ½ ① ﬁ x_y") == ["grusse", "aus", "tromso", "1", "2", "1", "fi", "x", "y"]
    assert terms("a" * 65 + " ok " + "b" * 64) == ["ok", "b" * 64]
