"""bccd's own state of one SMTP session, kept on the protocol object (not hung on aiosmtpd's Session or
Envelope, which aiosmtpd replaces after STARTTLS and after every transaction)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from bccd.ingest import Recipient
from bccd.sender_policy import SenderClass


class CommandBudget:
    """Per-session command caps: a total, and a token bucket for the rate (a burst of `burst_seconds`)."""

    def __init__(self, total: int, rate: float, burst_seconds: float = 10.0) -> None:
        self.total = total
        self.rate = rate
        self.capacity = max(1.0, rate * burst_seconds)
        self.used = 0
        self._tokens = self.capacity
        self._stamp = time.monotonic()

    def spend(self) -> str | None:
        """Count one command; the name of the cap it breaks, or None."""
        self.used += 1
        if self.used >= self.total:  # the last one allowed is answered, then 421
            return "max_commands"
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1.0:
            return "command_rate"
        self._tokens -= 1.0
        return None


@dataclass
class SessionState:
    peer_ip: str
    budget: CommandBudget
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    started: float = field(default_factory=time.monotonic)
    recipients: list[Recipient] = field(default_factory=list)  # accepted in the current transaction
    sender_class: SenderClass | None = None  # the S5 class every recipient of this transaction shares
    failed_rcpts: int = 0
    in_tls_handshake: bool = False
    close_after_reply: str | None = None  # a reply to send, then close (a cap was reached)

    def new_transaction(self) -> None:
        self.recipients = []
        self.sender_class = None

    def age(self) -> float:
        return time.monotonic() - self.started
