"""Directory import from JSON lines (CLI `bccd import`, API `POST /import`): streamed, checked, then applied.

Design (issue 13 target 3, issue 8 "one writer"):

1. **Read and stage.** Lines are read one at a time (a file, standard input or an HTTP body stream; never
   held whole), validated, and staged in per-import TEMP tables on the writer's connection, a few thousand
   rows per step (`executemany` on SQLite, `COPY` on PostgreSQL). Every bad line is collected (up to
   `MAX_REPORTED_ERRORS`), not only the first.
2. **Check.** References (`organization`, `person`, `participants`) must name a record of the same company,
   in the file or already stored; every line that names an unknown record is reported.
3. **Apply.** Only when no line is bad: set-based upserts (bccd.store.bulk_import), in dependency order
   (organizations, persons, items), so a file may name an organization after the person who works there.

All or nothing: a bad line (shape, value, company or reference) is found in steps 1–2, before step 3 writes
anything to the directory; the staging tables are then dropped and nothing is imported.

- On **PostgreSQL** the whole import is one transaction: a failure at any step (even the database going
  away during step 3) rolls everything back. Concurrent SMTP deliveries are not blocked meanwhile (MVCC;
  message writes take only key-share locks on directory rows).
- On **SQLite** the database has one writer, so the import takes the process's writer (`Database.write`)
  in short turns — one per staged step, and in step 3 one per chunk of lines sized so that its
  statements take about `TURN_TARGET_S` — and leaves it free `TURN_GAP_S` after each, so the group
  commit's message batches run between them, in this process (FIFO lock) or in another (which polls
  for the SQLite lock every `sqlite_inline.LOCK_POLL_S`). SMTP's end-of-DATA→250 stays well under a
  second during an import; `bench/import_stall.py` measures it. Step 3 is only reached with every line
  valid, so it can fail only on the database itself (disk full, I/O error, the process killed): then
  the chunks applied so far stay (a prefix in dependency order), the error says so, and re-running the
  same file completes the import, since every line is an idempotent upsert by external id.

A record named twice in one file takes its last line's values; every line counts as created or updated.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.errors import NotFound
from bccd.import_rows import Row, fast_decode, fast_row, model_row
from bccd.records import REGISTRY, split_import_line
from bccd.store.bulk_import import (
    ITEM_COLUMNS,
    ORG_COLUMNS,
    PERSON_COLUMNS,
    ChunkCount,
    Staging,
    WalCheckpointer,
    sqlite_timestamp,
    sync_wal,
)
from bccd.store.database import Database
from bccd.store.users import get_company

APPLY_ORDER: dict[str, int] = {kind: r.import_order for kind, r in REGISTRY.items()}
MAX_LINE_BYTES = 1_000_000
MAX_REPORTED_ERRORS = 100
STAGE_ROWS = 15_000  # rows staged per turn of the writer (~50 ms of executemany; fewer, fuller commits)
APPLY_CHUNK_LINES = 4_000  # staged lines applied per turn of the writer (the first chunk on SQLite)
# PostgreSQL: one transaction anyway; a chunk is a step of the progress display, its statements hash joins
PG_APPLY_CHUNK_LINES = 250_000
# SQLite: each apply chunk is sized so that its turn holds the writer about this long (issue 8) …
# (50 ms made a million-record import commit ~1,800 times, more than half its apply time went to the commits;
# 100 ms: bench.import_stall --records 100000 still answered every delivery within 227 ms, PASS)
TURN_TARGET_S = 0.1
MIN_CHUNK_LINES, MAX_CHUNK_LINES = 200, 50_000
# … and the importer then leaves the writer free this long, so that a writer of another process (the serve
# process while `bccd import` runs), which tries every sqlite_inline.LOCK_POLL_S, gets its turn.
TURN_GAP_S = 0.005
CACHE_KIB = 256 * 1024  # SQLite: the writer's page cache while importing, for the directory and for staging
CHECKPOINT_EVERY_TURNS = 20  # SQLite: the import checkpoints the WAL itself, after every so many turns
LIVE_TABLES = ("organizations", "persons", "items")
# Every table an import fills: their planner statistics are refreshed when it has written them all.
DIRECTORY_TABLES = (*LIVE_TABLES, "person_emails", "item_participants")
YIELD_EVERY_LINES = 500  # parsing hands the event loop back this often (~2 ms of validation)
PROGRESS_EVERY_LINES = 5_000
BATCH_BYTES = 1 << 20  # lines read ahead of checking them, at most (with YIELD_EVERY_LINES)
_UNKNOWN = object()  # a company reference not looked up yet

T = TypeVar("T")
Lines = Iterable[str | bytes] | AsyncIterable[str | bytes]


class ImportError_(ValueError):
    """Bad import lines; `line`/`detail` name the first, `errors` every one found (up to a cap)."""

    def __init__(self, line: int, detail: str, errors: list[tuple[int, str]] | None = None) -> None:
        super().__init__(f"line {line}: {detail}")
        self.line = line
        self.detail = detail
        self.errors = errors if errors is not None else [(line, detail)]
        self.truncated = len(self.errors) >= MAX_REPORTED_ERRORS  # more bad lines may exist

    def describe(self) -> str:
        """Every reported bad line, one per line of text."""
        more = f"\n(only the first {MAX_REPORTED_ERRORS} bad lines are shown)" if self.truncated else ""
        return "\n".join(f"line {n}: {d}" for n, d in self.errors) + more


class ImportFailed(RuntimeError):
    """The database failed while the checked lines were being written (SQLite: a prefix stays, see above)."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int

    def as_json(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "total": self.created + self.updated}


