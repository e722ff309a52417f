"""A real SMTP relay on loopback for tests of the mail bccd sends (`[outbound]`): aiosmtpd's Controller in
its own thread, keeping every message it is handed."""

from __future__ import annotations

import re
import socket
import threading
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

CODE = re.compile(r"\b[A-Z2-7]{5}-[A-Z2-7]{5}\b")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Relay:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, list[str], EmailMessage]] = []  # (envelope from, to, message)
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Relay:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=default)
        assert isinstance(msg, EmailMessage)
        with self._lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for _, rcpts, m in self.received if address in rcpts]

    def code_for(self, address: str) -> str:
        """The confirmation code of the last mail to `address`."""
        [*_, last] = self.to(address)
        body = last.get_body(("plain",))
        assert body is not None
        found = CODE.findall(body.get_content())
        assert found, "no code in the mail"
        return str(found[0])

    def outbound(self) -> dict[str, Any]:
        """The `[outbound]` settings that point bccd at this relay (plain SMTP on loopback)."""
        return {"host": "127.0.0.1", "port": self.port, "starttls": False, "from": "bccd@bccd.test"}
