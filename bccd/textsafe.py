"""Text that is safe to show on an operator's terminal (issue 12 item 11).

Stored subjects, names and addresses come from strangers' mail. Printed raw, an ESC sequence can move the
cursor, rewrite earlier lines or retitle the terminal, a CR can overwrite a line, and bidi overrides can
make `evil.exe` read as `exe.live`. `escape_terminal` shows each such character as a visible escape
(`\\x1b`, `\\u202e`) and leaves everything else — every printable character of every script — as it is.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls; bidi embeddings/overrides/isolates and marks; line/paragraph separators.
_OTHERS = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_terminal(text: str, *, keep_newlines: bool = False) -> str:
    """`"a\\x1b[2Jb"` → `"a\\\\x1b[2Jb"`; with keep_newlines, LF and TAB pass (multi-line bodies)."""
    pattern = _UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE
    return pattern.sub(_escape, text)


def is_terminal_safe(text: str) -> bool:
    return _UNSAFE.search(text) is None
