"""Is ingest flat in directory size? Two directories side by side, served in turns, medians compared.

    python -m bench.flat                                  # 1,000 vs 1,000,000 persons, SQLite and PostgreSQL
    python -m bench.flat --large 100000 --rounds 5 --backends sqlite

Issue 13 target 1 asks for throughput at 1,000,000 persons (+ 200,000 organizations, 1,000,000 deals with
participants) within 10 % of throughput at 1,000. One run of each, one after the other (bench.run), is at
the mercy of this shared 2-core machine: on 2026-12-07 the same code gave 0.84 to 1.03 within minutes. Here
both directories are imported once, then `bccd serve` runs on the small one and on the large one in turn,
`--rounds` times, each run with new messages; the verdict compares the medians, and CPU per message (the
server's own, less sensitive to neighbours than msg/s) is reported beside msg/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench import ingest
from bench.import_speed import _pg_admin


def _sizes(persons: int) -> dict[str, int]:
    return {"persons": persons, "organizations": max(1, persons // 5), "deals": persons}


def _database(backend: str, tmp: Path, label: str) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / (label + '.sqlite3')}", None
    name = f"bccd_flat_{label}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(float(r[key]) for r in runs))


def measure(backend: str, small: int, large: int, messages: int, clients: int, rounds: int) -> dict[str, Any]:
    """Both directories prepared, then small/large served alternately `rounds` times."""
    drops: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            prepared = {}
            for label, persons in (("small", small), ("large", large)):
                url, drop = _database(backend, Path(tmp), label)
                if drop:
                    drops.append(drop)
                prepared[label] = ingest.prepare(url, _sizes(persons), Path(tmp))
            runs: dict[str, list[dict[str, Any]]] = {"small": [], "large": []}
            for _ in range(rounds):
                for label in ("small", "large"):
                    runs[label].append(ingest.serve_once(prepared[label], messages, clients))
        finally:
            for name in drops:
                asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    out: dict[str, Any] = {"backend": backend, "small": small, "large": large, "runs": runs}
    for key in ("msg_per_s", "cpu_ms_per_msg", "eod_p99_ms"):
        out[key] = {label: _median(r, key) for label, r in runs.items()}
    out["flat_msg_per_s"] = round(out["msg_per_s"]["large"] / out["msg_per_s"]["small"], 3)
    out["flat_cpu"] = round(out["cpu_ms_per_msg"]["small"] / out["cpu_ms_per_msg"]["large"], 3)
    out["pairs"] = [
        round(b["msg_per_s"] / a["msg_per_s"], 3) for a, b in zip(runs["small"], runs["large"], strict=True)
    ]
    out["linked_share"] = min(r["linked_share"] for rs in runs.values() for r in rs)
    out["import_records_per_s"] = {label: prepared[label]["import_records_per_s"] for label in prepared}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=3_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args()
    results = [
        measure(b, args.small, args.large, args.messages, args.clients, args.rounds) for b in args.backends
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"| backend | {args.small:,} persons msg/s | {args.large:,} msg/s | ratio (medians) | pairs "
        "| CPU ms/msg small → large | CPU ratio | p99 ms small → large | linked | verdict (≥ 0.9×) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        verdict = "PASS" if r["flat_msg_per_s"] >= 0.9 and r["linked_share"] >= 0.999 else "FAIL"
        print(
            f"| {r['backend']} | {r['msg_per_s']['small']:.0f} | {r['msg_per_s']['large']:.0f} "
            f"| {r['flat_msg_per_s']:.2f} | {', '.join(f'{p:.2f}' for p in r['pairs'])} "
            f"| {r['cpu_ms_per_msg']['small']:.2f} → {r['cpu_ms_per_msg']['large']:.2f} "
            f"| {r['flat_cpu']:.2f} "
            f"| {r['eod_p99_ms']['small']:.0f} → {r['eod_p99_ms']['large']:.0f} | {r['linked_share']:.3f} "
            f"| {verdict} |"
        )


if __name__ == "__main__":
    main()
