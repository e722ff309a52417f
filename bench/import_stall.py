"""Do deliveries stall while a big import runs? (issue 8 "one writer", issue 13 target 3)

A `bccd serve` process on SQLite receives a steady stream of 4 KB mails on a few SMTP connections. After a
quiet phase, a 100k-record directory import runs — through `POST /api/v1/import` into the same process
(the one writer shares its turns between import chunks and message batches), then through `bccd import` in
another process (the SQLite file lock is shared). The end-of-DATA→250 latency of every delivery is
recorded per phase; the target is a maximum under 1 s while an import runs.

    python -m bench.import_stall [--records 100000] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import directory_gen
from bench.smtp_throughput import _reply, make_corpus, wait_port, wire
from tests.processes import CLI, bootstrap, cli_json, free_port, serve_env

TARGET_MAX_S = 1.0


async def _sender(
    port: int, rcpt: str, mails: list[bytes], until: asyncio.Event, out: list[tuple[float, float]]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO bench\r\n")
    await _reply(reader)
    i = 0
    while not until.is_set():
        raw = mails[i % len(mails)]
        i += 1
        writer.write(f"MAIL FROM:<alice@acme.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        for _ in range(3):
            await _reply(reader)
        writer.write(wire(raw))
        sent = time.perf_counter()
        reply = await _reply(reader)
        assert reply.startswith(b"250"), reply
        out.append((sent, time.perf_counter() - sent))
        await asyncio.sleep(0.02)  # a steady trickle, not a flood: the question is latency, not throughput
    writer.write(b"QUIT\r\n")
    writer.close()


def _summary(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"deliveries": 0}
    samples = sorted(samples)
    return {
        "deliveries": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p99_ms": round(samples[max(0, int(len(samples) * 0.99) - 1)] * 1000, 1),
        "max_ms": round(samples[-1] * 1000, 1),
    }


async def _api_import(http_port: int, token: str, path: Path) -> dict[str, Any]:
    async def body() -> Any:
        with path.open("rb") as f:
            while chunk := f.read(256 * 1024):
                yield chunk

    async with httpx.AsyncClient(timeout=600) as client:
        response = await client.post(
            f"http://127.0.0.1:{http_port}/api/v1/import",
            content=body(),
            headers={"Authorization": f"Bearer {token}", "content-type": "application/x-ndjson"},
        )
    response.raise_for_status()
    return dict(response.json())


async def _cli_import(env: dict[str, str], path: Path) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "import", str(path), "--json", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(err.decode()[-2000:])
    return dict(json.loads(out))


async def measure(
    smtp_port: int,
    http_port: int,
    rcpt: str,
    token: str,
    env: dict[str, str],
    files: dict[str, Path],
    clients: int,
) -> dict[str, Any]:
    await wait_port(smtp_port)
    mails = make_corpus(50)
    stop = asyncio.Event()
    samples: list[tuple[float, float]] = []
    senders = [asyncio.create_task(_sender(smtp_port, rcpt, mails, stop, samples)) for _ in range(clients)]
    phases: dict[str, Any] = {}
    try:
        start = time.perf_counter()
        await asyncio.sleep(4)
        phases["quiet"] = _summary([lat for at, lat in samples if at >= start])
        for name in ("api_import", "cli_import"):
            begin = time.perf_counter()
            if name == "api_import":
                result = await _api_import(http_port, token, files["api"])
            else:
                result = await _cli_import(env, files["cli"])
            end = time.perf_counter()
            phases[name] = {
                **_summary([lat for at, lat in samples if begin <= at <= end]),
                "import_records": result["total"],
                "import_seconds": round(end - begin, 2),
                "import_records_per_s": round(result["total"] / (end - begin)),
            }
            await asyncio.sleep(1)
    finally:
        stop.set()
        await asyncio.gather(*senders, return_exceptions=True)
    return phases


def run(records: int, clients: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        smtp_port, http_port = free_port(), free_port()
        env = serve_env(f"sqlite+aiosqlite:///{Path(tmp) / 'stall.sqlite3'}", smtp_port, log_level="warning")
        env.update({"BCCD_HTTP__ENABLED": "true", "BCCD_HTTP__PORT": str(http_port)})
        owner = bootstrap(env, company="Bench")
        admin = cli_json(
            env,
            "user",
            "create",
            "--company",
            "Bench",
            "--email",
            "root@acme.test",
            "--name",
            "Root",
            "--admin",
        )
        base = Path(tmp) / "base.jsonl"
        directory_gen.write(base, owner["company_id"], persons=1000, organizations=200, deals=1000)
        cli_json(env, "import", str(base))
        sizes = {"persons": records * 2 // 5, "organizations": records // 10}
        sizes["deals"] = records - sizes["persons"] - sizes["organizations"]
        files = {}
        for name, company in (("api", owner["company_id"]), ("cli", owner["company_id"])):
            files[name] = Path(tmp) / f"{name}.jsonl"
            directory_gen.write(files[name], company, **sizes, seed=7 if name == "api" else 8)
        server = subprocess.Popen([*CLI, "serve"], env=env)
        try:
            phases = asyncio.run(
                measure(
                    smtp_port,
                    http_port,
                    str(owner["smart_bcc_address"]),
                    admin["api_token"],
                    env,
                    files,
                    clients,
                )
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
    worst = max(phases[p].get("max_ms", 0) for p in ("api_import", "cli_import"))
    return {
        "records": records,
        "clients": clients,
        "phases": phases,
        "worst_eod_to_250_during_import_ms": worst,
        "target_ms": TARGET_MAX_S * 1000,
        "verdict": "PASS" if worst < TARGET_MAX_S * 1000 else "FAIL",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(run(args.records, args.clients), indent=2))


if __name__ == "__main__":
    main()
