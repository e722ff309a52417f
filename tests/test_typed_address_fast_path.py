"""Typed addresses (import lines, users): the fast path for plain addresses gives exactly what
email-validator's full check gives, and defers everything it is not sure of (issue 13 target 3)."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given
from hypothesis import strategies as st

from bccd.mail.addresses import normalize_address
from bccd.typed_addresses import check_typed_address, plain_address


def _full_check(text: str) -> str | None:
    """What check_typed_address answered before the fast path: email-validator, then normalization."""
    try:
        validate_email(text, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError:
        return None
    return normalize_address(text)


_ATOM = st.text("abcXYZ019!#$%&'*+/=?^_`{|}~-.", min_size=0, max_size=70)
_LABEL = st.text("abzAZ09-", min_size=0, max_size=65)
_TLD = st.sampled_from(
    [
        "com",
        "example",
        "test",
        "local",
        "localhost",
        "invalid",
        "onion",
        "arpa",
        "io",
        "c",
        "x1",
        "COM",
        "ｃｏｍ",
    ]
)


@st.composite
def _addresses(draw: st.DrawFn) -> str:
    labels = draw(st.lists(_LABEL, min_size=0, max_size=4))
    domain = ".".join([*labels, draw(_TLD)])
    return f"{draw(_ATOM)}@{domain}"


@given(st.one_of(_addresses(), st.text(max_size=80)))
@example("a@home.arpa")
@example("a@x.invalid")
@example("a@xn--bcher-kva.example")
@example("a..b@x.com")
@example(".a@x.com")
@example("a.@x.com")
@example("a@-x.com")
@example("a@x-.com")
@example("a@" + "x" * 64 + ".com")
@example("x" * 65 + "@a.com")
@example("a@" + ".".join(["x" * 63] * 4) + ".com")
def test_the_fast_path_agrees_with_email_validator(text: str) -> None:
    fast = plain_address(text)
    if fast is not None:
        assert fast == _full_check(text), text


@pytest.mark.parametrize(
    "text",
    ["Carol.Smith@Client.Example", "o'neil+crm@a-b.io", "x@y.local", "x@a.b.c.test", "carol1@c1.example"],
)
def test_plain_addresses_take_the_fast_path_with_the_same_result(text: str) -> None:
    assert plain_address(text) is not None
    assert check_typed_address(text) == _full_check(text)


@pytest.mark.parametrize(
    "text",
    ["a@x.invalid", "a@home.arpa", "jörg@bücher.example", '"a b"@x.com', "a@xn--bcher-kva.example", "a@x"],
)
def test_other_addresses_are_left_to_email_validator(text: str) -> None:
    assert plain_address(text) is None
    full = _full_check(text)
    if full is None:
        with pytest.raises(ValueError, match="not an email address"):
            check_typed_address(text)
    else:
        assert check_typed_address(text) == full
