"""Every use bccd makes of aiosmtpd beyond its documented API (aiosmtpd 1.4.6), in one place.

aiosmtpd does the SMTP grammar; bccd needs a few things it offers no public hook for. Each is a small
override or accessor here, named after what bccd needs, so an aiosmtpd upgrade means re-reading this file
(and `tests/smtp/`) only. `bccd/smtp/server.py` uses the hooks below and no private aiosmtpd member.

Private members relied upon (check each on upgrade):
- `line_length_limit` (class attribute read by `SMTP.__init__` to size the StreamReader);
- `_reader`, `_writer`, `_handler_coroutine`, `_original_transport`, `_timeout_duration`;
- `_reset_timeout(duration)`: called before every valid command and by bccd around DATA;
- `_timeout_cb()`: the timer callback;
- `_create_envelope()`: called for every new transaction (connect, HELO/EHLO, RSET, after DATA, STARTTLS);
- `_set_post_data_state()`: ends a transaction after DATA;
- `_handle_client()`: the per-connection task, wrapped to bind the session id into the log context.

And one of asyncio's (CPython 3.11–3.13): `StreamReader._limit`, the buffer size, which aiosmtpd sets to
the command line limit; `stream_buffer` raises it while DATA is read (tests/smtp/test_data_reader.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope


class CompatSMTP(SMTP):
    """aiosmtpd's protocol with named hooks in place of its private ones."""

    def __init__(self, handler: Any, *, line_length_limit: int, **kwargs: Any) -> None:
        # Read by SMTP.__init__ to size the stream buffer (the longest line read in one piece).
        self.line_length_limit = line_length_limit
        super().__init__(handler, **kwargs)

    # --- hooks for subclasses ---------------------------------------------------------------------------

    def session_deadline(self, seconds: float) -> float:
        """The deadline to arm when aiosmtpd (or bccd) resets the session timer; may shorten it."""
        return seconds

    def on_timeout(self) -> None:
        """The session timer fired."""
        if self.transport is not None:
            self.transport.close()

    def on_new_transaction(self) -> None:
        """A new mail transaction starts (the envelope is replaced)."""

    async def run_session(self) -> None:
        """The per-connection task's body; subclasses wrap it (log context, start/end events)."""
        await super()._handle_client()

    # --- accessors ----------------------------------------------------------------------------------------

    @property
    def session_task(self) -> asyncio.Task[None] | None:
        return self._handler_coroutine

    @property
    def stream_reader(self) -> asyncio.StreamReader:
        return self._reader

    @property
    def raw_transport(self) -> asyncio.BaseTransport | None:
        """The TCP transport, also after STARTTLS wrapped it (then `transport` is the TLS layer)."""
        return self._original_transport or self.transport

    @property
    def command_timeout(self) -> float:
        return float(self._timeout_duration)

    def arm_timer(self, seconds: float) -> None:
        self._reset_timeout(seconds)

    def end_transaction(self) -> None:
        self._set_post_data_state()  # type: ignore[no-untyped-call]

    # --- the private overrides ----------------------------------------------------------------------------

    _bccd_deadline = 0.0  # loop time at which the session times out
    _bccd_timer_live = False  # the handle in _timeout_handle has not run yet

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Move the deadline. aiosmtpd cancels and re-creates its timer on every command; here a timer that
        fires no later than the new deadline is kept, and re-armed for what is left when it fires (a
        timer per command was ~2 % of a delivery's CPU, cancelled handles included)."""
        seconds = max(self.session_deadline(duration or self._timeout_duration), 0.001)
        deadline = self.loop.time() + seconds
        self._bccd_deadline = deadline
        handle = self._timeout_handle
        if (
            handle is not None
            and self._bccd_timer_live
            and not handle.cancelled()
            and handle.when() <= deadline
        ):
            return
        if handle is not None:
            handle.cancel()
        self._timeout_handle = self.loop.call_later(seconds, self._timeout_cb)
        self._bccd_timer_live = True

    def _timeout_cb(self) -> None:
        left = self._bccd_deadline - self.loop.time()
        if left > 0:
            self._timeout_handle = self.loop.call_later(left, self._timeout_cb)
            return
        self._bccd_timer_live = False  # aiosmtpd still cancels the spent handle when the connection ends
        self.on_timeout()

    def _create_envelope(self) -> Envelope:
        self.on_new_transaction()
        return super()._create_envelope()

    async def _handle_client(self) -> None:
        await self.run_session()


@contextmanager
def stream_buffer(reader: asyncio.StreamReader, size: int) -> Iterator[None]:
    """Let `reader` buffer up to `size` octets (and `readuntil` look that far) for a while: the command
    line limit would otherwise have the DATA transfer read, and the transport pause, every 1,000 octets."""
    saved: int = reader._limit  # type: ignore[attr-defined]
    reader._limit = max(saved, size)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        reader._limit = saved  # type: ignore[attr-defined]
