"""Small-message latency while crafted messages arrive (issue 12 item 4).

A real `bccd serve` on SQLite. Phase 1: small messages from a few clients, alone (the baseline). Phase 2:
the same, while other clients send crafted messages under the size threshold (21,000 MIME parts; 25,000
header lines; 2,500 inline forward blocks) as fast as they are answered. Reported: the small messages'
end-of-DATA→250 latency (p50/p99) per phase and the p99 ratio, which does not depend on how fast or busy
this machine is. Run the same command against an older checkout (PYTHONPATH) for the before figure.

    python -m bench.crafted_stall [--messages 300] [--clients 4] [--crafted-clients 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import make_mail
from tests.processes import CLI, bootstrap, free_port, serve_env, wait_listening

KINDS = ("parts", "headers", "markers")


def crafted(kind: str) -> bytes:
    """The shapes of tests/test_parse_cost.py: each held the loop 57–200 ms when parsed on it."""
    head = b"From: alice@acme.test\r\nTo: bob@client.test\r\nSubject: crafted " + kind.encode() + b"\r\n"
    if kind == "parts":
        body = b"--x\r\n\r\nq\r\n" * 21_000 + b"--x--\r\n"
        return head + b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + body
    if kind == "headers":
        return head + b"X-H: v\r\n" * 25_000 + b"\r\nbody\r\n"
    block = b"---------- Forwarded message ---------\r\nFrom: c@d.test\r\nSubject: y\r\nTo: e@f.test\r\n\r\n"
    return head + b"\r\n" + block * 2_500


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


async def _session(port: int, rcpt: str, mails: list[bytes], latencies: list[float] | None) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO bench\r\n")
    await _reply(reader)
    for raw in mails:
        writer.write(f"MAIL FROM:<alice@acme.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        for _ in range(3):
            await _reply(reader)
        writer.write(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        started = time.perf_counter()
        writer.write(b".\r\n")
        reply = await _reply(reader)
        assert reply.startswith(b"250"), reply
        if latencies is not None:
            latencies.append(time.perf_counter() - started)
    writer.write(b"QUIT\r\n")
    writer.close()


async def _crafted_loop(port: int, rcpt: str, stop: asyncio.Event, sent: list[int]) -> None:
    i = 0
    while not stop.is_set():
        kind = KINDS[i % len(KINDS)]
        raw = crafted(kind).replace(b"Subject: crafted", f"Subject: crafted {i}".encode(), 1)
        await _session(port, rcpt, [raw], None)
        sent.append(1)
        i += 1


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p99_ms": round(p99 * 1000, 2)}


async def _phase(
    port: int, rcpt: str, messages: int, clients: int, crafted_clients: int, tag: str
) -> dict[str, float]:
    mails = [make_mail(subject=f"{tag} {i}") for i in range(messages)]
    latencies: list[float] = []
    stop = asyncio.Event()
    sent: list[int] = []
    noise = [asyncio.create_task(_crafted_loop(port, rcpt, stop, sent)) for _ in range(crafted_clients)]
    if noise:
        await asyncio.sleep(0.5)  # the crafted traffic is flowing before we measure
    await asyncio.gather(*(_session(port, rcpt, mails[i::clients], latencies) for i in range(clients)))
    stop.set()
    await asyncio.gather(*noise)
    return {**_summary(latencies), "small_messages": len(latencies), "crafted_messages": float(len(sent))}


async def _run(port: int, rcpt: str, args: argparse.Namespace) -> dict[str, object]:
    baseline = await _phase(port, rcpt, args.messages, args.clients, 0, "base")
    loaded = await _phase(port, rcpt, args.messages, args.clients, args.crafted_clients, "load")
    return {
        "baseline": baseline,
        "with_crafted": loaded,
        "p99_ratio": round(loaded["p99_ms"] / baseline["p99_ms"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--crafted-clients", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = serve_env(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}", port, log_level="warning")
        user = bootstrap(env)
        proc = subprocess.Popen([*CLI, "serve"], env=env, stdout=subprocess.DEVNULL)
        try:
            wait_listening(port, proc)
            result = asyncio.run(_run(port, user["smart_bcc_address"], args))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    result["code"] = os.environ.get("PYTHONPATH") or "this checkout"
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
