"""A real HTTP receiver on loopback for webhook tests: stdlib http.server in a thread (no aiohttp).

It records every request (headers, raw body) and answers what `plan(request)` says (200 by default), so
tests can script 500s, a 410, or a slow answer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


def verify(secret: str, request: Received) -> bool:
    """The receiver's check, written from the Standard Webhooks description (not bccd's code)."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = (
        f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    )
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in request.headers["webhook-signature"].split(" "))


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.plan: Callable[[Received], int] = lambda request: 200
        self.delay = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                probe = Received(self.path, headers, body, 0)
                status = receiver.plan(probe)
                with receiver._lock:  # recorded on arrival: a test may kill the sender mid-request
                    receiver.requests.append(Received(self.path, headers, body, status))
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender is gone (killed, or timed out)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    async def wait_for(self, check: Callable[[Receiver], bool], within: float = 15.0) -> None:
        deadline = time.monotonic() + within
        while not check(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: condition not met in {within}s; got {self.all()}")
            await asyncio.sleep(0.02)

    def wait_for_blocking(self, check: Callable[[Receiver], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: condition not met in {timeout}s; got {self.all()}")
            time.sleep(0.05)
