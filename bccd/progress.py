"""A one-line progress display for long CLI commands (`bccd import`): on a terminal only, on stderr."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from bccd.importer import ImportProgress, Progress

MIN_INTERVAL_S = 0.2


def _eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def render(state: ImportProgress, now: float) -> str:
    """`reading  120000 lines  48210 lines/s  ETA 0:07`: the ETA from bytes (reading), records (writing)."""
    elapsed = max(now - state.started, 1e-6)
    if state.phase == "writing" and state.records_total:
        rate = state.records_done / elapsed
        left = (state.records_total - state.records_done) / rate if rate else 0
        return (
            f"writing  {state.records_done}/{state.records_total} records  {rate:,.0f} records/s"
            f"  ETA {_eta(left)}"
        )
    rate = state.lines / elapsed
    text = f"{state.phase}  {state.lines} lines  {rate:,.0f} lines/s"
    if state.bytes_total and state.bytes_done and state.phase == "reading":
        left = elapsed * (state.bytes_total - state.bytes_done) / state.bytes_done
        text += f"  ETA {_eta(left)} ({100 * state.bytes_done // state.bytes_total}%)"
    return text


def terminal_progress(stream: TextIO) -> tuple[Progress | None, Callable[[], None]]:
    """A progress callback drawing on `stream` when it is a terminal (else None: nothing extra is written),
    and a function that clears the line at the end."""
    if not stream.isatty():
        return None, lambda: None
    last = [0.0]
    drawn = [False]

    def show(state: ImportProgress) -> None:
        now = time.monotonic()
        if now - last[0] < MIN_INTERVAL_S:
            return
        last[0] = now
        drawn[0] = True
        stream.write("\r\x1b[K" + render(state, now))
        stream.flush()

    def done() -> None:
        if drawn[0]:
            stream.write("\r\x1b[K")
            stream.flush()

    return show, done
