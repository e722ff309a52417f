"""thread search on PostgreSQL: a document inserted without its readers' lexemes gets them

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 17:00:00.000000

Migration 0011 added the access lexemes (owner, shared, id blocks) to every PostgreSQL document, and the
Python writer of this release adds them to new ones. A node of a release before 0011 that still runs during a
rolling upgrade writes documents without them, and new-release searches (which look for those lexemes)
never found its threads. A BEFORE INSERT trigger on thread_search now adds the lexemes of the document's
threads row to every inserted document (`tsvector || tsvector` merges a lexeme already there, so a complete
document comes out unchanged), and this migration repairs the documents that old nodes wrote between 0011
and 0012. SQLite (FTS5) has no such lexemes: nothing to do there.

No BEFORE UPDATE trigger: the only writer of an older release that updates a document is the writer's
`INSERT … ON CONFLICT (thread_id) DO UPDATE SET document = EXCLUDED.document`, and EXCLUDED is the row as
the BEFORE INSERT trigger left it. Updates of this release (0011's trigger on threads) keep the lexemes.

The SQL is frozen here as literal text: the lexemes are those of bccd.store.search_index._pg_access when
this was written (o:OWNER, s:COMPANY when shared, and for S in 10, 12, 14, 16, 18: bS:N, bS:NoOWNER and,
when shared, bS:NsCOMPANY, N = id >> S). tests/store/test_search_access_migrations.py checks that a document
completed by this trigger equals the one the Python writer makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The lexemes as one SQL function, inlined by the planner into the repair's UPDATE (IMMUTABLE, and only
# immutable calls inside: explicit ::text casts, not `text || bigint`, which is STABLE).
_READERS: Final = (
    "CREATE FUNCTION thread_search_readers(tid BIGINT, owner BIGINT, company BIGINT, visibility TEXT) "
    "RETURNS TSVECTOR LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT array_to_tsvector("
    "ARRAY['o:' || owner::text, "
    "'b10:' || (tid >> 10)::text, 'b10:' || (tid >> 10)::text || 'o' || owner::text, "
    "'b12:' || (tid >> 12)::text, 'b12:' || (tid >> 12)::text || 'o' || owner::text, "
    "'b14:' || (tid >> 14)::text, 'b14:' || (tid >> 14)::text || 'o' || owner::text, "
    "'b16:' || (tid >> 16)::text, 'b16:' || (tid >> 16)::text || 'o' || owner::text, "
    "'b18:' || (tid >> 18)::text, 'b18:' || (tid >> 18)::text || 'o' || owner::text] "
    "|| CASE WHEN visibility = 'shared' THEN ARRAY['s:' || company::text, "
    "'b10:' || (tid >> 10)::text || 's' || company::text, "
    "'b12:' || (tid >> 12)::text || 's' || company::text, "
    "'b14:' || (tid >> 14)::text || 's' || company::text, "
    "'b16:' || (tid >> 16)::text || 's' || company::text, "
    "'b18:' || (tid >> 18)::text || 's' || company::text] ELSE ARRAY[]::text[] END) $$"
)

_UPGRADE: Final = (
    # Deliveries (their thread_search inserts) wait from here to the commit, so that none of an old node
    # slips between the repair's snapshot and the trigger. A delivery holds threads before thread_search,
    # and the repair only reads threads: no deadlock.
    "LOCK TABLE thread_search IN SHARE ROW EXCLUSIVE MODE",
    _READERS,
    # A row without its threads row (a foreign-key violation to come) is left as it is.
    "CREATE FUNCTION thread_search_complete() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "DECLARE readers TSVECTOR; BEGIN "
    "SELECT thread_search_readers(t.id, t.owner_id, t.company_id, t.visibility) INTO readers "
    "FROM threads t WHERE t.id = NEW.thread_id; "
    "IF readers IS NOT NULL THEN NEW.document := NEW.document || readers; END IF; "
    "RETURN NEW; END $$",
    "CREATE TRIGGER thread_search_complete BEFORE INSERT ON thread_search "
    "FOR EACH ROW EXECUTE FUNCTION thread_search_complete()",
    # The documents old nodes wrote since 0011; complete ones are not rewritten (no dead row, no new place).
    "UPDATE thread_search s "
    "SET document = s.document || thread_search_readers(t.id, t.owner_id, t.company_id, t.visibility) "
    "FROM threads t WHERE t.id = s.thread_id AND s.document <> "
    "s.document || thread_search_readers(t.id, t.owner_id, t.company_id, t.visibility)",
)
_DOWNGRADE: Final = (
    "DROP TRIGGER IF EXISTS thread_search_complete ON thread_search",
    "DROP FUNCTION IF EXISTS thread_search_complete()",
    "DROP FUNCTION IF EXISTS thread_search_readers(BIGINT, BIGINT, BIGINT, TEXT)",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _DOWNGRADE:
            op.execute(statement)
