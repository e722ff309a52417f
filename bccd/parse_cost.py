"""Where a message is parsed: on the event loop when that is cheap, in the parse thread when not
(issue 12 item 4).

Size alone is a poor guide: a 200 KB message of 25,000 header lines took 200 ms to parse, one of 21,000
empty MIME parts 80 ms, 2,500 inline forward blocks 57 ms — while 250 KB of plain text takes 3 ms. Held
on the loop, each of those stalls every other session and HTTP. `estimated_us` prices a message by what
makes the parser work (lines, header lines, boundary lines, `From:` lines of forwarded blocks, encoded
words), counted with `bytes.count` (C speed, ~0.1 ms for 256 KB); weights are per-construct costs
measured on this code (`bench/crafted_stall.py`). A message over `INLINE_BUDGET_US` is parsed away
from the loop, one at a time, so expensive parses queue behind each other instead of crowding the loop's
executor.

Away from the loop means another process when it can (issue 13 target 4): the parser is pure Python, so
in a thread it holds the GIL and the loop gets it back only every switch interval — two connections
sending 20 MB mail back to back made 4 KB deliveries' p99 10× worse. The parse process
(`ParseProcess`, one per bccd process, started from a fork server at serve start) runs on the other
core. If it cannot start or dies mid-parse, the message is parsed in the parse thread instead: slower
for everyone else, but the message is never lost (S6).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from bccd.logs import get_logger
from bccd.mail.parse_job import exit_with

T = TypeVar("T")

INLINE_BUDGET_US = 2_000  # at most ~2 ms of parsing on the loop per message
_PER_LINE_US = 1.0
_PER_HEADER_LINE_US = 7.0
_PER_BOUNDARY_US = 3.0
_PER_FROM_US = 15.0
_PER_ENCODED_WORD_US = 2.0
_parse_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bccd-parse")
# What a parse process imports before it forks its worker: the parser, nothing of the store or config.
PARSE_PROCESS_PRELOAD = ("bccd.mail.parse_job",)

log = get_logger(__name__)


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


class ParseProcess:
    """One worker process for expensive parses, created on first use and re-created after a crash.

    `func` must be a module-level function whose module imports cleanly in a fresh interpreter, and its
    argument and result must pickle (bccd.mail.parse_job.parse_and_detect_detached)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.fallbacks = 0  # parses that went to the thread because the process failed

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")  # no fork of a threaded asyncio process
                context.set_forkserver_preload(list(PARSE_PROCESS_PRELOAD))
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=context, initializer=exit_with, initargs=(os.getpid(),)
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, func: Callable[[bytes], T], raw: bytes) -> T:
        loop = asyncio.get_running_loop()
        pool: ProcessPoolExecutor | None = None
        try:
            pool = self._executor()
            return await loop.run_in_executor(pool, func, raw)
        except Exception as exc:  # a dead, unstartable or unpicklable process: the message still parses
            self.fallbacks += 1
            log.warning("parse_process_failed", error=type(exc).__name__, fallback="parse_thread")
            if pool is not None and isinstance(exc, BrokenProcessPool):
                self._discard(pool)
            return await in_parse_thread(func, raw)

    def start(self) -> None:
        """Start the fork server and the worker now (serve start-up), not at the first big message."""
        try:
            self._executor().submit(len, b"")
        except (BrokenProcessPool, OSError) as exc:
            log.warning("parse_process_failed", error=type(exc).__name__, fallback="parse_thread")

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


parse_process = ParseProcess()
