"""Set-based directory import: staging tables, reference checks and chunked upserts (issue 13 target 3).

The importer (bccd.importer) streams validated rows into per-import TEMP tables on the writer's connection
— `executemany` on SQLite, `COPY` on PostgreSQL — and then applies them to the directory with a handful of
`INSERT … SELECT … ON CONFLICT DO UPDATE` statements per chunk of lines, so each record costs a few rows
of set-based SQL instead of a few Python round trips. The SQL is the same on both backends except for how
an array column is expanded (`json_each` on SQLite, `unnest` on PostgreSQL).

A record named twice in one file takes its last line's values (as if the lines were applied in order);
every line still counts as created or updated in the result.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store.schema import Ts
from bccd.store.sqlite_inline import finish_in_thread

_ids = itertools.count(1)
PG_WORK_MEM = "64MB"  # per hash or sort of an import statement (hash joins may use twice that)
PG_TEMP_BUFFERS = "256MB"
# A staged line that a later line of the same record supersedes (set by `mark_superseded`): the apply
# statements skip it, so a record takes its last line's values.
_LATER = "superseded boolean NOT NULL DEFAULT FALSE"

ORG_COLUMNS = ("line", "company_id", "ext", "name", "created_at")
PERSON_COLUMNS = ("line", "company_id", "ext", "name", "org_ext", "emails", "created_at")
ITEM_COLUMNS = (
    "line",
    "company_id",
    "kind",
    "ext",
    "title",
    "person_ext",
    "org_ext",
    "status",
    "created_at",
    "parts",
)


def sqlite_timestamp(value: datetime) -> str:
    """The text SQLAlchemy stores for a UTC timestamp on SQLite (see schema.UtcDateTime)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")  # as strftime, faster


@dataclass(frozen=True, slots=True)
class SqliteSettings:
    path: str  # the database file
    cache_kib: int  # as PRAGMA cache_size says it (negative: KiB; positive: pages)
    temp_cache_kib: int
    autocheckpoint: int


