"""The stdlib compat32 MIME parse, bounded so that no input can make it slow or make it raise.

compat32 is the fast policy (DESIGN.md: ~0.34 ms against ~2.3 ms for policy.default), but the stdlib
parser itself has three weak spots on hostile input, each closed here through the parser's documented
message-factory hook rather than by patching the stdlib:

* nesting: each multipart level costs a Python frame and a boundary check on every later line, so
  deep nesting is quadratic and ends in RecursionError (about 1,000 levels);
* part count: memory and walking time grow with it;
* ``Message.get_param`` is quadratic on a long quoted parameter full of semicolons (a 32 KB
  Content-Type costs 0.6 s), and the parser calls it for every multipart boundary.

One cost is not about hostile input: the parser compiles a regular expression for every multipart
boundary. That one is closed by the single exception to "no patching": bccd.mail.boundary_match gives
email.feedparser a stand-in for its `re` whose only difference is that boundary patterns are not compiled
(same matches, tested against the real pattern and on whole parses).
"""

from __future__ import annotations

from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import Policy, compat32
from typing import Any, TypeVar, overload

from bccd.mail import boundary_match
from bccd.mail.headers import parse_params

boundary_match.install()  # no regular expression compiled per multipart boundary (issue 13)

# Parts in one message, forwarded originals included (SPEC S6: bad mail must not stall the server).
# Real mail rarely has more than a few dozen; a digest of 100 two-part messages has about 400.
MAX_PARTS = 1000
# Nesting levels (multipart and message/rfc822). A forward of a forward adds two or three; real mail
# stays under 15. Far below the ~1,000 where the stdlib parser hits the recursion limit.
MAX_DEPTH = 50

TOO_MANY_PARTS = "too_many_parts"
TOO_DEEPLY_NESTED = "too_deeply_nested"
PARSER_ERROR = "mime_parser_error"

_T = TypeVar("_T")


class PartLimitExceeded(Exception):
    """Raised from inside the parser to stop it; carries the defect to record."""

    def __init__(self, defect: str) -> None:
        super().__init__(defect)
        self.defect = defect


class _Budget:
    __slots__ = ("active", "parts", "root")

    def __init__(self) -> None:
        self.active = False
        self.parts = 0
        self.root: BoundedMessage | None = None


class BoundedMessage(Message):
    """A compat32 Message that refuses to grow past the limits while it is being parsed.

    ``get_param`` answers from a linear parameter parser. Unlike the stdlib's, RFC 2231 values come
    back already decoded to ``str`` (never as a (charset, language, value) tuple), which every stdlib
    caller (get_boundary, get_filename, get_content_charset) accepts.
    """

    _bccd_budget: _Budget | None = None
    _bccd_depth = 0

    def attach(self, payload: Message | str) -> None:
        budget = self._bccd_budget
        if budget is not None and budget.active and isinstance(payload, BoundedMessage):
            budget.parts += 1
            if budget.parts >= MAX_PARTS:
                raise PartLimitExceeded(TOO_MANY_PARTS)
            if self._bccd_depth >= MAX_DEPTH:
                raise PartLimitExceeded(TOO_DEEPLY_NESTED)
            payload._bccd_depth = self._bccd_depth + 1
        super().attach(payload)

    @overload
    def get_param(
        self, param: str, failobj: None = None, header: str = "content-type", unquote: bool = True
    ) -> Any: ...
    @overload
    def get_param(
        self, param: str, failobj: _T, header: str = "content-type", unquote: bool = True
    ) -> Any: ...
    def get_param(
        self, param: str, failobj: object = None, header: str = "content-type", unquote: bool = True
    ) -> Any:
        if not unquote:
            return super().get_param(param, failobj, header, unquote)
        value = first_raw_header(self, header)
        if value is None:
            return failobj
        return parse_params(value)[1].get(param.lower(), failobj)


def first_raw_header(part: Message, name: str) -> str | None:
    """The first value of a header as the parser stored it (8-bit bytes as surrogate escapes).

    ``Message.get`` would turn a value holding 8-bit bytes into a Header object that loses them.
    """
    wanted = name.lower()
    for key, value in part.raw_items():
        if key.lower() == wanted:
            return value if isinstance(value, str) else str(value)
    return None


def parse_tree(raw: bytes) -> tuple[Message, list[str]]:
    """Parse with compat32 within the limits; on hitting one, keep the tree built so far."""
    budget = _Budget()

    def factory(policy: Policy[Any] = compat32) -> Message:
        message = BoundedMessage(policy)
        message._bccd_budget = budget
        if budget.active and budget.root is None:
            budget.root = message
        return message

    parser = BytesFeedParser(factory, policy=compat32)
    budget.active = True  # after the constructor, which calls the factory once to probe it
    defects: list[str] = []
    root: Message | None
    try:
        parser.feed(raw)
        root = parser.close()
    except PartLimitExceeded as exc:
        defects.append(exc.defect)
        root = budget.root
    except Exception:  # RecursionError when called on a deep stack, or a stdlib bug: keep what we have
        defects.append(PARSER_ERROR)
        root = budget.root
    finally:
        budget.active = False  # later attach() calls (by callers building messages) are not ours to limit
    return (root if root is not None else Message(policy=compat32)), defects
