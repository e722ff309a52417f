"""MAIL/RCPT addresses read by bccd's plain-address path are exactly what aiosmtpd's stdlib parse reads."""

from __future__ import annotations

from email._header_value_parser import get_angle_addr
from email.errors import HeaderParseError

from hypothesis import given, settings
from hypothesis import strategies as st

from bccd.smtp.command_addr import plain_angle_addr

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
NOISE = ATEXT + ' .@<>()"\\[]:;,\t\x0cé'


def _stdlib(arg: str) -> tuple[str, str] | None:
    try:
        address, rest = get_angle_addr(arg)
    except HeaderParseError:
        return None
    return address.addr_spec, rest


atoms = st.text(ATEXT, min_size=1, max_size=8)
dot_atoms = st.lists(atoms, min_size=1, max_size=3).map(".".join)
plain = st.builds(
    lambda lead, local, domain, tail: f"{lead}<{local}@{domain}>{tail}",
    st.sampled_from(["", " ", "\t", "  "]),
    dot_atoms,
    dot_atoms,
    st.text(NOISE, max_size=20) | st.sampled_from(["", " SIZE=100", " BODY=8BITMIME SMTPUTF8", "\t\x0c x"]),
)


@settings(max_examples=1500)
@given(plain | st.text(NOISE, max_size=30))
def test_plain_reading_agrees_with_the_stdlib(arg: str) -> None:
    fast = plain_angle_addr(arg)
    if fast is not None:
        assert fast == _stdlib(arg)


def test_common_commands_take_the_plain_path() -> None:
    assert plain_angle_addr("<alice@acme.test>") == ("alice@acme.test", "")
    assert plain_angle_addr("<a.b+tag@bcc.example.com> SIZE=4096 BODY=8BITMIME") == (
        "a.b+tag@bcc.example.com",
        "SIZE=4096 BODY=8BITMIME",
    )
    for other in (
        "<>",
        '<"a b"@x.test>',
        "<a@[127.0.0.1]>",
        "<a@x.test> (comment)",
        "a@x.test",
        "<é@x.test>",
    ):
        assert plain_angle_addr(other) is None, other
