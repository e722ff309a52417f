"""thread search on PostgreSQL: who may read a thread, and its id's blocks, in its tsvector

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:10:00.000000

Issue 13 target 5 (search at 1M threads on PostgreSQL). A search ranks the newest 1,000 matches the
caller may read; finding them read every match's document row and threads row (a common word: tens of
thousands of 1 KB rows). The PostgreSQL document now also holds lexemes for the thread's owner, for
"shared in this company", and for the aligned blocks of ids its id lies in (bccd.store.search_index),
so that one GIN scan yields only the visible matches of the newest ids. A trigger keeps the owner and
shared lexemes equal to the threads row. SQLite (FTS5) is unchanged.

The SQL is frozen here, as literal text (it was built from bccd.store.search_index when this migration
was written; a later change there must not change what this migration does). The lexemes it writes are
checked against the Python writer's by tests/store/test_search_access_migrations.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The access and id-block lexemes for the documents written before this migration, and the trigger that
# keeps the owner/shared lexemes equal to the threads row. The table is rebuilt rather than updated in place:
# rows in id order, as inserts leave them (GIN's scans are cheap when a range of ids is a range of the
# table; an UPDATE scattered them, and a common word AND one block then read the word's whole posting
# list: 30 ms at 1M threads), no dead half, and the GIN index built once. `document || array_to_tsvector`
# merges a lexeme already there (a document the 0003 backfill wrote with newer code) instead of repeating it.
# The lock comes first, both tables in one statement: a delivery of a node still running (an older release,
# during a rolling upgrade) that wrote its thread_search row after the copy's snapshot would otherwise be
# lost with the old table; deliveries wait for the migration instead (about a minute at 1M threads). Taking
# threads with it, before anything else, leaves no order in which a delivery and the migration deadlock.
# The lexemes (o:OWNER, s:COMPANY, bS:N, bS:NoOWNER, bS:NsCOMPANY for S in 10, 12, 14, 16, 18) are those
# of bccd.store.search_index._pg_access.
_UPGRADE: Final = (
    "SET LOCAL maintenance_work_mem = '256MB'",
    "LOCK TABLE threads, thread_search IN SHARE ROW EXCLUSIVE MODE",
    "CREATE TABLE thread_search_rebuilt (thread_id BIGINT NOT NULL, document TSVECTOR NOT NULL)",
    (
        "INSERT INTO thread_search_rebuilt (thread_id, document) SELECT s.thread_id, s.document || "
        "array_to_tsvector(ARRAY['o:' || t.owner_id, 'b10:' || (t.id >> 10), 'b10:' || (t.id >> 10) || 'o' ||"
        " t.owner_id, 'b12:' || (t.id >> 12), 'b12:' || (t.id >> 12) || 'o' || t.owner_id, 'b14:' || (t.id >>"
        " 14), 'b14:' || (t.id >> 14) || 'o' || t.owner_id, 'b16:' || (t.id >> 16), 'b16:' || (t.id >> 16) ||"
        " 'o' || t.owner_id, 'b18:' || (t.id >> 18), 'b18:' || (t.id >> 18) || 'o' || t.owner_id] || CASE "
        "WHEN t.visibility = 'shared' THEN ARRAY['s:' || t.company_id, 'b10:' || (t.id >> 10) || 's' || "
        "t.company_id, 'b12:' || (t.id >> 12) || 's' || t.company_id, 'b14:' || (t.id >> 14) || 's' || "
        "t.company_id, 'b16:' || (t.id >> 16) || 's' || t.company_id, 'b18:' || (t.id >> 18) || 's' || "
        "t.company_id] ELSE ARRAY[]::text[] END) FROM thread_search s JOIN threads t ON t.id = s.thread_id "
        "ORDER BY s.thread_id"
    ),
    "DROP TABLE thread_search",
    "ALTER TABLE thread_search_rebuilt RENAME TO thread_search",
    "ALTER TABLE thread_search ADD CONSTRAINT thread_search_pkey PRIMARY KEY (thread_id)",
    (
        "ALTER TABLE thread_search ADD CONSTRAINT thread_search_thread_id_fkey FOREIGN KEY (thread_id) "
        "REFERENCES threads (id) ON DELETE CASCADE"
    ),
    "CREATE INDEX ix_thread_search_document ON thread_search USING GIN (document)",
    (
        "CREATE FUNCTION thread_search_access() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE "
        "thread_search SET document = ts_delete(document, ARRAY['c:' || OLD.company_id] || ARRAY['o:' || "
        "OLD.owner_id, 'b10:' || (OLD.id >> 10), 'b10:' || (OLD.id >> 10) || 'o' || OLD.owner_id, 'b12:' || "
        "(OLD.id >> 12), 'b12:' || (OLD.id >> 12) || 'o' || OLD.owner_id, 'b14:' || (OLD.id >> 14), 'b14:' ||"
        " (OLD.id >> 14) || 'o' || OLD.owner_id, 'b16:' || (OLD.id >> 16), 'b16:' || (OLD.id >> 16) || 'o' ||"
        " OLD.owner_id, 'b18:' || (OLD.id >> 18), 'b18:' || (OLD.id >> 18) || 'o' || OLD.owner_id] || CASE "
        "WHEN OLD.visibility = 'shared' THEN ARRAY['s:' || OLD.company_id, 'b10:' || (OLD.id >> 10) || 's' ||"
        " OLD.company_id, 'b12:' || (OLD.id >> 12) || 's' || OLD.company_id, 'b14:' || (OLD.id >> 14) || 's' "
        "|| OLD.company_id, 'b16:' || (OLD.id >> 16) || 's' || OLD.company_id, 'b18:' || (OLD.id >> 18) || "
        "'s' || OLD.company_id] ELSE ARRAY[]::text[] END) || array_to_tsvector(ARRAY['c:' || NEW.company_id] "
        "|| ARRAY['o:' || NEW.owner_id, 'b10:' || (NEW.id >> 10), 'b10:' || (NEW.id >> 10) || 'o' || "
        "NEW.owner_id, 'b12:' || (NEW.id >> 12), 'b12:' || (NEW.id >> 12) || 'o' || NEW.owner_id, 'b14:' || "
        "(NEW.id >> 14), 'b14:' || (NEW.id >> 14) || 'o' || NEW.owner_id, 'b16:' || (NEW.id >> 16), 'b16:' ||"
        " (NEW.id >> 16) || 'o' || NEW.owner_id, 'b18:' || (NEW.id >> 18), 'b18:' || (NEW.id >> 18) || 'o' ||"
        " NEW.owner_id] || CASE WHEN NEW.visibility = 'shared' THEN ARRAY['s:' || NEW.company_id, 'b10:' || "
        "(NEW.id >> 10) || 's' || NEW.company_id, 'b12:' || (NEW.id >> 12) || 's' || NEW.company_id, 'b14:' "
        "|| (NEW.id >> 14) || 's' || NEW.company_id, 'b16:' || (NEW.id >> 16) || 's' || NEW.company_id, "
        "'b18:' || (NEW.id >> 18) || 's' || NEW.company_id] ELSE ARRAY[]::text[] END) WHERE thread_id = "
        "NEW.id; RETURN NULL; END $$"
    ),
    (
        "CREATE TRIGGER thread_search_access AFTER UPDATE OF visibility, owner_id, company_id ON threads FOR "
        "EACH ROW WHEN (OLD.visibility IS DISTINCT FROM NEW.visibility OR OLD.owner_id IS DISTINCT FROM "
        "NEW.owner_id OR OLD.company_id IS DISTINCT FROM NEW.company_id) EXECUTE FUNCTION "
        "thread_search_access()"
    ),
    "ANALYZE thread_search",
)
_DOWNGRADE: Final = (
    "DROP TRIGGER IF EXISTS thread_search_access ON threads",
    "DROP FUNCTION IF EXISTS thread_search_access()",
    (
        "UPDATE thread_search s SET document = ts_delete(s.document, ARRAY['o:' || t.owner_id, 'b10:' || "
        "(t.id >> 10), 'b10:' || (t.id >> 10) || 'o' || t.owner_id, 'b12:' || (t.id >> 12), 'b12:' || (t.id "
        ">> 12) || 'o' || t.owner_id, 'b14:' || (t.id >> 14), 'b14:' || (t.id >> 14) || 'o' || t.owner_id, "
        "'b16:' || (t.id >> 16), 'b16:' || (t.id >> 16) || 'o' || t.owner_id, 'b18:' || (t.id >> 18), 'b18:' "
        "|| (t.id >> 18) || 'o' || t.owner_id] || CASE WHEN t.visibility = 'shared' THEN ARRAY['s:' || "
        "t.company_id, 'b10:' || (t.id >> 10) || 's' || t.company_id, 'b12:' || (t.id >> 12) || 's' || "
        "t.company_id, 'b14:' || (t.id >> 14) || 's' || t.company_id, 'b16:' || (t.id >> 16) || 's' || "
        "t.company_id, 'b18:' || (t.id >> 18) || 's' || t.company_id] ELSE ARRAY[]::text[] END) FROM threads "
        "t WHERE t.id = s.thread_id"
    ),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _DOWNGRADE:
            op.execute(statement)
