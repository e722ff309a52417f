"""Import speed: `bccd import` of a generated directory into SQLite and PostgreSQL, in records/s.

python -m bench.import_speed [--persons 1000000 --organizations 200000 --deals 1000000] [--pg DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import directory_gen
from tests.processes import CLI, bootstrap, serve_env

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_RECORDS_PER_S = 50_000


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def timed_import(env: dict[str, str], path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([*CLI, "import", str(path), "--json"], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"import failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    return {
        "records": result["total"],
        "seconds": round(seconds, 2),
        "records_per_s": round(result["total"] / seconds),
    }


def run(backend: str, sizes: dict[str, int], tmp: Path) -> dict[str, Any]:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'import.sqlite3'}"
        drop = None
    else:
        name = f"bccd_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        drop = name
    try:
        env = serve_env(url, log_level="warning")
        user = bootstrap(env, company="Bench")
        path = tmp / f"dir-{backend}.jsonl"
        directory_gen.write(path, user["company_id"], **sizes)
        first = timed_import(env, path)
        return {"backend": backend, **first}
    finally:
        if drop:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--organizations", type=int, default=200_000)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    sizes = {"persons": args.persons, "organizations": args.organizations, "deals": args.deals}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            print(
                json.dumps({**run(backend, sizes, Path(tmp)), "target_records_per_s": TARGET_RECORDS_PER_S})
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
