"""Connection slots: a global cap and a per-client-IP cap (S4, issue 12 items 2–3).

A slot is taken when a TCP connection is accepted and given back exactly once, whichever way the session
ends (QUIT, client close, reset, timeout before, during or after STARTTLS, a failed handshake, shutdown).
`release` is idempotent so every one of those paths may call it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class Refusal(StrEnum):
    CLOSING = "closing"
    CONNECTION_CAP = "connection_cap"
    IP_CAP = "ip_cap"


class ConnectionGate(Generic[T]):
    """Counts open sessions against the caps and remembers them for a clean drain on shutdown."""

    def __init__(self, limit: int, per_ip: int, on_change: Callable[[int], None] | None = None) -> None:
        self.limit = limit
        self.per_ip = per_ip
        self.open: dict[T, str] = {}  # session → client IP
        self.by_ip: Counter[str] = Counter()
        self.closing = False
        self._in_data: set[T] = set()
        self.idle = asyncio.Event()  # set while no session is inside a DATA transfer
        self.idle.set()
        self.empty = asyncio.Event()  # set while no session is open
        self.empty.set()
        self._on_change = on_change

    def acquire(self, session: T, ip: str) -> Refusal | None:
        """Take a slot for `session`, or say why not."""
        if self.closing:
            return Refusal.CLOSING
        if len(self.open) >= self.limit:
            return Refusal.CONNECTION_CAP
        if self.by_ip[ip] >= self.per_ip:
            return Refusal.IP_CAP
        self.open[session] = ip
        self.by_ip[ip] += 1
        self.empty.clear()
        self._changed()
        return None

    def release(self, session: T) -> bool:
        """Give the slot back; False if it was already given back (or never taken)."""
        ip = self.open.pop(session, None)
        if ip is None:
            return False
        self.by_ip[ip] -= 1
        if self.by_ip[ip] <= 0:
            del self.by_ip[ip]
        self.leave_data(session)
        if not self.open:
            self.empty.set()
        self._changed()
        return True

    def enter_data(self, session: T) -> None:
        self._in_data.add(session)
        self.idle.clear()

    def leave_data(self, session: T) -> None:
        self._in_data.discard(session)
        if not self._in_data:
            self.idle.set()

    def in_data(self, session: T) -> bool:
        return session in self._in_data

    @property
    def busy(self) -> int:
        """Sessions inside a DATA transfer right now."""
        return len(self._in_data)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(len(self.open))
