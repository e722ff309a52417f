"""Raw SMTP clients for the hardening tests: real sockets on loopback, run in worker threads."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bccd.app import BccdApp


def connect(port: int, source: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    return sock


def read_reply(sock: socket.socket) -> bytes:
    """One whole reply (all its lines); b"" when the server closed."""
    data = b""
    while True:
        chunk = sock.recv(1)
        if not chunk:
            return data
        data += chunk
        if data.endswith(b"\r\n"):
            last = data[:-2].rsplit(b"\r\n", 1)[-1]
            if len(last) < 4 or last[3:4] != b"-":
                return data


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def greeting_seconds(port: int, source: str = "127.0.0.1") -> float:
    started = time.perf_counter()
    with connect(port, source) as sock:
        reply = read_reply(sock)
    assert reply.startswith(b"220"), reply
    return time.perf_counter() - started


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def open_connections(app: BccdApp) -> float | None:
    return app.metrics.registry.get_sample_value("bccd_smtp_connections")


async def until(condition: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()
