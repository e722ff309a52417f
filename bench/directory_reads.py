"""The linker's directory look-ups alone, at two directory sizes, while another process writes.

    python -m bench.directory_reads                      # 1,000 vs 1,000,000 persons, SQLite
    python -m bench.directory_reads --large 100000 --lookups 5000

Issue 13 target 1 (flat in directory size) depends on what a delivery's look-ups cost at 1M persons, and
the SMTP bench (bench.flat) cannot resolve a 10 % change in them against this machine's noise. Here each
look-up is what a delivery does through `bccd.store.hot_reads.facts`: the owner, the persons of three
addresses, their candidate items and participants, in one snapshot; a writer process commits a small row
every 3 ms meanwhile (as the group commit does under load, so each snapshot starts after a change).
Reported: CPU µs per look-up of this process at each size, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bccd.store.database import Database
from bccd.store.hot_reads import facts
from bench import directory_gen, ingest

_WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("CREATE TABLE IF NOT EXISTS bench_writes (id INTEGER PRIMARY KEY, b BLOB)")
while True:
    conn.execute("INSERT INTO bench_writes (b) VALUES (randomblob(6000))")
    time.sleep(0.003)
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _lookups(path: Path, prepared: dict[str, Any], n: int) -> dict[str, Any]:
    sizes, user = prepared["sizes"], prepared["user"]
    senders = directory_gen.single_open_deal_persons(
        persons=sizes["persons"], organizations=sizes["organizations"], deals=sizes["deals"]
    )
    rnd = random.Random(13)
    company = int(user["company_id"])
    local = str(user["smart_bcc_address"]).split("@")[0]
    wanted = [
        [
            directory_gen.person_address(rnd.choice(senders), sizes["organizations"]),
            "alice@acme.test",
            "x@y.test",
        ]
        for _ in range(n)
    ]
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await asyncio.sleep(0.5)
        linked = 0
        cpu0, wall0 = _cpu(), time.perf_counter()
        for addresses in wanted:
            async with facts(db) as f:
                assert await f.owner_by_smart_bcc_local(local) is not None
                persons = await f.persons_by_addresses(company, addresses)
                items = await f.items_for_persons(company, [p.id for p in persons])
                linked += bool(items)
            await asyncio.sleep(0)
        cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    finally:
        await db.close()
    return {"cpu_us": round(cpu / n * 1e6, 1), "wall_us": round(wall / n * 1e6, 1), "found_items": linked / n}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prepared, paths = {}, {}
        for label, persons in (("small", args.small), ("large", args.large)):
            paths[label] = Path(tmp) / f"{label}.sqlite3"
            sizes = {"persons": persons, "organizations": max(1, persons // 5), "deals": persons}
            prepared[label] = ingest.prepare(f"sqlite+aiosqlite:///{paths[label]}", sizes, Path(tmp))
        runs: dict[str, list[dict[str, Any]]] = {"small": [], "large": []}
        for _ in range(args.rounds):
            for label in ("small", "large"):
                writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(paths[label])])
                try:
                    runs[label].append(asyncio.run(_lookups(paths[label], prepared[label], args.lookups)))
                finally:
                    writer.kill()
                    writer.wait()
    median = {k: sorted(r["cpu_us"] for r in v)[len(v) // 2] for k, v in runs.items()}
    print(json.dumps({"runs": runs, "median_cpu_us": median}, indent=1))
    print(
        f"directory look-ups, CPU µs each: {args.small:,} persons {median['small']}, {args.large:,} persons "
        f"{median['large']} ({median['large'] / median['small']:.2f}×); every look-up found its deal: "
        f"{all(r['found_items'] == 1.0 for v in runs.values() for r in v)}"
    )


if __name__ == "__main__":
    main()
