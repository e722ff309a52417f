"""Big messages never stall small ones (issue 13 target 4): small-mail latency while 20 MB mails arrive.

A real `bccd serve` on SQLite. Phase 1: 4 KB messages from 14 clients, alone (the baseline). Phase 2: the
same while 2 other connections send 20 MB messages (a base64 attachment) back to back. Reported: the small
messages' end-of-DATA→250 p50/p99 per phase, the p99 ratio (target ≤ 3×, independent of how busy the
machine is), how many big messages were stored, and the server's peak RSS (VmHWM) after each phase.

The big senders run in a process of their own: in the measuring client's event loop, preparing and
writing 20 MB (tens of milliseconds each time) delayed the small messages' replies as the client saw
them, so the bench charged the client's own stalls to the server.

    python -m bench.big_messages [--messages 700] [--clients 14] [--big-clients 2] [--big-mb 20]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.crafted_stall import _session, _summary
from tests.helpers import make_mail
from tests.processes import CLI, bootstrap, free_port, serve_env, wait_listening


def big_mail(megabytes: int, tag: int) -> bytes:
    """A mail of about `megabytes` MB on the wire: a text part and one base64 attachment."""
    raw = os.urandom(megabytes * 1024 * 1024 * 3 // 4)
    b64 = base64.encodebytes(raw)  # 76-character lines, as mail clients send
    head = (
        f"From: alice@acme.test\r\nTo: bob@client.test\r\nSubject: big {tag}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThe drawings.\r\n"
        '--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="plans.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return head + b64 + b"--b--\r\n"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def _big_loop(port: int, rcpt: str, mail: bytes, stop: Any, sent: Any) -> None:
    i = 0
    while not stop.is_set():
        await _session(port, rcpt, [mail.replace(b"Subject: big", f"Subject: big {i}".encode(), 1)], None)
        with sent.get_lock():
            sent.value += 1
        i += 1


def _big_senders(
    port: int, rcpt: str, megabytes: int, clients: int, ready: Any, stop: Any, sent: Any
) -> None:
    """The big senders' process: `clients` connections sending `megabytes` MB mails until `stop`."""
    mail = big_mail(megabytes, 0)

    async def run() -> None:
        loops = [asyncio.create_task(_big_loop(port, rcpt, mail, stop, sent)) for _ in range(clients)]
        ready.set()
        await asyncio.gather(*loops)

    asyncio.run(run())


async def _phase(port: int, rcpt: str, args: argparse.Namespace, big: bool, tag: str) -> dict[str, Any]:
    mails = [
        make_mail(subject=f"{tag} {i}", body="Numbers attached.\n" + "Regards, Alice. " * 220)
        for i in range(args.messages)
    ]
    latencies: list[float] = []
    ctx = multiprocessing.get_context("spawn")
    stop, ready, sent = ctx.Event(), ctx.Event(), ctx.Value("i", 0)
    senders = None
    if big:
        senders = ctx.Process(
            target=_big_senders,
            args=(port, rcpt, args.big_mb, args.big_clients, ready, stop, sent),
            daemon=True,
        )
        senders.start()
        await asyncio.to_thread(ready.wait, 120)
        await asyncio.sleep(1.0)  # the big transfers are under way before we measure
    clients = args.clients
    try:
        await asyncio.gather(*(_session(port, rcpt, mails[i::clients], latencies) for i in range(clients)))
    finally:
        stop.set()
        if senders is not None:
            await asyncio.to_thread(senders.join, 300)
    return {**_summary(latencies), "small_messages": len(latencies), "big_messages": int(sent.value)}


async def _run(port: int, rcpt: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    baseline = await _phase(port, rcpt, args, False, "base")
    baseline["peak_rss_mib"] = peak_rss_mib(pid)
    loaded = await _phase(port, rcpt, args, True, "load")
    loaded["peak_rss_mib"] = peak_rss_mib(pid)
    ratio = round(loaded["p99_ms"] / baseline["p99_ms"], 2)
    return {
        "baseline": baseline,
        "with_big": loaded,
        "p99_ratio": ratio,
        "verdict": "PASS" if ratio <= 3 else "FAIL",
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = serve_env(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}", port, log_level="warning")
        user = bootstrap(env)
        proc = subprocess.Popen([*CLI, "serve"], env=env, stdout=subprocess.DEVNULL)
        try:
            wait_listening(port, proc)
            return asyncio.run(_run(port, user["smart_bcc_address"], proc.pid, args))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=700)
    p.add_argument("--clients", type=int, default=14)
    p.add_argument("--big-clients", type=int, default=2)
    p.add_argument("--big-mb", type=int, default=20)
    return p


def main() -> None:
    json.dump(run(parser().parse_args()), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
