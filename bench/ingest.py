"""SMTP ingest at a given directory size: msg/s, end-of-DATA→250 latencies and server CPU per message.

Every figure is measured in the same run as the no-op aiosmtpd sink (bench.sink_server) with the same
client, so ratios do not depend on how busy this shared machine is. The mail is a 4 KB forward (as an
attachment) of a mail from a directory person who is the contact of one open deal, so linking does real
work (L6) against the directory under test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import directory_gen
from bench.smtp_throughput import _reply, wait_port, wire
from tests.helpers import forward_as_attachment, make_mail
from tests.processes import CLI, bootstrap, free_port, serve_env

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / CLK_TCK


def corpus(n: int, persons: int, organizations: int, deals: int | None = None) -> list[bytes]:
    """`n` forwards of mails from directory persons. With `deals`, only persons whose one open deal is their
    own (directory_gen.single_open_deal_persons), so every message links by L6."""
    senders = (
        directory_gen.single_open_deal_persons(persons=persons, organizations=organizations, deals=deals)
        if deals
        else list(range(persons))
    )
    pad = "We discussed the proposal and the numbers look right. " * 6 + "\n"
    out = []
    for i in range(n):
        who = senders[(i * 7919) % len(senders)]  # deal `who` has person `who` as its contact
        original = make_mail(
            sender=f"Carol <{directory_gen.person_address(who, organizations)}>",
            to="Alice <alice@acme.test>",
            subject=f"Proposal {i}",
            body="Hello Alice,\n\n" + pad * 10,
        )
        out.append(forward_as_attachment(original, to="Alice <alice@acme.test>"))
    return out


async def _client(port: int, rcpt: str, mails: list[bytes], eod: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO bench\r\n")
    await _reply(reader)
    for raw in mails:
        writer.write(f"MAIL FROM:<alice@acme.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        for _ in range(3):
            await _reply(reader)
        writer.write(wire(raw))
        sent = time.perf_counter()
        reply = await _reply(reader)
        assert reply.startswith(b"250"), reply
        eod.append(time.perf_counter() - sent)
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


async def drive(port: int, rcpt: str, mails: list[bytes], clients: int, pid: int | None) -> dict[str, Any]:
    await wait_port(port)
    warm: list[float] = []
    await _client(port, rcpt, mails[:20], warm)  # first-use costs (imports, caches) out of the figures
    eod: list[float] = []
    cpu0 = cpu_seconds(pid) if pid else 0.0
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, rcpt, mails[i::clients], eod) for i in range(clients)))
    elapsed = time.perf_counter() - started
    cpu = (cpu_seconds(pid) - cpu0) if pid else float("nan")
    eod.sort()
    return {
        "msg_per_s": round(len(mails) / elapsed, 1),
        "eod_p50_ms": round(statistics.median(eod) * 1000, 2),
        "eod_p99_ms": round(eod[max(0, int(len(eod) * 0.99) - 1)] * 1000, 2),
        "cpu_ms_per_msg": round(cpu * 1000 / len(mails), 2) if pid else None,
    }


def linked_share(env: dict[str, str], company_id: int, sample: int = 200) -> float:
    """The share of the newest threads linked to their deal. The corpus is built so every message links by
    L6: a lower figure means the bench measured a cheaper path than the one it claims (in 2026-12 every
    forward was mangled on the wire to CR CR LF, detected as no forward, and nothing was linked)."""
    done = subprocess.run(
        [*CLI, "threads", "list", "--company", str(company_id), "--limit", str(sample), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    threads = json.loads(done.stdout)["threads"]
    linked = sum(1 for t in threads if t["decision"]["outcome"] == "linked")
    return round(linked / max(1, len(threads)), 3)


def sink(mails: list[bytes], clients: int) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.sink_server", str(port)])
    try:
        return asyncio.run(drive(port, "x@bcc.test", mails, clients, proc.pid))
    finally:
        proc.terminate()
        proc.wait()


def bccd(
    url: str, sizes: dict[str, int], messages: int, clients: int, tmp: Path, workers: int = 1
) -> dict[str, Any]:
    """A fresh bccd on `url` with a generated directory of `sizes`, driven with the bench corpus."""
    return bccd_runs(url, sizes, messages, clients, tmp, (workers,))[workers]


def bccd_runs(
    url: str, sizes: dict[str, int], messages: int, clients: int, tmp: Path, workers: tuple[int, ...]
) -> dict[int, dict[str, Any]]:
    """One generated directory imported once, then `bccd serve --workers N` driven for each N in turn,
    each with a corpus of its own (new Message-IDs: a repeated message would be a cheap idempotent retry)."""
    prepared = prepare(url, sizes, tmp)
    return {n: serve_once(prepared, messages, clients, n) for n in workers}


def prepare(url: str, sizes: dict[str, int], tmp: Path) -> dict[str, Any]:
    """Migrate `url`, create the bench company and user, import a generated directory of `sizes`."""
    port = free_port()
    env = serve_env(url, port, log_level="warning")
    user = bootstrap(env, company="Bench")
    path = tmp / f"directory-{port}.jsonl"
    directory_gen.write(path, user["company_id"], **sizes)
    started = time.perf_counter()
    done = subprocess.run([*CLI, "import", str(path), "--json"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"import failed: {done.stderr[-2000:]}")
    imported = json.loads(done.stdout)
    import_s = time.perf_counter() - started
    path.unlink()
    # The import's writes are still dirty in the page cache. Left there, the server's first fsyncs pay
    # for writing them back (ext4 commits them with its journal), which made a fresh 20,000-person directory
    # look 0.77x as fast as a 1,000-person one; with this sync (or a 3 s pause) the two are level.
    os.sync()
    return {
        "env": env,
        "port": port,
        "user": user,
        "sizes": sizes,
        "import_records_per_s": round(imported["total"] / import_s),
    }


def serve_once(prepared: dict[str, Any], messages: int, clients: int, workers: int = 1) -> dict[str, Any]:
    """`bccd serve --workers N` on a prepared database, driven with a corpus of new messages."""
    env, user, sizes = prepared["env"], prepared["user"], prepared["sizes"]
    mails = corpus(messages, sizes["persons"], sizes["organizations"], sizes["deals"])
    server = subprocess.Popen([*CLI, "serve", "--workers", str(workers)], env=env)
    try:
        result = asyncio.run(
            drive(
                prepared["port"],
                str(user["smart_bcc_address"]),
                mails,
                clients,
                server.pid if workers == 1 else None,
            )
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
    result["import_records_per_s"] = prepared["import_records_per_s"]
    result["linked_share"] = linked_share(env, user["company_id"])
    return result