@dataclass(slots=True)
class ImportProgress:
    """What a progress display shows: the phase, lines read, records written, bytes read (of a total)."""

    phase: str  # "reading" | "checking" | "writing"
    lines: int = 0
    records_done: int = 0
    records_total: int = 0
    bytes_done: int = 0
    bytes_total: int | None = None
    started: float = field(default_factory=time.monotonic)


Progress = Callable[[ImportProgress], None]


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "line"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_line(raw: str | bytes, number: int, default_company: int | None = None) -> Any:
    """One line → (envelope, body), or None for a blank line; raises ImportError_ for a bad one."""
    if len(raw) > MAX_LINE_BYTES:
        raise ImportError_(number, "line too long")
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportError_(number, f"invalid JSON: {exc.msg}") from None
    except RecursionError:  # absurdly deep nesting: bad input, not a crash (T4)
        raise ImportError_(number, "invalid JSON: nested too deeply") from None
    if default_company is not None and isinstance(data, dict):
        data.setdefault("company", default_company)
    try:
        return split_import_line(data)
    except ValidationError as exc:
        raise ImportError_(number, _validation_text(exc)) from None
    except ValueError as exc:
        raise ImportError_(number, str(exc)) from None


def parse_lines(lines: Iterable[str | bytes]) -> list[Any]:
    """Validate lines without storing anything; raises ImportError_ on the first bad one."""
    out = []
    for number, raw in enumerate(lines, start=1):
        parsed = parse_line(raw, number)
        if parsed is not None:
            out.append(parsed)
    return out


async def _batches(lines: Lines, size: int) -> AsyncIterator[list[str | bytes]]:
    """The lines in lists of up to `size` lines and about BATCH_BYTES (an async generator step per line
    costs more than checking the line), so at most one such list is read ahead of what is staged."""
    batch: list[str | bytes] = []
    held = 0
    if isinstance(lines, AsyncIterable):
        async for line in lines:
            batch.append(line)
            held += len(line)
            if len(batch) >= size or held >= BATCH_BYTES:
                yield batch
                batch, held = [], 0
    else:
        for line in lines:
            batch.append(line)
            held += len(line)
            if len(batch) >= size or held >= BATCH_BYTES:
                yield batch
                batch, held = [], 0
    if batch:
        yield batch


