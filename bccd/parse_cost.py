"""Where a message is parsed: on the event loop when that is cheap, in the parse thread when not
(issue 12 item 4).

Size alone is a poor guide: a 200 KB message of 25,000 header lines took 200 ms to parse, one of 21,000
empty MIME parts 80 ms, 2,500 inline forward blocks 57 ms — while 250 KB of plain text takes 3 ms. Held
on the loop, each of those stalls every other session and HTTP. `estimated_us` prices a message by what
makes the parser work (lines, header lines, boundary lines, `From:` lines of forwarded blocks, encoded
words), counted with `bytes.count` (C speed, ~0.1 ms for 256 KB); weights are per-construct costs
measured on this code (`bench/crafted_stall.py`). A message over `INLINE_BUDGET_US` is parsed in one
dedicated thread, so expensive parses queue behind each other instead of crowding the loop's executor.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

INLINE_BUDGET_US = 2_000  # at most ~2 ms of parsing on the loop per message
_PER_LINE_US = 1.0
_PER_HEADER_LINE_US = 7.0
_PER_BOUNDARY_US = 3.0
_PER_FROM_US = 15.0
_PER_ENCODED_WORD_US = 2.0
_parse_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bccd-parse")


def estimated_us(raw: bytes) -> float:
    head_end = raw.find(b"\n\r\n")
    if head_end < 0:
        head_end = raw.find(b"\n\n")
    if head_end < 0:
        head_end = len(raw)
    return (
        _PER_LINE_US * raw.count(b"\n")
        + _PER_HEADER_LINE_US * raw.count(b"\n", 0, head_end)
        + _PER_BOUNDARY_US * raw.count(b"\n--")
        + _PER_FROM_US * raw.count(b"From:")
        + _PER_ENCODED_WORD_US * raw.count(b"=?")
    )


def parse_inline(raw: bytes, max_bytes: int) -> bool:
    """True when parsing `raw` on the event loop is cheap enough."""
    return len(raw) <= max_bytes and estimated_us(raw) <= INLINE_BUDGET_US


async def in_parse_thread(func: Callable[[bytes], T], raw: bytes) -> T:
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # the session's log context goes along, as with to_thread
    return await loop.run_in_executor(_parse_thread, functools.partial(context.run, func, raw))
