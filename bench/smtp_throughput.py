"""SMTP ingest throughput: bccd (parse, link, durable SQLite commit) against a do-nothing aiosmtpd sink.

Both servers run as separate processes on loopback and are driven by the same asyncio client in this process,
in the same run, so the result is a ratio that does not depend on how fast or busy this machine is.

    python -m bench.smtp_throughput [--messages 2000] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import make_mail
from tests.processes import bootstrap, cli_json, free_port, serve_env


async def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not start")


def wire(raw: bytes) -> bytes:
    """A message as DATA puts it on the wire: every line ending CRLF (never CR CR LF: generated mail may
    already use CRLF), leading dots doubled (RFC 5321 4.5.2), and the terminating dot line."""
    lines = re.sub(rb"\r?\n", b"\r\n", raw)
    if not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    return re.sub(rb"(?m)^\.", b"..", lines) + b".\r\n"


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


async def client(port: int, rcpt: str, messages: list[bytes], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO bench\r\n")
    await _reply(reader)
    for raw in messages:
        started = time.perf_counter()
        writer.write(b"MAIL FROM:<alice@acme.test>\r\n")
        assert (await _reply(reader)).startswith(b"250")
        writer.write(f"RCPT TO:<{rcpt}>\r\n".encode())
        assert (await _reply(reader)).startswith(b"250")
        writer.write(b"DATA\r\n")
        assert (await _reply(reader)).startswith(b"354")
        writer.write(wire(raw))
        reply = await _reply(reader)
        assert reply.startswith(b"250"), reply
        latencies.append(time.perf_counter() - started)
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


async def drive(port: int, rcpt: str, mails: list[bytes], clients: int) -> dict[str, float]:
    await wait_port(port)
    latencies: list[float] = []
    chunks = [mails[i::clients] for i in range(clients)]
    started = time.perf_counter()
    await asyncio.gather(*(client(port, rcpt, chunk, latencies) for chunk in chunks))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "messages": len(mails),
        "seconds": round(elapsed, 3),
        "msg_per_s": round(len(mails) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (Linux VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def make_corpus(n: int) -> list[bytes]:
    body = "Hello Carol,\n\n" + ("We discussed the proposal and the numbers look right. " * 8 + "\n") * 8
    return [
        make_mail(to=f"Carol <carol{i % 50}@client.test>", subject=f"Proposal {i}", body=body)
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="bccd serve --workers N (one per core)")
    parser.add_argument(
        "--profile", help="record the bccd server with this profiler command prefix (e.g. py-spy)"
    )
    args = parser.parse_args()
    mails = make_corpus(args.messages)
    results: dict[str, dict[str, float]] = {}

    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.sink_server", str(port)])
    try:
        results["aiosmtpd_sink"] = asyncio.run(drive(port, "x@bcc.test", mails, args.clients))
        results["aiosmtpd_sink"]["peak_rss_mib"] = peak_rss_mib(sink.pid)
    finally:
        sink.terminate()
        sink.wait()

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = serve_env(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}", port, log_level="warning")
        user = bootstrap(env, company="Bench")
        company = {"id": user["company_id"]}
        lines = [
            json.dumps(
                {
                    "kind": "person",
                    "company": company["id"],
                    "external_id": f"p{i}",
                    "name": f"Carol {i}",
                    "emails": [f"carol{i}@client.test"],
                }
            )
            for i in range(50)
        ] + [
            json.dumps(
                {
                    "kind": "deal",
                    "company": company["id"],
                    "external_id": f"d{i}",
                    "title": f"Deal {i}",
                    "person": f"p{i}",
                    "created_at": "2020-01-01T00:00:00Z",
                }
            )
            for i in range(50)
        ]
        directory = Path(tmp) / "dir.jsonl"
        directory.write_text("\n".join(lines))
        cli_json(env, "import", str(directory))
        prefix = args.profile.split() if args.profile else []
        server = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                *(os.environ.get("BENCH_SERVER", f"-m bccd.cli serve --workers {args.workers}").split()),
            ],
            env=env,
        )
        try:
            results["bccd_sqlite"] = asyncio.run(
                drive(port, str(user["smart_bcc_address"]), mails, args.clients)
            )
            if not prefix and args.workers == 1:
                results["bccd_sqlite"]["peak_rss_mib"] = peak_rss_mib(server.pid)
        finally:
            server.send_signal(signal.SIGINT if prefix else signal.SIGTERM)
            server.wait()

    ratio = results["bccd_sqlite"]["msg_per_s"] / results["aiosmtpd_sink"]["msg_per_s"]
    bccd_rss = results["bccd_sqlite"].get("peak_rss_mib")  # not measured for several workers
    memory = None if bccd_rss is None else round(bccd_rss / results["aiosmtpd_sink"]["peak_rss_mib"], 2)
    print(
        json.dumps(
            {
                "clients": args.clients,
                "bccd_workers": args.workers,
                "results": results,
                "bccd_vs_sink_throughput": round(ratio, 3),
                "bccd_vs_sink_peak_memory": memory,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