class WalCheckpointer:
    """Checkpoints an SQLite database's WAL on a connection of its own, in a worker thread, between an
    import's turns (PASSIVE: it never waits for, nor blocks, a writer or a reader; sqlite3 releases the
    GIL meanwhile, so the event loop keeps serving). Without automatic checkpoints on the writer the
    copying and syncing of the database file happens here, once per several turns, instead of in nearly
    every turn's COMMIT; and since no turn runs meanwhile the checkpoint usually catches up, so that the
    next write starts the WAL over instead of growing it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self.checkpoints = 0

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 0")
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.OperationalError:  # busy: another checkpoint runs (the serve process's)
            pass

    async def checkpoint(self) -> None:
        await finish_in_thread(self._checkpoint)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def sync_wal(path: str) -> None:
    """Sync the WAL of the SQLite database at `path` to the disk: the import's turns commit unsynced
    (Database.write(synced=False)); this makes every one of them durable at once. (Frames a checkpoint
    already copied were synced into the database file by that checkpoint.)"""
    try:
        fd = os.open(path + "-wal", os.O_RDONLY)
    except FileNotFoundError:  # no WAL left: everything is in the (synced) database file
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class ChunkCount:
    lines: int  # staged lines applied by this chunk (the last line of each record plus its repeats)
    records: int  # distinct records written
    existed: int  # of which existed before


class Staging:
    """The TEMP tables of one import on one connection, and the statements that read them."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        prefix = f"bccd_import_{os.getpid()}_{next(_ids)}"
        self.org = f"{prefix}_org"
        self.person = f"{prefix}_person"
        self.item = f"{prefix}_item"
        self._pg = dialect == "postgresql"

    # -- staging -------------------------------------------------------------------------------------

    async def create(self, conn: AsyncConnection) -> None:
        if self._pg:
            await self._pg_memory(conn)
        if self._pg:  # the line's index is built after COPY, with the others (`staged`)
            arr, ts, line_col, big, tail = (
                "text[]",
                "timestamptz",
                "bigint NOT NULL",
                "bigint",
                " ON COMMIT DROP",
            )
        else:  # the rowid
            arr, ts, line_col, big, tail = "text", "text", "integer PRIMARY KEY", "integer", ""
        ddl = [
            f"CREATE TEMP TABLE {self.org} (line {line_col}, company_id {big} NOT NULL,"
            f" ext text NOT NULL, name text NOT NULL, created_at {ts}, {_LATER}){tail}",
            f"CREATE TEMP TABLE {self.person} (line {line_col}, company_id {big} NOT NULL,"
            f" ext text NOT NULL, name text NOT NULL, org_ext text, emails {arr} NOT NULL,"
            f" created_at {ts}, {_LATER}){tail}",
            f"CREATE TEMP TABLE {self.item} (line {line_col}, company_id {big} NOT NULL,"
            f" kind text NOT NULL, ext text NOT NULL, title text NOT NULL, person_ext text, org_ext text,"
            f" status text NOT NULL, created_at {ts}, parts {arr} NOT NULL, {_LATER}){tail}",
        ]
        if not self._pg:
            # SQLite keeps the keys while staging (small steps, each a short turn of the writer); on
            # PostgreSQL the whole import is one transaction and the keys are built once after COPY.
            ddl += self._key_indexes()
        for sql in ddl:
            await conn.exec_driver_sql(sql)

    async def _pg_memory(self, conn: AsyncConnection) -> None:
        """PostgreSQL, for this import's transaction only: memory for its hash joins (the default 4 MB made
        the reference check and the apply joins of a million-record file spill to disk in many batches)
        and, on a connection that has not used temporary tables yet (the setting is fixed from then on),
        for its staging tables (the default 8 MB wrote them out while they were filled)."""
        await conn.exec_driver_sql(f"SET LOCAL work_mem = '{PG_WORK_MEM}'")
        await conn.exec_driver_sql("SAVEPOINT bccd_import_temp_buffers")
        try:
            await conn.exec_driver_sql(f"SET LOCAL temp_buffers = '{PG_TEMP_BUFFERS}'")
        except DBAPIError:  # temporary tables were used on this connection before
            await conn.exec_driver_sql("ROLLBACK TO SAVEPOINT bccd_import_temp_buffers")
        await conn.exec_driver_sql("RELEASE SAVEPOINT bccd_import_temp_buffers")

    def _key_indexes(self) -> list[str]:
        return [
            f"CREATE INDEX {self.org}_key ON {self.org} (company_id, ext, line)",
            f"CREATE INDEX {self.person}_key ON {self.person} (company_id, ext, line)",
            f"CREATE INDEX {self.item}_key ON {self.item} (company_id, kind, ext, line)",
        ]

    async def staged(self, conn: AsyncConnection) -> None:
        """Every row is staged: build what the checks and the apply statements seek on."""
        if self._pg:
            for sql in self._key_indexes():
                await conn.exec_driver_sql(sql)
            for table in (self.org, self.person, self.item):
                await conn.exec_driver_sql(f"CREATE UNIQUE INDEX {table}_line ON {table} (line)")
            # Superseded lines, all at once: one pass over each key index (PostgreSQL: one transaction,
            # no turns to keep short; SQLite flags them range by range in step 2, `mark_superseded`).
            for table, key in ((self.org, ""), (self.person, ""), (self.item, "kind, ")):
                await conn.exec_driver_sql(
                    f"UPDATE {table} SET superseded = TRUE WHERE line IN (SELECT line FROM"
                    f" (SELECT line, row_number() OVER (PARTITION BY company_id, {key}ext ORDER BY line DESC)"
                    " AS later FROM " + table + ") r WHERE later > 1)"
                )
            for table in (self.org, self.person, self.item):
                await conn.exec_driver_sql(f"ANALYZE {table}")

    async def put(
        self, conn: AsyncConnection, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        if not rows:
            return
        if self._pg:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection  # asyncpg's connection: COPY is not in the DBAPI
            await driver.copy_records_to_table(table, records=rows, columns=list(columns))
        else:
            # The sqlite3 connection itself (bccd.store.sqlite_inline runs it on this thread): one prepared
            # statement for every row, without SQLAlchemy's per-call work.
            marks = ", ".join("?" for _ in columns)
            insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            raw = await conn.get_raw_connection()
            sqlite: Any = raw.driver_connection
            sqlite._connection.executemany(insert, rows)

    async def tune(self, conn: AsyncConnection, cache_kib: int) -> SqliteSettings | None:
        """SQLite: settings of the writer's connection while an import runs; returns what they were.

        - A page cache of `cache_kib` KiB for the directory and as much for the staging tables: with the
          default 2 MB every seek of a million-record import is a read from the file.
        - No automatic checkpoints: with them nearly every turn's COMMIT copied the pages it had just
          written into the database file and synced it (~45 ms a turn at a million records, most of the
          import's time). A `WalCheckpointer` checkpoints in a thread instead, off the writer's turns."""
        if self._pg:
            return None
        raw = await conn.exec_driver_sql("PRAGMA database_list")
        rows: list[Any] = list(raw.all())
        path = next(str(row[2]) for row in rows if row[1] == "main")  # (seq, name, file)
        before = SqliteSettings(
            path=path,
            cache_kib=int((await conn.exec_driver_sql("PRAGMA main.cache_size")).scalar_one()),
            temp_cache_kib=int((await conn.exec_driver_sql("PRAGMA temp.cache_size")).scalar_one()),
            autocheckpoint=int((await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one()),
        )
        await conn.exec_driver_sql(f"PRAGMA main.cache_size = {-int(cache_kib)}")
        await conn.exec_driver_sql(f"PRAGMA temp.cache_size = {-int(cache_kib)}")
        await conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
        return before

    async def restore(self, conn: AsyncConnection, before: SqliteSettings | None) -> None:
        if before is not None:
            await conn.exec_driver_sql(f"PRAGMA main.cache_size = {before.cache_kib}")
            await conn.exec_driver_sql(f"PRAGMA temp.cache_size = {before.temp_cache_kib}")
            await conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {before.autocheckpoint}")

    async def skip_row_triggers(self, conn: AsyncConnection) -> bool:
        """PostgreSQL: when this role may, skip per-row triggers for the rest of the import's transaction
        (`SET LOCAL session_replication_role = replica`, as pg_restore --disable-triggers does); returns
        whether it did. Each inserted row otherwise runs one foreign-key check query per reference (half
        of the apply's time). The import does not need them: every reference was checked set-based
        (`unknown_references`), every id it writes comes from a join in the same transaction, and
        `lock_references` takes the key-share locks those checks would have taken on the records that
        already existed. Only a superuser, or (PostgreSQL 15+) a role granted SET on the parameter, may."""
        if not self._pg:
            return False
        version = int((await conn.exec_driver_sql("SHOW server_version_num")).scalar_one())
        allowed = "current_setting('is_superuser') = 'on'"
        if version >= 150000:
            allowed += " OR has_parameter_privilege('session_replication_role', 'SET')"
        if not (await conn.exec_driver_sql(f"SELECT {allowed}")).scalar_one():
            return False
        await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        return True

    async def lock_references(self, conn: AsyncConnection) -> None:
        """PostgreSQL, with row triggers skipped: lock the stored records this import's lines reference
        (their companies, organizations and persons) FOR KEY SHARE until it commits, as the foreign-key
        checks would, so that none of them can be deleted under the rows that will name it. Run before
        anything is written: every record found then existed before the import."""
        refs = {
            "companies": (
                "id",
                f"SELECT company_id FROM {self.org} UNION SELECT company_id FROM {self.person}"
                f" UNION SELECT company_id FROM {self.item}",
            ),
            "organizations": (
                "company_id, external_id",
                f"SELECT company_id, org_ext FROM {self.person} WHERE org_ext IS NOT NULL"
                f" UNION SELECT company_id, org_ext FROM {self.item} WHERE org_ext IS NOT NULL",
            ),
            "persons": (
                "company_id, external_id",
                f"SELECT company_id, person_ext FROM {self.item} WHERE person_ext IS NOT NULL UNION"
                f" SELECT s.company_id, j.value FROM {self.item} s {self._each('parts')}",
            ),
        }
        for table, (key, wanted) in refs.items():
            await conn.exec_driver_sql(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} t WHERE ({key}) IN ({wanted})"
                " FOR KEY SHARE OF t) locked"
            )

    async def refresh_statistics(self, conn: AsyncConnection, tables: Sequence[str]) -> None:
        """PostgreSQL: planner statistics of directory tables this import just filled. Without them a fresh
        table looks empty inside the import's transaction and the next join walks it once per row."""
        if self._pg:
            for table in tables:
                await conn.exec_driver_sql(f"ANALYZE {table}")

    async def drop(self, conn: AsyncConnection) -> None:
        for table in (self.org, self.person, self.item):
            await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")

    async def line_bounds(
        self, conn: AsyncConnection, table: str, after: int, size: int
    ) -> tuple[int, int] | None:
        """The last line of the next chunk of (up to) `size` staged lines after line `after`, and how many
        lines it holds (None: no more)."""
        sql = (
            f"SELECT max(line), count(*) FROM (SELECT line FROM {table} WHERE line > :after"
            " ORDER BY line LIMIT :n) c"
        )
        hi, lines = (await conn.execute(text(sql), {"after": after, "n": size})).one()
        return None if hi is None else (int(hi), int(lines))

    async def count(self, conn: AsyncConnection, table: str) -> int:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())

    # -- checks --------------------------------------------------------------------------------------

    def _each(self, column: str) -> str:
        """A FROM item naming each element of an array column `value`. CROSS JOIN (here and after it)
        fixes SQLite's join order: otherwise it may walk a company's persons before expanding the array."""
        if self._pg:
            return f"CROSS JOIN LATERAL unnest(s.{column}) AS j(value)"
        return f"CROSS JOIN json_each(s.{column}) AS j"

    def _missing(self, kind: str, ref: str) -> str:
        staged, live, key = (
            (self.org, "organizations", "o") if kind == "organization" else (self.person, "persons", "p")
        )
        return (
            f"NOT EXISTS (SELECT 1 FROM {staged} x WHERE x.company_id = s.company_id AND x.ext = {ref})"
            f" AND NOT EXISTS (SELECT 1 FROM {live} {key} WHERE {key}.company_id = s.company_id"
            f" AND {key}.external_id = {ref})"
        )

    async def unknown_references(
        self, conn: AsyncConnection, lo: int, hi: int, limit: int
    ) -> list[tuple[int, str, str]]:
        """(line, kind, external id) of references in lines lo < line <= hi that name no record."""
        rng = "s.line > :lo AND s.line <= :hi"
        sql = f"""
            SELECT line, rank, kind, ref FROM (
              SELECT s.line AS line, 0 AS rank, 'organization' AS kind, s.org_ext AS ref FROM {self.person} s
               WHERE {rng} AND s.org_ext IS NOT NULL AND {self._missing("organization", "s.org_ext")}
              UNION ALL
              SELECT s.line, 1, 'person', s.person_ext FROM {self.item} s
               WHERE {rng} AND s.person_ext IS NOT NULL AND {self._missing("person", "s.person_ext")}
              UNION ALL
              SELECT s.line, 2, 'organization', s.org_ext FROM {self.item} s
               WHERE {rng} AND s.org_ext IS NOT NULL AND {self._missing("organization", "s.org_ext")}
              UNION ALL
              SELECT s.line, 3, 'person', j.value FROM {self.item} s {self._each("parts")}
               WHERE {rng} AND {self._missing("person", "j.value")}
            ) bad ORDER BY line, rank LIMIT :limit
        """
        rows = await conn.execute(text(sql), {"lo": lo, "hi": hi, "limit": limit})
        return [(int(line), kind, str(ref)) for line, _, kind, ref in rows]

    async def mark_superseded(self, conn: AsyncConnection, lo: int, hi: int) -> None:
        """SQLite: flag the lines lo < line <= hi that a later line of the same record supersedes (usually
        none: one index seek per line, once, instead of one per apply statement). PostgreSQL flagged them
        all in `staged`."""
        if self._pg:
            return
        for table, kind in ((self.org, ""), (self.person, ""), (self.item, " AND x.kind = s.kind")):
            await conn.execute(
                text(
                    f"UPDATE {table} AS s SET superseded = TRUE WHERE s.line > :lo AND s.line <= :hi"
                    f" AND EXISTS (SELECT 1 FROM {table} x WHERE x.company_id = s.company_id{kind}"
                    " AND x.ext = s.ext AND x.line > s.line)"
                ),
                {"lo": lo, "hi": hi},
            )

    async def max_line(self, conn: AsyncConnection) -> int:
        sql = (
            f"SELECT max(m) FROM (SELECT max(line) AS m FROM {self.org} UNION ALL SELECT max(line)"
            f" FROM {self.person} UNION ALL SELECT max(line) FROM {self.item}) t"
        )
        return int((await conn.execute(text(sql))).scalar() or 0)

    # -- apply ---------------------------------------------------------------------------------------
    #
    # Each apply step upserts the latest line of each record in one chunk of lines (lo < line <= hi) and
    # says how many records it wrote and how many of them were new. On SQLite the import holds the writer
    # for the whole step, so the new ones are the rows past the table's last id before the step; on
    # PostgreSQL (other transactions insert meanwhile) each upserted row says whether it was inserted.

    async def _upsert(
        self, conn: AsyncConnection, sql: str, params: dict[str, Any], live: str, lines: int
    ) -> ChunkCount:
        if self._pg:
            counted = f"WITH up AS ({sql} RETURNING (xmax = 0) AS created) SELECT count(*),"
            counted += " count(*) FILTER (WHERE created) FROM up"
            records, new = (await conn.execute(_with_now(counted), params)).one()
        else:
            last = (await conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {live}"))).scalar_one()
            records = (await conn.execute(_with_now(sql), params)).rowcount
            new = (
                await conn.execute(text(f"SELECT count(*) FROM {live} WHERE id > :last"), {"last": last})
            ).scalar_one()
        return ChunkCount(lines, int(records), int(records) - int(new))

    async def apply_organizations(
        self, conn: AsyncConnection, lo: int, hi: int, lines: int, now: datetime
    ) -> ChunkCount:
        sql = f"""
            INSERT INTO organizations (company_id, external_id, name, created_at)
            SELECT s.company_id, s.ext, s.name, coalesce(s.created_at, :now) FROM {self.org} s
             WHERE s.line > :lo AND s.line <= :hi AND NOT s.superseded
            ON CONFLICT (company_id, external_id) DO UPDATE SET name = excluded.name,
               created_at = coalesce((SELECT x.created_at FROM {self.org} x
                   WHERE x.company_id = excluded.company_id
                   AND x.ext = excluded.external_id ORDER BY x.line DESC LIMIT 1), organizations.created_at)
        """
        return await self._upsert(conn, sql, {"lo": lo, "hi": hi, "now": now}, "organizations", lines)

    async def apply_persons(
        self, conn: AsyncConnection, lo: int, hi: int, lines: int, now: datetime
    ) -> ChunkCount:
        where = "s.line > :lo AND s.line <= :hi AND NOT s.superseded"
        upsert = f"""
            INSERT INTO persons (company_id, external_id, name, organization_id, created_at)
            SELECT s.company_id, s.ext, s.name, o.id, coalesce(s.created_at, :now) FROM {self.person} s
              LEFT JOIN organizations o ON o.company_id = s.company_id AND o.external_id = s.org_ext
             WHERE {where}
            ON CONFLICT (company_id, external_id) DO UPDATE
               SET name = excluded.name, organization_id = excluded.organization_id,
               created_at = coalesce((SELECT x.created_at FROM {self.person} x
                   WHERE x.company_id = excluded.company_id
                   AND x.ext = excluded.external_id ORDER BY x.line DESC LIMIT 1), persons.created_at)
        """
        counted = await self._upsert(conn, upsert, {"lo": lo, "hi": hi, "now": now}, "persons", lines)
        if counted.existed:  # an update replaces the person's addresses
            await conn.execute(
                text(
                    f"DELETE FROM person_emails WHERE person_id IN (SELECT p.id FROM {self.person} s"
                    f" JOIN persons p ON p.company_id = s.company_id AND p.external_id = s.ext WHERE {where})"
                ),
                {"lo": lo, "hi": hi},
            )
        emails = f"""
            INSERT INTO person_emails (person_id, address, company_id)
            SELECT p.id, j.value, s.company_id FROM {self.person} s {self._each("emails")}
              CROSS JOIN persons p
             WHERE {where} AND p.company_id = s.company_id AND p.external_id = s.ext
            ON CONFLICT DO NOTHING
        """
        await conn.execute(text(emails), {"lo": lo, "hi": hi})
        return counted

    async def apply_items(
        self, conn: AsyncConnection, lo: int, hi: int, lines: int, now: datetime
    ) -> ChunkCount:
        where = "s.line > :lo AND s.line <= :hi AND NOT s.superseded"
        upsert = f"""
            INSERT INTO items (company_id, type, external_id, title, person_id, organization_id, status,
                               created_at, status_changed_at)
            SELECT s.company_id, s.kind, s.ext, s.title, p.id, o.id, s.status, coalesce(s.created_at, :now),
                   CASE WHEN s.status = 'open' THEN coalesce(s.created_at, :now) ELSE :now END
              FROM {self.item} s
              LEFT JOIN persons p ON p.company_id = s.company_id AND p.external_id = s.person_ext
              LEFT JOIN organizations o ON o.company_id = s.company_id AND o.external_id = s.org_ext
             WHERE {where}
            ON CONFLICT (company_id, type, external_id) DO UPDATE SET
               title = excluded.title,
               person_id = excluded.person_id,
               organization_id = excluded.organization_id,
               status_changed_at = CASE WHEN items.status <> excluded.status THEN :now
                                        ELSE items.status_changed_at END,
               status = excluded.status,
               created_at = coalesce(
                   (SELECT x.created_at FROM {self.item} x WHERE x.company_id = excluded.company_id
                       AND x.kind = excluded.type AND x.ext = excluded.external_id
                     ORDER BY x.line DESC LIMIT 1),
                   items.created_at)
        """
        counted = await self._upsert(conn, upsert, {"lo": lo, "hi": hi, "now": now}, "items", lines)
        if lo == 0:  # the participants join below must see the items just written as more than empty
            await self.refresh_statistics(conn, ["items"])
        join_items = (
            "JOIN items i ON i.company_id = s.company_id AND i.type = s.kind AND i.external_id = s.ext"
        )
        if counted.existed:  # an update replaces the deal's participants
            await conn.execute(
                text(
                    f"DELETE FROM item_participants WHERE item_id IN (SELECT i.id FROM {self.item} s"
                    f" {join_items} WHERE {where})"
                ),
                {"lo": lo, "hi": hi},
            )
        # One row per (item, person): one staged line per record (the latest), its participants each once.
        parts = f"""
            INSERT INTO item_participants (item_id, person_id)
            SELECT i.id, p.id FROM {self.item} s {self._each("parts")}
              CROSS JOIN items i CROSS JOIN persons p
             WHERE {where} AND i.company_id = s.company_id AND i.type = s.kind AND i.external_id = s.ext
               AND p.company_id = s.company_id AND p.external_id = j.value
            ON CONFLICT DO NOTHING
        """
        await conn.execute(text(parts), {"lo": lo, "hi": hi})
        return counted


def _with_now(sql: str) -> Any:
    return text(sql).bindparams(bindparam("now", type_=Ts))