async def split_stream(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Lines of a byte stream (an HTTP body) as they arrive; only one partial line is ever buffered."""
    rest = b""
    async for chunk in chunks:
        if not chunk:
            continue
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            yield part
        if len(rest) > MAX_LINE_BYTES:  # reported as too long by its line number, without buffering more
            yield rest
            rest = b""
    if rest:
        yield rest


class _Session:
    """Turns of the writer: per step on SQLite, one transaction for everything on PostgreSQL."""

    def __init__(self, db: Database, conn: AsyncConnection | None) -> None:
        self._db = db
        self._conn = conn
        self.paced = conn is None  # SQLite: turns of the writer, sized by time
        self.checkpointer: WalCheckpointer | None = None  # SQLite: the import's own checkpoints
        self._turns = 0
        # How long the last turn's statements took, without its BEGIN and COMMIT: what chunks are sized by.
        # (Sized by the whole turn, a million-record import's ~50 ms commits of scattered index pages shrank
        # every chunk to the minimum, so there were ever more commits, each writing nearly as many pages.)
        self.last_work_s = 0.0

    async def run(self, job: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        if self._conn is not None:
            return await job(self._conn)
        # Not synced turn by turn (an fsync per turn was most of a million-record import's time); the
        # import syncs the WAL once at the end (`sync_wal`), before it reports the records as written.
        async with self._db.write(synced=False) as conn:
            started = time.monotonic()
            result = await job(conn)
            self.last_work_s = time.monotonic() - started
        self._turns += 1
        if self.checkpointer is not None and self._turns % CHECKPOINT_EVERY_TURNS == 0:
            await self.checkpointer.checkpoint()  # the writer is free meanwhile
        await asyncio.sleep(TURN_GAP_S)  # the writer is free a moment for other processes too
        return result


@asynccontextmanager
async def _session(db: Database) -> AsyncIterator[_Session]:
    if db.is_sqlite:
        yield _Session(db, None)
        return
    async with db.write() as conn:
        yield _Session(db, conn)


class _Reader:
    """Step 1: validate lines and stage their rows, collecting every bad line."""

    def __init__(
        self, session: _Session, staging: Staging, only_company: int | None, default_company: int | None
    ) -> None:
        self.session = session
        self.staging = staging
        self.only_company = only_company
        self.default_company = default_company
        self.errors: list[tuple[int, str]] = []
        self.bad_lines = 0
        self.lines = 0
        self._companies: dict[int | str, int | None] = {}
        self._orgs: list[tuple[Any, ...]] = []
        self._persons: list[tuple[Any, ...]] = []
        self._items: list[tuple[Any, ...]] = []
        self._queued = 0
        self._sqlite = staging.dialect == "sqlite"
        # PostgreSQL: the COPY of one step runs (in the server) while the next step's lines are checked.
        self._copying: asyncio.Task[None] | None = None

    def error(self, number: int, detail: str) -> None:
        self.bad_lines += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append((number, detail))

    async def company_id(self, ref: int | str) -> int | None:
        if ref not in self._companies:
            try:
                async with self.session_read() as conn:
                    found: int | None = (await get_company(conn, ref)).id
            except NotFound:
                found = None
            if found is not None and self.only_company is not None and found != self.only_company:
                found = None  # another company's records are not this caller's to write (T1)
            self._companies[ref] = found
        return self._companies[ref]

    @asynccontextmanager
    async def session_read(self) -> AsyncIterator[AsyncConnection]:
        async with self.session._db.read() as conn:
            yield conn

    def parse(self, number: int, raw: str | bytes) -> Row | None:
        """A line's row (the fast path first, bccd.import_rows), or None: blank, or bad (then recorded)."""
        data = fast_decode(raw, MAX_LINE_BYTES)
        if data is not None:
            if self.default_company is not None:
                data.setdefault("company", self.default_company)
            row = fast_row(data)
            if row is not None:
                return row
        try:
            parsed = parse_line(raw, number, self.default_company)
        except ImportError_ as exc:
            self.error(number, exc.detail)
            return None
        return None if parsed is None else model_row(*parsed)

    def stage(self, number: int, row: Row, company: int) -> bool:
        """Queue a checked line's staging row; True when a step's worth is queued (time to flush)."""
        when: Any = row.created_at
        if when is not None and self._sqlite:
            when = sqlite_timestamp(when)
        kind = row.kind
        if kind == "organization":
            self._orgs.append((number, company, row.ext, row.name, when))
        elif kind == "person":
            emails = json.dumps(row.emails) if self._sqlite else row.emails
            self._persons.append((number, company, row.ext, row.name, row.organization, emails, when))
        else:
            parts = json.dumps(row.participants) if self._sqlite else row.participants
            self._items.append(
                (
                    number,
                    company,
                    kind,
                    row.ext,
                    row.name,
                    row.person,
                    row.organization,
                    row.status,
                    when,
                    parts,
                )
            )
        self._queued += 1
        return self._queued >= STAGE_ROWS

    async def add_batch(self, first: int, batch: list[str | bytes]) -> None:
        """Check lines first, first + 1, … and queue their rows, flushing each step's worth."""
        companies = self._companies
        for number, raw in enumerate(batch, start=first):
            row = self.parse(number, raw)
            if row is None:
                continue
            company = companies.get(row.company, _UNKNOWN)
            if company is _UNKNOWN:
                company = await self.company_id(row.company)
            if company is None:
                self.error(number, f"company {row.company!r} not found")
            elif self.stage(number, row, company):  # type: ignore[arg-type]
                await self.flush()

    async def flush(self) -> None:
        orgs, persons, items = self._orgs, self._persons, self._items
        self._orgs, self._persons, self._items, self._queued = [], [], [], 0
        if len(self.errors) >= MAX_REPORTED_ERRORS:  # the report is full: keep reading, stage no more
            return
        st = self.staging

        async def put(conn: AsyncConnection) -> None:
            await st.put(conn, st.org, ORG_COLUMNS, orgs)
            await st.put(conn, st.person, PERSON_COLUMNS, persons)
            await st.put(conn, st.item, ITEM_COLUMNS, items)

        if self.session.paced:  # SQLite: each step is a turn of the writer
            await self.session.run(put)
            return
        await self.drain()  # one COPY at a time on the import's connection
        self._copying = asyncio.create_task(self.session.run(put))

    async def drain(self) -> None:
        """Wait for the COPY in flight, if any (its failure is raised here)."""
        copying, self._copying = self._copying, None
        if copying is not None:
            await copying

    async def abandon(self) -> None:
        """Stop a COPY in flight when the import fails meanwhile (its transaction is rolled back)."""
        copying, self._copying = self._copying, None
        if copying is not None and not copying.done():
            copying.cancel()
        if copying is not None:
            await asyncio.gather(copying, return_exceptions=True)


async def import_lines(
    db: Database,
    lines: Lines,
    *,
    only_company: int | None = None,
    default_company: int | None = None,
    progress: Progress | None = None,
    bytes_total: int | None = None,
) -> ImportResult:
    """Import JSON lines, all or nothing (see the module docstring); raises ImportError_ naming bad lines.

    `only_company`: lines of any other company are bad lines. `default_company`: the company of lines that
    name none. `progress` is called every few thousand lines and once per written chunk.
    """
    state = ImportProgress("reading", bytes_total=bytes_total)
    async with _session(db) as session:
        staging = Staging(db.dialect)
        await session.run(staging.create)
        before = await session.run(partial(staging.tune, cache_kib=CACHE_KIB))
        if before is not None:
            session.checkpointer = WalCheckpointer(before.path)
        try:
            return await _import(session, staging, lines, only_company, default_company, progress, state)
        finally:
            checkpointer, session.checkpointer = session.checkpointer, None
            if checkpointer is not None:
                checkpointer.close()
                await asyncio.to_thread(sync_wal, checkpointer.path)
            if db.is_sqlite:  # PostgreSQL drops them with the transaction

                async def done(conn: AsyncConnection) -> None:
                    await staging.drop(conn)
                    await staging.restore(conn, before)

                await session.run(done)


async def _import(
    session: _Session,
    staging: Staging,
    lines: Lines,
    only_company: int | None,
    default_company: int | None,
    progress: Progress | None,
    state: ImportProgress,
) -> ImportResult:
    reader = _Reader(session, staging, only_company, default_company)
    number = 0
    reported = 0
    try:
        async for batch in _batches(lines, min(YIELD_EVERY_LINES, STAGE_ROWS)):
            await reader.add_batch(number + 1, batch)
            number += len(batch)
            state.bytes_done += sum(map(len, batch)) + len(batch)
            await asyncio.sleep(0)  # SMTP sessions and HTTP requests on this loop keep being served
            if progress is not None and number - reported >= PROGRESS_EVERY_LINES:
                reported = number
                state.lines = number
                progress(state)
        await reader.flush()
        await reader.drain()
    except BaseException:
        await reader.abandon()
        raise
    state.lines = number
    if len(reader.errors) < MAX_REPORTED_ERRORS:  # the references of the good lines (staged) are checked too
        await session.run(staging.staged)
        state.phase = "checking"
        if progress is not None:
            progress(state)
        await _check_references(session, staging, reader)
    if reader.bad_lines:
        errors = sorted(reader.errors)[:MAX_REPORTED_ERRORS]
        raise ImportError_(errors[0][0], errors[0][1], errors)
    return await _apply(session, staging, progress, state)


def next_chunk_lines(size: int, took: float) -> int:
    """The size of the next apply (or check) chunk on SQLite: scaled so that its statements take about
    TURN_TARGET_S (`took`: the last chunk's; the turn's COMMIT adds to that), at most doubling or halving
    from one chunk to the next, within MIN/MAX_CHUNK_LINES."""
    scale = min(2.0, max(0.5, TURN_TARGET_S / max(took, 1e-6)))
    return max(MIN_CHUNK_LINES, min(MAX_CHUNK_LINES, int(size * scale)))


async def _apply_table(
    session: _Session, staging: Staging, table: str, apply: Any, now: datetime
) -> AsyncIterator[ChunkCount]:
    """Apply one staging table chunk by chunk, each chunk one turn of the writer (finding the chunk's last
    line in the same turn). SQLite sizes the chunks by time (`next_chunk_lines`); PostgreSQL, one
    transaction anyway, keeps PG_APPLY_CHUNK_LINES."""
    lo, size = 0, APPLY_CHUNK_LINES if session.paced else PG_APPLY_CHUNK_LINES
    while True:

        async def step(
            conn: AsyncConnection, lo: int = lo, size: int = size
        ) -> tuple[int, ChunkCount] | None:
            bounds = await staging.line_bounds(conn, table=table, after=lo, size=size)
            if bounds is None:
                return None
            hi, lines = bounds
            return hi, await apply(conn, lo=lo, hi=hi, lines=lines, now=now)

        done = await session.run(step)
        if done is None:
            return
        lo, counted = done
        if session.paced:
            size = next_chunk_lines(size, session.last_work_s)
        yield counted


async def _check_references(session: _Session, staging: Staging, reader: _Reader) -> None:
    """Step 2 in ranges of lines, each one turn of the writer (on SQLite sized by time, as apply chunks)."""
    last = await session.run(staging.max_line)
    # PostgreSQL: one transaction anyway, and one statement over every line is planned as hash joins.
    size = APPLY_CHUNK_LINES * 4 if session.paced else max(last, 1)
    lo = 0
    while lo < last:
        room = MAX_REPORTED_ERRORS - len(reader.errors)
        if room <= 0:
            return  # the report is full (and says so)
        found = await session.run(partial(_check_chunk, staging, lo=lo, hi=lo + size, limit=room))
        for line, kind, ext in found:
            reader.error(line, f"unknown {kind} {ext!r}")
        lo += size
        if session.paced:
            size = next_chunk_lines(size, session.last_work_s)


async def _check_chunk(
    staging: Staging, conn: AsyncConnection, lo: int, hi: int, limit: int
) -> list[tuple[int, str, str]]:
    await staging.mark_superseded(conn, lo=lo, hi=hi)
    return await staging.unknown_references(conn, lo=lo, hi=hi, limit=limit)


async def _apply(
    session: _Session, staging: Staging, progress: Progress | None, state: ImportProgress
) -> ImportResult:
    now = datetime.now(UTC)
    if await session.run(staging.skip_row_triggers):
        await session.run(staging.lock_references)
    state.phase = "writing"
    state.records_total = state.records_done = 0
    for table in (staging.org, staging.person, staging.item):
        state.records_total += await session.run(partial(staging.count, table=table))
    created = updated = 0
    by_kind = {
        "organization": (staging.org, staging.apply_organizations),
        "person": (staging.person, staging.apply_persons),
        "deal": (staging.item, staging.apply_items),  # every item kind shares one staging table
    }
    steps = [by_kind[kind] for kind in sorted(by_kind, key=APPLY_ORDER.__getitem__)]
    try:
        for table, apply in steps:
            # What this step joins against was (maybe) just written by this import.
            await session.run(partial(staging.refresh_statistics, tables=LIVE_TABLES))
            async for counted in _apply_table(session, staging, table, apply, now):
                new = counted.records - counted.existed
                created += new
                updated += counted.lines - new
                state.records_done += counted.lines
                if progress is not None:
                    progress(state)
        # PostgreSQL: without statistics the delivery path's participant lookup was planned for 10,000 rows
        # a person and ran as a parallel bitmap scan (13-22 ms a message at 1M deals instead of 0.2 ms).
        await session.run(partial(staging.refresh_statistics, tables=DIRECTORY_TABLES))
    except Exception as exc:
        if session._conn is not None:  # PostgreSQL: the transaction rolls back, nothing stays
            raise
        raise ImportFailed(
            f"the database failed after {state.records_done} of {state.records_total} checked records were "
            f"written ({type(exc).__name__}); run the same import again to complete it"
        ) from exc
    return ImportResult(created, updated)
