"""SPEC §3: addresses compare case-insensitively after normalization, with IDNA domains."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bccd.mail.addresses import normalize_address


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Carol@Client.Test", "carol@client.test"),
        ("<carol@client.test>", "carol@client.test"),
        ("mailto:carol@client.test", "carol@client.test"),
        ("Jörg@Bücher.example", "jörg@xn--bcher-kva.example"),
        ("jörg@xn--bcher-kva.example", "jörg@xn--bcher-kva.example"),
        ("x@localhost", "x@localhost"),
        ("carol@client.test.", "carol@client.test"),
        ('"carol"@client.test', "carol@client.test"),
    ],
)
def test_normalized_forms(raw: str, expected: str) -> None:
    assert normalize_address(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "carol", "carol@", "@client.test", "a b@c.test", "a@nodot", "a@´.example"]
)
def test_not_addresses(raw: str) -> None:
    assert normalize_address(raw) is None


@given(st.text(max_size=80))
def test_never_raises_and_result_has_no_whitespace(raw: str) -> None:
    out = normalize_address(raw)
    assert out is None or (not any(c.isspace() for c in out) and "@" in out)


@given(st.from_regex(r"[A-Za-z0-9._%+-]{1,20}@[A-Za-z0-9-]{1,20}\.[A-Za-z]{2,6}", fullmatch=True))
def test_case_insensitive(addr: str) -> None:
    assert normalize_address(addr.upper()) == normalize_address(addr.lower()) == addr.lower()
