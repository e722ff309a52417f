"""Issue 8 "one writer": every write transaction of a process is a `Database.write()` block.

`Database.write()` (bccd/store/database.py) is the single write path: on SQLite it holds the process's one
FIFO write lock around `BEGIN IMMEDIATE … COMMIT`, and it records each write's outcome for /readyz. The
commit queue's batches, directory upserts, import chunks, link changes, webhook bookkeeping and sign-in
links all enter through it. These checks walk the source so that a second path cannot appear unnoticed:
nothing outside database.py reaches the engines, and the interfaces never open a write themselves.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import bccd
from bccd.store.database import Database

PACKAGE = Path(bccd.__file__).parent
DATABASE_MODULE = PACKAGE / "store" / "database.py"
INTERFACES = (PACKAGE / "api", PACKAGE / "web", PACKAGE / "cli.py")
# Reading the schema revision needs a raw connection (Alembic's MigrationContext); it never writes.
ENGINE_READERS_ALLOWED = {PACKAGE / "app.py": {"reader"}}
TRANSACTION_CALLS = {"write", "begin", "begin_nested", "commit"}
STREAMS = {"sys.stdout", "sys.stderr"}


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _attributes(path: Path) -> list[tuple[str, int]]:
    return [
        (node.attr, node.lineno)
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute)
    ]


def test_only_the_database_module_touches_the_engines() -> None:
    offenders = []
    for path in _sources():
        if path == DATABASE_MODULE:
            continue
        allowed = ENGINE_READERS_ALLOWED.get(path, set())
        for attr, line in _attributes(path):
            if attr in {"writer", "reader", "_write_lock"} - allowed:
                offenders.append(f"{path.relative_to(PACKAGE)}:{line} .{attr}")
    assert offenders == [], "write (and read) through Database.write()/read() only"


def _in(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def test_interfaces_never_open_a_write_transaction() -> None:
    offenders = []
    for path in _sources():
        if not _in(path, INTERFACES):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = ast.unparse(node.func.value)
            if node.func.attr in TRANSACTION_CALLS and receiver not in STREAMS:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {receiver}.{node.func.attr}()")
    assert offenders == [], "interfaces call services; the services own the transactions"


async def test_writes_enter_the_writer_one_at_a_time_in_arrival_order(db: Database) -> None:
    """The writer is fair: a long write (an import chunk) and short ones (message batches) take turns in the
    order they asked, none overtakes and none runs alongside another (SQLite: one writer per file; on
    PostgreSQL concurrent writers are the database's to order, with row locks)."""
    order: list[str] = []
    inside = 0

    async def writer(name: str, hold: float) -> None:
        nonlocal inside
        async with db.write():
            inside += 1
            assert inside == 1, "two write transactions at once"
            order.append(name)
            await asyncio.sleep(hold)
            inside -= 1

    first = asyncio.create_task(writer("import-chunk", 0.05))
    await asyncio.sleep(0)  # the chunk holds the writer
    rest = [asyncio.create_task(writer(f"batch-{i}", 0)) for i in range(5)]
    await asyncio.gather(first, *rest)
    assert order == ["import-chunk", *(f"batch-{i}" for i in range(5))]
