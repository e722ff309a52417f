"""The address of a MAIL FROM / RCPT TO command, without the stdlib header parser when it is plain.

aiosmtpd reads `<local@domain> PARAMS` with email._header_value_parser's get_angle_addr: a full RFC 5322
tokenizer that built a dozen objects per command and was ~7 % of a delivery's CPU. Nearly every command is
`<dot-atom@dot-atom>` plus ESMTP parameters, which one regular expression reads. This gives exactly what
get_angle_addr gives for such input (a property test checks the two agree); anything else — quoted local
parts, domain literals, comments, the null path `<>`, non-ASCII — returns None and goes the stdlib way.
"""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_PLAIN = re.compile(rf"[ \t]*<({_DOT_ATOM}@{_DOT_ATOM})>([^(]*)", re.ASCII)


def plain_angle_addr(arg: str) -> tuple[str, str] | None:
    """(address, the rest of the line) for a plain `<local@domain> …`, else None."""
    found = _PLAIN.fullmatch(arg)
    if found is None:
        return None
    rest = found.group(2)
    if rest[:1] in (" ", "\t"):
        rest = rest.lstrip()  # what the stdlib's folding-whitespace rule strips after the bracket
    return found.group(1), rest
